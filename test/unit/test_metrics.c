/* Unit tests for metrics: aggregation, nearest-rank percentiles, the bounded latency reservoir, and the text,
 * Prometheus and JSON renderings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/buf.h"
#include "runtime/metrics.h"
#include "value/value.h"

#include <ctype.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000LL /* nanoseconds */

/* ------------------------------------------------------------------------------------------------------------ */
/* Helpers                                                                                                       */

static sh_metrics *new_metrics(void)
{
    sh_metrics *m = sh_metrics_new();
    assert_non_null(m);
    return m;
}

static void rec(sh_metrics *m, const char *stage, const char *plugin, int64_t wall_ns, int64_t user_us, int64_t sys_us,
                int64_t rss_kb, sh_outcome outcome)
{
    sh_invocation_metrics inv = {
        .plugin = plugin,
        .stage = stage,
        .wall_ns = wall_ns,
        .cpu_user_us = user_us,
        .cpu_sys_us = sys_us,
        .peak_rss_kb = rss_kb,
        .outcome = outcome,
    };
    assert_true(sh_metrics_record(m, &inv));
}

static void rec_wall(sh_metrics *m, const char *stage, const char *plugin, int64_t wall_ns)
{
    rec(m, stage, plugin, wall_ns, 0, 0, 0, SH_OUTCOME_OK);
}

/* A rendering as a C string; the caller frees it. */
static char *render(const sh_metrics *m, void (*fn)(const sh_metrics *, sh_buf *))
{
    sh_buf b;
    sh_buf_init(&b);
    fn(m, &b);
    sh_buf_putc(&b, '\0');
    assert_false(b.failed);
    char *s = strdup((const char *)b.data);
    assert_non_null(s);
    sh_buf_free(&b);
    return s;
}

static sh_metrics_summary stage_summary(const sh_metrics *m, const char *stage)
{
    sh_metrics_summary s;
    assert_true(sh_metrics_stage_summary(m, stage, &s));
    return s;
}

static sh_metrics_summary plugin_summary(const sh_metrics *m, const char *plugin)
{
    sh_metrics_summary s;
    assert_true(sh_metrics_plugin_summary(m, plugin, &s));
    return s;
}

/* Compares line by line, so a mismatch names the line instead of dumping two whole expositions. */
static void assert_lines_equal(const char *got, const char *const *want, size_t nwant)
{
    size_t line = 0;
    for (; *got; line++) {
        size_t len = strcspn(got, "\n");
        assert_int_equal(got[len], '\n'); /* every line is terminated */
        if (line >= nwant) {
            print_error("line %zu: unexpected: %.*s\n", line + 1, (int)len, got);
            fail();
        }
        if (strlen(want[line]) != len || memcmp(got, want[line], len) != 0) {
            print_error("line %zu:\n  got:  %.*s\n  want: %s\n", line + 1, (int)len, got, want[line]);
            fail();
        }
        got += len + 1;
    }
    if (line != nwant) {
        print_error("%zu lines, want %zu; the first missing: %s\n", line, nwant, want[line]);
        fail();
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A tiny JSON validator (RFC 8259 grammar, no semantics)                                                        */

static void json_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static bool json_value(const char **p, int depth);

static bool json_string(const char **p)
{
    if (**p != '"')
        return false;
    (*p)++;
    for (;;) {
        unsigned char c = (unsigned char)**p;
        if (c == '"') {
            (*p)++;
            return true;
        }
        if (c < 0x20)
            return false; /* includes the terminating NUL */
        if (c == '\\') {
            (*p)++;
            char e = **p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)(*p)[i]))
                        return false;
                *p += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return false;
            }
        }
        (*p)++;
    }
}

static bool json_digits(const char **p)
{
    if (!isdigit((unsigned char)**p))
        return false;
    while (isdigit((unsigned char)**p))
        (*p)++;
    return true;
}

static bool json_number(const char **p)
{
    if (**p == '-')
        (*p)++;
    if (**p == '0')
        (*p)++;
    else if (!json_digits(p))
        return false;
    if (**p == '.') {
        (*p)++;
        if (!json_digits(p))
            return false;
    }
    if (**p == 'e' || **p == 'E') {
        (*p)++;
        if (**p == '+' || **p == '-')
            (*p)++;
        if (!json_digits(p))
            return false;
    }
    return true;
}

static bool json_container(const char **p, int depth, char close, bool keyed)
{
    (*p)++;
    json_ws(p);
    if (**p == close) {
        (*p)++;
        return true;
    }
    for (;;) {
        json_ws(p);
        if (keyed) {
            if (!json_string(p))
                return false;
            json_ws(p);
            if (**p != ':')
                return false;
            (*p)++;
        }
        if (!json_value(p, depth + 1))
            return false;
        json_ws(p);
        if (**p == close) {
            (*p)++;
            return true;
        }
        if (**p != ',')
            return false;
        (*p)++;
    }
}

static bool json_value(const char **p, int depth)
{
    if (depth > 64)
        return false;
    json_ws(p);
    switch (**p) {
    case '{':
        return json_container(p, depth, '}', true);
    case '[':
        return json_container(p, depth, ']', false);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(*p, "true", 4) == 0 ? (*p += 4, true) : false;
    case 'f':
        return strncmp(*p, "false", 5) == 0 ? (*p += 5, true) : false;
    case 'n':
        return strncmp(*p, "null", 4) == 0 ? (*p += 4, true) : false;
    default:
        return json_number(p);
    }
}

static bool json_valid(const char *text)
{
    if (!sh_utf8_valid(text, strlen(text)))
        return false;
    const char *p = text;
    if (!json_value(&p, 0))
        return false;
    json_ws(&p);
    return *p == '\0';
}

