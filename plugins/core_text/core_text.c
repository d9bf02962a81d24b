/*
 * core/text: text stages built only against the stagehost SDK, as any outside plugin is.
 *
 *   chunk      sentence-aware chunks of at most `size` characters, with `overlap` characters of whole
 *              sentences repeated from the previous chunk
 *   normalize  collapse whitespace and optionally change case
 *   count      add word and character counts
 *
 * Sizes count Unicode code points, never bytes, and text is never split inside a UTF-8 sequence.
 */
/* newlocale() and towlower_l() are POSIX.1-2008. */
#define _POSIX_C_SOURCE 200809L
#include <stagehost/sdk.h>

#include "plugin_config.h"

#include <locale.h>
#include <stdbool.h>
#include <wchar.h>
#include <wctype.h>

/* ---- UTF-8 helpers ------------------------------------------------------------------------------------------ */

static size_t next_char(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

static size_t count_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i = next_char(s, len, i))
        n++;
    return n;
}

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* ---- chunk -------------------------------------------------------------------------------------------------- */

typedef struct chunk_cfg {
    int64_t size;
    int64_t overlap;
    const char *field;
} chunk_cfg;

/* Refuses unknown keys (a typo such as `sise` must not silently chunk at the default size) and reads `field`. */
static int config_field(sh_call *call, const sh_stage_def *def, const char *const *known, size_t n,
                        const char **field)
{
    int rc = pc_check_keys(call, def->config, known, n);
    return rc == SH_OK ? pc_string(call, def->config, "field", "content", field) : rc;
}

static int chunk_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"size", "overlap", "field"};
    chunk_cfg c = {0};
    int rc = config_field(call, def, known, SH_SDK_COUNT(known), &c.field);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "size", 1000, 1, 1LL << 30, &c.size);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "overlap", 0, 0, 1LL << 30, &c.overlap);
    if (rc != SH_OK)
        return rc;
    if (c.overlap >= c.size)
        return sh_failf(call, "config: 'overlap' must be less than 'size', got size %lld, overlap %lld",
                        (long long)c.size, (long long)c.overlap);
    chunk_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = c;
    *user = p;
    return SH_OK;
}

/* A sentence: [start, end) in bytes, `chars` code points, trailing whitespace excluded. */
typedef struct span {
    size_t start, end, chars;
} span;

/* Splits text into sentences: a run ends after '.', '!' or '?' (and closing quotes or brackets) followed by
 * whitespace, or at a blank line. A sentence longer than `max` characters is cut at the last space before the
 * limit, or hard at the limit when it has no space. */
static span *split_sentences(const char *s, size_t len, int64_t max, size_t *count)
{
    size_t cap = 16, n = 0;
    span *out = malloc(cap * sizeof *out);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space((unsigned char)s[i]))
            i++;
        if (i >= len)
            break;
        size_t start = i, chars = 0, last_space = 0, chars_at_space = 0;
        size_t end = len;
        while (i < len) {
            unsigned char c = (unsigned char)s[i];
            size_t nx = next_char(s, len, i);
            chars++;
            if (is_space(c)) {
                last_space = i;
                chars_at_space = chars - 1;
            }
            bool terminal = c == '.' || c == '!' || c == '?';
            i = nx;
            if (terminal) {
                while (i < len && (s[i] == '"' || s[i] == '\'' || s[i] == ')' || s[i] == ']')) {
                    i++;
                    chars++;
                }
                if (i >= len || is_space((unsigned char)s[i])) {
                    end = i;
                    break;
                }
            }
            if (c == '\n' && i < len && s[i] == '\n') {
                end = i - 1;
                chars--;
                break;
            }
            if ((int64_t)chars >= max && i < len) {
                if (last_space > start) {
                    end = last_space;
                    chars = chars_at_space;
                    i = last_space;
                } else {
                    end = i;
                }
                break;
            }
        }
        if (end == len)
            i = len;
        while (end > start && is_space((unsigned char)s[end - 1])) {
            end--;
            chars--;
        }
        if (n == cap) {
            cap *= 2;
            span *p = realloc(out, cap * sizeof *p);
            if (!p) {
                free(out);
                return NULL;
            }
            out = p;
        }
        out[n++] = (span){start, end, chars};
    }
    *count = n;
    return out;
}

