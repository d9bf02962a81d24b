#include "hooks/middleware.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

sh_status sh_middleware_start(sh_middleware *mw, const sh_middleware_config *cfg, const char *config_path,
                              sh_error *err)
{
    memset(mw, 0, sizeof *mw);
    mw->cfg = cfg;
    mw->config_path = config_path ? config_path : "the host configuration";
    if (cfg && cfg->audit_log) {
        mw->audit = fopen(cfg->audit_log, "a");
        if (!mw->audit)
            return sh_error_set(err, SH_S_IO,
                                "cannot open the hook audit log %s (hooks.governance.audit_log in %s): %s; create its "
                                "directory or point audit_log elsewhere",
                                cfg->audit_log, mw->config_path, strerror(errno));
        /* Line-buffered: every line is on disk even if a later in-process plugin crashes the host. */
        setvbuf(mw->audit, NULL, _IOLBF, 0);
    }
    return SH_S_OK;
}

void sh_middleware_stop(sh_middleware *mw)
{
    if (mw->audit)
        fclose(mw->audit);
    free(mw->calls);
    memset(mw, 0, sizeof *mw);
}

bool sh_middleware_denies(const sh_middleware *mw, const char *plugin, const char *hook)
{
    if (!mw->cfg)
        return false;
    char both[512];
    snprintf(both, sizeof both, "%s:%s", plugin, hook);
    return sh_strlist_has(&mw->cfg->deny_plugins, plugin) || sh_strlist_has(&mw->cfg->deny_hooks, hook) ||
           sh_strlist_has(&mw->cfg->deny_hooks, both);
}

sh_status sh_middleware_add_slot(sh_middleware *mw, size_t *slot, sh_error *err)
{
    int64_t *calls = realloc(mw->calls, (mw->slots + 1) * sizeof *calls);
    if (!calls)
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    mw->calls = calls;
    mw->calls[mw->slots] = 0;
    *slot = mw->slots++;
    return SH_S_OK;
}

static void audit(sh_middleware *mw, const char *decision, const char *plugin, const char *hook, const char *why)
{
    if (!mw->audit)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(mw->audit, "%s %s plugin=%s hook=%s%s%s\n", when, decision, plugin, hook, why ? " reason=" : "",
            why ? why : "");
}

sh_status sh_middleware_admit(sh_middleware *mw, bool denied, size_t slot, const char *plugin, const char *hook,
                              sh_error *err)
{
    if (!mw->cfg)
        return SH_S_OK;
    if (denied) {
        audit(mw, "denied", plugin, hook, "governance");
        return sh_error_set(err, SH_S_STAGE,
                            "permission denied: the governance policy of %s (hooks.governance) denies plugin '%s' "
                            "the hook '%s'; remove the plugin or hook from deny_plugins/deny_hooks to allow it",
                            mw->config_path, plugin, hook);
    }
    if (mw->cfg->calls_per_plugin && slot < mw->slots && ++mw->calls[slot] > mw->cfg->calls_per_plugin) {
        audit(mw, "denied", plugin, hook, "quota");
        return sh_error_set(err, SH_S_STAGE,
                            "quota exceeded: plugin '%s' already made the %lld hook calls allowed per run "
                            "(hooks.quota.calls_per_plugin in %s); raise the quota or call it less",
                            plugin, (long long)mw->cfg->calls_per_plugin, mw->config_path);
    }
    audit(mw, "allowed", plugin, hook, NULL);
    return SH_S_OK;
}

void sh_middleware_new_run(sh_middleware *mw)
{
    for (size_t i = 0; i < mw->slots; i++)
        mw->calls[i] = 0;
}
