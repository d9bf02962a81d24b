/* Hook middleware: built-in checks that run before every hook implementation, at the reserved priorities
 * (SH_HOOK_PRIORITY_RESERVED and above, which no plugin may declare). Configured in the host
 * configuration's `hooks` group (config/hooks_config.h).
 *
 * governance (priority 1100) refuses a denied call with "permission denied"; quota (priority 1000) refuses a
 * plugin's calls past its allowance for the run with "quota exceeded". */
#ifndef SH_MIDDLEWARE_H
#define SH_MIDDLEWARE_H

#include "config/hooks_config.h"

#include <stdio.h>

/* The running middleware of one hook table: the audit log and the per-run call counters. */
typedef struct sh_middleware {
    const sh_middleware_config *cfg; /* NULL: nothing configured; every call is allowed */
    const char *config_path;
    FILE *audit;
    int64_t *calls;  /* per quota slot */
    size_t slots;
} sh_middleware;

sh_status sh_middleware_start(sh_middleware *mw, const sh_middleware_config *cfg, const char *config_path,
                              sh_error *err);
void sh_middleware_stop(sh_middleware *mw);

/* Whether the governance policy denies plugin `plugin` calling hook `hook`: decided once per implementation. */
bool sh_middleware_denies(const sh_middleware *mw, const char *plugin, const char *hook);

/* A quota counter for a plugin (the same slot for every implementation of one plugin is the caller's job). */
sh_status sh_middleware_add_slot(sh_middleware *mw, size_t *slot, sh_error *err);

/* Whether anything is configured: when not, every call is admitted and sh_middleware_admit need not run (the
 * hook call path tests this inline rather than paying a call per implementation). */
static inline bool sh_middleware_on(const sh_middleware *mw) { return mw->cfg != NULL; }

/* Admits one call: governance, then quota, writing the audit line. SH_S_STAGE with "permission denied: ..." or
 * "quota exceeded: ..." when refused. */
sh_status sh_middleware_admit(sh_middleware *mw, bool denied, size_t slot, const char *plugin, const char *hook,
                              sh_error *err);

/* A new run: quota counters start again. */
void sh_middleware_new_run(sh_middleware *mw);

#endif
