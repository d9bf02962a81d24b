#include "config/hostconfig.h"
#include "value/cfgread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static sh_status parse_workers(sh_cfg *c, const config_setting_t *root, sh_hostconfig *h)
{
    config_setting_t *w = config_setting_get_member(root, "workers");
    if (!w)
        return SH_S_OK;
    if (config_setting_type(w) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, w, "'workers' must be a group { ttl_s = 300; max = 16; }, got %s",
                           sh_cfg_type_word(w));
    static const char *const known[] = {"ttl_s", "ttl_ms", "max", "quarantine_after", "health_interval_s"};
    sh_status rc = sh_cfg_check_keys(c, w, "'workers'", known, sizeof known / sizeof known[0]);
    int64_t ttl_s = 0, ttl_ms = 0, max = 0;
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, w, "ttl_s", "a number of seconds", false, 1, &ttl_s);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, w, "ttl_ms", "a number of milliseconds", false, 1, &ttl_ms);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, w, "max", "a number of worker processes", false, 1, &max);
    int64_t quarantine = 0, health = 0;
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, w, "quarantine_after", "a number of consecutive crashes", false, 1, &quarantine);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, w, "health_interval_s", "a number of seconds", false, 1, &health);
    h->quarantine_after = (int)quarantine;
    h->health_interval_ms = health * 1000;
    if (rc == SH_S_OK && ttl_s && ttl_ms)
        rc = sh_cfg_fail(c, w, "'workers' sets both ttl_s and ttl_ms: keep one");
    h->workers.ttl_ms = ttl_ms ? ttl_ms : ttl_s * 1000;
    h->workers.max_workers = (size_t)max;
    return rc;
}

static sh_status parse_grants(sh_cfg *c, const config_setting_t *g, sh_permissions *out)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, g, "'grants' must be a group { network = true; read = ( \"/data\" ); }, got %s",
                           sh_cfg_type_word(g));
    static const char *const known[] = {"network", "exec", "read", "write", "env"};
    sh_status rc = sh_cfg_check_keys(c, g, "'grants'", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_bool(c, g, "network", &out->network);
    if (rc == SH_S_OK)
        rc = sh_cfg_bool(c, g, "exec", &out->exec);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, g, "read", &out->read);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, g, "write", &out->write);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, g, "env", &out->env);
    return rc;
}

static sh_status parse_plugin(sh_cfg *c, const config_setting_t *g, sh_plugin_settings *ps)
{
    ps->line = sh_cfg_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, g, "each element of 'plugins' must be a group { name = \"ns/name\"; ... }");
    static const char *const known[] = {"name", "isolation", "limits", "config", "grants"};
    sh_status rc = sh_cfg_check_keys(c, g, "a plugin's settings", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(c, g, "name", "the plugin's name, \"namespace/name\"", true, &ps->name);
    if (rc != SH_S_OK)
        return rc;
    char *iso = NULL;
    rc = sh_cfg_string(c, g, "isolation", "\"process\", \"call\" or \"none\"", false, &iso);
    if (rc == SH_S_OK && iso && !sh_isolation_parse(iso, &ps->isolation))
        rc = sh_cfg_fail(c, config_setting_get_member(g, "isolation"),
                         "isolation '%s' is not one of \"process\", \"call\" or \"none\"", iso);
    free(iso);
    config_setting_t *l = config_setting_get_member(g, "limits");
    if (rc == SH_S_OK && l)
        rc = sh_descriptor_parse_limits(c, l, &ps->limits);
    config_setting_t *gr = config_setting_get_member(g, "grants");
    if (rc == SH_S_OK && gr)
        rc = parse_grants(c, gr, &ps->grants);
    config_setting_t *cs = config_setting_get_member(g, "config");
    if (rc == SH_S_OK && cs && config_setting_type(cs) != CONFIG_TYPE_GROUP)
        rc = sh_cfg_fail(c, cs, "'config' of plugin '%s' must be a group, got %s", ps->name,
                         sh_cfg_type_word(cs));
    if (rc == SH_S_OK && cs)
        rc = sh_cfg_value(c, cs, "plugin config", &ps->config);
    else if (rc == SH_S_OK && !(ps->config = sh_value_map()))
        rc = sh_error_set(c->err, SH_S_NOMEM, "out of memory reading %s", c->path);
    return rc;
}

