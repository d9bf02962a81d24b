/*
 * bench_throughput: items in bulk, each stagehost figure next to a floor or a peer measured in the same run.
 *
 *   1. 1,000,000 small items (integers) from a source through three in-process plugin stages into a sink
 *      (bench/stages gen -> pass -> pass -> pass -> drop, each stage called once on its whole input, as the
 *      engine does) against GStreamer's `gst-launch-1.0 -q fakesrc num-buffers=1000000 ! identity ! identity !
 *      identity ! fakesink` when it is installed. Both sides are timed whole (GStreamer's includes its start).
 *      Goal: at least 2x faster, i.e. stagehost's time <= 0.5x GStreamer's.
 *   2. One 64 MiB bytes item through an isolated stage (bench/stages pass in a worker) and back, timed on
 *      sh_worker_call (one round trip: the stage is created, run and destroyed), against memcpy of 64 MiB between
 *      two pre-faulted buffers. Bandwidth = 64 MiB / time. Goal: >= 0.7x memcpy's bandwidth. For comparison, the
 *      fewest copies the ABI allows: the host puts the item where the worker can see it (one copy), the stage
 *      copies its borrowed input to emit it (one copy), and the host copies the result out of the worker's reach
 *      into an item of its own (one copy, into fresh memory): three copies, so at best 0.33x even between warm
 *      buffers; a copy into fresh memory is timed too.
 *
 * Medians; a missed goal is reported, not failed: the exit status is non-zero only on real errors.
 * Environment: SH_BENCH_PLUGIN_DIR, the directory holding libbench_stages.so.
 */
#include "registry/descriptor.h"
#include "plugin/inproc.h"
#include "value/value.h"
#include "util/clock.h"
#include "worker/worker.h"
#include "worker/zygote.h"

#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ITEMS 1000000
#define ITEM_ROUNDS 5
#define BIG (64u << 20)
#define BIG_ROUNDS 7

static char tmpdir[] = "/tmp/sh-bench-throughput-XXXXXX";
static char descriptor_path[PATH_MAX], library_link[PATH_MAX];

static void cleanup(void)
{
    if (descriptor_path[0])
        unlink(descriptor_path);
    if (library_link[0])
        unlink(library_link);
    rmdir(tmpdir);
}

__attribute__((format(printf, 1, 2))) _Noreturn static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_throughput: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup();
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    return v[n / 2];
}

static sh_descriptor *write_descriptor(void)
{
    const char *dir = getenv("SH_BENCH_PLUGIN_DIR");
    char rel[PATH_MAX], lib[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/libbench_stages.so", dir && *dir ? dir : "build/test/bench");
    if (!realpath(rel, lib))
        die("cannot find the bench plugin %s: %s (set SH_BENCH_PLUGIN_DIR)", rel, strerror(errno));
    if (!mkdtemp(tmpdir))
        die("mkdtemp: %s", strerror(errno));
    chmod(tmpdir, 0755);
    snprintf(library_link, sizeof library_link, "%s/libbench_stages.so", tmpdir);
    if (symlink(lib, library_link) != 0)
        die("symlink %s: %s", lib, strerror(errno));
    snprintf(descriptor_path, sizeof descriptor_path, "%s/stages.plugin", tmpdir);
    FILE *f = fopen(descriptor_path, "w");
    if (!f)
        die("cannot write %s: %s", descriptor_path, strerror(errno));
    fputs("format = 1; name = \"bench/stages\"; version = \"1.0.0\"; library = \"libbench_stages.so\";\n"
          "abi = \"1.0\"; isolation = \"none\";\n"
          "stages = ( { type = \"gen\"; }, { type = \"pass\"; }, { type = \"drop\"; } );\n",
          f);
    if (fclose(f) != 0)
        die("cannot write %s", descriptor_path);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(descriptor_path, &d, &err) != SH_S_OK)
        die("descriptor: %s", err.message);
    return d;
}

static const sh_invocation inv = {.execution_id = "bench", .task_id = "t", .pipeline = "bench", .stage = "s",
                                  .plugin = "bench/stages", .base_dir = "/tmp", .attempt = 1};

static int collect(void *sink, sh_value *item) { return sh_values_push(sink, item); }

/* ---- 1. a million small items in process -------------------------------------------------------------------- */

