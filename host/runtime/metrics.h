/* Metrics: one record per invocation, aggregated per plugin and per stage, plus worker-cache counters; rendered
 * as a text summary, Prometheus text exposition, or JSON. */
#ifndef SH_METRICS_H
#define SH_METRICS_H

#include "util/buf.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum sh_outcome {
    SH_OUTCOME_OK = 0,
    SH_OUTCOME_FAILED,   /* the stage returned an error */
    SH_OUTCOME_TIMEOUT,  /* killed at its deadline */
    SH_OUTCOME_CRASH,    /* the worker died (signal, exit, resource limit) */
    SH_OUTCOME_PROTOCOL  /* the worker broke the wire protocol */
} sh_outcome;

/* How a call that ended with `status` counts. */
sh_outcome sh_outcome_of(sh_status status);
/* The word the run store and reports use for it: succeeded, failed, timeout, crashed, protocol. */
const char *sh_outcome_name(sh_outcome o);
bool sh_outcome_parse(const char *s, sh_outcome *out);

/* One invocation of a stage's process(). Strings are copied. */
typedef struct sh_invocation_metrics {
    const char *plugin;   /* "core/text", or "stagehost/builtin" */
    const char *stage;    /* the stage's name in the pipeline */
    int64_t wall_ns;
    int64_t cpu_user_us;  /* CPU time of the worker (or host thread) during the call */
    int64_t cpu_sys_us;
    int64_t peak_rss_kb;  /* the worker's peak resident set size; 0 when unknown */
    sh_outcome outcome;
} sh_invocation_metrics;

/* Worker cache events. */
typedef enum sh_cache_event {
    SH_CACHE_HIT = 0,  /* a live worker was reused */
    SH_CACHE_MISS,     /* no live worker: one was started */
    SH_CACHE_EVICTION, /* a worker was stopped by TTL or LRU */
    SH_CACHE_LOAD,     /* a plugin was loaded (in a worker or in-process) */
    SH_CACHE_UNLOAD    /* a plugin was unloaded (explicitly, by eviction, after a crash, or at shutdown) */
} sh_cache_event;

typedef struct sh_metrics sh_metrics;

sh_metrics *sh_metrics_new(void); /* NULL when out of memory */
void sh_metrics_free(sh_metrics *m);

/* Records one invocation. Returns false when out of memory (the record is dropped). */
bool sh_metrics_record(sh_metrics *m, const sh_invocation_metrics *inv);
void sh_metrics_cache_event(sh_metrics *m, sh_cache_event ev);

/* Aggregates for one key (a plugin name or a stage name). */
typedef struct sh_metrics_summary {
    uint64_t calls, failures, timeouts, crashes, protocol_errors; /* failures counts every non-OK outcome */
    double error_rate;                                             /* failures / calls, 0 when no calls */
    int64_t p50_ns, p95_ns, p99_ns;                                /* nearest-rank percentiles of wall time */
    int64_t cpu_user_us, cpu_sys_us;                               /* sums */
    int64_t peak_rss_kb;                                           /* max */
} sh_metrics_summary;

/* Calls and failures of a plugin so far, without computing percentiles: cheap enough for every call. */
bool sh_metrics_plugin_counts(const sh_metrics *m, const char *plugin, uint64_t *calls, uint64_t *failures);

/* false when no invocation of that plugin / stage was recorded. */
bool sh_metrics_plugin_summary(const sh_metrics *m, const char *plugin, sh_metrics_summary *out);
bool sh_metrics_stage_summary(const sh_metrics *m, const char *stage, sh_metrics_summary *out);
uint64_t sh_metrics_cache_count(const sh_metrics *m, sh_cache_event ev);

/* Renderings, appended to b. Keys appear in first-recorded order, so output is deterministic.
 * - text: a human summary table (per stage, then per plugin, then cache counters), for the end of a run;
 * - prometheus: text exposition format 0.0.4 with HELP/TYPE lines, metric names prefixed stagehost_, labels
 *   plugin="..." / stage="..." with label values escaped (\\, \", \n); latency as a summary with quantile
 *   labels 0.5, 0.95, 0.99 plus _sum and _count;
 * - json: {"stages": {NAME: {...}}, "plugins": {NAME: {...}}, "cache": {"hits": N, ...}}. */
void sh_metrics_render_text(const sh_metrics *m, sh_buf *b);
void sh_metrics_render_prometheus(const sh_metrics *m, sh_buf *b);
void sh_metrics_render_json(const sh_metrics *m, sh_buf *b);

#endif
