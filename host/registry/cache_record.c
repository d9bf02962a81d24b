/*
 * Record layout (integers little-endian): u32 the size of the block it is read into (path and dir aside), then
 * the fields. A string is u32 length then its bytes, or u32 0xffffffff for NULL; a
 * list is u32 count then that many strings. In order: name, version, library, entry, description; i64 priority;
 * u32 abi_major, abi_minor; i32 isolation, format, name_line, version_line, stages_line; the seven limits as i64;
 * u8 network, exec; lists read, write, env, requires; u32 stage count, each stage type, input, output,
 * description, u8 idempotent, i32 line, its function as u32 length + codec value (0xffffffff: none); u32 hook
 * count, each hook hook, symbol, i64 priority, i32 line, u8 fallback, list supports.
 *
 * Read back as one allocation holding the struct, its strings and its arrays (sh_descriptor.packed).
 *
 * This mirrors sh_descriptor field by field. Whoever adds a field must add it here, or the cache would answer
 * without it: the assertions below stop the build when a struct's size changes, and test_regcache compares a
 * round trip through this record with the value form of the parsed descriptor.
 */
#include "registry/cache_record.h"
#include "registry/version.h"
#include "value/codec.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if UINTPTR_MAX == UINT64_MAX
static_assert(sizeof(sh_descriptor) == 304, "sh_descriptor changed: record the new field in descriptor_blob.c");
static_assert(sizeof(sh_stage_decl) == 56, "sh_stage_decl changed: record the new field in descriptor_blob.c");
static_assert(sizeof(sh_hook_decl) == 48, "sh_hook_decl changed: record the new field in descriptor_blob.c");
static_assert(sizeof(sh_limits) == 56, "sh_limits changed: record the new field in descriptor_blob.c");
static_assert(sizeof(sh_permissions) == 56, "sh_permissions changed: record the new field in descriptor_blob.c");
#endif

#define NONE UINT32_MAX

static void put_str(sh_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= NONE) {
        b->failed = 1;
        return;
    }
    sh_buf_u32(b, s ? (uint32_t)n : NONE);
    sh_buf_append(b, s, n);
}

static void put_list(sh_buf *b, char *const *items, size_t len)
{
    sh_buf_u32(b, (uint32_t)len);
    for (size_t i = 0; i < len; i++)
        put_str(b, items[i]);
}

static void put_i64(sh_buf *b, int64_t v) { sh_buf_u64(b, (uint64_t)v); }
static void put_i32(sh_buf *b, int32_t v) { sh_buf_u32(b, (uint32_t)v); }

static size_t block_size(const uint8_t *p, size_t n);

bool sh_descriptor_blob_put(sh_buf *b, const sh_descriptor *d)
{
    if (d->dep_count || d->stage_count > UINT32_MAX || d->hook_count > UINT32_MAX)
        return false;
    size_t size_at = b->len;
    sh_buf_u32(b, 0); /* the block size, patched below */
    put_str(b, d->name);
    put_str(b, d->version);
    put_str(b, d->library);
    put_str(b, d->entry);
    put_str(b, d->description);
    put_i64(b, d->priority);
    sh_buf_u32(b, d->abi_major);
    sh_buf_u32(b, d->abi_minor);
    put_i32(b, (int32_t)d->isolation);
    put_i32(b, d->format);
    put_i32(b, d->name_line);
    put_i32(b, d->version_line);
    put_i32(b, d->stages_line);
    const sh_limits *l = &d->limits;
    const int64_t limits[7] = {l->memory_mb, l->cpu_seconds,  l->timeout_ms, l->open_files,
                               l->processes, l->file_size_mb, l->output_mb};
    for (int i = 0; i < 7; i++)
        put_i64(b, limits[i]);
    sh_buf_u8(b, d->permissions.network);
    sh_buf_u8(b, d->permissions.exec);
    put_list(b, d->permissions.read.items, d->permissions.read.len);
    put_list(b, d->permissions.write.items, d->permissions.write.len);
    put_list(b, d->permissions.env.items, d->permissions.env.len);
    put_list(b, d->requires.items, d->requires.len);
    sh_buf_u32(b, (uint32_t)d->stage_count);
    for (size_t i = 0; i < d->stage_count; i++) {
        const sh_stage_decl *s = &d->stages[i];
        put_str(b, s->type);
        put_str(b, s->input);
        put_str(b, s->output);
        put_str(b, s->description);
        sh_buf_u8(b, s->idempotent);
        put_i32(b, s->line);
        if (!s->function) {
            sh_buf_u32(b, NONE);
            continue;
        }
        size_t at = b->len;
        sh_buf_u32(b, 0);
        sh_codec_put_value(b, s->function);
        size_t len = b->len - at - 4;
        if (b->failed || len >= NONE)
            return false;
        for (int k = 0; k < 4; k++)
            b->data[at + (size_t)k] = (uint8_t)(len >> (8 * k));
    }
    sh_buf_u32(b, (uint32_t)d->hook_count);
    for (size_t i = 0; i < d->hook_count; i++) {
        const sh_hook_decl *h = &d->hooks[i];
        put_str(b, h->hook);
        put_str(b, h->symbol);
        put_i64(b, h->priority);
        put_i32(b, h->line);
        sh_buf_u8(b, h->fallback);
        put_list(b, h->supports, h->supports_count);
    }
    /* Worked out once here, so that reading needs one pass, not one to size the block and one to fill it. The
     * block holds path and dir, which the record does not: counted at reading. */
    size_t size = b->failed ? 0 : block_size(b->data + size_at + 4, b->len - size_at - 4);
    if (!size || size > UINT32_MAX)
        return false;
    for (int k = 0; k < 4; k++)
        b->data[size_at + (size_t)k] = (uint8_t)(size >> (8 * k));
    return true;
}