static void test_json_validator_itself(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\":[1,-2.5e3,true,null,\"x\\n\\u00e9\"],\"b\":{}}"));
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\" 1}"));
    assert_false(json_valid("{\"a\":01}"));
    assert_false(json_valid("{\"a\":nan}"));
    assert_false(json_valid("{\"a\":\"x\ny\"}"));
    assert_false(json_valid("{\"a\":\"\\x\"}"));
    assert_false(json_valid("{} {}"));
    assert_false(json_valid("{\"\xff\":1}"));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A checker for the exposition format's structure                                                               */

typedef struct family_seen {
    char name[128];
    char type[16];
    int helps, types, samples;
} family_seen;

static family_seen *family_find(family_seen *fams, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(fams[i].name) == len && strncmp(fams[i].name, name, len) == 0)
            return &fams[i];
    return NULL;
}

/* Every family: one HELP, then one TYPE, then its samples, all together; every sample belongs to the family
 * declared last (a summary's _sum and _count included). Returns the number of families. */
static int check_exposition(const char *text)
{
    enum { MAX_FAMILIES = 64 };
    family_seen fams[MAX_FAMILIES];
    int n = 0;
    family_seen *current = NULL;
    assert_true(*text == '\0' || text[strlen(text) - 1] == '\n');

    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            const char *name = line + 7;
            size_t nlen = strcspn(name, " \n");
            assert_true(nlen > 0 && nlen < sizeof fams[0].name);
            family_seen *f = family_find(fams, n, name, nlen);
            if (!f) {
                assert_true(help); /* HELP comes first */
                assert_true(n < MAX_FAMILIES);
                f = &fams[n++];
                memset(f, 0, sizeof *f);
                memcpy(f->name, name, nlen);
            }
            assert_int_equal(f->samples, 0); /* metadata precedes the samples */
            if (help) {
                f->helps++;
                assert_int_equal(f->helps, 1);
                assert_true(name[nlen] == ' ' && name + nlen + 1 < line + len); /* a docstring */
            } else {
                f->types++;
                assert_int_equal(f->types, 1);
                assert_int_equal(f->helps, 1);
                const char *type = name + nlen + 1;
                size_t tlen = (size_t)(line + len - type);
                assert_true(tlen < sizeof f->type);
                memcpy(f->type, type, tlen);
                f->type[tlen] = '\0';
                assert_true(strcmp(f->type, "counter") == 0 || strcmp(f->type, "gauge") == 0 ||
                            strcmp(f->type, "summary") == 0);
            }
            current = f;
        } else {
            assert_true(line[0] != '#'); /* no other comments */
            size_t nlen = strcspn(line, "{ ");
            family_seen *f = family_find(fams, n, line, nlen);
            if (!f && current && strcmp(current->type, "summary") == 0) {
                size_t base = strlen(current->name);
                if (nlen > base && strncmp(line, current->name, base) == 0 &&
                    (strncmp(line + base, "_sum", nlen - base) == 0 ||
                     strncmp(line + base, "_count", nlen - base) == 0))
                    f = current;
            }
            assert_non_null(f);
            assert_ptr_equal(f, current);
            assert_int_equal(f->types, 1);
            f->samples++;
            const char *rest = line + nlen;
            if (*rest == '{') {
                /* Skip the labels, honouring escapes inside the quoted values. */
                bool quoted = false;
                for (rest++; *rest && (quoted || *rest != '}'); rest++) {
                    assert_true(*rest != '\n');
                    if (quoted && *rest == '\\')
                        rest++;
                    else if (*rest == '"')
                        quoted = !quoted;
                }
                assert_int_equal(*rest, '}');
                rest++;
            }
            assert_int_equal(*rest, ' ');
            char *end;
            strtod(rest + 1, &end);
            assert_true(end > rest + 1 && *end == '\n');
        }
        line += len + (line[len] == '\n');
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(fams[i].helps, 1);
        assert_int_equal(fams[i].types, 1);
    }
    return n;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The fixed input of the rendering tests                                                                        */

#define QB "q\"b\\s"        /* a stage name with a quote and a backslash */
#define QB_LABEL "q\\\"b\\\\s" /* ...escaped as a Prometheus label value */
#define QB_JSON "q\\\"b\\\\s"  /* ...and as a JSON string (the same escapes) */
#define NL "x\ny"
#define NL_LABEL "x\\ny"

