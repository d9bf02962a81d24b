#include "registry/function_spec.h"
#include "util/names.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int put(sh_value *m, const char *key, sh_value *v) { return v ? sh_value_map_set(m, key, v) : SH_ERR_NOMEM; }

/* A constant argument is checked when the descriptor is read, where its file:line is known, rather than on
 * every item, where the error could only say "argument N". Recorded without stopping, like the other checks. */
static void check_constant(sh_cfg *p, const config_setting_t *value, int i, const char *fn, sh_ntype t,
                           const sh_value *constant)
{
    sh_error e;
    if (sh_ntype_check(t, constant, "the constant", &e) != SH_S_OK)
        sh_cfg_fail(p, value, "argument %d of %s(): %s", i + 1, fn, e.message);
}

static sh_status parse_arg(sh_cfg *p, const config_setting_t *a, int i, const char *fn, sh_value *args)
{
    if (config_setting_type(a) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(p, a, "argument %d must be a group { type = \"...\"; field = \"...\"; } or { type = "
                                 "\"...\"; value = ...; }, got %s", i + 1, sh_cfg_type_word(a));
    static const char *const known[] = {"type", "field", "value"};
    sh_status rc = sh_cfg_check_keys(p, a, "a function argument", known, 3);
    char *type = NULL, *field = NULL;
    if (rc == SH_S_OK)
        rc = sh_cfg_string(p, a, "type", SH_NTYPE_NAMES, true, &type);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(p, a, "field", "the item field passed as this argument", false, &field);
    config_setting_t *value = sh_cfg_member(a, "value");
    sh_ntype t = SH_NT_VOID;
    if (rc == SH_S_OK && !sh_ntype_parse(type, false, &t))
        rc = sh_cfg_fail(p, sh_cfg_member(a, "type"), "unknown type '%s': use one of %s", type,
                         SH_NTYPE_NAMES);
    if (rc == SH_S_OK && t == SH_NT_VALUE)
        rc = sh_cfg_fail(p, a, "a plain C function cannot take a value handle: use a number, bool, string or bytes");
    if (rc == SH_S_OK && !field == !value)
        rc = sh_cfg_fail(p, a, "argument %d needs exactly one of 'field' (an item field) or 'value' (a constant)",
                         i + 1);
    sh_value *m = rc == SH_S_OK ? sh_value_map() : NULL;
    if (rc == SH_S_OK && (!m || put(m, "type", sh_value_cstring(type)) != SH_OK))
        rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    if (rc == SH_S_OK && field && put(m, "field", sh_value_cstring(field)) != SH_OK)
        rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    sh_value *constant = NULL;
    if (rc == SH_S_OK && value && (rc = sh_cfg_value(p, value, "a constant argument", &constant)) == SH_S_OK) {
        check_constant(p, value, i, fn, t, constant);
        if (put(m, "value", constant) != SH_OK)
            rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    }
    if (rc == SH_S_OK && sh_value_array_push(args, m) != SH_OK)
        rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    else if (rc != SH_S_OK)
        sh_value_free(m);
    free(type);
    free(field);
    return rc;
}

static sh_status parse_returns(sh_cfg *p, const config_setting_t *r, sh_value *spec)
{
    char *type = NULL, *field = NULL;
    sh_status rc = SH_S_OK;
    if (config_setting_type(r) == CONFIG_TYPE_STRING) {
        type = strdup(config_setting_get_string(r));
    } else if (config_setting_type(r) == CONFIG_TYPE_GROUP) {
        static const char *const known[] = {"type", "field"};
        rc = sh_cfg_check_keys(p, r, "'returns'", known, 2);
        if (rc == SH_S_OK)
            rc = sh_cfg_string(p, r, "type", SH_NTYPE_NAMES, true, &type);
        if (rc == SH_S_OK)
            rc = sh_cfg_string(p, r, "field", "the output field the result is stored in", true, &field);
    } else {
        return sh_cfg_fail(p, r, "'returns' must be \"void\" or a group { type = \"u64\"; field = \"crc\"; }, got %s",
                           sh_cfg_type_word(r));
    }
    sh_ntype t = SH_NT_VOID;
    if (rc == SH_S_OK && (!type || !sh_ntype_parse(type, true, &t)))
        rc = sh_cfg_fail(p, r, "unknown return type '%s': use one of %s, void", type ? type : "", SH_NTYPE_NAMES);
    if (rc == SH_S_OK && (t == SH_NT_BYTES || t == SH_NT_VALUE))
        rc = sh_cfg_fail(p, r, "a function stage returns a number, bool, string or void, not %s", type);
    if (rc == SH_S_OK && t != SH_NT_VOID && !field)
        rc = sh_cfg_fail(p, r, "'returns' needs a 'field' to store the result in: { type = \"%s\"; field = ...; }",
                         type);
    sh_value *m = rc == SH_S_OK ? sh_value_map() : NULL;
    if (rc == SH_S_OK && (!m || put(m, "type", sh_value_cstring(type)) != SH_OK ||
                          (field && put(m, "field", sh_value_cstring(field)) != SH_OK) ||
                          sh_value_map_set(spec, "returns", m) != SH_OK))
        rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    free(type);
    free(field);
    return rc;
}

sh_status sh_funcstage_parse(sh_cfg *p, const config_setting_t *stage, sh_value **out)
{
    *out = NULL;
    config_setting_t *fn = sh_cfg_member(stage, "function");
    config_setting_t *args = sh_cfg_member(stage, "args");
    config_setting_t *ret = sh_cfg_member(stage, "returns");
    if (!fn) {
        if (args || ret)
            return sh_cfg_fail(p, args ? args : ret, "'args' and 'returns' describe a function stage: add "
                                                     "function = \"symbol\"; or remove them");
        return SH_S_OK;
    }
    if (config_setting_type(fn) != CONFIG_TYPE_STRING || !sh_valid_c_identifier(config_setting_get_string(fn)))
        return sh_cfg_fail(p, fn, "'function' must name a C function, such as \"crc32_z\"");
    sh_value *spec = sh_value_map();
    sh_value *list = sh_value_array();
    if (!spec || !list || put(spec, "symbol", sh_value_cstring(config_setting_get_string(fn))) != SH_OK) {
        sh_value_free(spec);
        sh_value_free(list);
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    }
    sh_status rc = SH_S_OK;
    if (args && config_setting_type(args) != CONFIG_TYPE_LIST)
        rc = sh_cfg_fail(p, args, "'args' must be a list of groups ( { type = ...; field = ...; } ), got %s",
                         sh_cfg_type_word(args));
    int n = args && rc == SH_S_OK ? config_setting_length(args) : 0;
    if (n > SH_SIG_MAX_ARGS)
        rc = sh_cfg_fail(p, args, "a function stage takes at most %d arguments", SH_SIG_MAX_ARGS);
    for (int i = 0; rc == SH_S_OK && i < n; i++)
        rc = parse_arg(p, config_setting_get_elem(args, (unsigned)i), i, config_setting_get_string(fn), list);
    if (rc == SH_S_OK && sh_value_map_set(spec, "args", list) != SH_OK)
        rc = sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    else if (rc != SH_S_OK)
        sh_value_free(list);
    if (rc == SH_S_OK) {
        if (ret)
            rc = parse_returns(p, ret, spec);
        else
            rc = sh_cfg_fail(p, stage, "function stage '%s' needs 'returns' (\"void\", or { type = ...; field = ...; })",
                             config_setting_get_string(fn));
    }
    if (rc != SH_S_OK) {
        sh_value_free(spec);
        return rc == SH_S_NOMEM ? rc : SH_S_OK; /* the error is recorded; the descriptor goes on being checked */
    }
    *out = spec;
    return SH_S_OK;
}

const char *sh_funcstage_symbol(const sh_value *spec)
{
    return sh_value_get_string(sh_value_map_get(spec, "symbol"), NULL);
}

