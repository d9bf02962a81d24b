/* Built-in `chunk`: fixed windows of `size` characters (Unicode code points, never splitting one), each
 * starting `size - overlap` characters after the previous. Plugins may provide smarter chunkers. */
#include "builtin/builtins.h"
#include "plugin/call.h"
#include "value/value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t next_char(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* The byte offset `n` characters after `from`. */
static size_t advance(const char *s, size_t len, size_t from, int64_t n)
{
    while (n-- > 0 && from < len)
        from = next_char(s, len, from);
    return from;
}

static int emit_chunk(sh_call *call, const sh_value *src, const char *field, int64_t index, const char *text,
                      size_t len)
{
    sh_value *out = sh_value_map();
    if (!out)
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    /* Keep the source item's other fields (its path, its id) so chunks can be traced back. */
    for (size_t k = 0; k < sh_value_count(src); k++) {
        const sh_value *v;
        const char *key = sh_value_map_entry(src, k, &v);
        if (strcmp(key, field) != 0 && sh_value_map_set(out, key, sh_value_copy(v)) != SH_OK) {
            sh_value_free(out);
            return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
        }
    }
    if (sh_value_map_set(out, "index", sh_value_int(index)) != SH_OK ||
        sh_value_map_set(out, "text", sh_value_string(text, len)) != SH_OK) {
        sh_value_free(out);
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    }
    return sh_host_table()->emit(call, out);
}

int sh_builtin_chunk(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_value *cfg = def->config;
    const sh_value *sz = sh_value_map_get(cfg, "size"), *ov = sh_value_map_get(cfg, "overlap");
    const sh_value *fv = sh_value_map_get(cfg, "field");
    if ((sz && sh_value_type(sz) != SH_TYPE_INT) || (ov && sh_value_type(ov) != SH_TYPE_INT) ||
        (fv && sh_value_type(fv) != SH_TYPE_STRING))
        return sh_call_failf(call, SH_ERR_INVALID, "config: 'size' and 'overlap' must be integers, 'field' a string");
    int64_t size = sz ? sh_value_get_int(sz) : 1000;
    int64_t overlap = ov ? sh_value_get_int(ov) : 0;
    const char *field = fv ? sh_value_get_string(fv, NULL) : "content";
    if (size < 1 || overlap < 0 || overlap >= size) {
        return sh_call_failf(call, SH_ERR_INVALID,
                                "config: need size >= 1 and 0 <= overlap < size, got size %lld, overlap %lld",
                                (long long)size, (long long)overlap);
    }
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const char *text = sh_value_get_string(sh_value_map_get(items[i], field), &len);
        if (!text) {
            return sh_call_failf(call, SH_ERR_INVALID,
                                    "item %zu has no text field '%s' (it is a %s); set 'field' in the stage's "
                                    "config to the field that holds the text",
                                    i + 1, field, sh_type_name(sh_value_type(sh_value_map_get(items[i], field))));
        }
        int64_t index = 0;
        size_t start = 0;
        do {
            size_t end = advance(text, len, start, size);
            int rc = emit_chunk(call, items[i], field, index++, text + start, end - start);
            if (rc != SH_OK)
                return rc;
            if (end >= len)
                break;
            start = advance(text, len, start, size - overlap);
        } while (start < len);
    }
    return SH_OK;
}