static sh_metrics *fixed_metrics(void)
{
    sh_metrics *m = new_metrics();
    rec(m, QB, "core/text", 2 * MS, 1500, 250, 2048, SH_OUTCOME_OK);
    rec(m, "write", "stagehost/builtin", 1000, 0, 0, 0, SH_OUTCOME_OK);
    rec(m, QB, "core/text", 4 * MS, 500, 0, 1024, SH_OUTCOME_TIMEOUT);
    rec(m, NL, "core/text", 3 * MS, 0, 0, 512, SH_OUTCOME_CRASH);
    sh_metrics_cache_event(m, SH_CACHE_MISS);
    sh_metrics_cache_event(m, SH_CACHE_LOAD);
    sh_metrics_cache_event(m, SH_CACHE_HIT);
    sh_metrics_cache_event(m, SH_CACHE_HIT);
    sh_metrics_cache_event(m, SH_CACHE_UNLOAD);
    return m;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Aggregation                                                                                                   */

static void test_counts_and_error_rate(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    static const sh_outcome outcomes[] = {SH_OUTCOME_OK,      SH_OUTCOME_FAILED, SH_OUTCOME_OK,    SH_OUTCOME_TIMEOUT,
                                          SH_OUTCOME_OK,      SH_OUTCOME_CRASH,  SH_OUTCOME_OK,    SH_OUTCOME_PROTOCOL,
                                          SH_OUTCOME_FAILED,  SH_OUTCOME_OK,     SH_OUTCOME_TIMEOUT, SH_OUTCOME_OK};
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        rec(m, "upper", "core/text", (int64_t)(i + 1) * MS, 100, 10, (int64_t)(i % 5) * 1000, outcomes[i]);
    rec(m, "lower", "core/text", MS, 7, 3, 9000, SH_OUTCOME_OK);

    sh_metrics_summary s = stage_summary(m, "upper");
    assert_int_equal(s.calls, 12);
    assert_int_equal(s.failures, 6); /* every non-OK outcome */
    assert_int_equal(s.timeouts, 2);
    assert_int_equal(s.crashes, 1);
    assert_int_equal(s.protocol_errors, 1);
    assert_true(s.error_rate == 0.5);
    assert_int_equal(s.cpu_user_us, 1200);
    assert_int_equal(s.cpu_sys_us, 120);
    assert_int_equal(s.peak_rss_kb, 4000);

    /* The plugin aggregates both of its stages. */
    sh_metrics_summary p = plugin_summary(m, "core/text");
    assert_int_equal(p.calls, 13);
    assert_int_equal(p.failures, 6);
    assert_true(p.error_rate == 6.0 / 13.0);
    assert_int_equal(p.cpu_user_us, 1207);
    assert_int_equal(p.cpu_sys_us, 123);
    assert_int_equal(p.peak_rss_kb, 9000);

    s = stage_summary(m, "lower");
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.failures, 0);
    assert_true(s.error_rate == 0.0);

    /* Unknown keys. */
    assert_false(sh_metrics_stage_summary(m, "nope", &s));
    assert_int_equal(s.calls, 0);
    assert_false(sh_metrics_plugin_summary(m, "upper", &s));
    assert_false(sh_metrics_stage_summary(m, "core/text", &s));
    sh_metrics_free(m);
}

static void test_negative_inputs_clamped(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    rec(m, "s", "p", -5, -1, -2, -3, SH_OUTCOME_OK);
    rec(m, "s", "p", 5, 1, 2, 3, SH_OUTCOME_OK);
    sh_metrics_summary s = stage_summary(m, "s");
    assert_int_equal(s.p50_ns, 0);
    assert_int_equal(s.p99_ns, 5);
    assert_int_equal(s.cpu_user_us, 1);
    assert_int_equal(s.cpu_sys_us, 2);
    assert_int_equal(s.peak_rss_kb, 3);
    sh_metrics_free(m);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    sh_invocation_metrics inv = {.plugin = "p", .stage = NULL, .wall_ns = 1};
    assert_false(sh_metrics_record(m, &inv));
    inv.stage = "s";
    inv.plugin = NULL;
    assert_false(sh_metrics_record(m, &inv));
    assert_false(sh_metrics_record(m, NULL));
    inv.plugin = "p";
    assert_false(sh_metrics_record(NULL, &inv));
    /* Nothing half-recorded. */
    sh_metrics_summary s;
    assert_false(sh_metrics_stage_summary(m, "s", &s));
    assert_false(sh_metrics_plugin_summary(m, "p", &s));
    assert_false(sh_metrics_stage_summary(NULL, "s", &s));
    assert_false(sh_metrics_stage_summary(m, NULL, &s));
    assert_true(sh_metrics_record(m, &inv));
    assert_true(sh_metrics_stage_summary(m, "s", NULL));
    sh_metrics_free(m);
    sh_metrics_free(NULL);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Percentiles and the reservoir                                                                                 */

static void test_percentiles_nearest_rank(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    /* 1..100 ms in a scrambled order (37 is coprime with 100), so sorting is exercised. */
    for (int i = 0; i < 100; i++)
        rec_wall(m, "s", "p", (int64_t)((i * 37) % 100 + 1) * MS);
    sh_metrics_summary s = stage_summary(m, "s");
    assert_int_equal(s.calls, 100);
    assert_int_equal(s.p50_ns, 50 * MS);
    assert_int_equal(s.p95_ns, 95 * MS);
    assert_int_equal(s.p99_ns, 99 * MS);

    /* One sample is every percentile; with two, p50 is the lower and p95 the upper. */
    rec_wall(m, "one", "p", 7);
    s = stage_summary(m, "one");
    assert_int_equal(s.p50_ns, 7);
    assert_int_equal(s.p95_ns, 7);
    assert_int_equal(s.p99_ns, 7);
    rec_wall(m, "two", "p", 20);
    rec_wall(m, "two", "p", 10);
    s = stage_summary(m, "two");
    assert_int_equal(s.p50_ns, 10);
    assert_int_equal(s.p95_ns, 20);
    assert_int_equal(s.p99_ns, 20);

    /* Asking does not disturb: the same summary twice. */
    sh_metrics_summary a = stage_summary(m, "s"), b = stage_summary(m, "s");
    assert_memory_equal(&a, &b, sizeof a);
    sh_metrics_free(m);
}

/* 1..10000 ms, `rounds` times over; with `noise`, other keys are recorded in between. */
static sh_metrics *big_run(int rounds, bool noise)
{
    sh_metrics *m = new_metrics();
    for (int r = 0; r < rounds; r++) {
        for (int i = 1; i <= 10000; i++) {
            rec_wall(m, "big", "p", (int64_t)i * MS);
            if (noise && i % 3 == 0)
                rec_wall(m, "noise", "other", (int64_t)i);
        }
    }
    return m;
}

static void test_reservoir_plausible_and_deterministic(void **state)
{
    (void)state;
    sh_metrics *m1 = big_run(1, false);
    sh_metrics *m2 = big_run(1, false);
    sh_metrics *m3 = big_run(1, true);

    sh_metrics_summary s = stage_summary(m1, "big");
    assert_int_equal(s.calls, 10000);
    /* A uniform sample of 4096 out of 10000: the percentiles land near the true ones. */
    assert_in_range(s.p50_ns, 4600 * MS, 5400 * MS);
    assert_in_range(s.p95_ns, 9300 * MS, 9700 * MS);
    assert_in_range(s.p99_ns, 9800 * MS, 10000 * MS);
    /* ...but not on them exactly: samples really were dropped. */
    assert_true(s.p50_ns != 5000 * MS || s.p95_ns != 9500 * MS || s.p99_ns != 9900 * MS);

    /* Same input, same output; and a key's reservoir does not depend on what other keys recorded. */
    sh_metrics_summary s2 = stage_summary(m2, "big"), s3 = stage_summary(m3, "big");
    assert_memory_equal(&s, &s2, sizeof s);
    assert_memory_equal(&s, &s3, sizeof s);
    char *t1 = render(m1, sh_metrics_render_prometheus), *t2 = render(m2, sh_metrics_render_prometheus);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    t1 = render(m1, sh_metrics_render_json);
    t2 = render(m2, sh_metrics_render_json);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);

    sh_metrics_free(m1);
    sh_metrics_free(m2);
    sh_metrics_free(m3);
}

