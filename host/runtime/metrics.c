/* Keys are few (a pipeline's stages and the plugins behind them), so each table is an array searched linearly:
 * that keeps first-recorded order for free, and that order is what makes the renderings deterministic.
 *
 * Not thread-safe: callers that record from several threads serialize the calls themselves. */
#include "runtime/metrics.h"

#include "value/json.h"
#include "value/value.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void summarize(const key_stats *k, sh_metrics_summary *out)
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
        summarize(k, out);
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
/* Shared rendering helpers                                                                                      */

/* v / 10^digits, exactly, without trailing zeros: "0.05", "3", "1.000000001". Printing from the integers avoids
 * the binary-fraction noise (and the lost nanoseconds) of going through a double. */
static void put_scaled(sh_buf *b, int64_t v, int digits)
{
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    sh_buf_printf(b, "%s%" PRIu64, v < 0 ? "-" : "", u / scale);
    uint64_t frac = u % scale;
    if (!frac)
        return;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    sh_buf_printf(b, ".%0*" PRIu64, digits, frac);
}

static int64_t kb_to_bytes(int64_t kb) { return kb > INT64_MAX / 1024 ? INT64_MAX : kb * 1024; }

static const char *const cache_names[CACHE_EVENTS] = {"hits", "misses", "evictions", "loads", "unloads"};

/* ------------------------------------------------------------------------------------------------------------ */
/* Text                                                                                                          */

enum { COLUMNS = 10 };

static const char *const column_heads[COLUMNS] = {
    NULL, "calls", "failures", "error rate", "p50 ms", "p95 ms", "p99 ms", "cpu user ms", "cpu sys ms", "peak rss MiB",
};

/* Columns measure in code points, so a UTF-8 name does not push its row out of line. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void format_cell(char *out, size_t size, const sh_metrics_summary *s, int col)
{
    switch (col) {
    case 1:
        snprintf(out, size, "%" PRIu64, s->calls);
        break;
    case 2:
        snprintf(out, size, "%" PRIu64, s->failures);
        break;
    case 3:
        snprintf(out, size, "%.1f%%", s->error_rate * 100.0);
        break;
    case 4:
        snprintf(out, size, "%.3f", (double)s->p50_ns / 1e6);
        break;
    case 5:
        snprintf(out, size, "%.3f", (double)s->p95_ns / 1e6);
        break;
    case 6:
        snprintf(out, size, "%.3f", (double)s->p99_ns / 1e6);
        break;
    case 7:
        snprintf(out, size, "%.3f", (double)s->cpu_user_us / 1e3);
        break;
    case 8:
        snprintf(out, size, "%.3f", (double)s->cpu_sys_us / 1e3);
        break;
    default: /* 0 means the worker could not tell, which is not the same as using no memory */
        if (s->peak_rss_kb > 0)
            snprintf(out, size, "%.1f", (double)s->peak_rss_kb / 1024.0);
        else
            snprintf(out, size, "-");
        break;
    }
}

static void measure_table(const key_table *t, const char *head, size_t width[COLUMNS])
{
    if (strlen(head) > width[0])
        width[0] = strlen(head);
    for (size_t i = 0; i < t->len; i++) {
        size_t w = display_width(t->items[i].shown);
        if (w > width[0])
            width[0] = w;
        sh_metrics_summary s;
        summarize(&t->items[i], &s);
        for (int c = 1; c < COLUMNS; c++) {
            char cell[64];
            format_cell(cell, sizeof cell, &s, c);
            if (strlen(cell) > width[c])
                width[c] = strlen(cell);
        }
    }
}

static void pad(sh_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sh_buf_putc(b, ' ');
}