static int64_t stagehost_items_once(const sh_descriptor *d, size_t *emitted)
{
    static const char *const chain[] = {"gen", "pass", "pass", "pass", "drop"};
    enum { N = sizeof chain / sizeof chain[0] };
    sh_error err;
    sh_value *config = sh_value_map(), *gen_config = sh_value_map();
    sh_value *count = sh_value_int(ITEMS);
    if (!config || !gen_config || !count || sh_value_map_set(gen_config, "count", count) != SH_OK)
        die("out of memory");
    int64_t t0 = sh_monotonic_ns();
    sh_inproc *ip = NULL;
    if (sh_inproc_open(d, NULL, &ip, &err) != SH_S_OK)
        die("in-process open: %s", err.message);
    uint32_t ids[N];
    for (int i = 0; i < N; i++)
        if (sh_inproc_create_stage(ip, &inv, chain[i], i == 0 ? gen_config : config, &ids[i], &err) != SH_S_OK)
            die("create %s: %s", chain[i], err.message);
    sh_values in = {0}, out = {0};
    for (int i = 0; i < N; i++) {
        if (sh_inproc_process(ip, ids[i], &inv, (const sh_value *const *)in.items, in.len, collect, &out, NULL,
                              NULL, &err) != SH_S_OK)
            die("%s: %s", chain[i], err.message);
        if (i == 0)
            *emitted = out.len;
        sh_values_clear(&in);
        in = out;
        memset(&out, 0, sizeof out);
    }
    sh_values_clear(&in);
    for (int i = 0; i < N; i++)
        sh_inproc_destroy_stage(ip, ids[i]);
    sh_inproc_close(ip);
    int64_t t = sh_monotonic_ns() - t0;
    sh_value_free(config);
    sh_value_free(gen_config);
    return t;
}

/* gst-launch-1.0 on PATH, or NULL. */
static const char *find_gst(char *buf, size_t size)
{
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = strdup(path), *save = NULL;
    const char *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        snprintf(buf, size, "%s/gst-launch-1.0", *dir ? dir : ".");
        if (access(buf, X_OK) == 0)
            found = buf;
    }
    free(copy);
    return found;
}

