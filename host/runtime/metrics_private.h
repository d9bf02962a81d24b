/* The metrics' records, shared by their collection (metrics.c) and their renderings (metrics_render.c).
 * Keys are few (a pipeline's stages and the plugins behind them), so each table is an array searched linearly:
 * that keeps first-recorded order for free, and that order is what makes the renderings deterministic. */
#ifndef SH_METRICS_PRIVATE_H
#define SH_METRICS_PRIVATE_H

#include "runtime/metrics.h"

#include <pthread.h>
#include <stdint.h>

/* Latency samples kept per key. Past this, Algorithm R keeps a uniform sample of everything seen, so a long run
 * costs 32 KiB per key instead of growing without bound. */
#define RESERVOIR_CAP 4096
#define SAMPLES_INITIAL 16
#define CACHE_EVENTS 5

typedef struct key_stats {
    char *name;  /* as recorded; lookups compare against it */
    char *shown; /* the name in output: `name` itself when it is UTF-8, else a copy with the bad bytes escaped */
    uint64_t calls, failures, timeouts, crashes, protocol_errors;
    int64_t wall_sum_ns, cpu_user_us, cpu_sys_us, peak_rss_kb;
    int64_t *samples; /* wall times; the first min(calls, RESERVOIR_CAP) calls, then a reservoir */
    size_t nsamples, samples_cap;
    uint64_t rng;
} key_stats;

typedef struct key_table {
    key_stats *items;
    size_t len, cap;
} key_table;

struct sh_metrics {
    /* Calls end on many threads, and the worker cache counts its events under its own lock: the metrics guard
     * themselves. Every public function takes the lock; the static ones run under it. */
    pthread_mutex_t lock;
    key_table stages, plugins;
    uint64_t cache[CACHE_EVENTS];
};

extern const char *const sh_metrics_cache_names[CACHE_EVENTS];

/* The summary of one key: counts, error rate, latency percentiles. Under the lock. */
void sh_metrics_summarize(const key_stats *k, sh_metrics_summary *out);

#endif