static int emit_chunk(sh_call *call, const sh_value *src, const char *field, int64_t index, const char *text,
                      const span *sp, size_t first, size_t last)
{
    sh_value *out = sh_new_map();
    if (!out)
        return sh_failf(call, "out of memory");
    /* Keep the source's other fields (path, id) so a chunk can be traced to its document. */
    for (size_t k = 0; k < sh_sdk_host->value_count(src); k++) {
        const sh_value *v;
        const char *key = sh_sdk_host->map_entry(src, k, &v);
        if (strcmp(key, field) != 0 && sh_sdk_host->map_set(out, key, sh_copy(v)) != SH_OK)
            goto nomem;
    }
    /* Join the sentences with single spaces: the chunk reads as normalised prose. */
    size_t bytes = 0;
    for (size_t k = first; k <= last; k++)
        bytes += sp[k].end - sp[k].start + 1;
    char *buf = malloc(bytes + 1);
    if (!buf)
        goto nomem;
    size_t pos = 0;
    for (size_t k = first; k <= last; k++) {
        if (k > first)
            buf[pos++] = ' ';
        memcpy(buf + pos, text + sp[k].start, sp[k].end - sp[k].start);
        pos += sp[k].end - sp[k].start;
    }
    int rc = sh_set_int(out, "index", index);
    if (rc == SH_OK)
        rc = sh_set_stringn(out, "text", buf, pos);
    free(buf);
    if (rc != SH_OK)
        goto nomem;
    return sh_emit(call, out);
nomem:
    sh_free(out);
    return sh_failf(call, "out of memory");
}

static int chunk_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const chunk_cfg *c = user;
    for (size_t i = 0; i < count; i++) {
        const sh_value *tv = sh_get(items[i], c->field);
        size_t len;
        const char *text = tv ? sh_sdk_host->value_string(tv, &len) : NULL;
        if (!text)
            return sh_failf(call, "item %zu has no text field '%s'; set 'field' in the stage's config", i + 1,
                            c->field);
        size_t n;
        span *sp = split_sentences(text, len, c->size, &n);
        if (!sp)
            return sh_failf(call, "out of memory");
        int64_t index = 0;
        size_t first = 0;
        int rc = SH_OK;
        while (first < n && rc == SH_OK) {
            /* Pack whole sentences while they fit (the separating spaces count too). */
            size_t last = first;
            size_t chars = sp[first].chars;
            while (last + 1 < n && (int64_t)(chars + 1 + sp[last + 1].chars) <= c->size) {
                last++;
                chars += 1 + sp[last].chars;
            }
            rc = emit_chunk(call, items[i], c->field, index++, text, sp, first, last);
            if (last + 1 >= n)
                break;
            /* Start the next chunk with the trailing sentences of this one that fit in `overlap`. */
            size_t next = last + 1, carried = 0;
            while (next > first + 1 && (int64_t)(carried + sp[next - 1].chars + 1) <= c->overlap) {
                carried += sp[next - 1].chars + 1;
                next--;
            }
            first = next;
        }
        free(sp);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

/* ---- normalize ---------------------------------------------------------------------------------------------- */

typedef struct normalize_cfg {
    const char *field;
    bool whitespace;
    int change_case; /* 0 none, 1 lower, 2 upper */
    locale_t utf8;
} normalize_cfg;

static void normalize_destroy(void *user)
{
    normalize_cfg *n = user;
    if (n->utf8)
        freelocale(n->utf8);
    free(n);
}

static int normalize_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"whitespace", "case", "field"};
    static const char *const cases[] = {"none", "lower", "upper", NULL};
    const char *field = NULL;
    int whitespace = 1;
    size_t change_case = 0;
    int rc = config_field(call, def, known, SH_SDK_COUNT(known), &field);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "whitespace", 1, &whitespace);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "case", cases, 0, &change_case);
    if (rc != SH_OK)
        return rc;
    normalize_cfg *n = calloc(1, sizeof *n);
    if (!n)
        return sh_failf(call, "out of memory");
    n->field = field;
    n->whitespace = whitespace;
    n->change_case = (int)change_case;
    /* A private UTF-8 locale: case mapping beyond ASCII without touching the process-wide locale. */
    if (n->change_case && !(n->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0))) {
        free(n);
        return sh_failf(call, "the C.UTF-8 locale is not available for case mapping");
    }
    *user = n;
    return SH_OK;
}