/* Control characters in a name would break the table (or the terminal); they show as '?'. */
static void put_text_name(sh_buf *b, const char *s)
{
    for (; *s; s++)
        sh_buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void render_table(const key_table *t, const char *head, const size_t width[COLUMNS], sh_buf *b)
{
    sh_buf_puts(b, head);
    pad(b, width[0] - strlen(head));
    for (int c = 1; c < COLUMNS; c++) {
        pad(b, 2 + width[c] - strlen(column_heads[c]));
        sh_buf_puts(b, column_heads[c]);
    }
    sh_buf_putc(b, '\n');
    for (size_t i = 0; i < t->len; i++) {
        put_text_name(b, t->items[i].shown);
        pad(b, width[0] - display_width(t->items[i].shown));
        sh_metrics_summary s;
        summarize(&t->items[i], &s);
        for (int c = 1; c < COLUMNS; c++) {
            char cell[64];
            format_cell(cell, sizeof cell, &s, c);
            pad(b, 2 + width[c] - strlen(cell));
            sh_buf_puts(b, cell);
        }
        sh_buf_putc(b, '\n');
    }
}

static void render_text_locked(const sh_metrics *m, sh_buf *b)
{
    if (!m || m->stages.len == 0) {
        sh_buf_puts(b, "metrics: no stage ran\n");
        return;
    }
    /* One set of widths for both tables, so their columns line up with each other too. */
    size_t width[COLUMNS];
    for (int c = 0; c < COLUMNS; c++)
        width[c] = c ? strlen(column_heads[c]) : 0;
    measure_table(&m->stages, "stage", width);
    measure_table(&m->plugins, "plugin", width);

    render_table(&m->stages, "stage", width, b);
    sh_buf_putc(b, '\n');
    render_table(&m->plugins, "plugin", width, b);
    sh_buf_putc(b, '\n');
    sh_buf_puts(b, "cache:");
    for (int e = 0; e < CACHE_EVENTS; e++)
        sh_buf_printf(b, "%s %" PRIu64 " %s", e ? "," : "", m->cache[e], cache_names[e]);
    sh_buf_putc(b, '\n');
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Prometheus text exposition, format 0.0.4                                                                      */

typedef enum family_kind {
    FAM_CALLS,
    FAM_FAILURES,
    FAM_TIMEOUTS,
    FAM_CRASHES,
    FAM_PROTOCOL,
    FAM_LATENCY,
    FAM_CPU,
    FAM_RSS
} family_kind;

static const struct family {
    family_kind kind;
    const char *name; /* after stagehost_<stage|plugin>_ */
    const char *type;
    const char *help; /* completed by ", per stage." or ", per plugin." */
} families[] = {
    {FAM_CALLS, "calls_total", "counter", "Invocations"},
    {FAM_FAILURES, "failures_total", "counter", "Invocations that did not succeed, whatever the reason"},
    {FAM_TIMEOUTS, "timeouts_total", "counter", "Invocations killed at their deadline"},
    {FAM_CRASHES, "crashes_total", "counter", "Invocations during which the worker died"},
    {FAM_PROTOCOL, "protocol_errors_total", "counter", "Invocations during which the worker broke the wire protocol"},
    {FAM_LATENCY, "latency_seconds", "summary", "Wall time of invocations"},
    {FAM_CPU, "cpu_seconds_total", "counter", "CPU time spent in invocations"},
    {FAM_RSS, "peak_rss_bytes", "gauge", "Highest peak resident set size reported for invocations"},
};

static const struct cache_family {
    const char *name;
    const char *help;
} cache_families[CACHE_EVENTS] = {
    {"stagehost_cache_hits_total", "Invocations that reused a live worker."},
    {"stagehost_cache_misses_total", "Invocations that found no live worker and started one."},
    {"stagehost_cache_evictions_total", "Workers stopped by TTL or LRU."},
    {"stagehost_plugin_loads_total", "Plugins loaded, in a worker or in-process."},
    {"stagehost_plugin_unloads_total", "Plugins unloaded."},
};

static void put_label_value(sh_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sh_buf_puts(b, "\\\\");
        else if (*s == '"')
            sh_buf_puts(b, "\\\"");
        else if (*s == '\n')
            sh_buf_puts(b, "\\n");
        else
            sh_buf_putc(b, *s);
    }
}

/* `metric{label="value"` with the closing brace left to the caller, who may add labels. */
static void open_sample(sh_buf *b, const char *label, const char *family, const char *suffix, const key_stats *k)
{
    sh_buf_printf(b, "stagehost_%s_%s%s{%s=\"", label, family, suffix, label);
    put_label_value(b, k->shown);
    sh_buf_putc(b, '"');
}

static void render_family(const key_table *t, const char *label, const struct family *f, sh_buf *b)
{
    sh_buf_printf(b, "# HELP stagehost_%s_%s %s, per %s.\n", label, f->name, f->help, label);
    sh_buf_printf(b, "# TYPE stagehost_%s_%s %s\n", label, f->name, f->type);
    for (size_t i = 0; i < t->len; i++) {
        const key_stats *k = &t->items[i];
        uint64_t count = 0;
        switch (f->kind) {
        case FAM_CALLS:
            count = k->calls;
            break;
        case FAM_FAILURES:
            count = k->failures;
            break;
        case FAM_TIMEOUTS:
            count = k->timeouts;
            break;
        case FAM_CRASHES:
            count = k->crashes;
            break;
        case FAM_PROTOCOL:
            count = k->protocol_errors;
            break;
        case FAM_LATENCY: {
            sh_metrics_summary s;
            summarize(k, &s);
            static const char *const q[3] = {"0.5", "0.95", "0.99"};
            const int64_t v[3] = {s.p50_ns, s.p95_ns, s.p99_ns};
            for (int j = 0; j < 3; j++) {
                open_sample(b, label, f->name, "", k);
                sh_buf_printf(b, ",quantile=\"%s\"} ", q[j]);
                put_scaled(b, v[j], 9);
                sh_buf_putc(b, '\n');
            }
            open_sample(b, label, f->name, "_sum", k);
            sh_buf_puts(b, "} ");
            put_scaled(b, k->wall_sum_ns, 9);
            sh_buf_putc(b, '\n');
            open_sample(b, label, f->name, "_count", k);
            sh_buf_printf(b, "} %" PRIu64 "\n", k->calls);
            continue;
        }
        case FAM_CPU:
            open_sample(b, label, f->name, "", k);
            sh_buf_puts(b, ",mode=\"user\"} ");
            put_scaled(b, k->cpu_user_us, 6);
            sh_buf_putc(b, '\n');
            open_sample(b, label, f->name, "", k);
            sh_buf_puts(b, ",mode=\"system\"} ");
            put_scaled(b, k->cpu_sys_us, 6);
            sh_buf_putc(b, '\n');
            continue;
        case FAM_RSS:
            /* 0 means unknown: no sample beats a made-up zero. */
            if (k->peak_rss_kb <= 0)
                continue;
            open_sample(b, label, f->name, "", k);
            sh_buf_printf(b, "} %" PRId64 "\n", kb_to_bytes(k->peak_rss_kb));
            continue;
        }
        open_sample(b, label, f->name, "", k);
        sh_buf_printf(b, "} %" PRIu64 "\n", count);
    }
}

static void render_prometheus_locked(const sh_metrics *m, sh_buf *b)
{
    static const key_table none = {0};
    /* Families come out even with no samples, so a scrape always shows the same set of names. */
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        render_family(m ? &m->stages : &none, "stage", &families[i], b);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        render_family(m ? &m->plugins : &none, "plugin", &families[i], b);
    for (int e = 0; e < CACHE_EVENTS; e++) {
        sh_buf_printf(b, "# HELP %s %s\n", cache_families[e].name, cache_families[e].help);
        sh_buf_printf(b, "# TYPE %s counter\n", cache_families[e].name);
        sh_buf_printf(b, "%s %" PRIu64 "\n", cache_families[e].name, m ? m->cache[e] : 0);
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* JSON                                                                                                          */

static void render_json_table(const key_table *t, sh_buf *b)
{
    sh_buf_putc(b, '{');
    for (size_t i = 0; i < t->len; i++) {
        const key_stats *k = &t->items[i];
        sh_metrics_summary s;
        summarize(k, &s);
        if (i)
            sh_buf_putc(b, ',');
        sh_json_write_string(b, k->shown, strlen(k->shown));
        sh_buf_printf(b,
                      ":{\"calls\":%" PRIu64 ",\"failures\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"crashes\":%" PRIu64
                      ",\"protocol_errors\":%" PRIu64 ",\"error_rate\":%.9g,\"p50_ms\":",
                      s.calls, s.failures, s.timeouts, s.crashes, s.protocol_errors, s.error_rate);
        put_scaled(b, s.p50_ns, 6);
        sh_buf_puts(b, ",\"p95_ms\":");
        put_scaled(b, s.p95_ns, 6);
        sh_buf_puts(b, ",\"p99_ms\":");
        put_scaled(b, s.p99_ns, 6);
        sh_buf_puts(b, ",\"cpu_user_ms\":");
        put_scaled(b, s.cpu_user_us, 3);
        sh_buf_puts(b, ",\"cpu_sys_ms\":");
        put_scaled(b, s.cpu_sys_us, 3);
        sh_buf_printf(b, ",\"peak_rss_kb\":%" PRId64 "}", s.peak_rss_kb);
    }
    sh_buf_putc(b, '}');
}

static void render_json_locked(const sh_metrics *m, sh_buf *b)
{
    static const key_table none = {0};
    sh_buf_puts(b, "{\"stages\":");
    render_json_table(m ? &m->stages : &none, b);
    sh_buf_puts(b, ",\"plugins\":");
    render_json_table(m ? &m->plugins : &none, b);
    sh_buf_puts(b, ",\"cache\":{");
    for (int e = 0; e < CACHE_EVENTS; e++)
        sh_buf_printf(b, "%s\"%s\":%" PRIu64, e ? "," : "", cache_names[e], m ? m->cache[e] : 0);
    sh_buf_puts(b, "}}");
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

void sh_metrics_render_text(const sh_metrics *m, sh_buf *b)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    render_text_locked(m, b);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}

void sh_metrics_render_prometheus(const sh_metrics *m, sh_buf *b)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    render_prometheus_locked(m, b);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}

void sh_metrics_render_json(const sh_metrics *m, sh_buf *b)
{
    if (m)
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
    render_json_locked(m, b);
    if (m)
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
}
