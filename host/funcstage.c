#include "funcstage.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool identifier(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

static int put(sh_value *m, const char *key, sh_value *v) { return v ? sh_value_map_set(m, key, v) : SH_ERR_NOMEM; }

/* A constant argument is checked when the descriptor is read, where its file:line is known, rather than on
 * every item, where the error could only say "argument N". Recorded without stopping, like the other checks. */
static void check_constant(sh_cfg *p, const config_setting_t *value, int i, const char *fn, sh_ntype t,
                           const sh_value *constant)
{
    sh_signature sig = {.ret = SH_NT_VOID, .nargs = 1, .args = {t}};
    sh_ffi_call c;
    sh_ffi_args a;
    sh_error e;
    if (sh_ffi_prepare(&c, &sig, SH_CONV_PLAIN, &e) != SH_S_OK)
        return;
    sh_ffi_args_init(&a, &c);
    if (sh_ffi_arg_set(&a, &c, 0, constant, "the constant", &e) != SH_S_OK)
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
    if (config_setting_type(fn) != CONFIG_TYPE_STRING || !identifier(config_setting_get_string(fn)))
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

/* ---- the stage ---------------------------------------------------------------------------------------------- */

typedef struct funcstage {
    sh_stage stage;
    void (*fn)(void);
    sh_ffi_call call; /* prepared once for the stage's life */
    const char *symbol;
    const sh_value *args; /* borrowed from the spec, which outlives the stage (it is the descriptor's) */
    const char *field;    /* NULL for a void function */
} funcstage;

static int fail(sh_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(sh_call *call, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sh_host_table()->fail(call, msg);
    return SH_ERR_FAILED;
}

static int process(sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count)
{
    funcstage *fs = (funcstage *)stage;
    const sh_host *host = sh_host_table();
    sh_ffi_args a;
    sh_ffi_args_init(&a, &fs->call);
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < fs->call.sig.nargs; k++) {
            const sh_value *spec = sh_value_array_get(fs->args, k);
            const char *field = sh_value_get_string(sh_value_map_get(spec, "field"), NULL);
            const sh_value *v = field ? sh_value_map_get(items[i], field) : sh_value_map_get(spec, "value");
            if (!v)
                return fail(call, "item %zu has no field '%s' for argument %zu of %s()", i + 1, field, k + 1,
                            fs->symbol);
            char what[256];
            snprintf(what, sizeof what, "item %zu, field '%s' (argument %zu of %s())", i + 1, field ? field : "-",
                     k + 1, fs->symbol);
            sh_error err;
            if (sh_ffi_arg_set(&a, &fs->call, k, v, what, &err) != SH_S_OK)
                return fail(call, "%s", err.message);
        }
        sh_value *result = NULL;
        sh_error err;
        if (sh_ffi_call_plain(&fs->call, fs->fn, &a, &result, &err) != SH_S_OK)
            return fail(call, "%s() on item %zu: %s", fs->symbol, i + 1, err.message);
        sh_value *out = sh_value_copy(items[i]);
        if (!out || (fs->field && sh_value_type(out) != SH_TYPE_MAP)) {
            sh_value_free(out);
            sh_value_free(result);
            return fail(call, "item %zu is not a map: the result of %s() cannot be stored in it", i + 1, fs->symbol);
        }
        if (fs->field && sh_value_map_set(out, fs->field, result) != SH_OK) {
            sh_value_free(out);
            return fail(call, "out of memory");
        } else if (!fs->field) {
            sh_value_free(result);
        }
        int rc = host->emit(call, out);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

static void destroy(sh_stage *stage) { free(stage); }

sh_status sh_funcstage_new(const sh_value *spec, void (*fn)(void), sh_stage **out, sh_error *err)
{
    *out = NULL;
    funcstage *fs = calloc(1, sizeof *fs);
    if (!fs)
        return sh_error_set(err, SH_S_NOMEM, "out of memory creating a function stage");
    fs->fn = fn;
    fs->symbol = sh_funcstage_symbol(spec);
    fs->args = sh_value_map_get(spec, "args");
    const sh_value *ret = sh_value_map_get(spec, "returns");
    fs->field = sh_value_get_string(sh_value_map_get(ret, "field"), NULL);
    sh_signature sig = {.nargs = sh_value_count(fs->args)};
    sh_ntype_parse(sh_value_get_string(sh_value_map_get(ret, "type"), NULL), true, &sig.ret);
    for (size_t i = 0; i < sig.nargs && i < SH_SIG_MAX_ARGS; i++)
        sh_ntype_parse(sh_value_get_string(sh_value_map_get(sh_value_array_get(fs->args, i), "type"), NULL), false,
                       &sig.args[i]);
    if (sh_ffi_prepare(&fs->call, &sig, SH_CONV_PLAIN, err) != SH_S_OK) {
        const char *symbol = fs->symbol;
        free(fs);
        return sh_error_prefix(err, "function stage %s()", symbol);
    }
    fs->stage.size = sizeof(sh_stage);
    fs->stage.user = fs;
    fs->stage.process = process;
    fs->stage.destroy = destroy;
    *out = &fs->stage;
    return SH_S_OK;
}
