/*
 * Record layout (integers little-endian): a string is u32 length then its bytes, or u32 0xffffffff for NULL; a
 * list is u32 count then that many strings. In order: name, version, library, entry, description; i64 priority;
 * u32 abi_major, abi_minor; i32 isolation, format, name_line, version_line, stages_line; the seven limits as i64;
 * u8 network, exec; lists read, write, env, requires; u32 stage count, each stage type, input, output,
 * description, u8 idempotent, i32 line, its function as u32 length + wire value (0xffffffff: none); u32 hook
 * count, each hook hook, symbol, i64 priority, i32 line, u8 fallback, list supports.
 *
 * This mirrors sh_descriptor field by field. Whoever adds a field must add it here, or the cache would answer
 * without it: the assertions below stop the build when a struct's size changes, and test_regcache compares a
 * round trip through this record with the value form of the parsed descriptor.
 */
#include "descriptor_blob.h"
#include "requires.h"
#include "wire.h"

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

bool sh_descriptor_blob_put(sh_buf *b, const sh_descriptor *d)
{
    if (d->dep_count || d->stage_count > UINT32_MAX || d->hook_count > UINT32_MAX)
        return false;
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
        sh_wire_put_value(b, s->function);
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
    return !b->failed;
}

/* ---- reading: every getter checks bounds; the first failure makes the whole record unusable ---- */

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint64_t get_n(rd *r, int bytes)
{
    if (r->bad || r->end - r->p < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | r->p[i];
    r->p += bytes;
    return v;
}

static uint32_t get_u32(rd *r) { return (uint32_t)get_n(r, 4); }
static int32_t get_i32(rd *r) { return (int32_t)get_u32(r); }
static int64_t get_i64(rd *r) { return (int64_t)get_n(r, 8); }
static bool get_bool(rd *r) { return get_n(r, 1) != 0; }

static char *get_str(rd *r, bool nullable)
{
    uint32_t n = get_u32(r);
    if (r->bad)
        return NULL;
    if (n == NONE) {
        r->bad = !nullable;
        return NULL;
    }
    char *s;
    if ((size_t)(r->end - r->p) < n || memchr(r->p, '\0', n) || !(s = malloc((size_t)n + 1))) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    return s;
}

/* A count of things each taking at least `min` bytes: more than the record holds means corruption. */
static size_t get_count(rd *r, size_t min)
{
    uint32_t n = get_u32(r);
    if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / min)
        r->bad = true;
    return r->bad ? 0 : n;
}

/* An empty list is NULL, as the parser leaves an absent one: one allocation fewer per empty list. */
static char **get_list(rd *r, size_t *len)
{
    size_t n = get_count(r, 4);
    if (!r->bad && !n)
        return NULL;
    char **items = r->bad ? NULL : calloc(n + 1, sizeof *items);
    if (!items) {
        r->bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n && !r->bad; i++)
        if ((items[i] = get_str(r, false)))
            *len = i + 1;
    return items;
}

static void get_strlist(rd *r, sh_strlist *l) { l->items = get_list(r, &l->len); }

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (s) {
        memcpy(s, a, na);
        s[na] = '/';
        memcpy(s + na + 1, b, nb + 1);
    }
    return s;
}

sh_descriptor *sh_descriptor_blob_get(const uint8_t *p, size_t n, const char *path, const char *dir)
{
    sh_descriptor *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    rd r = {.p = p, .end = p + n};
    d->path = strdup(path);
    d->dir = strdup(dir);
    d->name = get_str(&r, false);
    d->version = get_str(&r, false);
    d->library = get_str(&r, false);
    d->entry = get_str(&r, false);
    d->description = get_str(&r, true);
    d->priority = get_i64(&r);
    d->abi_major = (uint16_t)get_u32(&r);
    d->abi_minor = (uint16_t)get_u32(&r);
    d->isolation = (sh_isolation)get_i32(&r);
    d->format = get_i32(&r);
    d->name_line = get_i32(&r);
    d->version_line = get_i32(&r);
    d->stages_line = get_i32(&r);
    sh_limits *l = &d->limits;
    int64_t *limits[7] = {&l->memory_mb, &l->cpu_seconds,  &l->timeout_ms, &l->open_files,
                          &l->processes, &l->file_size_mb, &l->output_mb};
    for (int i = 0; i < 7; i++)
        *limits[i] = get_i64(&r);
    d->permissions.network = get_bool(&r);
    d->permissions.exec = get_bool(&r);
    get_strlist(&r, &d->permissions.read);
    get_strlist(&r, &d->permissions.write);
    get_strlist(&r, &d->permissions.env);
    get_strlist(&r, &d->requires);
    if (!r.bad && d->requires.len) {
        /* Parsed once more rather than recorded: sh_requirement is large, and plugins with requirements few. */
        char why[512];
        if (!(d->requirements = calloc(d->requires.len, sizeof *d->requirements)))
            r.bad = true;
        for (size_t i = 0; !r.bad && i < d->requires.len; i++)
            r.bad = !sh_requirement_parse(d->requires.items[i], &d->requirements[i], why, sizeof why);
    }
    size_t ns = get_count(&r, 22);
    if (!r.bad && !(d->stages = calloc(ns ? ns : 1, sizeof *d->stages)))
        r.bad = true;
    for (size_t i = 0; i < ns && !r.bad; i++) {
        sh_stage_decl *s = &d->stages[i];
        d->stage_count = i + 1;
        s->type = get_str(&r, false);
        s->input = get_str(&r, false);
        s->output = get_str(&r, false);
        s->description = get_str(&r, true);
        s->idempotent = get_bool(&r);
        s->line = get_i32(&r);
        uint32_t fn = get_u32(&r);
        if (r.bad || fn == NONE)
            continue;
        sh_wire_reader w;
        sh_error err;
        if ((size_t)(r.end - r.p) < fn) {
            r.bad = true;
            continue;
        }
        sh_wire_reader_init(&w, r.p, fn);
        r.bad = sh_wire_get_value(&w, &s->function, &err) != SH_S_OK || !sh_wire_reader_done(&w);
        r.p += fn;
    }
    size_t nh = get_count(&r, 25);
    if (!r.bad && nh && !(d->hooks = calloc(nh, sizeof *d->hooks)))
        r.bad = true;
    for (size_t i = 0; i < nh && !r.bad; i++) {
        sh_hook_decl *h = &d->hooks[i];
        d->hook_count = i + 1;
        h->hook = get_str(&r, true);
        h->symbol = get_str(&r, true);
        h->priority = get_i64(&r);
        h->line = get_i32(&r);
        h->fallback = get_bool(&r);
        h->supports = get_list(&r, &h->supports_count);
    }
    if (!r.bad && d->library && d->dir)
        d->library_path = join(d->dir, d->library);
    if (r.bad || r.p != r.end || !d->path || !d->dir || !d->library_path) {
        sh_descriptor_free(d);
        return NULL;
    }
    return d;
}
