#include "value/digest.h"
#include "util/buf.h"
#include "value/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

struct sh_digest {
    XXH3_state_t *state;
    sh_buf scratch; /* one value's encoding at a time, reused */
    bool failed;
};

sh_digest *sh_digest_new(void) { return sh_digest_new_codec(SH_VALUE_CODEC_VERSION); }

sh_digest *sh_digest_new_codec(int codec)
{
    sh_digest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->state = XXH3_createState();
    /* Values are hashed in their codec encoding, so a digest means something only for one codec version: the
     * version seeds the hash. Seed 0 is XXH3's unseeded hash, so version 1 keeps the cache keys and resume
     * fingerprints written before the codec had a version; every other version gives every digest new values. */
    if (!d->state || XXH3_128bits_reset_withSeed(d->state, (XXH64_hash_t)(codec - 1)) != XXH_OK) {
        sh_digest_free(d);
        return NULL;
    }
    sh_buf_init(&d->scratch);
    return d;
}

void sh_digest_free(sh_digest *d)
{
    if (!d)
        return;
    XXH3_freeState(d->state);
    sh_buf_free(&d->scratch);
    free(d);
}

static void digest_bytes(sh_digest *d, const void *data, size_t len)
{
    if (len && XXH3_128bits_update(d->state, data, len) != XXH_OK)
        d->failed = true;
}

void sh_digest_string(sh_digest *d, const char *s)
{
    sh_buf_reset(&d->scratch);
    sh_codec_put_string(&d->scratch, s);
    d->failed |= d->scratch.failed != 0;
    digest_bytes(d, d->scratch.data, d->scratch.len);
}

void sh_digest_value(sh_digest *d, const sh_value *v)
{
    sh_buf_reset(&d->scratch);
    sh_codec_put_value(&d->scratch, v);
    d->failed |= d->scratch.failed != 0;
    digest_bytes(d, d->scratch.data, d->scratch.len);
}

bool sh_digest_hex(const sh_digest *d, char out[SH_DIGEST_HEX])
{
    XXH128_hash_t h = XXH3_128bits_digest(d->state);
    snprintf(out, SH_DIGEST_HEX, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return !d->failed;
}
