#include "worker/protocol.h"

#include <stdlib.h>
#include <string.h>

void sh_protocol_put_done(sh_buf *b, uint8_t type, int64_t status, int64_t aux, const char *message)
{
    size_t f = sh_frame_begin(b, type);
    sh_codec_put_int(b, status);
    sh_codec_put_int(b, aux);
    sh_codec_put_string(b, message ? message : "");
    sh_frame_end(b, f);
}

sh_value *sh_protocol_signature_to_value(const sh_signature *sig)
{
    sh_value *a = sh_value_array();
    int rc = a ? sh_value_array_push(a, sh_value_cstring(sh_ntype_name(sig->ret))) : SH_ERR_NOMEM;
    for (size_t i = 0; rc == SH_OK && i < sig->nargs; i++)
        rc = sh_value_array_push(a, sh_value_cstring(sh_ntype_name(sig->args[i])));
    if (rc != SH_OK) {
        sh_value_free(a);
        return NULL;
    }
    return a;
}

bool sh_protocol_signature_from_value(const sh_value *v, sh_signature *sig)
{
    size_t n = sh_value_count(v);
    if (sh_value_type(v) != SH_TYPE_ARRAY || n < 1 || n > SH_SIG_MAX_ARGS + 1)
        return false;
    const char *ret = sh_value_get_string(sh_value_array_get(v, 0), NULL);
    if (!ret || !sh_ntype_parse(ret, true, &sig->ret))
        return false;
    sig->nargs = n - 1;
    for (size_t i = 1; i < n; i++) {
        const char *t = sh_value_get_string(sh_value_array_get(v, i), NULL);
        if (!t || !sh_ntype_parse(t, false, &sig->args[i - 1]))
            return false;
    }
    return true;
}

void sh_inv_cache_free(sh_inv_cache *c)
{
    for (int i = 0; i < SH_INV_FIELDS; i++)
        free(c->value[i]);
    memset(c, 0, sizeof *c);
}

static const char *field(const sh_invocation *inv, int i)
{
    switch (i) {
    case SH_INV_EXECUTION_ID: return inv->execution_id;
    case SH_INV_TASK_ID: return inv->task_id;
    case SH_INV_PIPELINE: return inv->pipeline;
    case SH_INV_STAGE: return inv->stage;
    case SH_INV_PLUGIN: return inv->plugin;
    default: return inv->base_dir;
    }
}

/* Stores a field's new value in c, reusing its storage; on failure the field is unknown (sent again). */
static bool cache_store(sh_inv_cache *c, int i, const char *s, size_t len)
{
    c->known[i] = false;
    c->null[i] = s == NULL;
    if (s) {
        if (len + 1 > c->cap[i]) {
            char *p = realloc(c->value[i], len + 1);
            if (!p)
                return false;
            c->value[i] = p;
            c->cap[i] = len + 1;
        }
        if (len)
            memcpy(c->value[i], s, len);
        c->value[i][len] = '\0';
    }
    c->known[i] = true;
    return true;
}

void sh_protocol_put_header(sh_buf *b, sh_inv_cache *sent, const sh_invocation *inv, uint8_t flags)
{
    if (inv->deterministic)
        flags |= SH_CALL_DETERMINISTIC;
    sh_buf_u8(b, flags);
    sh_buf_u32(b, inv->attempt);
    sh_buf_u64(b, inv->deterministic ? inv->seed : 0);
    uint8_t mask = 0;
    for (int i = 0; i < SH_INV_FIELDS; i++) {
        const char *s = field(inv, i);
        bool same = sent->known[i] && (s ? !sent->null[i] && strcmp(s, sent->value[i]) == 0 : sent->null[i]);
        if (!same)
            mask |= (uint8_t)(1u << i);
    }
    sh_buf_u8(b, mask);
    for (int i = 0; i < SH_INV_FIELDS; i++) {
        if (!(mask & (1u << i)))
            continue;
        const char *s = field(inv, i);
        size_t len = s ? strlen(s) : 0;
        if (len >= SH_INV_NULL) {
            b->failed = 1;
            return;
        }
        sh_buf_u32(b, s ? (uint32_t)len : SH_INV_NULL);
        if (s)
            sh_buf_append(b, s, len);
        cache_store(sent, i, s, len);
    }
    /* A request that could not be encoded is never sent, yet the cache now says the worker has its fields:
     * forget them all, so the next request carries them again. */
    if (b->failed)
        memset(sent->known, 0, sizeof sent->known);
}

