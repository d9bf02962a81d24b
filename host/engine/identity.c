/* Identities: run and execution ids, a stage's fingerprint (what resume compares) and cache key. */
#include "engine/engine_private.h"

void sh_engine_new_run_id(char out[65])
{
    uint8_t raw[16] = {0};
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* Without kernel randomness, time and pid still make the id unique enough for a store. */
        int64_t t = sh_wall_ns();
        memcpy(raw, &t, sizeof t);
        pid_t pid = getpid();
        memcpy(raw + 8, &pid, sizeof pid);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void sh_engine_describe_source(const stage_run *sr, char *out, size_t len)
{
    if (sr->d)
        snprintf(out, len, "%s %s", sr->d->name, sr->d->version);
    else
        snprintf(out, len, "built-in");
}

/* What identifies a stage's result: its type, source, configuration and the identities of its upstream
 * stages, so that a change anywhere upstream changes it too. */
bool sh_engine_fingerprint(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_digest *d = sh_digest_new();
    if (!d)
        return false;
    sh_digest_string(d, "stagehost-stage-v1");
    sh_digest_string(d, st->type);
    sh_digest_string(d, sr->source);
    sh_digest_value(d, st->config);
    for (size_t k = 0; k < st->dep_count; k++)
        sh_digest_string(d, e->s[e->p->deps[i][k]].fingerprint);
    bool ok = sh_digest_hex(d, sr->fingerprint);
    sh_digest_free(d);
    return ok;
}

bool sh_engine_cache_key(engine *e, size_t i, const sh_values *input)
{
    stage_run *sr = &e->s[i];
    sh_digest *d = sh_digest_new();
    if (!d)
        return false;
    sh_digest_string(d, "stagehost-cache-v1");
    sh_digest_string(d, plugin_name(sr));
    sh_digest_string(d, plugin_version(sr));
    sh_digest_string(d, sr->target.action);
    /* Relative paths in the configuration mean other files in another directory. */
    sh_digest_string(d, e->p->dir);
    sh_digest_value(d, e->p->stages[i].config);
    for (size_t k = 0; k < input->len; k++)
        sh_digest_value(d, input->items[k]);
    bool ok = sh_digest_hex(d, sr->cache_key);
    sh_digest_free(d);
    return ok;
}

void sh_engine_make_execution_id(engine *e)
{
    if (!e->rt->deterministic) {
        snprintf(e->execution_id, sizeof e->execution_id, "%s", e->run_id);
        return;
    }
    /* Plugins may write their execution id into their output: under --deterministic it must not vary. */
    sh_digest *d = sh_digest_new();
    char hex[SH_DIGEST_HEX] = "00000000000000000000000000000000";
    if (d) {
        sh_digest_string(d, "stagehost-deterministic-execution");
        sh_digest_string(d, e->p->name);
        sh_digest_hex(d, hex);
        sh_digest_free(d);
    }
    snprintf(e->execution_id, sizeof e->execution_id, "%s", hex);
}
