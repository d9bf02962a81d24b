/*
 * serialize: each item (or one field of it, `source`) as JSON text in the field `field` (default "json").
 * Byte strings become {"$bytes": "BASE64"}, as the built-in `write` writes them. With `only`, the output item
 * holds just that field (plus `path` when the input had one), e.g. to hand the text to a stage that writes it.
 */
#include "core_json.h"
#include "json_value.h"
#include "plugin_config.h"

typedef struct serialize_cfg {
    const char *field;
    const char *source;
    int pretty, sort_keys, only;
} serialize_cfg;

int serialize_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"field", "source", "pretty", "sort_keys", "only"};
    serialize_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "field", "json", &c.field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "source", NULL, &c.source);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "pretty", 0, &c.pretty);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "sort_keys", 0, &c.sort_keys);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "only", 0, &c.only);
    if (rc != SH_OK)
        return rc;
    serialize_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = c;
    *user = p;
    return SH_OK;
}

int serialize_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const serialize_cfg *c = user;
    for (size_t i = 0; i < count; i++) {
        const sh_value *what = items[i];
        if (c->source && !(what = sh_get(items[i], c->source)))
            return sh_failf(call, "item %zu has no field '%s' to serialize; check 'source' in the stage's config",
                            i + 1, c->source);
        char why[256] = "";
        char *text = jv_dump(what, c->pretty, c->sort_keys, why, sizeof why);
        if (!text)
            return sh_failf(call, "cannot serialize item %zu to JSON: %s", i + 1, why);
        sh_value *out = c->only ? sh_new_map() : sh_copy(items[i]);
        int rc = out ? sh_set_string(out, c->field, text) : SH_ERR_NOMEM;
        free(text);
        const sh_value *path = sh_get(items[i], "path");
        if (rc == SH_OK && c->only && path)
            rc = sh_sdk_host->map_set(out, "path", sh_copy(path));
        if (rc != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory building the output of item %zu", i + 1);
        }
        if (sh_emit(call, out) != SH_OK)
            return sh_failf(call, "cannot emit item %zu: the host refused the output", i + 1);
    }
    return SH_OK;
}