/* ---- reading ----
 *
 * One pass copies the record into one allocation (sh_descriptor.packed) of the size recorded with it. Every
 * getter checks bounds, `take` the block's; the first failure makes the record unusable. The writer works that
 * size out with a sizing pass of the same code, in which nothing is written: `take` hands out NULL and the
 * fields go to a scratch descriptor. */

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
    uint8_t *base; /* NULL in the sizing pass */
    size_t used, cap;
} rd;

/* `n` bytes of the block, aligned for any field of a descriptor; NULL (and the record bad) past its end. */
static void *take(rd *r, size_t n)
{
    size_t off = (r->used + 15) & ~(size_t)15;
    if (r->base && (off > r->cap || n > r->cap - off)) {
        r->bad = true;
        return NULL;
    }
    r->used = off + n;
    return r->base ? r->base + off : NULL;
}

static uint64_t get_n(rd *r, int bytes)
{
    if (r->bad || r->end - r->p < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, r->p, (size_t)bytes); /* one load where the byte order allows */
#else
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | r->p[i];
#endif
    r->p += bytes;
    return v;
}

static uint32_t get_u32(rd *r) { return (uint32_t)get_n(r, 4); }
static int32_t get_i32(rd *r) { return (int32_t)get_u32(r); }
static int64_t get_i64(rd *r) { return (int64_t)get_n(r, 8); }
static bool get_bool(rd *r) { return get_n(r, 1) != 0; }

