/* Content digests: the output cache's key and the fingerprint that tells a resumed run whether a stage is still
 * the one that finished. XXH3-128 (libxxhash): fast on large inputs, and collisions need 2^64 work, which is
 * enough for a cache that also compares plugin name and version in the clear. Not for anything adversarial. */
#ifndef SH_DIGEST_H
#define SH_DIGEST_H

#include "value/value.h"

#include <stddef.h>

#define SH_DIGEST_HEX 33 /* 32 hex digits and a NUL */

typedef struct sh_digest sh_digest;

/* NULL when out of memory. Digests depend on the value codec's version (SH_VALUE_CODEC_VERSION): a new codec
 * version changes every digest. */
sh_digest *sh_digest_new(void);
/* Tests only: as sh_digest_new, for a stagehost whose value codec has version `codec`. */
sh_digest *sh_digest_new_codec(int codec);
void sh_digest_free(sh_digest *d);

/* A string with its length, so ("ab","c") and ("a","bc") differ; NULL differs from "". */
void sh_digest_string(sh_digest *d, const char *s);
/* A value in its codec encoding (value/codec.h), which is unambiguous and keeps map order. */
void sh_digest_value(sh_digest *d, const sh_value *v);

/* Writes the digest so far as 32 lowercase hex digits. Returns false when an allocation failed on the way. */
bool sh_digest_hex(const sh_digest *d, char out[SH_DIGEST_HEX]);

#endif