bool sh_protocol_get_u8(sh_codec_reader *r, uint8_t *v)
{
    if (r->len - r->pos < 1)
        return false;
    *v = r->data[r->pos++];
    return true;
}

bool sh_protocol_get_u32(sh_codec_reader *r, uint32_t *v)
{
    if (r->len - r->pos < 4)
        return false;
    const uint8_t *p = r->data + r->pos;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->pos += 4;
    return true;
}

bool sh_protocol_get_u64(sh_codec_reader *r, uint64_t *v)
{
    if (r->len - r->pos < 8)
        return false;
    const uint8_t *p = r->data + r->pos;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    *v = x;
    r->pos += 8;
    return true;
}

void sh_protocol_put_name(sh_buf *b, const char *s)
{
    size_t len = strlen(s);
    if (len >= UINT32_MAX) {
        b->failed = 1;
        return;
    }
    sh_buf_u32(b, (uint32_t)len);
    sh_buf_append(b, s, len + 1);
}

bool sh_protocol_get_name(sh_codec_reader *r, const char **s)
{
    uint32_t len;
    if (!sh_protocol_get_u32(r, &len) || len >= r->len - r->pos || r->data[r->pos + len] != '\0')
        return false;
    *s = (const char *)r->data + r->pos;
    r->pos += (size_t)len + 1;
    return true;
}

bool sh_protocol_get_header(sh_codec_reader *r, sh_inv_cache *have, sh_invocation *inv, uint8_t *flags)
{
    uint32_t attempt;
    uint64_t seed;
    uint8_t mask;
    if (!sh_protocol_get_u8(r, flags) || !sh_protocol_get_u32(r, &attempt) || !sh_protocol_get_u64(r, &seed) ||
        !sh_protocol_get_u8(r, &mask))
        return false;
    for (int i = 0; i < SH_INV_FIELDS; i++) {
        if (!(mask & (1u << i)))
            continue;
        uint32_t len;
        if (!sh_protocol_get_u32(r, &len))
            return false;
        if (len == SH_INV_NULL) {
            cache_store(have, i, NULL, 0);
            continue;
        }
        if (len > r->len - r->pos || !cache_store(have, i, (const char *)r->data + r->pos, len))
            return false;
        r->pos += len;
    }
    const char **out[SH_INV_FIELDS] = {&inv->execution_id, &inv->task_id, &inv->pipeline,
                                       &inv->stage,        &inv->plugin,  &inv->base_dir};
    for (int i = 0; i < SH_INV_FIELDS; i++)
        *out[i] = have->known[i] && !have->null[i] ? have->value[i] : NULL;
    inv->attempt = attempt > 0 ? attempt : 1;
    inv->deterministic = (*flags & SH_CALL_DETERMINISTIC) != 0;
    inv->seed = inv->deterministic ? seed : 0;
    return true;
}

void sh_protocol_put_result(sh_buf *b, int64_t status, int64_t user_us, int64_t sys_us, int64_t maxrss_kb,
                            const char *message)
{
    size_t f = sh_frame_begin(b, SH_MSG_RESULT);
    sh_buf_u32(b, (uint32_t)status);
    sh_buf_u64(b, (uint64_t)user_us);
    sh_buf_u64(b, (uint64_t)sys_us);
    sh_buf_u64(b, (uint64_t)maxrss_kb);
    if (message)
        sh_buf_append(b, message, strlen(message));
    sh_frame_end(b, f);
}

void sh_protocol_put_shm(sh_buf *b, uint64_t size)
{
    size_t f = sh_frame_begin(b, SH_MSG_SHM);
    sh_buf_u64(b, size);
    sh_frame_end(b, f);
}
