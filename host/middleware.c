#include "middleware.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sh_status parse_governance(sh_cfg *c, const config_setting_t *g, sh_middleware_config *out)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, g, "'hooks.governance' must be a group { deny_plugins = ( ... ); audit_log = ...; }");
    static const char *const known[] = {"deny_plugins", "deny_hooks", "audit_log"};
    sh_status rc = sh_cfg_check_keys(c, g, "'hooks.governance'", known, 3);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, g, "deny_plugins", &out->deny_plugins);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, g, "deny_hooks", &out->deny_hooks);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(c, g, "audit_log", "a file the audit lines are appended to", false, &out->audit_log);
    return rc;
}

sh_status sh_middleware_parse(sh_cfg *c, const config_setting_t *group, sh_middleware_config *out)
{
    out->line = sh_cfg_line(group);
    if (config_setting_type(group) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, group, "'hooks' must be a group { active = { ... }; governance = { ... }; quota = { ... }; }");
    static const char *const known[] = {"active", "governance", "quota"};
    sh_status rc = sh_cfg_check_keys(c, group, "'hooks'", known, 3);
    config_setting_t *active = config_setting_get_member(group, "active");
    if (rc == SH_S_OK && active) {
        if (config_setting_type(active) != CONFIG_TYPE_GROUP)
            rc = sh_cfg_fail(c, active, "'hooks.active' must be a group { KIND = \"namespace/plugin\"; }");
        for (int i = 0; rc == SH_S_OK && i < config_setting_length(active); i++) {
            config_setting_t *e = config_setting_get_elem(active, (unsigned)i);
            const char *v = config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
            if (!v || !sh_valid_plugin_name(v))
                rc = sh_cfg_fail(c, e, "hooks.active.%s must name a plugin, as in %s = \"team/plugin\";",
                                 config_setting_name(e), config_setting_name(e));
        }
        if (rc == SH_S_OK)
            rc = sh_cfg_value(c, active, "hooks.active", &out->active);
    }
    config_setting_t *gov = config_setting_get_member(group, "governance");
    if (rc == SH_S_OK && gov)
        rc = parse_governance(c, gov, out);
    config_setting_t *quota = config_setting_get_member(group, "quota");
    if (rc == SH_S_OK && quota) {
        static const char *const qkeys[] = {"calls_per_plugin"};
        rc = config_setting_type(quota) == CONFIG_TYPE_GROUP
                 ? sh_cfg_check_keys(c, quota, "'hooks.quota'", qkeys, 1)
                 : sh_cfg_fail(c, quota, "'hooks.quota' must be a group { calls_per_plugin = 1000; }");
        if (rc == SH_S_OK)
            rc = sh_cfg_int(c, quota, "calls_per_plugin", "a number of hook calls per plugin per run", false, 1,
                            &out->calls_per_plugin);
    }
    return rc;
}

static void list_free(sh_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
}

void sh_middleware_config_free(sh_middleware_config *m)
{
    if (!m)
        return;
    sh_value_free(m->active);
    list_free(&m->deny_plugins);
    list_free(&m->deny_hooks);
    free(m->audit_log);
    memset(m, 0, sizeof *m);
}

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

static bool listed(const sh_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], s) == 0)
            return true;
    return false;
}

bool sh_middleware_denies(const sh_middleware *mw, const char *plugin, const char *hook)
{
    if (!mw->cfg)
        return false;
    char both[512];
    snprintf(both, sizeof both, "%s:%s", plugin, hook);
    return listed(&mw->cfg->deny_plugins, plugin) || listed(&mw->cfg->deny_hooks, hook) ||
           listed(&mw->cfg->deny_hooks, both);
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