static sh_status parse(sh_cfg *c, const config_setting_t *root, sh_hostconfig *h)
{
    static const char *const known[] = {"plugin_path", "workers", "limits", "plugins", "sandbox", "pins", "hooks"};
    sh_status rc = sh_cfg_check_keys(c, root, "the host configuration", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(c, root, "plugin_path", &h->plugin_path);
    if (rc == SH_S_OK)
        rc = parse_workers(c, root, h);
    config_setting_t *sb = config_setting_get_member(root, "sandbox");
    if (rc == SH_S_OK && sb) {
        static const char *const sbkeys[] = {"user"};
        rc = config_setting_type(sb) == CONFIG_TYPE_GROUP
                 ? sh_cfg_check_keys(c, sb, "'sandbox'", sbkeys, 1)
                 : sh_cfg_fail(c, sb, "'sandbox' must be a group { user = \"nobody\"; }");
        if (rc == SH_S_OK)
            rc = sh_cfg_string(c, sb, "user", "the user workers run as when the host runs as root", false,
                               &h->sandbox_user);
    }
    config_setting_t *pins = config_setting_get_member(root, "pins");
    if (rc == SH_S_OK && pins) {
        if (config_setting_type(pins) != CONFIG_TYPE_GROUP)
            rc = sh_cfg_fail(c, pins, "'pins' must be a group { chunk = \"core/text\"; }, got %s",
                             sh_cfg_type_word(pins));
        for (int i = 0; rc == SH_S_OK && i < config_setting_length(pins); i++) {
            config_setting_t *pin = config_setting_get_elem(pins, (unsigned)i);
            const char *v = config_setting_type(pin) == CONFIG_TYPE_STRING ? config_setting_get_string(pin) : NULL;
            if (!v || !sh_valid_plugin_name(v))
                rc = sh_cfg_fail(c, pin, "pin '%s' must name a plugin, as in %s = \"core/text\";",
                                 config_setting_name(pin), config_setting_name(pin));
        }
        if (rc == SH_S_OK)
            rc = sh_cfg_value(c, pins, "pins", &h->pins);
    }
    config_setting_t *hooks = config_setting_get_member(root, "hooks");
    if (rc == SH_S_OK && hooks)
        rc = sh_middleware_parse(c, hooks, &h->hooks);
    config_setting_t *l = config_setting_get_member(root, "limits");
    if (rc == SH_S_OK && l)
        rc = sh_descriptor_parse_limits(c, l, &h->limits);
    config_setting_t *ps = config_setting_get_member(root, "plugins");
    if (rc != SH_S_OK || !ps)
        return rc;
    if (config_setting_type(ps) != CONFIG_TYPE_LIST)
        return sh_cfg_fail(c, ps, "'plugins' must be a list ( { name = \"ns/name\"; ... }, ... ), got %s",
                           sh_cfg_type_word(ps));
    int n = config_setting_length(ps);
    h->plugins = calloc((size_t)n + 1, sizeof *h->plugins);
    if (!h->plugins)
        return sh_error_set(c->err, SH_S_NOMEM, "out of memory reading %s", c->path);
    for (int i = 0; i < n; i++) {
        h->plugin_count = (size_t)i + 1;
        rc = parse_plugin(c, config_setting_get_elem(ps, (unsigned)i), &h->plugins[i]);
        if (rc != SH_S_OK)
            return rc;
    }
    size_t *first = NULL;
    if ((rc = sh_cfg_first_duplicates(c, ps, "name", &first)) != SH_S_OK)
        return rc;
    for (int i = 0; i < n && rc == SH_S_OK; i++)
        if (first[i] != SIZE_MAX)
            rc = sh_cfg_fail(c, config_setting_get_elem(ps, (unsigned)i),
                             "plugin '%s' has settings twice (first at line %d)", h->plugins[i].name,
                             h->plugins[first[i]].line);
    free(first);
    return rc;
}

sh_status sh_hostconfig_load(const char *path, sh_hostconfig **out, sh_error *err)
{
    *out = NULL;
    sh_hostconfig *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading %s", path);
    }
    config_t cfg;
    sh_cfg c = {.path = path, .err = err};
    sh_status rc = sh_cfg_read_file(&cfg, path, "host configuration", SH_CFG_MAX_DOCUMENT, err);
    if (rc == SH_S_OK)
        rc = parse(&c, config_root_setting(&cfg), h);
    config_destroy(&cfg);
    if (rc != SH_S_OK) {
        sh_hostconfig_free(h);
        return rc;
    }
    *out = h;
    return SH_S_OK;
}

void sh_hostconfig_free(sh_hostconfig *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->plugin_count; i++) {
        free(h->plugins[i].name);
        sh_value_free(h->plugins[i].config);
        sh_grants_free(&h->plugins[i].grants);
    }
    free(h->plugins);
    for (size_t i = 0; i < h->plugin_path.len; i++)
        free(h->plugin_path.items[i]);
    free(h->plugin_path.items);
    free(h->path);
    free(h->sandbox_user);
    sh_value_free(h->pins);
    sh_middleware_config_free(&h->hooks);
    free(h);
}

const sh_plugin_settings *sh_hostconfig_plugin(const sh_hostconfig *h, const char *name)
{
    for (size_t i = 0; h && i < h->plugin_count; i++)
        if (strcmp(h->plugins[i].name, name) == 0)
            return &h->plugins[i];
    return NULL;
}