static char *get_str(rd *r, bool nullable, size_t *len)
{
    uint32_t n = get_u32(r);
    if (r->bad)
        return NULL;
    if (n == NONE) {
        r->bad = !nullable;
        return NULL;
    }
    /* A NUL inside could only shorten the string: the record's bounds are checked, and corruption is the
     * file checksum's business. */
    if ((size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    char *s = take(r, (size_t)n + 1);
    if (s) {
        memcpy(s, r->p, n);
        s[n] = '\0';
    }
    r->p += n;
    if (len)
        *len = n;
    return s;
}

static char *put_copy(rd *r, const char *s)
{
    size_t n = strlen(s);
    char *c = take(r, n + 1);
    if (c)
        memcpy(c, s, n + 1);
    return c;
}

/* A count of things each taking at least `min` bytes: more than the record holds means corruption. */
static size_t get_count(rd *r, size_t min)
{
    uint32_t n = get_u32(r);
    if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / min)
        r->bad = true;
    return r->bad ? 0 : n;
}

/* An empty list is NULL, as the parser leaves an absent one. */
static char **get_list(rd *r, size_t *len)
{
    size_t n = get_count(r, 4);
    *len = n;
    if (r->bad || !n)
        return NULL;
    char **items = take(r, (n + 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        char *s = get_str(r, false, NULL);
        if (items)
            items[i] = s;
    }
    if (items)
        items[n] = NULL;
    return items;
}

static void get_strlist(rd *r, sh_strlist *l) { l->items = get_list(r, &l->len); }

/* One pass. In the second, d is the block's first bytes, zeroed, and every other byte of the block is written
 * before it is read. */
static void decode(rd *r, sh_descriptor *d, const char *path, const char *dir)
{
    d->path = put_copy(r, path);
    d->dir = put_copy(r, dir);
    d->name = get_str(r, false, NULL);
    d->version = get_str(r, false, NULL);
    size_t library_len = 0;
    d->library = get_str(r, false, &library_len);
    d->entry = get_str(r, false, NULL);
    d->description = get_str(r, true, NULL);
    d->priority = get_i64(r);
    d->abi_major = (uint16_t)get_u32(r);
    d->abi_minor = (uint16_t)get_u32(r);
    d->isolation = (sh_isolation)get_i32(r);
    d->format = get_i32(r);
    d->name_line = get_i32(r);
    d->version_line = get_i32(r);
    d->stages_line = get_i32(r);
    sh_limits *l = &d->limits;
    int64_t *limits[7] = {&l->memory_mb, &l->cpu_seconds,  &l->timeout_ms, &l->open_files,
                          &l->processes, &l->file_size_mb, &l->output_mb};
    for (int i = 0; i < 7; i++)
        *limits[i] = get_i64(r);
    d->permissions.network = get_bool(r);
    d->permissions.exec = get_bool(r);
    get_strlist(r, &d->permissions.read);
    get_strlist(r, &d->permissions.write);
    get_strlist(r, &d->permissions.env);
    get_strlist(r, &d->requires);
    if (!r->bad && d->requires.len) {
        /* Parsed once more rather than recorded: sh_requirement is large, and plugins with requirements few. */
        d->requirements = take(r, d->requires.len * sizeof *d->requirements);
        if (d->requirements)
            memset(d->requirements, 0, d->requires.len * sizeof *d->requirements);
        char why[512];
        for (size_t i = 0; d->requirements && !r->bad && i < d->requires.len; i++)
            r->bad = !sh_requirement_parse(d->requires.items[i], &d->requirements[i], why, sizeof why);
    }
    size_t ns = get_count(r, 22);
    d->stages = ns ? take(r, ns * sizeof *d->stages) : NULL;
    for (size_t i = 0; i < ns && !r->bad; i++) {
        sh_stage_decl scratch, *st = d->stages ? &d->stages[i] : &scratch;
        st->function = NULL; /* before stage_count covers it: sh_descriptor_free frees functions */
        d->stage_count = i + 1;
        st->type = get_str(r, false, NULL);
        st->input = get_str(r, false, NULL);
        st->output = get_str(r, false, NULL);
        st->description = get_str(r, true, NULL);
        st->idempotent = get_bool(r);
        st->line = get_i32(r);
        uint32_t fn = get_u32(r);
        if (r->bad || fn == NONE)
            continue;
        if ((size_t)(r->end - r->p) < fn) {
            r->bad = true;
            continue;
        }
        if (r->base) {
            sh_codec_reader w;
            sh_error err;
            sh_codec_reader_init(&w, r->p, fn);
            r->bad = sh_codec_get_value(&w, &st->function, &err) != SH_S_OK || !sh_codec_reader_done(&w);
        }
        r->p += fn;
    }
    size_t nh = get_count(r, 25);
    d->hooks = nh ? take(r, nh * sizeof *d->hooks) : NULL;
    for (size_t i = 0; i < nh && !r->bad; i++) {
        sh_hook_decl scratch, *h = d->hooks ? &d->hooks[i] : &scratch;
        d->hook_count = i + 1;
        h->hook = get_str(r, true, NULL);
        h->symbol = get_str(r, true, NULL);
        h->priority = get_i64(r);
        h->line = get_i32(r);
        h->fallback = get_bool(r);
        h->supports = get_list(r, &h->supports_count);
    }
    /* As the parser builds it: DIR/LIBRARY. */
    size_t dir_len = strlen(dir);
    d->library_path = take(r, dir_len + library_len + 2);
    if (d->library_path && d->library) {
        memcpy(d->library_path, dir, dir_len);
        d->library_path[dir_len] = '/';
        memcpy(d->library_path + dir_len + 1, d->library, library_len + 1);
    }
}

/* The block for the record p[0..n) (without its size prefix), path and dir left out; 0 when malformed. */
static size_t block_size(const uint8_t *p, size_t n)
{
    sh_descriptor scratch;
    memset(&scratch, 0, sizeof scratch);
    rd size = {.p = p, .end = p + n};
    take(&size, sizeof scratch);
    decode(&size, &scratch, "", "");
    return size.bad || size.p != size.end ? 0 : size.used;
}

sh_descriptor *sh_descriptor_blob_get(const uint8_t *p, size_t n, const char *path, const char *dir)
{
    rd fill = {.p = p, .end = p + n};
    size_t recorded = get_u32(&fill);
    /* path and dir, and the alignment of the pieces after them, on top of the recorded size */
    size_t extra = strlen(path) + 2 * strlen(dir) + 3 * 16 + 3;
    if (fill.bad || !recorded || !(fill.base = malloc(recorded + extra)))
        return NULL;
    fill.cap = recorded + extra;
    sh_descriptor *d = take(&fill, sizeof *d);
    if (!d) {
        free(fill.base);
        return NULL;
    }
    memset(d, 0, sizeof *d);
    d->packed = true;
    decode(&fill, d, path, dir);
    if (fill.bad || fill.p != fill.end) {
        sh_descriptor_free(d);
        return NULL;
    }
    return d;
}