static void test_reservoir_memory_bounded(void **state)
{
    (void)state;
    /* Under valgrind or a sanitizer mallinfo2 may report zeros; the checks then hold trivially. */
    size_t before = mallinfo2().uordblks;
    sh_metrics *m = big_run(1, false);
    size_t after_10k = mallinfo2().uordblks;
    for (int i = 0; i < 90000; i++)
        rec_wall(m, "big", "p", (int64_t)(i % 1000) * MS);
    size_t after_100k = mallinfo2().uordblks;

    assert_int_equal(after_100k, after_10k); /* past the cap, recording allocates nothing */
    /* Two keys (stage and plugin) of 4096 eight-byte samples, plus names and tables. */
    assert_true(after_10k - before < 2 * 4096 * 8 + 16384);

    sh_metrics_summary s = stage_summary(m, "big");
    assert_int_equal(s.calls, 100000);
    /* 90% of what was seen is 0..999 ms, and the reservoir reflects that. */
    assert_in_range(s.p50_ns, 0, 999 * MS);
    sh_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Order                                                                                                         */

static void test_first_recorded_order(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    rec_wall(m, "zeta", "z/plugin", 1);
    rec_wall(m, "alpha", "a/plugin", 1);
    rec_wall(m, "mid", "z/plugin", 1);
    rec_wall(m, "alpha", "m/plugin", 1);
    rec_wall(m, "zeta", "a/plugin", 1);

    char *j = render(m, sh_metrics_render_json);
    assert_string_equal(
        j,
        "{\"stages\":{"
        "\"zeta\":{\"calls\":2,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0},"
        "\"alpha\":{\"calls\":2,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0},"
        "\"mid\":{\"calls\":1,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0}},"
        "\"plugins\":{"
        "\"z/plugin\":{\"calls\":2,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0},"
        "\"a/plugin\":{\"calls\":2,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0},"
        "\"m/plugin\":{\"calls\":1,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
        "\"error_rate\":0,\"p50_ms\":0.000001,\"p95_ms\":0.000001,\"p99_ms\":0.000001,"
        "\"cpu_user_ms\":0,\"cpu_sys_ms\":0,\"peak_rss_kb\":0}},"
        "\"cache\":{\"hits\":0,\"misses\":0,\"evictions\":0,\"loads\":0,\"unloads\":0}}");
    free(j);

    /* The same order in the other renderings. */
    char *p = render(m, sh_metrics_render_prometheus);
    const char *z = strstr(p, "stagehost_stage_calls_total{stage=\"zeta\"} 2\n");
    const char *a = strstr(p, "stagehost_stage_calls_total{stage=\"alpha\"} 2\n");
    const char *mi = strstr(p, "stagehost_stage_calls_total{stage=\"mid\"} 1\n");
    assert_true(z && a && mi && z < a && a < mi);
    free(p);
    char *t = render(m, sh_metrics_render_text);
    z = strstr(t, "\nzeta ");
    a = strstr(t, "\nalpha ");
    mi = strstr(t, "\nmid ");
    assert_true(z && a && mi && z < a && a < mi);
    z = strstr(t, "\nz/plugin ");
    a = strstr(t, "\na/plugin ");
    mi = strstr(t, "\nm/plugin ");
    assert_true(z && a && mi && z < a && a < mi);
    free(t);
    sh_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Prometheus                                                                                                    */

/* One line each, without the newline. */
static const char *const expected_prometheus[] = {
    "# HELP stagehost_stage_calls_total Invocations, per stage.",
    "# TYPE stagehost_stage_calls_total counter",
    "stagehost_stage_calls_total{stage=\"" QB_LABEL "\"} 2",
    "stagehost_stage_calls_total{stage=\"write\"} 1",
    "stagehost_stage_calls_total{stage=\"" NL_LABEL "\"} 1",
    "# HELP stagehost_stage_failures_total Invocations that did not succeed, whatever the reason, per stage.",
    "# TYPE stagehost_stage_failures_total counter",
    "stagehost_stage_failures_total{stage=\"" QB_LABEL "\"} 1",
    "stagehost_stage_failures_total{stage=\"write\"} 0",
    "stagehost_stage_failures_total{stage=\"" NL_LABEL "\"} 1",
    "# HELP stagehost_stage_timeouts_total Invocations killed at their deadline, per stage.",
    "# TYPE stagehost_stage_timeouts_total counter",
    "stagehost_stage_timeouts_total{stage=\"" QB_LABEL "\"} 1",
    "stagehost_stage_timeouts_total{stage=\"write\"} 0",
    "stagehost_stage_timeouts_total{stage=\"" NL_LABEL "\"} 0",
    "# HELP stagehost_stage_crashes_total Invocations during which the worker died, per stage.",
    "# TYPE stagehost_stage_crashes_total counter",
    "stagehost_stage_crashes_total{stage=\"" QB_LABEL "\"} 0",
    "stagehost_stage_crashes_total{stage=\"write\"} 0",
    "stagehost_stage_crashes_total{stage=\"" NL_LABEL "\"} 1",
    "# HELP stagehost_stage_protocol_errors_total Invocations during which the worker broke the wire protocol, per "
    "stage.",
    "# TYPE stagehost_stage_protocol_errors_total counter",
    "stagehost_stage_protocol_errors_total{stage=\"" QB_LABEL "\"} 0",
    "stagehost_stage_protocol_errors_total{stage=\"write\"} 0",
    "stagehost_stage_protocol_errors_total{stage=\"" NL_LABEL "\"} 0",
    "# HELP stagehost_stage_latency_seconds Wall time of invocations, per stage.",
    "# TYPE stagehost_stage_latency_seconds summary",
    "stagehost_stage_latency_seconds{stage=\"" QB_LABEL "\",quantile=\"0.5\"} 0.002",
    "stagehost_stage_latency_seconds{stage=\"" QB_LABEL "\",quantile=\"0.95\"} 0.004",
    "stagehost_stage_latency_seconds{stage=\"" QB_LABEL "\",quantile=\"0.99\"} 0.004",
    "stagehost_stage_latency_seconds_sum{stage=\"" QB_LABEL "\"} 0.006",
    "stagehost_stage_latency_seconds_count{stage=\"" QB_LABEL "\"} 2",
    "stagehost_stage_latency_seconds{stage=\"write\",quantile=\"0.5\"} 0.000001",
    "stagehost_stage_latency_seconds{stage=\"write\",quantile=\"0.95\"} 0.000001",
    "stagehost_stage_latency_seconds{stage=\"write\",quantile=\"0.99\"} 0.000001",
    "stagehost_stage_latency_seconds_sum{stage=\"write\"} 0.000001",
    "stagehost_stage_latency_seconds_count{stage=\"write\"} 1",
    "stagehost_stage_latency_seconds{stage=\"" NL_LABEL "\",quantile=\"0.5\"} 0.003",
    "stagehost_stage_latency_seconds{stage=\"" NL_LABEL "\",quantile=\"0.95\"} 0.003",
    "stagehost_stage_latency_seconds{stage=\"" NL_LABEL "\",quantile=\"0.99\"} 0.003",
    "stagehost_stage_latency_seconds_sum{stage=\"" NL_LABEL "\"} 0.003",
    "stagehost_stage_latency_seconds_count{stage=\"" NL_LABEL "\"} 1",
    "# HELP stagehost_stage_cpu_seconds_total CPU time spent in invocations, per stage.",
    "# TYPE stagehost_stage_cpu_seconds_total counter",
    "stagehost_stage_cpu_seconds_total{stage=\"" QB_LABEL "\",mode=\"user\"} 0.002",
    "stagehost_stage_cpu_seconds_total{stage=\"" QB_LABEL "\",mode=\"system\"} 0.00025",
    "stagehost_stage_cpu_seconds_total{stage=\"write\",mode=\"user\"} 0",
    "stagehost_stage_cpu_seconds_total{stage=\"write\",mode=\"system\"} 0",
    "stagehost_stage_cpu_seconds_total{stage=\"" NL_LABEL "\",mode=\"user\"} 0",
    "stagehost_stage_cpu_seconds_total{stage=\"" NL_LABEL "\",mode=\"system\"} 0",
    "# HELP stagehost_stage_peak_rss_bytes Highest peak resident set size reported for invocations, per stage.",
    "# TYPE stagehost_stage_peak_rss_bytes gauge",
    "stagehost_stage_peak_rss_bytes{stage=\"" QB_LABEL "\"} 2097152",
    "stagehost_stage_peak_rss_bytes{stage=\"" NL_LABEL "\"} 524288",
    "# HELP stagehost_plugin_calls_total Invocations, per plugin.",
    "# TYPE stagehost_plugin_calls_total counter",
    "stagehost_plugin_calls_total{plugin=\"core/text\"} 3",
    "stagehost_plugin_calls_total{plugin=\"stagehost/builtin\"} 1",
    "# HELP stagehost_plugin_failures_total Invocations that did not succeed, whatever the reason, per plugin.",
    "# TYPE stagehost_plugin_failures_total counter",
    "stagehost_plugin_failures_total{plugin=\"core/text\"} 2",
    "stagehost_plugin_failures_total{plugin=\"stagehost/builtin\"} 0",
    "# HELP stagehost_plugin_timeouts_total Invocations killed at their deadline, per plugin.",
    "# TYPE stagehost_plugin_timeouts_total counter",
    "stagehost_plugin_timeouts_total{plugin=\"core/text\"} 1",
    "stagehost_plugin_timeouts_total{plugin=\"stagehost/builtin\"} 0",
    "# HELP stagehost_plugin_crashes_total Invocations during which the worker died, per plugin.",
    "# TYPE stagehost_plugin_crashes_total counter",
    "stagehost_plugin_crashes_total{plugin=\"core/text\"} 1",
    "stagehost_plugin_crashes_total{plugin=\"stagehost/builtin\"} 0",
    "# HELP stagehost_plugin_protocol_errors_total Invocations during which the worker broke the wire protocol, per "
    "plugin.",
    "# TYPE stagehost_plugin_protocol_errors_total counter",
    "stagehost_plugin_protocol_errors_total{plugin=\"core/text\"} 0",
    "stagehost_plugin_protocol_errors_total{plugin=\"stagehost/builtin\"} 0",
    "# HELP stagehost_plugin_latency_seconds Wall time of invocations, per plugin.",
    "# TYPE stagehost_plugin_latency_seconds summary",
    "stagehost_plugin_latency_seconds{plugin=\"core/text\",quantile=\"0.5\"} 0.003",
    "stagehost_plugin_latency_seconds{plugin=\"core/text\",quantile=\"0.95\"} 0.004",
    "stagehost_plugin_latency_seconds{plugin=\"core/text\",quantile=\"0.99\"} 0.004",
    "stagehost_plugin_latency_seconds_sum{plugin=\"core/text\"} 0.009",
    "stagehost_plugin_latency_seconds_count{plugin=\"core/text\"} 3",
    "stagehost_plugin_latency_seconds{plugin=\"stagehost/builtin\",quantile=\"0.5\"} 0.000001",
    "stagehost_plugin_latency_seconds{plugin=\"stagehost/builtin\",quantile=\"0.95\"} 0.000001",
    "stagehost_plugin_latency_seconds{plugin=\"stagehost/builtin\",quantile=\"0.99\"} 0.000001",
    "stagehost_plugin_latency_seconds_sum{plugin=\"stagehost/builtin\"} 0.000001",
    "stagehost_plugin_latency_seconds_count{plugin=\"stagehost/builtin\"} 1",
    "# HELP stagehost_plugin_cpu_seconds_total CPU time spent in invocations, per plugin.",
    "# TYPE stagehost_plugin_cpu_seconds_total counter",
    "stagehost_plugin_cpu_seconds_total{plugin=\"core/text\",mode=\"user\"} 0.002",
    "stagehost_plugin_cpu_seconds_total{plugin=\"core/text\",mode=\"system\"} 0.00025",
    "stagehost_plugin_cpu_seconds_total{plugin=\"stagehost/builtin\",mode=\"user\"} 0",
    "stagehost_plugin_cpu_seconds_total{plugin=\"stagehost/builtin\",mode=\"system\"} 0",
    "# HELP stagehost_plugin_peak_rss_bytes Highest peak resident set size reported for invocations, per plugin.",
    "# TYPE stagehost_plugin_peak_rss_bytes gauge",
    "stagehost_plugin_peak_rss_bytes{plugin=\"core/text\"} 2097152",
    "# HELP stagehost_cache_hits_total Invocations that reused a live worker.",
    "# TYPE stagehost_cache_hits_total counter",
    "stagehost_cache_hits_total 2",
    "# HELP stagehost_cache_misses_total Invocations that found no live worker and started one.",
    "# TYPE stagehost_cache_misses_total counter",
    "stagehost_cache_misses_total 1",
    "# HELP stagehost_cache_evictions_total Workers stopped by TTL or LRU.",
    "# TYPE stagehost_cache_evictions_total counter",
    "stagehost_cache_evictions_total 0",
    "# HELP stagehost_plugin_loads_total Plugins loaded, in a worker or in-process.",
    "# TYPE stagehost_plugin_loads_total counter",
    "stagehost_plugin_loads_total 1",
    "# HELP stagehost_plugin_unloads_total Plugins unloaded.",
    "# TYPE stagehost_plugin_unloads_total counter",
    "stagehost_plugin_unloads_total 1",
};

static void test_prometheus_exact(void **state)
{
    (void)state;
    sh_metrics *m = fixed_metrics();
    char *p = render(m, sh_metrics_render_prometheus);
    assert_lines_equal(p, expected_prometheus, sizeof expected_prometheus / sizeof expected_prometheus[0]);
    free(p);
    sh_metrics_free(m);
}

static void test_prometheus_help_and_type_once(void **state)
{
    (void)state;
    /* 8 families per stage and per plugin, 5 cache counters: with samples, and (as metadata only) without. */
    sh_metrics *m = fixed_metrics();
    char *p = render(m, sh_metrics_render_prometheus);
    assert_int_equal(check_exposition(p), 21);
    free(p);
    sh_metrics_free(m);

    m = new_metrics();
    p = render(m, sh_metrics_render_prometheus);
    assert_int_equal(check_exposition(p), 21);
    assert_non_null(strstr(p, "\nstagehost_cache_hits_total 0\n"));
    assert_null(strstr(p, "{stage="));
    free(p);

    /* Many keys, a summary family among them, and odd names. */
    rec_wall(m, "a\\\"\n", "p1", 1);
    rec_wall(m, "b\xff", "p2", 2);
    rec_wall(m, "c", "p1", 3);
    rec(m, "a\\\"\n", "p3", 4, 1, 1, 1, SH_OUTCOME_PROTOCOL);
    p = render(m, sh_metrics_render_prometheus);
    assert_int_equal(check_exposition(p), 21);
    assert_true(sh_utf8_valid(p, strlen(p)));
    assert_non_null(strstr(p, "stagehost_stage_calls_total{stage=\"a\\\\\\\"\\n\"} 2\n"));
    assert_non_null(strstr(p, "stagehost_stage_calls_total{stage=\"b\\\\xff\"} 1\n"));
    assert_non_null(strstr(p, "stagehost_stage_protocol_errors_total{stage=\"a\\\\\\\"\\n\"} 1\n"));
    free(p);
    sh_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* JSON                                                                                                          */

static void test_json_exact_and_valid(void **state)
{
    (void)state;
    sh_metrics *m = fixed_metrics();
    char *j = render(m, sh_metrics_render_json);
    assert_true(json_valid(j));
    assert_string_equal(
        j, "{\"stages\":{"
           "\"" QB_JSON "\":{\"calls\":2,\"failures\":1,\"timeouts\":1,\"crashes\":0,\"protocol_errors\":0,"
           "\"error_rate\":0.5,\"p50_ms\":2,\"p95_ms\":4,\"p99_ms\":4,\"cpu_user_ms\":2,\"cpu_sys_ms\":0.25,"
           "\"peak_rss_kb\":2048},"
           "\"write\":{\"calls\":1,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
           "\"error_rate\":0,\"p50_ms\":0.001,\"p95_ms\":0.001,\"p99_ms\":0.001,\"cpu_user_ms\":0,\"cpu_sys_ms\":0,"
           "\"peak_rss_kb\":0},"
           "\"x\\ny\":{\"calls\":1,\"failures\":1,\"timeouts\":0,\"crashes\":1,\"protocol_errors\":0,"
           "\"error_rate\":1,\"p50_ms\":3,\"p95_ms\":3,\"p99_ms\":3,\"cpu_user_ms\":0,\"cpu_sys_ms\":0,"
           "\"peak_rss_kb\":512}},"
           "\"plugins\":{"
           "\"core/text\":{\"calls\":3,\"failures\":2,\"timeouts\":1,\"crashes\":1,\"protocol_errors\":0,"
           "\"error_rate\":0.666666667,\"p50_ms\":3,\"p95_ms\":4,\"p99_ms\":4,\"cpu_user_ms\":2,\"cpu_sys_ms\":0.25,"
           "\"peak_rss_kb\":2048},"
           "\"stagehost/builtin\":{\"calls\":1,\"failures\":0,\"timeouts\":0,\"crashes\":0,\"protocol_errors\":0,"
           "\"error_rate\":0,\"p50_ms\":0.001,\"p95_ms\":0.001,\"p99_ms\":0.001,\"cpu_user_ms\":0,\"cpu_sys_ms\":0,"
           "\"peak_rss_kb\":0}},"
           "\"cache\":{\"hits\":2,\"misses\":1,\"evictions\":0,\"loads\":1,\"unloads\":1}}");
    free(j);
    sh_metrics_free(m);
}

static void test_json_valid_for_odd_input(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    char *j = render(m, sh_metrics_render_json);
    assert_true(json_valid(j));
    assert_string_equal(j, "{\"stages\":{},\"plugins\":{},"
                           "\"cache\":{\"hits\":0,\"misses\":0,\"evictions\":0,\"loads\":0,\"unloads\":0}}");
    free(j);

    /* Control characters, a lone continuation byte, a truncated sequence, huge and odd numbers. */
    rec(m, "\x01tab\there", "bad\x80utf8", INT64_MAX, INT64_MAX, 1, INT64_MAX, SH_OUTCOME_FAILED);
    rec(m, "\x01tab\there", "bad\x80utf8", INT64_MAX, INT64_MAX, 1, 1, SH_OUTCOME_OK);
    rec(m, "\xe2\x82", "caf\xc3\xa9", 123456789, 1, 999, 0, SH_OUTCOME_OK);
    rec(m, "third", "p", 1, 2, 3, 4, SH_OUTCOME_OK);
    rec(m, "third", "p", 1, 2, 3, 4, SH_OUTCOME_FAILED);
    rec(m, "third", "p", 1, 2, 3, 4, SH_OUTCOME_FAILED);
    sh_metrics_cache_event(m, SH_CACHE_EVICTION);
    j = render(m, sh_metrics_render_json);
    assert_true(json_valid(j));
    assert_non_null(strstr(j, "\"\\u0001tab\\there\":{\"calls\":2,\"failures\":1,"));
    assert_non_null(strstr(j, "\"bad\\\\x80utf8\":{"));
    assert_non_null(strstr(j, "\"\\\\xe2\\\\x82\":{"));
    assert_non_null(strstr(j, "\"caf\xc3\xa9\":{"));
    assert_non_null(strstr(j, "\"error_rate\":0.666666667,"));
    assert_non_null(strstr(j, "\"evictions\":1,"));
    free(j);

    /* The saturated sums still render as plain numbers. */
    sh_metrics_summary s = stage_summary(m, "\x01tab\there");
    assert_int_equal(s.cpu_user_us, INT64_MAX);
    assert_int_equal(s.peak_rss_kb, INT64_MAX);
    char *p = render(m, sh_metrics_render_prometheus);
    assert_int_equal(check_exposition(p), 21);
    assert_non_null(strstr(p, "_sum{stage=\"\x01tab\there\"} 9223372036.854775807\n"));
    assert_non_null(strstr(p, "stagehost_stage_peak_rss_bytes{stage=\"\x01tab\there\"} 9223372036854775807\n"));
    free(p);
    sh_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Text                                                                                                          */

/* The line of `text` that starts with `prefix` followed by a space. */
static const char *line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] == '\n'))
        if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
            return l;
    return NULL;
}