static int64_t gst_once(const char *gst)
{
    char buffers[32];
    snprintf(buffers, sizeof buffers, "num-buffers=%d", ITEMS);
    char *argv[] = {(char *)gst, "-q", "fakesrc", buffers, "!", "identity", "!", "identity", "!", "identity",
                    "!", "fakesink", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int64_t t0 = sh_monotonic_ns();
    pid_t pid;
    int rc = posix_spawn(&pid, gst, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot start %s: %s", gst, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    int64_t t = sh_monotonic_ns() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s failed (wait status 0x%x)", gst, status);
    return t;
}

static void measure_items(const sh_descriptor *d)
{
    char buf[PATH_MAX];
    const char *gst = find_gst(buf, sizeof buf);
    int64_t sh[ITEM_ROUNDS], peer[ITEM_ROUNDS];
    size_t emitted = 0;
    stagehost_items_once(d, &emitted); /* warm-up: page cache, allocator */
    if (emitted != ITEMS)
        die("gen emitted %zu items, not %d", emitted, ITEMS);
    if (gst)
        gst_once(gst);
    for (int r = 0; r < ITEM_ROUNDS; r++) {
        sh[r] = stagehost_items_once(d, &emitted);
        if (gst)
            peer[r] = gst_once(gst);
    }
    double sh_ms = (double)median(sh, ITEM_ROUNDS) / 1e6;
    printf("1,000,000 items, gen -> 3 x pass -> drop in process: median %.1f ms (%.0f ns per item per stage)\n",
           sh_ms, sh_ms * 1e6 / ITEMS / 5);
    char v[48], f[64];
    snprintf(v, sizeof v, "%.1f ms", sh_ms);
    if (!gst) {
        printf("GStreamer: gst-launch-1.0 not installed (Debian: gstreamer1.0-tools)\n");
        sh_bench_row("1M small items, 3 in-process stages vs GStreamer", v, "not installed", 0, "<= 0.5x",
                     SH_BENCH_NA);
        return;
    }
    double gst_ms = (double)median(peer, ITEM_ROUNDS) / 1e6;
    printf("GStreamer fakesrc ! 3 x identity ! fakesink: median %.1f ms\n", gst_ms);
    snprintf(f, sizeof f, "%.1f ms", gst_ms);
    double ratio = sh_ms / gst_ms;
    sh_bench_row("1M small items, 3 in-process stages vs GStreamer", v, f, ratio, "<= 0.5x",
                 ratio <= 0.5 ? SH_BENCH_PASS : SH_BENCH_FAIL);
}

/* ---- 2. one 64 MiB item through an isolated stage ----------------------------------------------------------- */

static void measure_big(const sh_descriptor *d, sh_zygote *z)
{
    /* The floor: memcpy between two buffers already faulted in, so that only the copy is timed. */
    char *a = malloc(BIG), *b = malloc(BIG);
    if (!a || !b)
        die("out of memory");
    memset(a, 'x', BIG);
    memset(b, 'y', BIG);
    int64_t floor_ns[BIG_ROUNDS], sh_ns[BIG_ROUNDS], fresh_ns[BIG_ROUNDS];

    sh_worker_limits limits;
    memset(&limits, 0, sizeof limits);
    limits.timeout_ms = 60000;
    sh_worker *w = NULL;
    sh_error err;
    if (sh_worker_start(d, &limits, NULL, NULL, z, &w, &err) != SH_S_OK)
        die("worker start: %s", err.message);
    sh_value *config = sh_value_map();
    sh_value *item = sh_value_bytes(a, BIG);
    if (!config || !item)
        die("out of memory");
    for (int r = -1; r < BIG_ROUNDS; r++) {
        int64_t t0 = sh_monotonic_ns();
        memcpy(b, a, BIG);
        int64_t t1 = sh_monotonic_ns();
        __asm__ volatile("" : : "r"(b) : "memory"); /* the copy must happen */
        /* A copy into fresh memory, as the host's copy-out makes: its page faults are part of the cost. */
        int64_t t4 = sh_monotonic_ns();
        char *fresh = malloc(BIG);
        if (!fresh)
            die("out of memory");
        memcpy(fresh, a, BIG);
        __asm__ volatile("" : : "r"(fresh) : "memory");
        free(fresh);
        int64_t t5 = sh_monotonic_ns();
        sh_values out = {0};
        int64_t t2 = sh_monotonic_ns();
        if (sh_worker_call(w, &inv, "pass", config, (const sh_value *const *)&item, 1, false, &out, &err) != SH_S_OK)
            die("64 MiB through pass: %s", err.message);
        int64_t t3 = sh_monotonic_ns();
        if (out.len != 1 || !sh_value_equal(out.items[0], item))
            die("pass returned %zu items, not the 64 MiB item sent", out.len);
        sh_values_clear(&out);
        if (r >= 0) {
            floor_ns[r] = t1 - t0;
            sh_ns[r] = t3 - t2;
            fresh_ns[r] = t5 - t4;
        }
    }
    sh_value_free(item);
    sh_value_free(config);
    sh_worker_stop(w);
    free(a);
    free(b);
    double mib = (double)BIG / (1 << 20);
    double floor_bw = mib / ((double)median(floor_ns, BIG_ROUNDS) / 1e9);
    double sh_bw = mib / ((double)median(sh_ns, BIG_ROUNDS) / 1e9);
    printf("64 MiB item through an isolated pass stage and back: median %.1f ms = %.0f MiB/s\n",
           (double)median(sh_ns, BIG_ROUNDS) / 1e6, sh_bw);
    printf("memcpy of 64 MiB: median %.1f ms = %.0f MiB/s\n", (double)median(floor_ns, BIG_ROUNDS) / 1e6, floor_bw);
    char v[48], f[48];
    snprintf(v, sizeof v, "%.0f MiB/s", sh_bw);
    snprintf(f, sizeof f, "%.0f MiB/s", floor_bw);
    double ratio = sh_bw / floor_bw;
    sh_bench_row("64 MiB item through an isolated stage and back vs memcpy", v, f, ratio, ">= 0.7x",
                 ratio >= 0.7 ? SH_BENCH_PASS : SH_BENCH_FAIL);
    /* The bound: three copies between warm buffers. */
    double bound_ns = 3.0 * (double)median(floor_ns, BIG_ROUNDS);
    double bound_bw = mib / (bound_ns / 1e9);
    printf("the ABI's bound (3 copies between warm buffers): %.1f ms = %.0f MiB/s = %.2fx memcpy\n", bound_ns / 1e6,
           bound_bw, bound_bw / floor_bw);
    printf("a copy of 64 MiB into fresh memory (malloc, copy, free): median %.1f ms\n",
           (double)median(fresh_ns, BIG_ROUNDS) / 1e6);
    char bv[48];
    snprintf(bv, sizeof bv, "%.0f MiB/s", bound_bw);
    sh_bench_row("   the fewest copies the ABI allows (3) vs memcpy", bv, f, bound_bw / floor_bw, "-", SH_BENCH_INFO);
}

int main(void)
{
    sh_zygote *z = NULL;
    sh_error err;
    if (sh_zygote_start(&z, &err) != SH_S_OK)
        die("zygote: %s", err.message);
    sh_descriptor *d = write_descriptor();
    measure_big(d, z); /* first, before this process loads the plugin itself */
    measure_items(d);
    sh_descriptor_free(d);
    sh_zygote_stop(z);
    cleanup();
    return 0;
}
