/*
 * core/embed: a deterministic, dependency-free text embedding for offline demos and tests.
 *
 * This is feature hashing (the "hashing trick"), NOT a semantic model: texts that share words and word pairs
 * get close vectors; synonyms and paraphrases do not. It needs no model file and no network, gives the same
 * vector for the same text on every machine and in every version 1.x, and is good enough to demonstrate
 * similarity search end to end.
 *
 *   embed  field (default "text") -> output (default "embedding"): an array of `dimensions` doubles
 *
 * How: the text is split into words (runs of ASCII letters and digits, and of non-ASCII UTF-8 bytes, so that
 * accented words stay whole); ASCII letters are lower-cased when `lowercase` is true (use core/text.normalize
 * with case = "lower" first for Unicode case folding). Each word, and with `bigrams` each pair of adjacent
 * words, is hashed (64-bit FNV-1a, then a splitmix64 finaliser so that low and high bits are independent); the
 * hash picks a dimension and a sign (+1 or -1, which keeps collisions from adding up in expectation). With
 * `sublinear` (default true) each dimension's count c becomes sign(c) * ln(1 + |c|). The vector is then scaled
 * to unit Euclidean length, so a dot product is the cosine similarity. A text without words gets the zero
 * vector.
 */
#include <stagehost/sdk.h>

#include "plugin_config.h"

#include <math.h>
#include <stdbool.h>

typedef struct embed_cfg {
    const char *field;
    const char *output;
    int64_t dimensions;
    int bigrams;
    int lowercase;
    int sublinear;
} embed_cfg;

static int embed_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"field", "output", "dimensions", "bigrams", "lowercase", "sublinear"};
    embed_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "field", "text", &c.field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "output", "embedding", &c.output);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "dimensions", 256, 2, 65536, &c.dimensions);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "bigrams", 1, &c.bigrams);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "lowercase", 1, &c.lowercase);
    if (rc == SH_OK)
        rc = pc_bool(call, def->config, "sublinear", 1, &c.sublinear);
    if (rc != SH_OK)
        return rc;
    embed_cfg *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = c;
    *user = p;
    return SH_OK;
}

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

typedef struct hasher {
    uint64_t h;
} hasher;

enum { FNV_OFFSET = 0, FNV_PRIME = 1 };
static const uint64_t fnv[] = {14695981039346656037ULL, 1099511628211ULL};

static void hash_bytes(hasher *s, const char *p, size_t n, bool lower)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (lower && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        s->h = (s->h ^ c) * fnv[FNV_PRIME];
    }
}

/* splitmix64's finaliser: FNV's low bits are weak, and both the index and the sign are taken from the hash. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void add_feature(double *vec, int64_t dims, uint64_t h)
{
    h = mix(h);
    vec[h % (uint64_t)dims] += (h >> 63) ? -1.0 : 1.0;
}

/* Fills `vec` (dims zeros on entry) with the hashed, normalised features of `text`. */
static void embed_text(const embed_cfg *c, const char *text, size_t len, double *vec)
{
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t start = i;
        while (i < len && word_byte((unsigned char)text[i]))
            i++;
        if (i == start)
            break;
        hasher u = {fnv[FNV_OFFSET]};
        hash_bytes(&u, "w:", 2, false); /* prefixes keep a word and a pair from ever hashing alike by design */
        hash_bytes(&u, text + start, i - start, c->lowercase);
        add_feature(vec, c->dimensions, u.h);
        if (c->bigrams && prev) {
            hasher b = {fnv[FNV_OFFSET]};
            hash_bytes(&b, "b:", 2, false);
            hash_bytes(&b, prev, prev_len, c->lowercase);
            hash_bytes(&b, " ", 1, false);
            hash_bytes(&b, text + start, i - start, c->lowercase);
            add_feature(vec, c->dimensions, b.h);
        }
        prev = text + start;
        prev_len = i - start;
    }
    double norm = 0;
    for (int64_t d = 0; d < c->dimensions; d++) {
        /* Sublinear term frequency: a word said ten times is not ten times the evidence, and without this the
         * most frequent words ("the", "of") would dominate every vector. */
        if (c->sublinear)
            vec[d] = vec[d] < 0 ? -log1p(-vec[d]) : log1p(vec[d]);
        norm += vec[d] * vec[d];
    }
    if (norm > 0) {
        norm = sqrt(norm);
        for (int64_t d = 0; d < c->dimensions; d++)
            vec[d] /= norm;
    }
}

static int embed_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const embed_cfg *c = user;
    double *vec = malloc((size_t)c->dimensions * sizeof *vec);
    if (!vec)
        return sh_failf(call, "out of memory for a %lld-dimensional vector", (long long)c->dimensions);
    int rc = SH_OK;
    for (size_t i = 0; rc == SH_OK && i < count; i++) {
        size_t len;
        const sh_value *f = sh_get(items[i], c->field);
        const char *text = f ? sh_sdk_host->value_string(f, &len) : NULL;
        if (!text) {
            rc = sh_failf(call, "item %zu has no text field '%s' to embed; name it with 'field' in the stage's "
                                "config (chunks from 'chunk' have 'text', documents from 'read' have 'content')",
                          i + 1, c->field);
            break;
        }
        memset(vec, 0, (size_t)c->dimensions * sizeof *vec);
        embed_text(c, text, len, vec);
        sh_value *arr = sh_sdk_host->new_array();
        for (int64_t d = 0; arr && d < c->dimensions; d++)
            if (sh_sdk_host->array_push(arr, sh_sdk_host->new_double(vec[d])) != SH_OK) {
                sh_free(arr);
                arr = NULL;
            }
        sh_value *out = arr ? sh_copy(items[i]) : NULL;
        if (!out || sh_sdk_host->map_set(out, c->output, arr) != SH_OK) {
            if (!out)
                sh_free(arr);
            sh_free(out);
            rc = sh_failf(call, "out of memory building the embedding of item %zu", i + 1);
        } else if (sh_emit(call, out) != SH_OK) {
            rc = sh_failf(call, "cannot emit item %zu: the host refused the output", i + 1);
        }
    }
    free(vec);
    return rc;
}

static const sh_sdk_stage stages[] = {
    {.type = "embed", .input = "any", .output = "any",
     .description =
         "feature-hashing text embedding (not semantic): field, output, dimensions, bigrams, lowercase, sublinear",
     .create = embed_create, .process = embed_process, .destroy = free},
};

SH_SDK_PLUGIN(.name = "core/embed", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