/* Appends the UTF-8 encoding of `wc` to `out`. */
static size_t put_utf8(char *out, uint32_t wc)
{
    if (wc < 0x80) {
        out[0] = (char)wc;
        return 1;
    }
    if (wc < 0x800) {
        out[0] = (char)(0xc0 | (wc >> 6));
        out[1] = (char)(0x80 | (wc & 0x3f));
        return 2;
    }
    if (wc < 0x10000) {
        out[0] = (char)(0xe0 | (wc >> 12));
        out[1] = (char)(0x80 | ((wc >> 6) & 0x3f));
        out[2] = (char)(0x80 | (wc & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (wc >> 18));
    out[1] = (char)(0x80 | ((wc >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((wc >> 6) & 0x3f));
    out[3] = (char)(0x80 | (wc & 0x3f));
    return 4;
}

static uint32_t decode(const char *s, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    size_t n = next_char(s, len, *i) - *i;
    uint32_t wc = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t k = 1; k < n; k++)
        wc = (wc << 6) | ((unsigned char)s[*i + k] & 0x3fu);
    *i += n;
    return wc;
}

static int normalize_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const normalize_cfg *n = user;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const sh_value *tv = sh_get(items[i], n->field);
        const char *text = tv ? sh_sdk_host->value_string(tv, &len) : NULL;
        if (!text)
            return sh_failf(call, "item %zu has no text field '%s'; set 'field' in the stage's config", i + 1,
                            n->field);
        /* Case mapping can grow a character by at most one byte in UTF-8 (e.g. U+0131 -> 'I' shrinks, U+023A
         * grows); 4 bytes per input byte is a safe bound. */
        char *buf = malloc(len * 4 + 1);
        if (!buf)
            return sh_failf(call, "out of memory");
        size_t pos = 0, k = 0;
        bool pending_space = false;
        while (k < len) {
            uint32_t wc = decode(text, len, &k);
            if (n->whitespace && wc < 0x80 && is_space((unsigned char)wc)) {
                pending_space = pos > 0;
                continue;
            }
            if (pending_space) {
                buf[pos++] = ' ';
                pending_space = false;
            }
            if (n->change_case == 1)
                wc = (uint32_t)towlower_l((wint_t)wc, n->utf8);
            else if (n->change_case == 2)
                wc = (uint32_t)towupper_l((wint_t)wc, n->utf8);
            pos += put_utf8(buf + pos, wc);
        }
        sh_value *out = sh_copy(items[i]);
        int rc = out ? sh_set_stringn(out, n->field, buf, pos) : SH_ERR_NOMEM;
        free(buf);
        if (rc != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory");
        }
        if ((rc = sh_emit(call, out)) != SH_OK)
            return rc;
    }
    return SH_OK;
}

/* ---- count -------------------------------------------------------------------------------------------------- */

static int count_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"field"};
    const char *field = NULL; /* set by config_field on success; -O3 cannot see that */
    int rc = config_field(call, def, known, SH_SDK_COUNT(known), &field);
    if (rc != SH_OK)
        return rc;
    *user = (void *)field; /* borrowed from def->config, which outlives the stage */
    return SH_OK;
}

static int count_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const char *field = user;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const sh_value *tv = sh_get(items[i], field);
        const char *text = tv ? sh_sdk_host->value_string(tv, &len) : NULL;
        if (!text)
            return sh_failf(call, "item %zu has no text field '%s'; set 'field' in the stage's config", i + 1,
                            field);
        int64_t words = 0;
        bool in_word = false;
        for (size_t k = 0; k < len; k++) {
            bool sp = is_space((unsigned char)text[k]);
            if (!sp && !in_word)
                words++;
            in_word = !sp;
        }
        sh_value *out = sh_copy(items[i]);
        if (!out || sh_set_int(out, "words", words) != SH_OK ||
            sh_set_int(out, "characters", (int64_t)count_chars(text, len)) != SH_OK) {
            sh_free(out);
            return sh_failf(call, "out of memory");
        }
        int rc = sh_emit(call, out);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

static const sh_sdk_stage stages[] = {
    {.type = "chunk", .input = "document", .output = "chunk",
     .description = "sentence-aware chunks of at most `size` characters with `overlap`",
     .create = chunk_create, .process = chunk_process, .destroy = free},
    {.type = "normalize", .input = "document", .output = "document",
     .description = "collapse whitespace; optionally lower- or upper-case",
     .create = normalize_create, .process = normalize_process, .destroy = normalize_destroy},
    {.type = "count", .input = "any", .output = "any", .description = "add word and character counts",
     .create = count_create, .process = count_process},
};

SH_SDK_PLUGIN(.name = "core/text", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
