#include "util/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sh_env_get(const sh_env *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < env->vars.len; i++)
        if (strncmp(env->vars.items[i], name, n) == 0 && env->vars.items[i][n] == '=')
            return env->vars.items[i] + n + 1;
    return NULL;
}

/* Set and not empty, else NULL. */
static const char *value(const sh_env *env, const char *name)
{
    const char *v = sh_env_get(env, name);
    return v && *v ? v : NULL;
}

static sh_status push_joined(sh_strlist *l, const char *dir, const char *rest, sh_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, rest) >= (int)sizeof path)
        return SH_S_OK; /* no such directory could be used */
    return sh_strlist_push(l, path, err);
}

/* The XDG choice, for the cache and the state directory alike: `explicit_var` alone when set; else
 * $xdg_var/stagehost, then $HOME/home_rel/stagehost, each only when absolute. */
static sh_status base_dirs(const sh_env *env, const char *explicit_var, const char *xdg_var, const char *home_rel,
                           sh_strlist *out, sh_error *err)
{
    const char *explicit_dir = value(env, explicit_var);
    if (explicit_dir)
        return sh_strlist_push(out, explicit_dir, err);
    const char *xdg = value(env, xdg_var), *home = value(env, "HOME");
    sh_status rc = xdg && xdg[0] == '/' ? push_joined(out, xdg, "stagehost", err) : SH_S_OK;
    if (rc == SH_S_OK && home && home[0] == '/') {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/stagehost", home_rel);
        rc = push_joined(out, home, rel, err);
    }
    return rc;
}

sh_status sh_env_capture_from(sh_env *env, const char *const *vars, sh_error *err)
{
    memset(env, 0, sizeof *env);
    sh_status rc = SH_S_OK;
    for (size_t i = 0; rc == SH_S_OK && vars && vars[i]; i++)
        if (strchr(vars[i], '='))
            rc = sh_strlist_push(&env->vars, vars[i], err);
    if (rc != SH_S_OK)
        return rc;
    env->plugin_path = value(env, "STAGEHOST_PLUGIN_PATH");
    env->system_plugin_path = sh_env_get(env, "STAGEHOST_SYSTEM_PLUGIN_PATH");
    env->config = value(env, "STAGEHOST_CONFIG");
    env->pretend_missing = value(env, "STAGEHOST_PRETEND_MISSING");
    env->tmpdir = value(env, "TMPDIR");
    if (!env->tmpdir)
        env->tmpdir = "/tmp";
    const char *off = value(env, "STAGEHOST_NO_CACHE");
    env->no_cache = off && strcmp(off, "0") != 0;
    rc = base_dirs(env, "STAGEHOST_CACHE_DIR", "XDG_CACHE_HOME", ".cache", &env->cache_dirs, err);
    if (rc == SH_S_OK)
        rc = base_dirs(env, "STAGEHOST_STATE_DIR", "XDG_STATE_HOME", ".local/state", &env->state_dirs, err);
    env->state_dir = env->state_dirs.len ? env->state_dirs.items[0] : NULL;
    return rc;
}

sh_status sh_env_capture(sh_env *env, sh_error *err)
{
    return sh_env_capture_from(env, (const char *const *)environ, err);
}

void sh_env_free(sh_env *env)
{
    sh_strlist_clear(&env->vars);
    sh_strlist_clear(&env->cache_dirs);
    sh_strlist_clear(&env->state_dirs);
    memset(env, 0, sizeof *env);
}
