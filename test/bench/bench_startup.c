/*
 * bench_startup: the host as a user meets it, through the `stagehost` binary, against the floor of starting any
 * process, measured in the same run.
 *
 *   1. Host start to first stage result with three plugins: `stagehost run` of a three-stage pipeline
 *      (bench/a.gen -> bench/b.pass -> bench/c.drop, one item, each stage from its own plugin), timed from
 *      posix_spawn to exit, so the figure is an upper bound of the time to the first result (it also holds
 *      the rest of the run, the run store's transaction and the exit). In process (isolation "none") and, for
 *      comparison, in workers (the plugins' default, "process"). Goal: <= 5 ms.
 *   2. Host resident memory with 100 discovered plugins: the peak RSS (ru_maxrss) of `stagehost plugins list`
 *      over 100 descriptors. Goal: <= 8 MB.
 *   The floors: posix_spawn + exit of /bin/true, its time and peak RSS (information; the goals are absolute).
 *
 * Environment: SH_BENCH_STAGEHOST (the binary), SH_BENCH_PLUGIN_DIR (holding libbench_{a,b,c}.so).
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ROUNDS 41
#define START_GOAL_MS 5.0
#define RSS_GOAL_MB 8.0

static char root[] = "/tmp/sh-bench-startup-XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

__attribute__((format(printf, 1, 2))) _Noreturn static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_startup: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

/* Runs argv with stdout and stderr to /dev/null; returns the wall time, *maxrss_kb the child's peak RSS. */
static int64_t spawn_once(char *const argv[], long *maxrss_kb)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int64_t t0 = now_ns();
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot start %s: %s", argv[0], strerror(rc));
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            die("wait4: %s", strerror(errno));
    int64_t t = now_ns() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_startup: failed (wait status 0x%x):", status);
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        die("run it by hand to see why");
    }
    if (maxrss_kb)
        *maxrss_kb = ru.ru_maxrss;
    return t;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median wall time (ns) of ROUNDS runs after one warm-up; *rss_kb the median peak RSS. */
static int64_t median_run(char *const argv[], long *rss_kb)
{
    int64_t t[ROUNDS], r[ROUNDS];
    long kb = 0;
    spawn_once(argv, &kb);
    for (int i = 0; i < ROUNDS; i++) {
        t[i] = spawn_once(argv, &kb);
        r[i] = kb;
    }
    qsort(t, ROUNDS, sizeof *t, cmp_i64);
    qsort(r, ROUNDS, sizeof *r, cmp_i64);
    if (rss_kb)
        *rss_kb = (long)r[ROUNDS / 2];
    return t[ROUNDS / 2];
}

