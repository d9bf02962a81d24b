#include "value/codec.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void put_len(sh_buf *b, size_t len)
{
    /* Pieces over 4 GiB cannot be encoded (u32 lengths); mark the buffer failed rather than truncating silently. */
    if (len > UINT32_MAX) {
        b->failed = 1;
        return;
    }
    sh_buf_u32(b, (uint32_t)len);
}

void sh_codec_put_value(sh_buf *b, const sh_value *v)
{
    switch (sh_value_type(v)) {
    case SH_TYPE_NULL:
        sh_buf_u8(b, SH_CODEC_NULL);
        break;
    case SH_TYPE_BOOL:
        sh_buf_u8(b, v->u.b ? SH_CODEC_TRUE : SH_CODEC_FALSE);
        break;
    case SH_TYPE_INT:
        sh_buf_u8(b, SH_CODEC_INT);
        sh_buf_u64(b, (uint64_t)v->u.i);
        break;
    case SH_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, sizeof bits);
        sh_buf_u8(b, SH_CODEC_DOUBLE);
        sh_buf_u64(b, bits);
        break;
    }
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        sh_buf_u8(b, v->type == SH_TYPE_STRING ? SH_CODEC_STRING : SH_CODEC_BYTES);
        put_len(b, v->u.s.len);
        sh_buf_append(b, v->u.s.data, v->u.s.len);
        break;
    case SH_TYPE_ARRAY:
        sh_buf_u8(b, SH_CODEC_ARRAY);
        put_len(b, v->u.a.len);
        for (size_t i = 0; i < v->u.a.len; i++)
            sh_codec_put_value(b, v->u.a.items[i]);
        break;
    case SH_TYPE_MAP:
        sh_buf_u8(b, SH_CODEC_MAP);
        put_len(b, v->u.m.len);
        for (size_t i = 0; i < v->u.m.len; i++) {
            size_t klen = strlen(v->u.m.entries[i].key);
            put_len(b, klen);
            sh_buf_append(b, v->u.m.entries[i].key, klen);
            sh_codec_put_value(b, v->u.m.entries[i].value);
        }
        break;
    }
}

void sh_codec_put_string(sh_buf *b, const char *s)
{
    if (!s) {
        sh_buf_u8(b, SH_CODEC_NULL);
        return;
    }
    size_t len = strlen(s);
    sh_buf_u8(b, SH_CODEC_STRING);
    put_len(b, len);
    sh_buf_append(b, s, len);
}

void sh_codec_put_int(sh_buf *b, int64_t i)
{
    sh_buf_u8(b, SH_CODEC_INT);
    sh_buf_u64(b, (uint64_t)i);
}

size_t sh_codec_value_size(const sh_value *v)
{
    size_t n = 0;
    switch (sh_value_type(v)) {
    case SH_TYPE_INT:
    case SH_TYPE_DOUBLE:
        return 9;
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        return v->u.s.len > UINT32_MAX ? SIZE_MAX : 5 + v->u.s.len;
    case SH_TYPE_ARRAY:
        if (v->u.a.len > UINT32_MAX)
            return SIZE_MAX;
        n = 5;
        for (size_t i = 0; i < v->u.a.len; i++) {
            size_t k = sh_codec_value_size(v->u.a.items[i]);
            if (k == SIZE_MAX || k > SIZE_MAX / 2 - n)
                return SIZE_MAX;
            n += k;
        }
        return n;
    case SH_TYPE_MAP:
        if (v->u.m.len > UINT32_MAX)
            return SIZE_MAX;
        n = 5;
        for (size_t i = 0; i < v->u.m.len; i++) {
            size_t k = sh_codec_value_size(v->u.m.entries[i].value), klen = strlen(v->u.m.entries[i].key);
            if (k == SIZE_MAX || klen > UINT32_MAX || k > SIZE_MAX / 4 - n - klen)
                return SIZE_MAX;
            n += 4 + klen + k;
        }
        return n;
    default:
        return 1;
    }
}

