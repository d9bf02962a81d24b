/*
 * select and rename: reshape items by their top-level fields.
 *
 * select keeps the fields listed in `fields`, in that order; `missing` says what an absent field does:
 * "skip" (default: left out), "null" (set to null) or "fail".
 * rename takes a group old = "new"; fields keep their positions, and a renamed field replaces any other field
 * that already had the new name. `missing = "fail"` refuses items that lack a field to rename.
 */
#include "core_json.h"
#include "plugin_config.h"

#include <stdbool.h>

enum { MISSING_SKIP, MISSING_NULL, MISSING_FAIL };

typedef struct select_cfg {
    const sh_value *fields;
    size_t count;
    size_t missing;
} select_cfg;

int select_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"fields", "missing"};
    static const char *const missing[] = {"skip", "null", "fail", NULL};
    select_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string_list(call, def->config, "fields", &c.fields, &c.count);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "missing", missing, MISSING_SKIP, &c.missing);
    if (rc != SH_OK)
        return rc;
    if (!c.count)
        return sh_failf(call, "config: 'fields' is required: the list of fields to keep, e.g. fields = ( \"path\", "
                              "\"text\" )");
    select_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = c;
    *user = p;
    return SH_OK;
}

int select_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const select_cfg *c = user;
    for (size_t i = 0; i < count; i++) {
        sh_value *out = sh_new_map();
        int rc = out ? SH_OK : SH_ERR_NOMEM;
        for (size_t k = 0; rc == SH_OK && k < c->count; k++) {
            const char *name = sh_sdk_host->value_string(sh_sdk_host->array_get(c->fields, k), NULL);
            const sh_value *v = sh_get(items[i], name);
            if (!v && c->missing == MISSING_FAIL) {
                sh_free(out);
                return sh_failf(call, "item %zu has no field '%s'; set missing = \"skip\" or \"null\" to allow "
                                      "that", i + 1, name);
            }
            if (v)
                rc = sh_sdk_host->map_set(out, name, sh_copy(v));
            else if (c->missing == MISSING_NULL)
                rc = sh_sdk_host->map_set(out, name, sh_sdk_host->new_null());
        }
        if (rc != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory selecting the fields of item %zu", i + 1);
        }
        if (sh_emit(call, out) != SH_OK)
            return sh_failf(call, "cannot emit item %zu: the host refused the output", i + 1);
    }
    return SH_OK;
}

typedef struct rename_cfg {
    const sh_value *fields; /* map old -> new */
    int fail_missing;
} rename_cfg;

int rename_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"fields", "missing"};
    static const char *const missing[] = {"skip", "fail", NULL};
    size_t m = 0;
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "missing", missing, 0, &m);
    if (rc != SH_OK)
        return rc;
    const sh_value *f = sh_get(def->config, "fields");
    if (!f || sh_sdk_host->value_type(f) != SH_TYPE_MAP || sh_sdk_host->value_count(f) == 0)
        return sh_failf(call, "config: 'fields' is required: a group of old = \"new\" names, e.g. fields = { content "
                              "= \"text\"; }");
    for (size_t k = 0; k < sh_sdk_host->value_count(f); k++) {
        const sh_value *v;
        const char *old = sh_sdk_host->map_entry(f, k, &v);
        const char *to = sh_sdk_host->value_string(v, NULL);
        if (!to || !*to)
            return sh_failf(call, "config: fields.%s must be the new name as a non-empty string", old);
    }
    rename_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    p->fields = f;
    p->fail_missing = m == 1;
    *user = p;
    return SH_OK;
}

/* The new name of `key`, or NULL when it is not renamed. */
static const char *renamed(const rename_cfg *c, const char *key)
{
    const sh_value *to = sh_get(c->fields, key);
    return to ? sh_sdk_host->value_string(to, NULL) : NULL;
}

/* True when some other field of `item` is renamed to `key`: the renamed one wins over the one already named so. */
static bool overwritten(const rename_cfg *c, const sh_value *item, const char *key)
{
    for (size_t k = 0; k < sh_sdk_host->value_count(c->fields); k++) {
        const sh_value *to;
        const char *old = sh_sdk_host->map_entry(c->fields, k, &to);
        if (strcmp(old, key) != 0 && sh_get(item, old) && strcmp(sh_sdk_host->value_string(to, NULL), key) == 0)
            return true;
    }
    return false;
}

int rename_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const rename_cfg *c = user;
    for (size_t i = 0; i < count; i++) {
        if (c->fail_missing)
            for (size_t k = 0; k < sh_sdk_host->value_count(c->fields); k++) {
                const sh_value *to;
                const char *old = sh_sdk_host->map_entry(c->fields, k, &to);
                if (!sh_get(items[i], old))
                    return sh_failf(call, "item %zu has no field '%s' to rename; set missing = \"skip\" to pass such "
                                          "items on unchanged", i + 1, old);
            }
        sh_value *out = sh_new_map();
        int rc = out ? SH_OK : SH_ERR_NOMEM;
        size_t n = sh_sdk_host->value_count(items[i]);
        for (size_t e = 0; rc == SH_OK && e < n; e++) {
            const sh_value *v;
            const char *key = sh_sdk_host->map_entry(items[i], e, &v);
            const char *to = renamed(c, key);
            if (!to && overwritten(c, items[i], key))
                continue;
            rc = sh_sdk_host->map_set(out, to ? to : key, sh_copy(v));
        }
        if (rc != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory renaming the fields of item %zu", i + 1);
        }
        if (sh_emit(call, out) != SH_OK)
            return sh_failf(call, "cannot emit item %zu: the host refused the output", i + 1);
    }
    return SH_OK;
}