static void test_text_summary(void **state)
{
    (void)state;
    sh_metrics *m = fixed_metrics();
    char *t = render(m, sh_metrics_render_text);

    /* Row by row: name, calls, failures, error rate, p50, p95, p99 (ms), cpu user, cpu sys (ms), peak rss MiB. */
    const char *row = line_starting(t, QB);
    assert_non_null(row);
    unsigned long calls, failures;
    double rate, p50, p95, p99, user, sys;
    char rss[16];
    assert_int_equal(sscanf(row + strlen(QB), "%lu %lu %lf%% %lf %lf %lf %lf %lf %15s", &calls, &failures, &rate,
                            &p50, &p95, &p99, &user, &sys, rss),
                     9);
    assert_int_equal(calls, 2);
    assert_int_equal(failures, 1);
    assert_true(rate == 50.0 && p50 == 2.0 && p95 == 4.0 && p99 == 4.0 && user == 2.0 && sys == 0.25);
    assert_string_equal(rss, "2.0");
    assert_non_null(strstr(row, " 50.0% "));
    assert_non_null(strstr(row, " 2.000 "));

    row = line_starting(t, "write");
    assert_non_null(row);
    assert_int_equal(sscanf(row + 5, "%lu %lu %lf%% %lf %lf %lf %lf %lf %15s", &calls, &failures, &rate, &p50, &p95,
                            &p99, &user, &sys, rss),
                     9);
    assert_int_equal(calls, 1);
    assert_int_equal(failures, 0);
    assert_string_equal(rss, "-"); /* unknown, not zero */

    assert_non_null(line_starting(t, "x?y")); /* the newline would have broken the table */
    row = line_starting(t, "core/text");
    assert_non_null(row);
    assert_int_equal(sscanf(row + 9, "%lu %lu", &calls, &failures), 2);
    assert_int_equal(calls, 3);
    assert_int_equal(failures, 2);
    assert_non_null(line_starting(t, "stagehost/builtin"));
    assert_non_null(line_starting(t, "stage"));
    assert_non_null(line_starting(t, "plugin"));
    assert_non_null(strstr(t, "\ncache: 2 hits, 1 misses, 0 evictions, 1 loads, 1 unloads\n"));

    /* Stages come before plugins, and every table line has the same width: the columns line up. */
    assert_true(line_starting(t, "write") < line_starting(t, "core/text"));
    size_t width = strcspn(t, "\n");
    int rows = 0;
    for (const char *l = t; *l && strncmp(l, "cache:", 6) != 0; l += strcspn(l, "\n") + 1) {
        size_t len = strcspn(l, "\n");
        if (len == 0)
            continue;
        assert_int_equal(len, width);
        assert_true(l[len - 1] != ' ');
        rows++;
    }
    assert_int_equal(rows, 2 + 3 + 2); /* two headers, three stages, two plugins */
    free(t);
    sh_metrics_free(m);
}