static uint8_t *enc_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *enc_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *encode(uint8_t *p, const sh_value *v)
{
    switch (sh_value_type(v)) {
    case SH_TYPE_NULL:
        *p++ = SH_CODEC_NULL;
        return p;
    case SH_TYPE_BOOL:
        *p++ = v->u.b ? SH_CODEC_TRUE : SH_CODEC_FALSE;
        return p;
    case SH_TYPE_INT:
        *p++ = SH_CODEC_INT;
        return enc_u64(p, (uint64_t)v->u.i);
    case SH_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, sizeof bits);
        *p++ = SH_CODEC_DOUBLE;
        return enc_u64(p, bits);
    }
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        *p++ = v->type == SH_TYPE_STRING ? SH_CODEC_STRING : SH_CODEC_BYTES;
        p = enc_u32(p, (uint32_t)v->u.s.len);
        if (v->u.s.len)
            memcpy(p, v->u.s.data, v->u.s.len);
        return p + v->u.s.len;
    case SH_TYPE_ARRAY:
        *p++ = SH_CODEC_ARRAY;
        p = enc_u32(p, (uint32_t)v->u.a.len);
        for (size_t i = 0; i < v->u.a.len; i++)
            p = encode(p, v->u.a.items[i]);
        return p;
    case SH_TYPE_MAP:
        *p++ = SH_CODEC_MAP;
        p = enc_u32(p, (uint32_t)v->u.m.len);
        for (size_t i = 0; i < v->u.m.len; i++) {
            size_t klen = strlen(v->u.m.entries[i].key);
            p = enc_u32(p, (uint32_t)klen);
            memcpy(p, v->u.m.entries[i].key, klen);
            p = encode(p + klen, v->u.m.entries[i].value);
        }
        return p;
    default:
        *p++ = SH_CODEC_NULL;
        return p;
    }
}

size_t sh_codec_encode(uint8_t *dst, const sh_value *v) { return (size_t)(encode(dst, v) - dst); }

void sh_codec_reader_init(sh_codec_reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
}

bool sh_codec_reader_done(const sh_codec_reader *r) { return r->pos >= r->len; }

static sh_status truncated(sh_codec_reader *r, const char *what, sh_error *err)
{
    return sh_error_set(err, SH_S_PROTOCOL, "truncated %s at byte %zu of a %zu-byte frame", what, r->pos, r->len);
}

static sh_status get_u32(sh_codec_reader *r, uint32_t *out, const char *what, sh_error *err)
{
    if (r->len - r->pos < 4)
        return truncated(r, what, err);
    const uint8_t *p = r->data + r->pos;
    *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->pos += 4;
    return SH_S_OK;
}

static sh_status get_u64(sh_codec_reader *r, uint64_t *out, const char *what, sh_error *err)
{
    if (r->len - r->pos < 8)
        return truncated(r, what, err);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | r->data[r->pos + (size_t)i];
    *out = v;
    r->pos += 8;
    return SH_S_OK;
}

static sh_status get_value(sh_codec_reader *r, sh_value **out, int depth, sh_error *err);

static sh_status get_octets(sh_codec_reader *r, uint8_t tag, sh_value **out, sh_error *err)
{
    uint32_t len = 0;
    if (get_u32(r, &len, "string length", err) != SH_S_OK)
        return SH_S_PROTOCOL;
    if (len > r->len - r->pos)
        return sh_error_set(err, SH_S_PROTOCOL, "a %u-byte %s at byte %zu runs past the end of a %zu-byte frame",
                            len, tag == SH_CODEC_STRING ? "string" : "bytes value", r->pos, r->len);
    const char *p = (const char *)r->data + r->pos;
    if (tag == SH_CODEC_STRING) {
        if (!sh_utf8_valid(p, len))
            return sh_error_set(err, SH_S_PROTOCOL, "string at byte %zu is not valid UTF-8", r->pos);
        *out = sh_value_string(p, len);
    } else {
        *out = sh_value_bytes(p, len);
    }
    r->pos += len;
    return *out ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory decoding a %u-byte value", len);
}