int main(void)
{
    const char *exe = getenv("SH_BENCH_STAGEHOST"), *libs = getenv("SH_BENCH_PLUGIN_DIR");
    if (!exe || !libs)
        die("SH_BENCH_STAGEHOST and SH_BENCH_PLUGIN_DIR must be set (meson's benchmark sets them)");
    if (!mkdtemp(root))
        die("mkdtemp: %s", strerror(errno));
    chmod(root, 0755);
    char three[PATH_MAX], hundred[PATH_MAX], path[PATH_MAX + 64], target[PATH_MAX + 64], text[1024];
    snprintf(three, sizeof three, "%s/three", root);
    snprintf(hundred, sizeof hundred, "%s/hundred", root);
    if (mkdir(three, 0755) != 0 || mkdir(hundred, 0755) != 0)
        die("mkdir: %s", strerror(errno));
    /* Three plugins, each its own library, and the pipelines using one stage of each. */
    for (char c = 'a'; c <= 'c'; c++) {
        snprintf(target, sizeof target, "%s/libbench_%c.so", libs, c);
        if (realpath(target, text) == NULL)
            die("cannot find %s: %s", target, strerror(errno));
        snprintf(path, sizeof path, "%s/libbench_%c.so", three, c);
        if (symlink(text, path) != 0)
            die("symlink %s: %s", path, strerror(errno));
        snprintf(path, sizeof path, "%s/%c.plugin", three, c);
        snprintf(text, sizeof text,
                 "format = 1; name = \"bench/%c\"; version = \"1.0.0\"; library = \"libbench_%c.so\";\n"
                 "abi = \"1.0\"; stages = ( { type = \"gen\"; }, { type = \"pass\"; }, { type = \"drop\"; } );\n",
                 c, c);
        write_file(path, text);
    }
    char pipe_none[PATH_MAX + 32], pipe_process[PATH_MAX + 32], store[PATH_MAX + 32];
    snprintf(store, sizeof store, "%s/runs.db", root);
    for (int k = 0; k < 2; k++) {
        const char *iso = k ? "process" : "none";
        snprintf(k ? pipe_process : pipe_none, sizeof pipe_none, "%s/%s.cfg", root, iso);
        snprintf(text, sizeof text,
                 "pipeline = { name = \"startup\"; stages = (\n"
                 "  { name = \"gen\"; type = \"bench/a.gen\"; isolation = \"%s\"; depends_on = ( );"
                 " config = { count = 1; }; },\n"
                 "  { name = \"pass\"; type = \"bench/b.pass\"; isolation = \"%s\"; },\n"
                 "  { name = \"drop\"; type = \"bench/c.drop\"; isolation = \"%s\"; }\n"
                 "); };\n",
                 iso, iso, iso);
        write_file(k ? pipe_process : pipe_none, text);
    }
    /* A hundred descriptors (discovery reads them; nothing loads their library). */
    snprintf(path, sizeof path, "%s/libdummy.so", hundred);
    write_file(path, "not a library: discovery never loads it\n");
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "%s/p%03d.plugin", hundred, i);
        snprintf(text, sizeof text,
                 "format = 1; name = \"bench/p%03d\"; version = \"1.0.%d\"; library = \"libdummy.so\";\n"
                 "abi = \"1.0\"; description = \"benchmark plugin %d\";\n"
                 "stages = ( { type = \"chunk%d\"; input = \"document\"; output = \"chunk\"; },\n"
                 "           { type = \"count%d\"; input = \"chunk\"; output = \"any\"; } );\n",
                 i, i, i, i, i);
        write_file(path, text);
    }

    char *run_none[] = {(char *)exe, "run", pipe_none, "--plugins-dir", three, "--store", store, NULL};
    char *run_process[] = {(char *)exe, "run", pipe_process, "--plugins-dir", three, "--store", store, NULL};
    char *list[] = {(char *)exe, "plugins", "list", "--plugins-dir", hundred, NULL};
    char *truth[] = {"/bin/true", NULL};

    long true_kb = 0, list_kb = 0, none_kb = 0;
    int64_t true_ns = median_run(truth, &true_kb);
    int64_t none_ns = median_run(run_none, &none_kb);
    int64_t process_ns = median_run(run_process, NULL);
    median_run(list, &list_kb);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    double true_ms = (double)true_ns / 1e6, none_ms = (double)none_ns / 1e6, process_ms = (double)process_ns / 1e6;
    printf("medians of %d runs after one warm-up\n", ROUNDS);
    printf("/bin/true (spawn + exit):                          %7.2f ms, peak RSS %5.1f MB\n", true_ms,
           (double)true_kb / 1024);
    printf("stagehost run, 3 plugins, in process:              %7.2f ms, peak RSS %5.1f MB\n", none_ms,
           (double)none_kb / 1024);
    printf("stagehost run, 3 plugins, in workers:              %7.2f ms\n", process_ms);
    printf("stagehost plugins list, 100 plugins:               peak RSS %5.1f MB\n", (double)list_kb / 1024);

    char v[48], f[48];
    snprintf(v, sizeof v, "%.2f ms", none_ms);
    snprintf(f, sizeof f, "%.2f ms", true_ms);
    sh_bench_row("host start to first result, 3 plugins in process (to exit)", v, f, none_ms / true_ms, "<= 5 ms",
                 none_ms <= START_GOAL_MS ? SH_BENCH_PASS : SH_BENCH_FAIL);
    snprintf(v, sizeof v, "%.2f ms", process_ms);
    sh_bench_row("host start to first result, 3 plugins in workers (to exit)", v, f, process_ms / true_ms, "-",
                 SH_BENCH_INFO);
    snprintf(v, sizeof v, "%.1f MB", (double)list_kb / 1024);
    snprintf(f, sizeof f, "%.1f MB", (double)true_kb / 1024);
    sh_bench_row("host resident memory, 100 discovered plugins (peak RSS)", v, f, (double)list_kb / (double)true_kb,
                 "<= 8 MB", (double)list_kb / 1024 <= RSS_GOAL_MB ? SH_BENCH_PASS : SH_BENCH_FAIL);
    return 0;
}