static void test_text_empty(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    sh_metrics_cache_event(m, SH_CACHE_LOAD);
    char *t = render(m, sh_metrics_render_text);
    assert_non_null(strstr(t, "no stage ran"));
    assert_int_equal(strcspn(t, "\n") + 1, strlen(t)); /* one line */
    free(t);
    sh_metrics_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Cache counters                                                                                                */

static void test_cache_counters(void **state)
{
    (void)state;
    sh_metrics *m = new_metrics();
    for (int i = 0; i < 5; i++)
        sh_metrics_cache_event(m, SH_CACHE_HIT);
    for (int i = 0; i < 3; i++)
        sh_metrics_cache_event(m, SH_CACHE_MISS);
    sh_metrics_cache_event(m, SH_CACHE_EVICTION);
    sh_metrics_cache_event(m, SH_CACHE_LOAD);
    sh_metrics_cache_event(m, SH_CACHE_LOAD);
    sh_metrics_cache_event(m, SH_CACHE_UNLOAD);
    sh_metrics_cache_event(m, (sh_cache_event)99); /* ignored */
    sh_metrics_cache_event(NULL, SH_CACHE_HIT);

    assert_int_equal(sh_metrics_cache_count(m, SH_CACHE_HIT), 5);
    assert_int_equal(sh_metrics_cache_count(m, SH_CACHE_MISS), 3);
    assert_int_equal(sh_metrics_cache_count(m, SH_CACHE_EVICTION), 1);
    assert_int_equal(sh_metrics_cache_count(m, SH_CACHE_LOAD), 2);
    assert_int_equal(sh_metrics_cache_count(m, SH_CACHE_UNLOAD), 1);
    assert_int_equal(sh_metrics_cache_count(m, (sh_cache_event)99), 0);
    assert_int_equal(sh_metrics_cache_count(NULL, SH_CACHE_HIT), 0);

    char *j = render(m, sh_metrics_render_json);
    assert_non_null(strstr(j, "\"cache\":{\"hits\":5,\"misses\":3,\"evictions\":1,\"loads\":2,\"unloads\":1}}"));
    free(j);
    char *p = render(m, sh_metrics_render_prometheus);
    assert_non_null(strstr(p, "\nstagehost_cache_hits_total 5\n"));
    assert_non_null(strstr(p, "\nstagehost_cache_misses_total 3\n"));
    assert_non_null(strstr(p, "\nstagehost_cache_evictions_total 1\n"));
    assert_non_null(strstr(p, "\nstagehost_plugin_loads_total 2\n"));
    assert_non_null(strstr(p, "\nstagehost_plugin_unloads_total 1\n"));
    free(p);
    rec_wall(m, "s", "p", 1);
    char *t = render(m, sh_metrics_render_text);
    assert_non_null(strstr(t, "\ncache: 5 hits, 3 misses, 1 evictions, 2 loads, 1 unloads\n"));
    free(t);
    sh_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_validator_itself),
        cmocka_unit_test(test_counts_and_error_rate),
        cmocka_unit_test(test_negative_inputs_clamped),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_reservoir_plausible_and_deterministic),
        cmocka_unit_test(test_reservoir_memory_bounded),
        cmocka_unit_test(test_first_recorded_order),
        cmocka_unit_test(test_prometheus_exact),
        cmocka_unit_test(test_prometheus_help_and_type_once),
        cmocka_unit_test(test_json_exact_and_valid),
        cmocka_unit_test(test_json_valid_for_odd_input),
        cmocka_unit_test(test_text_summary),
        cmocka_unit_test(test_text_empty),
        cmocka_unit_test(test_cache_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