static sh_status get_array(sh_codec_reader *r, sh_value **out, int depth, sh_error *err)
{
    uint32_t count = 0; /* set by get_u32; initialised for -O3, which cannot see that */
    if (get_u32(r, &count, "array length", err) != SH_S_OK)
        return SH_S_PROTOCOL;
    /* Every element takes at least one byte: a larger count is a lie, refuse it before allocating. */
    if (count > r->len - r->pos)
        return sh_error_set(err, SH_S_PROTOCOL, "array of %u elements cannot fit in the %zu bytes left", count,
                            r->len - r->pos);
    sh_value *a = sh_value_array();
    if (!a)
        return sh_error_set(err, SH_S_NOMEM, "out of memory decoding an array");
    for (uint32_t i = 0; i < count; i++) {
        sh_value *item;
        sh_status st = get_value(r, &item, depth + 1, err);
        if (st == SH_S_OK && sh_value_array_push(a, item) != SH_OK)
            st = sh_error_set(err, SH_S_NOMEM, "out of memory decoding an array");
        if (st != SH_S_OK) {
            sh_value_free(a);
            return st;
        }
    }
    *out = a;
    return SH_S_OK;
}

static sh_status get_map(sh_codec_reader *r, sh_value **out, int depth, sh_error *err)
{
    uint32_t count = 0; /* set by get_u32; initialised for -O3, which cannot see that */
    if (get_u32(r, &count, "map length", err) != SH_S_OK)
        return SH_S_PROTOCOL;
    /* An entry takes at least 5 bytes: a key length and a value tag. */
    if (count > (r->len - r->pos) / 5)
        return sh_error_set(err, SH_S_PROTOCOL, "map of %u entries cannot fit in the %zu bytes left", count,
                            r->len - r->pos);
    sh_value *m = sh_value_map();
    if (!m)
        return sh_error_set(err, SH_S_NOMEM, "out of memory decoding a map");
    for (uint32_t i = 0; i < count; i++) {
        uint32_t klen = 0;
        sh_status st = get_u32(r, &klen, "map key length", err);
        if (st == SH_S_OK && klen > r->len - r->pos)
            st = sh_error_set(err, SH_S_PROTOCOL, "a %u-byte map key at byte %zu runs past the end of the frame",
                              klen, r->pos);
        const char *kp = (const char *)r->data + r->pos;
        if (st == SH_S_OK && (!sh_utf8_valid(kp, klen) || memchr(kp, '\0', klen)))
            st = sh_error_set(err, SH_S_PROTOCOL, "map key at byte %zu is not NUL-free UTF-8", r->pos);
        char *key = NULL;
        if (st == SH_S_OK) {
            key = strndup(kp, klen);
            r->pos += klen;
            if (!key)
                st = sh_error_set(err, SH_S_NOMEM, "out of memory decoding a map key");
        }
        sh_value *item = NULL;
        if (st == SH_S_OK)
            st = get_value(r, &item, depth + 1, err);
        /* Encoders never repeat a key; a decoder that checked would be quadratic in hostile input, so a
         * repeated key is kept and map_get() answers with the first. */
        if (st == SH_S_OK && sh_value_map_append(m, key, item) != SH_OK)
            st = sh_error_set(err, SH_S_NOMEM, "out of memory decoding a map");
        else if (st != SH_S_OK)
            free(key);
        if (st != SH_S_OK) {
            sh_value_free(m);
            return st;
        }
    }
    *out = m;
    return SH_S_OK;
}

