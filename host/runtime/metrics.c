/* Collecting the metrics: per stage and per plugin, counts, sums and a latency reservoir; summaries on demand.
 * metrics_render.c turns them into text, Prometheus and JSON. */
#include "runtime/metrics_private.h"

#include "util/names.h"
#include "value/value.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[] = {
    [SH_OUTCOME_OK] = "succeeded", [SH_OUTCOME_FAILED] = "failed", [SH_OUTCOME_TIMEOUT] = "timeout",
    [SH_OUTCOME_CRASH] = "crashed", [SH_OUTCOME_PROTOCOL] = "protocol",
};
SH_DEFINE_STRING_TABLE(sh_outcome, sh_outcome, outcome_names, "failed")

sh_outcome sh_outcome_of(sh_status status)
{
    switch (status) {
    case SH_S_OK:
        return SH_OUTCOME_OK;
    case SH_S_TIMEOUT:
        return SH_OUTCOME_TIMEOUT;
    case SH_S_CRASH:
        return SH_OUTCOME_CRASH;
    case SH_S_PROTOCOL:
        return SH_OUTCOME_PROTOCOL;
    default:
        return SH_OUTCOME_FAILED;
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Keys                                                                                                          */

/* The seed depends on the key alone, so a key's reservoir is the same whatever else was recorded in between. */
static uint64_t seed_for(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then the splitmix64 finalizer to spread short names */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    h ^= h >> 31;
    return h ? h : 0x9e3779b97f4a7c15u; /* xorshift never leaves zero */
}

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Output formats all want UTF-8; a name that is not gets its stray bytes spelled \xNN rather than dropped, so
 * distinct names stay distinct. */
static char *escape_invalid_utf8(const char *name, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

static void key_free(key_stats *k)
{
    if (k->shown != k->name)
        free(k->shown);
    free(k->name);
    free(k->samples);
}

static bool key_init(key_stats *k, const char *name)
{
    memset(k, 0, sizeof *k);
    size_t len = strlen(name);
    k->name = strdup(name);
    if (!k->name)
        return false;
    k->shown = sh_utf8_valid(name, len) ? k->name : escape_invalid_utf8(name, len);
    k->samples = malloc(SAMPLES_INITIAL * sizeof *k->samples);
    if (!k->shown || !k->samples) {
        key_free(k);
        return false;
    }
    k->samples_cap = SAMPLES_INITIAL;
    k->rng = seed_for(name);
    return true;
}

static key_stats *find(const key_table *t, const char *name)
{
    for (size_t i = 0; i < t->len; i++)
        if (strcmp(t->items[i].name, name) == 0)
            return &t->items[i];
    return NULL;
}

/* Room for one more key. */
static bool table_reserve(key_table *t)
{
    if (t->len < t->cap)
        return true;
    size_t ncap = t->cap ? t->cap * 2 : 8;
    if (ncap > SIZE_MAX / sizeof *t->items)
        return false;
    key_stats *p = realloc(t->items, ncap * sizeof *p);
    if (!p)
        return false;
    t->items = p;
    t->cap = ncap;
    return true;
}

/* Room for the next sample, unless the reservoir is full (then a sample replaces one in place). */
static bool samples_reserve(key_stats *k)
{
    if (k->nsamples < k->samples_cap || k->nsamples >= RESERVOIR_CAP)
        return true;
    size_t ncap = k->samples_cap * 2 < RESERVOIR_CAP ? k->samples_cap * 2 : RESERVOIR_CAP;
    int64_t *p = realloc(k->samples, ncap * sizeof *p);
    if (!p)
        return false;
    k->samples = p;
    k->samples_cap = ncap;
    return true;
}

static int64_t nonneg(int64_t v) { return v < 0 ? 0 : v; }

/* Sums saturate instead of wrapping: a pinned maximum is visibly wrong, a wrapped one is quietly wrong (and UB). */
static int64_t add_sat(int64_t a, int64_t b) { return b > INT64_MAX - a ? INT64_MAX : a + b; }

/* Needs samples_reserve(k) to have succeeded. */
static void key_add(key_stats *k, const sh_invocation_metrics *inv)
{
    /* Clocks and rusage deltas can come out negative across a clock step or a reused pid; no call takes less
     * than nothing. */
    int64_t wall = nonneg(inv->wall_ns);

    /* Algorithm R: every call contributes one sample, so `calls` is the number seen before this one. */
    if (k->nsamples < RESERVOIR_CAP) {
        k->samples[k->nsamples++] = wall;
    } else {
        /* The modulo bias is below calls / 2^64: nothing a percentile could show. */
        uint64_t j = xorshift64(&k->rng) % (k->calls + 1);
        if (j < RESERVOIR_CAP)
            k->samples[j] = wall;
    }

    k->calls++;
    if (inv->outcome != SH_OUTCOME_OK)
        k->failures++;
    if (inv->outcome == SH_OUTCOME_TIMEOUT)
        k->timeouts++;
    else if (inv->outcome == SH_OUTCOME_CRASH)
        k->crashes++;
    else if (inv->outcome == SH_OUTCOME_PROTOCOL)
        k->protocol_errors++;
    k->wall_sum_ns = add_sat(k->wall_sum_ns, wall);
    k->cpu_user_us = add_sat(k->cpu_user_us, nonneg(inv->cpu_user_us));
    k->cpu_sys_us = add_sat(k->cpu_sys_us, nonneg(inv->cpu_sys_us));
    if (inv->peak_rss_kb > k->peak_rss_kb)
        k->peak_rss_kb = inv->peak_rss_kb;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Recording                                                                                                     */

sh_metrics *sh_metrics_new(void)
{
    sh_metrics *m = calloc(1, sizeof(sh_metrics));
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void table_free(key_table *t)
{
    for (size_t i = 0; i < t->len; i++)
        key_free(&t->items[i]);
    free(t->items);
}

void sh_metrics_free(sh_metrics *m)
{
    if (!m)
        return;
    table_free(&m->stages);
    table_free(&m->plugins);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool record_locked(sh_metrics *m, const sh_invocation_metrics *inv)
{
    if (!m || !inv || !inv->plugin || !inv->stage)
        return false;
    key_stats *stage = find(&m->stages, inv->stage);
    key_stats *plugin = find(&m->plugins, inv->plugin);
    key_stats new_stage, new_plugin;
    bool have_stage = false, have_plugin = false;

    /* Everything that can fail happens before anything changes, so a dropped record leaves no trace: half of one
     * would skew the stage against its plugin, and a new key with no calls would show up in every rendering. */
    if (!stage) {
        if (!table_reserve(&m->stages) || !key_init(&new_stage, inv->stage))
            goto nomem;
        have_stage = true;
    } else if (!samples_reserve(stage)) {
        goto nomem;
    }
    if (!plugin) {
        if (!table_reserve(&m->plugins) || !key_init(&new_plugin, inv->plugin))
            goto nomem;
        have_plugin = true;
    } else if (!samples_reserve(plugin)) {
        goto nomem;
    }

    if (have_stage) {
        stage = &m->stages.items[m->stages.len++];
        *stage = new_stage;
    }
    if (have_plugin) {
        plugin = &m->plugins.items[m->plugins.len++];
        *plugin = new_plugin;
    }
    key_add(stage, inv);
    key_add(plugin, inv);
    return true;

nomem:
    if (have_stage)
        key_free(&new_stage);
    return false;
}

static void cache_event_locked(sh_metrics *m, sh_cache_event ev)
{
    if (m && (unsigned)ev < CACHE_EVENTS)
        m->cache[ev]++;
}

static uint64_t cache_count_locked(const sh_metrics *m, sh_cache_event ev)
{
    return m && (unsigned)ev < CACHE_EVENTS ? m->cache[ev] : 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Summaries                                                                                                     */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least `permille`/1000 of the samples at or below it. Integer
 * arithmetic, so p95 of 100 samples is exactly the 95th and not the 96th by a rounding error. */
static size_t rank_index(size_t n, unsigned permille)
{
    size_t rank = (n * permille + 999) / 1000;
    return rank ? rank - 1 : 0;
}

/* The k-th smallest (from 0) without a copy, for when there is no memory to sort one: bisect on the value,
 * counting the samples at or below the midpoint. Samples are never negative, so hi - lo cannot overflow. */
static int64_t kth_smallest(const int64_t *v, size_t n, size_t k)
{
    int64_t lo = v[0], hi = v[0];
    for (size_t i = 1; i < n; i++) {
        if (v[i] < lo)
            lo = v[i];
        if (v[i] > hi)
            hi = v[i];
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        size_t at_or_below = 0;
        for (size_t i = 0; i < n; i++)
            at_or_below += v[i] <= mid;
        if (at_or_below > k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void sh_metrics_summarize(const key_stats *k, sh_metrics_summary *out)
{
    memset(out, 0, sizeof *out);
    out->calls = k->calls;
    out->failures = k->failures;
    out->timeouts = k->timeouts;
    out->crashes = k->crashes;
    out->protocol_errors = k->protocol_errors;
    out->error_rate = k->calls ? (double)k->failures / (double)k->calls : 0.0;
    out->cpu_user_us = k->cpu_user_us;
    out->cpu_sys_us = k->cpu_sys_us;
    out->peak_rss_kb = k->peak_rss_kb;

    size_t n = k->nsamples;
    if (n == 0)
        return;
    size_t i50 = rank_index(n, 500), i95 = rank_index(n, 950), i99 = rank_index(n, 990);
    /* A copy, because the reservoir's order decides which sample a later one replaces: sorting in place would
     * make the kept samples depend on when someone asked for a summary. */
    int64_t *sorted = malloc(n * sizeof *sorted);
    if (sorted) {
        memcpy(sorted, k->samples, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_i64);
        out->p50_ns = sorted[i50];
        out->p95_ns = sorted[i95];
        out->p99_ns = sorted[i99];
        free(sorted);
    } else {
        out->p50_ns = kth_smallest(k->samples, n, i50);
        out->p95_ns = kth_smallest(k->samples, n, i95);
        out->p99_ns = kth_smallest(k->samples, n, i99);
    }
}

static bool summary_of(const key_table *t, const char *name, sh_metrics_summary *out)
{
    const key_stats *k = t && name ? find(t, name) : NULL;
    if (!k) {
        if (out)
            memset(out, 0, sizeof *out);
        return false;
    }
    if (out)
        sh_metrics_summarize(k, out);
    return true;
}

static bool plugin_counts_locked(const sh_metrics *m, const char *plugin, uint64_t *calls, uint64_t *failures)
{
    const key_stats *k = m ? find(&m->plugins, plugin) : NULL;
    if (!k)
        return false;
    *calls = k->calls;
    *failures = k->failures;
    return true;
}

static bool plugin_summary_locked(const sh_metrics *m, const char *plugin, sh_metrics_summary *out)
{
    return summary_of(m ? &m->plugins : NULL, plugin, out);
}

static bool stage_summary_locked(const sh_metrics *m, const char *stage, sh_metrics_summary *out)
{
    return summary_of(m ? &m->stages : NULL, stage, out);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The public functions: each under the lock                                                                     */

bool sh_metrics_record(sh_metrics *m, const sh_invocation_metrics *inv)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    bool r = record_locked(m, inv);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return r;
}

void sh_metrics_cache_event(sh_metrics *m, sh_cache_event ev)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    cache_event_locked(m, ev);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}

uint64_t sh_metrics_cache_count(const sh_metrics *m, sh_cache_event ev)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    uint64_t r = cache_count_locked(m, ev);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return r;
}

bool sh_metrics_plugin_counts(const sh_metrics *m, const char *plugin, uint64_t *calls, uint64_t *failures)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    bool r = plugin_counts_locked(m, plugin, calls, failures);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return r;
}

bool sh_metrics_plugin_summary(const sh_metrics *m, const char *plugin, sh_metrics_summary *out)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    bool r = plugin_summary_locked(m, plugin, out);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return r;
}

bool sh_metrics_stage_summary(const sh_metrics *m, const char *stage, sh_metrics_summary *out)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    bool r = stage_summary_locked(m, stage, out);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
    return r;
}
