#include "cli/cli.h"
#include "value/json.h"
#include "util/log.h"
#include "engine/pipeline.h"
#include "engine/report.h"
#include "engine/store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: stagehost runs list [PIPELINE] [options]\n"
    "       stagehost runs show RUN_ID [PIPELINE] [options]\n"
    "       stagehost runs prune [PIPELINE] [--older-than DURATION] [--keep N] [options]\n"
    "\n"
    "list   the runs recorded in the run store, newest first: id, pipeline, status, start, duration, stages done\n"
    "show   one run (its id, or a unique prefix of at least 4 digits): every stage's status, attempts, items,\n"
    "       time, stored output and source; every attempt with its error and resource use; the log lines the\n"
    "       plugins wrote\n"
    "prune  delete old runs with their stages, attempts, log lines and stored outputs: those that ended longer\n"
    "       ago than DURATION, and those beyond the newest N (with both, only runs both select); with PIPELINE,\n"
    "       only that pipeline's runs. A running run is never deleted. --older-than also drops the output cache's\n"
    "       entries unused for that long. Prints what it removed.\n"
    "\n"
    "The run store is --store PATH, else .stagehost/runs.db beside PIPELINE, else ./.stagehost/runs.db.\n"
    "A run whose host died shows as 'interrupted': resume it with stagehost run PIPELINE --resume RUN_ID.\n"
    "\n"
    "Options:\n"
    "  --store PATH            the run store to read\n"
    "  --older-than DURATION   prune: runs that ended longer ago than this: 30s, 30m, 12h, 7d or 2w\n"
    "  --keep N                prune: never the newest N runs (a running run is never pruned)\n"
    "  --json                  print JSON instead of a table\n"
    "  -h, --help              show this help\n";

static void print_time(int64_t ns, char *out, size_t len)
{
    if (ns <= 0) {
        snprintf(out, len, "-");
        return;
    }
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *str(const sh_value *m, const char *key)
{
    const char *s = sh_value_get_string(sh_value_map_get(m, key), NULL);
    return s ? s : "-";
}

static int64_t num(const sh_value *m, const char *key) { return sh_value_get_int(sh_value_map_get(m, key)); }

static void duration(const sh_value *m, const char *from, const char *to, char *out, size_t len)
{
    int64_t a = num(m, from), b = num(m, to);
    if (a && b)
        sh_format_duration(b - a, out, len);
    else
        snprintf(out, len, "-");
}

static void print_json(const sh_value *v)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_json_write(&b, v);
    sh_buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    sh_buf_free(&b);
}

static void print_list(const sh_value *runs)
{
    if (sh_value_count(runs) == 0) {
        printf("no runs recorded yet\n");
        return;
    }
    printf("%-12s  %-20s %-12s %-19s  %10s  %s\n", "run", "pipeline", "status", "started", "time", "stages done");
    for (size_t i = 0; i < sh_value_count(runs); i++) {
        const sh_value *r = sh_value_array_get(runs, i);
        char started[32], took[32];
        print_time(num(r, "started_ns"), started, sizeof started);
        duration(r, "started_ns", "finished_ns", took, sizeof took);
        printf("%-12.12s  %-20s %-12s %-19s  %10s  %lld/%lld\n", str(r, "id"), str(r, "pipeline"), str(r, "status"),
               started, took, (long long)num(r, "stages_done"), (long long)num(r, "stages"));
    }
}