static sh_status get_value(sh_codec_reader *r, sh_value **out, int depth, sh_error *err)
{
    *out = NULL;
    if (depth > SH_CODEC_MAX_DEPTH)
        return sh_error_set(err, SH_S_PROTOCOL, "values nested deeper than %d levels", SH_CODEC_MAX_DEPTH);
    if (r->pos >= r->len)
        return truncated(r, "value", err);
    uint8_t tag = r->data[r->pos++];
    uint64_t bits = 0;
    switch (tag) {
    case SH_CODEC_NULL:
        *out = sh_value_null();
        break;
    case SH_CODEC_FALSE:
    case SH_CODEC_TRUE:
        *out = sh_value_bool(tag == SH_CODEC_TRUE);
        break;
    case SH_CODEC_INT:
        if (get_u64(r, &bits, "integer", err) != SH_S_OK)
            return SH_S_PROTOCOL;
        *out = sh_value_int((int64_t)bits);
        break;
    case SH_CODEC_DOUBLE: {
        if (get_u64(r, &bits, "double", err) != SH_S_OK)
            return SH_S_PROTOCOL;
        double d;
        memcpy(&d, &bits, sizeof d);
        *out = sh_value_double(d);
        break;
    }
    case SH_CODEC_STRING:
    case SH_CODEC_BYTES:
        return get_octets(r, tag, out, err);
    case SH_CODEC_ARRAY:
        return get_array(r, out, depth, err);
    case SH_CODEC_MAP:
        return get_map(r, out, depth, err);
    default:
        return sh_error_set(err, SH_S_PROTOCOL, "unknown value tag %u at byte %zu", tag, r->pos - 1);
    }
    return *out ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory decoding a value");
}

sh_status sh_codec_get_value(sh_codec_reader *r, sh_value **out, sh_error *err) { return get_value(r, out, 0, err); }

/* Fresh memory for a large item faults in page by page: 16,384 faults for 64 MiB, which cost more than the
 * copy itself. Transparent huge pages (where the system offers them on request) make that 32. */
static void advise_huge(void *p, size_t len)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (len < 2 * huge)
        return;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + len) & ~(huge - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
}

sh_status sh_codec_get_shared(const uint8_t *p, size_t len, sh_buf *scratch, sh_value **out, sh_error *err)
{
    *out = NULL;
    if (len >= 5) {
        /* Read the tag and the length once each (volatile: the compiler may not read them again later). */
        const volatile uint8_t *h = p;
        uint8_t tag = h[0];
        uint32_t n = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
        if ((tag == SH_CODEC_STRING || tag == SH_CODEC_BYTES) && (size_t)n == len - 5) {
            sh_value *v = sh_value_bytes(NULL, 0);
            char *data = v ? malloc((size_t)n + 1) : NULL;
            if (!data) {
                sh_value_free(v);
                return sh_error_set(err, SH_S_NOMEM, "out of memory copying a %u-byte value", n);
            }
            free(v->u.s.data);
            v->u.s.data = data;
            v->u.s.len = n;
            data[n] = '\0';
            advise_huge(data, n);
            memcpy(data, p + 5, n);
            /* Validated in the copy, which the worker can no longer touch. */
            if (tag == SH_CODEC_STRING) {
                if (!sh_utf8_valid(v->u.s.data, n)) {
                    sh_value_free(v);
                    return sh_error_set(err, SH_S_PROTOCOL, "a %u-byte string in the shared buffer is not valid "
                                                            "UTF-8", n);
                }
                v->type = SH_TYPE_STRING;
            }
            *out = v;
            return SH_S_OK;
        }
    }
    sh_buf_reset(scratch);
    sh_buf_append(scratch, p, len);
    if (scratch->failed)
        return sh_error_set(err, SH_S_NOMEM, "out of memory copying a %zu-byte item", len);
    sh_codec_reader r;
    sh_codec_reader_init(&r, scratch->data, len);
    sh_status st = sh_codec_get_value(&r, out, err);
    if (st == SH_S_OK && !sh_codec_reader_done(&r)) {
        sh_value_free(*out);
        *out = NULL;
        st = sh_error_set(err, SH_S_PROTOCOL, "trailing bytes after an item in the shared buffer");
    }
    return st;
}

sh_status sh_codec_get_typed(sh_codec_reader *r, sh_type type, const char *what, sh_value **out, sh_error *err)
{
    sh_status st = get_value(r, out, 0, err);
    if (st != SH_S_OK)
        return sh_error_prefix(err, "reading %s", what);
    if ((*out)->type != type) {
        st = sh_error_set(err, SH_S_PROTOCOL, "%s should be a %s, got a %s", what, sh_type_name(type),
                          sh_type_name((*out)->type));
        sh_value_free(*out);
        *out = NULL;
    }
    return st;
}
