/* The run store's output rows: the time to store a stage's output and read it back, and the peak memory of the
 * process doing it, for several row bounds; what store.c's ROW_BYTES is chosen by. Each bound runs in a child
 * process of its own so that its peak RSS is its own. Items are 64 KiB strings (the shape of `read` over a
 * corpus) and 32-byte maps (many tiny items). SH_BENCH_STORE_MB sets the output's size (default 256). */
#include "engine/store.h"
#include "report.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static sh_value **make_items(size_t total, size_t item_bytes, size_t *count)
{
    size_t n = total / item_bytes;
    sh_value **items = calloc(n, sizeof *items);
    char *text = malloc(item_bytes + 1);
    for (size_t k = 0; k < item_bytes; k++)
        text[k] = (char)('a' + k % 26);
    for (size_t i = 0; i < n; i++) {
        if (item_bytes >= 1024) {
            items[i] = sh_value_string(text, item_bytes);
        } else {
            items[i] = sh_value_map();
            sh_value_map_set(items[i], "i", sh_value_int((int64_t)i));
            sh_value_map_set(items[i], "t", sh_value_string(text, item_bytes - 16));
        }
    }
    free(text);
    *count = n;
    return items;
}

/* In the child: store and read back; prints write and read times in ms on one line. */
static int one(const char *dir, size_t bound, size_t total, size_t item_bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-%zu-%zu.db", dir, bound, item_bytes);
    unlink(path);
    sh_runstore *s = NULL;
    sh_error err;
    if (sh_runstore_open(path, true, &s, &err) != SH_S_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    sh_runstore_set_row_bound(s, bound, SIZE_MAX / 2);
    size_t n = 0;
    sh_value **items = make_items(total, item_bytes, &n);
    const char *run = "0123456789abcdef0123456789abcdef";
    sh_run_record r = {.id = run, .pipeline_path = "/b.cfg", .pipeline_name = "b"};
    sh_stage_record st = {.run_id = run, .name = "s", .type = "read", .source = "built-in", .fingerprint = "f",
                          .status = "succeeded", .attempts = 1, .items_in = 0, .items_out = (int64_t)n};
    int64_t t0 = sh_monotonic_ns();
    uint32_t seq = 0;
    sh_status rc = sh_runstore_begin_run(s, &r, &err);
    if (rc == SH_S_OK)
        rc = sh_runstore_batch_begin(s, &err);
    if (rc == SH_S_OK)
        rc = sh_runstore_put_output_batch(s, run, "s", &seq, (const sh_value *const *)items, n, &err);
    if (rc == SH_S_OK)
        rc = sh_runstore_put_stage(s, &st, true, NULL, 0, &err);
    if (rc == SH_S_OK)
        rc = sh_runstore_batch_end(s, true, &err);
    int64_t t1 = sh_monotonic_ns();
    for (size_t i = 0; i < n; i++)
        sh_value_free(items[i]);
    free(items);
    sh_runstore_reader *rd = NULL;
    uint32_t attempts = 0;
    if (rc == SH_S_OK)
        rc = sh_runstore_output_open(s, run, "s", "f", &attempts, &rd, &err);
    size_t got = 0;
    bool more = rd != NULL;
    while (rc == SH_S_OK && more) {
        sh_values batch = {0};
        rc = sh_runstore_reader_next(rd, &batch, &more, &err);
        got += batch.len;
        sh_values_clear(&batch); /* streamed: one row at a time in memory */
    }
    int64_t t2 = sh_monotonic_ns();
    sh_runstore_reader_close(rd);
    sh_runstore_close(s);
    unlink(path);
    if (rc != SH_S_OK || got != n) {
        fprintf(stderr, "bound %zu: %s (%zu of %zu items)\n", bound, rc ? err.message : "short read", got, n);
        return 1;
    }
    printf("%u %.1f %.1f\n", seq, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
    return 0;
}

int main(void)
{
    const char *mb = getenv("SH_BENCH_STORE_MB");
    size_t total = (size_t)(mb ? atol(mb) : 256) << 20;
    char dir[] = "/tmp/sh-bench-store-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    static const size_t bounds[] = {64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
    static const size_t shapes[] = {64 << 10, 32};
    int failed = 0;
    printf("%-10s %-8s %8s %10s %10s %10s %12s\n", "items", "bound", "rows", "write ms", "read ms", "MB/s w+r",
           "peak RSS MiB");
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
            int fds[2];
            if (pipe(fds) != 0)
                return 1;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                int code = one(dir, bounds[b], total, shapes[k]);
                fflush(stdout);
                _exit(code);
            }
            close(fds[1]);
            char line[256] = "";
            FILE *f = fdopen(fds[0], "r");
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            fclose(f);
            int status = 0;
            struct rusage ru;
            wait4(pid, &status, 0, &ru);
            unsigned rows = 0;
            double w = 0, r = 0;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(line, "%u %lf %lf", &rows, &w, &r) != 3) {
                failed = 1;
                continue;
            }
            char shape[16], bound[16];
            if (shapes[k] >= 1024)
                snprintf(shape, sizeof shape, "%zu KiB", shapes[k] >> 10);
            else
                snprintf(shape, sizeof shape, "%zu B", shapes[k]);
            snprintf(bound, sizeof bound, "%zu KiB", bounds[b] >> 10);
            double rate = (double)(total >> 20) * 2 / ((w + r) / 1000);
            printf("%-10s %-8s %8u %10.1f %10.1f %10.1f %12.1f\n", shape, bound, rows, w, r, rate,
                   (double)ru.ru_maxrss / 1024);
            if (bounds[b] == (4 << 20) && shapes[k] >= 1024) {
                char v[48];
                snprintf(v, sizeof v, "%.1f MB/s", rate);
                sh_bench_row("run store: output rows of 4 MiB, write + read", v, "-", 0, "-", SH_BENCH_INFO);
            }
        }
    }
    rmdir(dir);
    return failed;
}
