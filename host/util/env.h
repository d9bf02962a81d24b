/*
 * The process environment, read once when the host starts and passed down (as Vulkan-Loader's
 * loader_environment.c does): nothing below main calls getenv, so what a run is configured with is what main
 * saw, whatever later setenv calls do, and a test can hand the host an environment it filled itself.
 *
 * Empty values count as unset, except STAGEHOST_SYSTEM_PLUGIN_PATH, whose empty value disables the installed
 * default. The cache and state directories follow the XDG base directory rules, written once here: the
 * STAGEHOST_ variable alone when set (an explicit choice is never second-guessed), else $XDG_..._HOME/stagehost,
 * then $HOME/<the XDG default>/stagehost, each only when absolute, as the specification says.
 */
#ifndef SH_ENV_H
#define SH_ENV_H

#include "util/strlist.h"

typedef struct sh_env {
    sh_strlist vars;                /* every NAME=VALUE captured, in the order given */
    const char *plugin_path;        /* STAGEHOST_PLUGIN_PATH, colon-separated; NULL: unset */
    const char *system_plugin_path; /* STAGEHOST_SYSTEM_PLUGIN_PATH; NULL: unset (the installed default), "": none */
    const char *config;             /* STAGEHOST_CONFIG: the host configuration file; NULL: unset */
    const char *pretend_missing;    /* STAGEHOST_PRETEND_MISSING ("seccomp,landlock"); NULL: unset */
    const char *tmpdir;             /* TMPDIR, or "/tmp" */
    bool no_cache;                  /* STAGEHOST_NO_CACHE set to anything but "0": no registry cache */
    /* The registry cache's directory: the first of these that exists or can be made. STAGEHOST_CACHE_DIR,
     * else $XDG_CACHE_HOME/stagehost and $HOME/.cache/stagehost. May be empty: then no cache. */
    sh_strlist cache_dirs;
    /* The quarantine's directory: STAGEHOST_STATE_DIR, else $XDG_STATE_HOME/stagehost, else
     * $HOME/.local/state/stagehost. NULL: none (crashes are remembered for this process only). */
    const char *state_dir;
    sh_strlist state_dirs; /* every candidate; state_dir is the first */
} sh_env;

/* Fills `env` from the process environment (environ). SH_S_NOMEM only; sh_env_free it in any case. */
sh_status sh_env_capture(sh_env *env, sh_error *err);

/* Fills `env` from `vars`, NULL-terminated NAME=VALUE strings (an entry without '=' is ignored; of two entries
 * with the same name the first counts, as getenv's does): for tests, and for hosts that give a run an
 * environment of its own. */
sh_status sh_env_capture_from(sh_env *env, const char *const *vars, sh_error *err);

/* The value of `name` as captured, or NULL. */
const char *sh_env_get(const sh_env *env, const char *name);

void sh_env_free(sh_env *env);

#endif