static void format_bytes(int64_t n, char *out, size_t len)
{
    if (n < 1024)
        snprintf(out, len, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, len, "%.1f KiB", (double)n / 1024);
    else if (n < 1024LL * 1024 * 1024)
        snprintf(out, len, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(out, len, "%.2f GiB", (double)n / (1024 * 1024 * 1024));
}

static void print_show(const sh_value *r)
{
    char started[32], took[32];
    print_time(num(r, "started_ns"), started, sizeof started);
    duration(r, "started_ns", "finished_ns", took, sizeof took);
    const char *version = sh_value_get_string(sh_value_map_get(r, "version"), NULL);
    printf("run %s\n  pipeline  %s%s%s (%s)\n  status    %s\n  started   %s\n  time      %s\n", str(r, "id"),
           str(r, "pipeline"), version ? " " : "", version ? version : "", str(r, "path"), str(r, "status"), started,
           took);
    if (num(r, "resumes"))
        printf("  resumed   %lld time(s)\n", (long long)num(r, "resumes"));
    if (sh_value_get_string(sh_value_map_get(r, "error"), NULL))
        printf("  error     %s\n", str(r, "error"));

    const sh_value *stages = sh_value_map_get(r, "stage_list");
    printf("\n  %-20s %-10s %8s %9s %9s %10s %10s  %s\n", "stage", "status", "attempts", "items in", "items out",
           "time", "stored", "source");
    for (size_t i = 0; i < sh_value_count(stages); i++) {
        const sh_value *s = sh_value_array_get(stages, i);
        char t[32], in[24] = "-", out[24] = "-", stored[32] = "-";
        duration(s, "started_ns", "finished_ns", t, sizeof t);
        if (sh_value_type(sh_value_map_get(s, "items_in")) == SH_TYPE_INT)
            snprintf(in, sizeof in, "%lld", (long long)num(s, "items_in"));
        if (sh_value_type(sh_value_map_get(s, "items_out")) == SH_TYPE_INT)
            snprintf(out, sizeof out, "%lld", (long long)num(s, "items_out"));
        if (sh_value_type(sh_value_map_get(s, "stored_bytes")) == SH_TYPE_INT)
            format_bytes(num(s, "stored_bytes"), stored, sizeof stored);
        printf("  %-20s %-10s %8lld %9s %9s %10s %10s  %s\n", str(s, "name"), str(s, "status"),
               (long long)num(s, "attempts"), in, out, t, stored, str(s, "source"));
        if (sh_value_get_string(sh_value_map_get(s, "error"), NULL))
            printf("      %s\n", str(s, "error"));
    }
    const sh_value *attempts = sh_value_map_get(r, "attempts");
    if (sh_value_count(attempts)) {
        printf("\n  attempts\n");
        for (size_t i = 0; i < sh_value_count(attempts); i++) {
            const sh_value *a = sh_value_array_get(attempts, i);
            char t[32];
            duration(a, "started_ns", "finished_ns", t, sizeof t);
            printf("  %-20s #%-3lld %-10s %10s  cpu %lld+%lld us  rss %lld KiB%s%s\n", str(a, "stage"),
                   (long long)num(a, "attempt"), str(a, "status"), t, (long long)num(a, "cpu_user_us"),
                   (long long)num(a, "cpu_sys_us"), (long long)num(a, "peak_rss_kb"),
                   sh_value_get_string(sh_value_map_get(a, "error"), NULL) ? "\n      " : "",
                   sh_value_get_string(sh_value_map_get(a, "error"), NULL) ? str(a, "error") : "");
        }
    }
    const sh_value *logs = sh_value_map_get(r, "logs");
    if (sh_value_count(logs)) {
        printf("\n  log\n");
        for (size_t i = 0; i < sh_value_count(logs); i++) {
            const sh_value *l = sh_value_array_get(logs, i);
            int64_t lv = num(l, "level");
            printf("  %-20s %-7s %s\n", str(l, "stage"), sh_log_level_name((sh_log_level)lv), str(l, "message"));
        }
    }
}

/* "7d", "12h", "30m", "45s", "2w": a whole number and a unit. */
static bool parse_duration(const char *text, int64_t *ns)
{
    static const struct {
        char unit;
        int64_t seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || end == text || *text == '-' || *text == '+' || n < 0 || !end[0] || end[1])
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (*end == units[i].unit) {
            if (n > INT64_MAX / 1000000000LL / units[i].seconds)
                return false;
            *ns = n * units[i].seconds * 1000000000LL;
            return true;
        }
    return false;
}

/* Prints what a prune removed (and kept), as text or JSON. */
static void print_prune(const sh_prune_result *r, const char *store, const char *pipeline, const char *older_than,
                        bool json)
{
    if (json) {
        sh_value *m = sh_value_map();
        sh_value_map_set(m, "store", sh_value_cstring(store));
        const struct {
            const char *key;
            int64_t n;
        } f[] = {{"runs", (int64_t)r->runs},
                 {"stages", (int64_t)r->stages},
                 {"attempts", (int64_t)r->attempts},
                 {"logs", (int64_t)r->logs},
                 {"output_rows", (int64_t)r->output_rows},
                 {"output_bytes", r->output_bytes},
                 {"cache_entries", (int64_t)r->cache_entries},
                 {"cache_bytes", r->cache_bytes},
                 {"kept", (int64_t)r->kept},
                 {"running", (int64_t)r->running}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            sh_value_map_set(m, f[i].key, sh_value_int(f[i].n));
        print_json(m);
        sh_value_free(m);
        return;
    }
    char of[300] = "";
    if (pipeline)
        snprintf(of, sizeof of, " of pipeline '%s'", pipeline);
    char bytes[32], cache_bytes[32];
    format_bytes(r->output_bytes, bytes, sizeof bytes);
    format_bytes(r->cache_bytes, cache_bytes, sizeof cache_bytes);
    if (r->runs)
        printf("pruned %zu run%s%s from %s: %zu stage records, %zu attempts, %zu log lines, %zu output rows (%s)\n",
               r->runs, r->runs == 1 ? "" : "s", of, store, r->stages, r->attempts, r->logs, r->output_rows, bytes);
    else
        printf("no run%s to prune in %s\n", of, store);
    if (older_than)
        printf("pruned %zu cache entr%s unused for %s (%s)\n", r->cache_entries, r->cache_entries == 1 ? "y" : "ies",
               older_than, cache_bytes);
    printf("kept %zu run%s%s", r->kept, r->kept == 1 ? "" : "s", of);
    if (r->running)
        printf(" (%zu still running, never pruned)", r->running);
    printf("\n");
}

/* `runs prune`: returns the exit code. */
static int prune(const sh_cli *cli, sh_runstore *s, const char *pipeline_path)
{
    sh_prune_options o = {.older_than_ns = -1, .keep = -1};
    if (!cli->older_than && !cli->keep)
        return sh_cli_error(2, "runs prune: say which runs to delete: --older-than DURATION (such as 7d), --keep N "
                               "(the newest N stay), or both\n%s", usage);
    if (cli->older_than && !parse_duration(cli->older_than, &o.older_than_ns))
        return sh_cli_error(2, "runs prune: --older-than takes a duration, a whole number and a unit (s, m, h, d or "
                               "w) such as 7d, 12h or 30m; got '%s'", cli->older_than);
    if (cli->keep) {
        char *end;
        errno = 0;
        long long n = strtoll(cli->keep, &end, 10);
        if (errno || end == cli->keep || *end || n < 0 || *cli->keep == '+')
            return sh_cli_error(2, "runs prune: --keep takes a number of runs (0 or more), got '%s'", cli->keep);
        o.keep = n;
    }
    sh_pipeline *p = NULL;
    sh_error err;
    if (pipeline_path && sh_pipeline_load(pipeline_path, &p, &err) != SH_S_OK)
        return sh_cli_error(2, "runs prune: %s", err.message);
    o.pipeline = p ? p->name : NULL;
    sh_prune_result r;
    int rc = 0;
    if (sh_runstore_prune(s, &o, &r, &err) != SH_S_OK)
        rc = sh_cli_error(2, "%s", err.message);
    else
        print_prune(&r, sh_runstore_path(s), o.pipeline, cli->older_than, cli->json);
    sh_pipeline_free(p);
    return rc;
}

int sh_cmd_runs(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "runs", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    bool list = cli.arg_count >= 1 && strcmp(cli.args[0], "list") == 0;
    bool show = cli.arg_count >= 1 && strcmp(cli.args[0], "show") == 0;
    bool pruning = cli.arg_count >= 1 && strcmp(cli.args[0], "prune") == 0;
    if (!(list && cli.arg_count <= 2) && !(show && cli.arg_count >= 2 && cli.arg_count <= 3) &&
        !(pruning && cli.arg_count <= 2)) {
        rc = sh_cli_error(2, "runs: expected 'list [PIPELINE]', 'show RUN_ID [PIPELINE]' or 'prune [PIPELINE]'\n%s",
                          usage);
        goto out;
    }
    if (!pruning && (cli.older_than || cli.keep)) {
        rc = sh_cli_error(2, "runs %s: --older-than and --keep are options of 'runs prune'\n%s", cli.args[0], usage);
        goto out;
    }
    const char *pipeline = show ? (cli.arg_count == 3 ? cli.args[2] : NULL) : (cli.arg_count == 2 ? cli.args[1] : NULL);
    char *path = cli.store_path ? strdup(cli.store_path)
                 : pipeline     ? sh_runstore_default_path(pipeline)
                                : strdup(SH_RUNSTORE_DEFAULT);
    sh_runstore *s = NULL;
    sh_error err;
    sh_value *v = NULL;
    sh_status st = path ? sh_runstore_open(path, false, &s, &err)
                        : sh_error_set(&err, SH_S_NOMEM, "out of memory");
    if (st == SH_S_OK && pruning) {
        rc = prune(&cli, s, pipeline);
        sh_runstore_close(s);
        free(path);
        goto out;
    }
    if (st == SH_S_OK && list) {
        st = sh_runstore_list(s, 0, &v, &err);
    } else if (st == SH_S_OK) {
        char full[65];
        char *name = NULL;
        st = sh_runstore_find_run(s, cli.args[1], full, &name, &err);
        free(name);
        if (st == SH_S_OK)
            st = sh_runstore_show(s, full, &v, &err);
    }
    if (st != SH_S_OK) {
        rc = sh_cli_error(2, "%s", err.message);
    } else {
        if (cli.json)
            print_json(v);
        else if (list)
            print_list(v);
        else
            print_show(v);
        rc = 0;
    }
    sh_value_free(v);
    sh_runstore_close(s);
    free(path);
out:
    sh_cli_free(&cli);
    return rc;
}
