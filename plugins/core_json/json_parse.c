/*
 * parse: the JSON text in one field of each item becomes items.
 *
 * format "json" reads the text as one JSON value, "lines" as JSON Lines (one value per non-blank line), and
 * "auto" (the default) tries one value first and JSON Lines second, so a `read` of *.json and *.jsonl files
 * both work in one stage. With `explode` (default true) a top-level JSON array yields one item per element.
 * An object becomes the item itself; anything else becomes {value: ...}. With `into`, the input item is kept
 * and the parsed value is put under that field instead.
 */
#include "core_json.h"
#include "json_value.h"
#include "plugin_config.h"

#include <stdbool.h>

enum { FORMAT_AUTO, FORMAT_JSON, FORMAT_LINES };

typedef struct parse_cfg {
    const char *field;
    size_t format;
    const char *into;
    const sh_value *keep;
    size_t keep_count;
    int explode;
    int bytes;
} parse_cfg;

int parse_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"field", "format", "into", "keep", "explode", "bytes"};
    static const char *const formats[] = {"auto", "json", "lines", NULL};
    parse_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "field", "content", &c.field);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "format", formats, FORMAT_AUTO, &c.format);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "into", NULL, &c.into);
    if (rc == SH_OK)
        rc = pc_string_list(call, def->config, "keep", &c.keep, &c.keep_count);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "explode", 1, &c.explode);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "bytes", 1, &c.bytes);
    if (rc != SH_OK)
        return rc;
    if (c.into && c.keep_count)
        return sh_failf(call, "config: 'keep' and 'into' do not go together: with 'into' every field of the input "
                              "item is kept already; drop one of them");
    parse_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = c;
    *user = p;
    return SH_OK;
}

/* "item 3 (docs/a.json)": which input an error is about, by position and, when it has one, its path. */
static void where(const sh_value *item, size_t i, char *buf, size_t len)
{
    const char *path = sh_get_string(item, "path", NULL);
    if (path)
        snprintf(buf, len, "item %zu (%s)", i + 1, path);
    else
        snprintf(buf, len, "item %zu", i + 1);
}

/* Builds and emits the output item for one parsed value. */
static int emit_value(const parse_cfg *c, sh_call *call, const sh_value *item, const json_t *j, const char *at)
{
    char why[256] = "";
    sh_value *v = jv_to_value(j, c->bytes, why, sizeof why);
    if (!v)
        return sh_failf(call, "cannot convert the JSON of %s: %s", at, why);
    sh_value *out;
    if (c->into) {
        out = sh_copy(item);
        if (!out || sh_sdk_host->map_set(out, c->into, v) != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory building the item for %s", at);
        }
    } else if (sh_sdk_host->value_type(v) == SH_TYPE_MAP) {
        out = v;
    } else {
        out = sh_new_map();
        if (!out || sh_sdk_host->map_set(out, "value", v) != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory building the item for %s", at);
        }
    }
    for (size_t k = 0; k < c->keep_count; k++) {
        const char *name = sh_sdk_host->value_string(sh_sdk_host->array_get(c->keep, k), NULL);
        const sh_value *kept = sh_get(item, name);
        if (kept && sh_sdk_host->map_set(out, name, sh_copy(kept)) != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory keeping field '%s' of %s", name, at);
        }
    }
    if (sh_emit(call, out) != SH_OK)
        return sh_failf(call, "cannot emit the items parsed from %s: the host refused the output", at);
    return SH_OK;
}

static int emit_document(const parse_cfg *c, sh_call *call, const sh_value *item, const json_t *j, const char *at)
{
    if (!c->explode || !json_is_array(j))
        return emit_value(c, call, item, j, at);
    for (size_t e = 0; e < json_array_size(j); e++) {
        int rc = emit_value(c, call, item, json_array_get(j, e), at);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Parses every non-blank line first and emits only when all parsed, so a bad line emits nothing; on failure
 * `why` says which line and what is wrong. Returns 1 when the text is not JSON Lines, else a status. */
static int parse_lines(const parse_cfg *c, sh_call *call, const sh_value *item, const char *text, size_t len,
                       const char *at, char *why, size_t why_len)
{
    json_t *all = json_array();
    if (!all)
        return sh_failf(call, "out of memory parsing %s", at);
    size_t line = 0;
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (!blank(text + start, end - start)) {
            json_error_t err;
            json_t *j = json_loadb(text + start, end - start, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
            if (!j) {
                snprintf(why, why_len, "line %zu, column %d: %s", line, err.column, err.text);
                json_decref(all);
                return 1;
            }
            json_array_append_new(all, j);
        }
        start = end + 1;
    }
    int rc = SH_OK;
    for (size_t e = 0; rc == SH_OK && e < json_array_size(all); e++)
        rc = emit_value(c, call, item, json_array_get(all, e), at);
    json_decref(all);
    return rc;
}

int parse_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const parse_cfg *c = user;
    for (size_t i = 0; i < count; i++) {
        char at[512];
        where(items[i], i, at, sizeof at);
        const sh_value *f = sh_get(items[i], c->field);
        size_t len = 0;
        const char *text = f ? sh_sdk_host->value_string(f, &len) : NULL;
        if (f && !text)
            text = sh_sdk_host->value_bytes(f, &len);
        if (!text)
            return sh_failf(call, "%s has no text field '%s' to parse; name the field holding the JSON text with "
                                  "'field' in the stage's config", at, c->field);
        char json_why[256] = "", lines_why[256] = "";
        if (c->format != FORMAT_LINES) {
            json_error_t err;
            json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
            if (j) {
                int rc = emit_document(c, call, items[i], j, at);
                json_decref(j);
                if (rc != SH_OK)
                    return rc;
                continue;
            }
            snprintf(json_why, sizeof json_why, "line %d, column %d: %s", err.line, err.column, err.text);
            if (c->format == FORMAT_JSON)
                return sh_failf(call, "cannot parse field '%s' of %s as JSON: %s; fix the text, or set format = "
                                      "\"lines\" for JSON Lines", c->field, at, json_why);
        }
        int rc = parse_lines(c, call, items[i], text, len, at, lines_why, sizeof lines_why);
        if (rc == 1 && c->format == FORMAT_LINES)
            return sh_failf(call, "cannot parse field '%s' of %s as JSON Lines: %s; fix that line, or set format = "
                                  "\"json\" for one JSON document", c->field, at, lines_why);
        if (rc == 1)
            return sh_failf(call, "cannot parse field '%s' of %s: as one JSON value, %s; as JSON Lines, %s; fix the "
                                  "text or set 'format'", c->field, at, json_why, lines_why);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}
