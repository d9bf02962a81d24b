/* The benchmarks' one table: every program prints its goal rows as machine-readable lines that test/bench/run
 * collects into a single table, besides its own detailed report.
 *
 *   @row <TAB> measure <TAB> stagehost figure <TAB> floor or peer figure <TAB> ratio <TAB> goal <TAB> verdict
 *
 * Figures are text with their unit ("8.3 us", "412 MB/s"); a floor that could not be measured (a peer that is
 * not installed) says why instead. The verdict is PASS, FAIL, info (no goal) or n/a (nothing to compare). */
#ifndef SH_BENCH_REPORT_H
#define SH_BENCH_REPORT_H

#include <stdio.h>

typedef enum sh_bench_verdict { SH_BENCH_FAIL, SH_BENCH_PASS, SH_BENCH_INFO, SH_BENCH_NA } sh_bench_verdict;

static inline const char *sh_bench_verdict_name(sh_bench_verdict v)
{
    static const char *const names[] = {"FAIL", "PASS", "info", "n/a"};
    return names[v];
}

/* One row. `ratio` <= 0 prints "-". */
static inline void sh_bench_row(const char *measure, const char *value, const char *floor, double ratio,
                                const char *goal, sh_bench_verdict verdict)
{
    char r[32] = "-";
    if (ratio > 0)
        snprintf(r, sizeof r, "%.2fx", ratio);
    printf("@row\t%s\t%s\t%s\t%s\t%s\t%s\n", measure, value, floor, r, goal, sh_bench_verdict_name(verdict));
    fflush(stdout);
}

/* A row whose goal is an upper bound on value/floor (both in `unit`, printed with `fmt`-like precision 1). */
static inline sh_bench_verdict sh_bench_row_max(const char *measure, double value, double floor, const char *unit,
                                                double max_ratio)
{
    char v[48], f[48], g[32] = "-";
    snprintf(v, sizeof v, "%.1f %s", value, unit);
    snprintf(f, sizeof f, "%.1f %s", floor, unit);
    double ratio = floor > 0 ? value / floor : 0;
    sh_bench_verdict verdict = SH_BENCH_INFO;
    if (max_ratio > 0) {
        snprintf(g, sizeof g, "<= %.1fx", max_ratio);
        verdict = ratio > 0 && ratio <= max_ratio ? SH_BENCH_PASS : SH_BENCH_FAIL;
    }
    sh_bench_row(measure, v, f, ratio, g, verdict);
    return verdict;
}

#endif
