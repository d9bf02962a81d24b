/*
 * The value codec: a compact tagged encoding of sh_value, lossless for every type (bytes, NaN payloads, map
 * order). It is what the worker channel carries (worker/frame.h), what the run store keeps as stage outputs and
 * cached outputs (engine/store.c), what content digests hash (value/digest.c), and what the registry cache records
 * for function stages (registry/cache_record.c). The decoder never trusts its input: every length is checked
 * against the bytes left, nesting is bounded, and strings must be valid UTF-8.
 *
 * Value:  u8 tag | data, where tag is one of SH_CODEC_* below; lengths and counts are u32 little-endian.
 *         null, false, true: the tag alone. int: i64, double: its IEEE bits as u64. string, bytes: u32 length,
 *         the bytes. array: u32 count, the items. map: u32 count, per entry u32 key length, the key, the value.
 */
#ifndef SH_CODEC_H
#define SH_CODEC_H

#include "util/buf.h"
#include "util/error.h"
#include "value/value.h"

/* IMPORTANT: bump SH_VALUE_CODEC_VERSION whenever the bytes an encoded value produces change (a tag, a width,
 * the byte order, the order of map entries, what a NULL string encodes as), even if the decoder still reads the
 * old bytes. Encoded values outlive the process: the version is part of every content digest (digest.c: cache
 * keys and resume fingerprints), of the run store's stored outputs (store.c) and of the registry cache's key
 * (cache.c), so bumping it makes all of them miss and be rebuilt instead of decoding another codec's bytes. The
 * worker channel needs no version: the host and its workers are one build. */
#define SH_VALUE_CODEC_VERSION 1

#define SH_CODEC_MAX_DEPTH 128

enum {
    SH_CODEC_NULL = 0,
    SH_CODEC_FALSE = 1,
    SH_CODEC_TRUE = 2,
    SH_CODEC_INT = 3,
    SH_CODEC_DOUBLE = 4,
    SH_CODEC_STRING = 5,
    SH_CODEC_BYTES = 6,
    SH_CODEC_ARRAY = 7,
    SH_CODEC_MAP = 8
};

/* Encoding. Errors (out of memory) show in buf->failed. */
void sh_codec_put_value(sh_buf *b, const sh_value *v);
void sh_codec_put_string(sh_buf *b, const char *s); /* a string value; NULL encodes as null */
void sh_codec_put_int(sh_buf *b, int64_t i);        /* an integer value */
/* The size of v's encoding; SIZE_MAX when it cannot be encoded (a piece over 4 GiB). */
size_t sh_codec_value_size(const sh_value *v);
/* Encodes v into dst, which must have room for sh_codec_value_size(v) bytes; returns the bytes written. For
 * encoding straight into a shared buffer, without a copy through an sh_buf. */
size_t sh_codec_encode(uint8_t *dst, const sh_value *v);

/* Decoding from a buffer (one frame's payload, a stored blob). */
typedef struct sh_codec_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
} sh_codec_reader;

void sh_codec_reader_init(sh_codec_reader *r, const void *data, size_t len);
bool sh_codec_reader_done(const sh_codec_reader *r);
/* Decodes one value; SH_S_PROTOCOL with a precise message on malformed input. */
sh_status sh_codec_get_value(sh_codec_reader *r, sh_value **out, sh_error *err);
/* Decodes a value that must be of `type` (a convenience for protocol fields); `what` names it in errors. */
sh_status sh_codec_get_typed(sh_codec_reader *r, sh_type type, const char *what, sh_value **out, sh_error *err);

/* Decodes the one value encoded in `len` bytes at `p`, memory that another process may rewrite while it is read
 * (a worker's shared buffer). Nothing is validated where it could still change: a string or bytes value is
 * copied into its own storage first (one copy), its length read once, and a string is checked for UTF-8 in that
 * copy; anything else is copied into `scratch` (reused) and decoded from there. */
sh_status sh_codec_get_shared(const uint8_t *p, size_t len, sh_buf *scratch, sh_value **out, sh_error *err);

#endif
