#include "config/hooks_config.h"
#include "util/names.h"

#include <stdlib.h>
#include <string.h>

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

void sh_middleware_config_free(sh_middleware_config *m)
{
    if (!m)
        return;
    sh_value_free(m->active);
    sh_strlist_clear(&m->deny_plugins);
    sh_strlist_clear(&m->deny_hooks);
    free(m->audit_log);
    memset(m, 0, sizeof *m);
}
