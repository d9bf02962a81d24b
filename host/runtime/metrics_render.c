/* The metrics as text (the summary tables), Prometheus text exposition and JSON. */
#include "runtime/metrics_private.h"

#include "value/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *const sh_metrics_cache_names[CACHE_EVENTS] = {"hits", "misses", "evictions", "loads", "unloads"};

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
        sh_metrics_summarize(&t->items[i], &s);
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
        sh_metrics_summarize(&t->items[i], &s);
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
        sh_buf_printf(b, "%s %" PRIu64 " %s", e ? "," : "", m->cache[e], sh_metrics_cache_names[e]);
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
            sh_metrics_summarize(k, &s);
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
        sh_metrics_summarize(k, &s);
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
        sh_buf_printf(b, "%s\"%s\":%" PRIu64, e ? "," : "", sh_metrics_cache_names[e], m ? m->cache[e] : 0);
    sh_buf_puts(b, "}}");
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
