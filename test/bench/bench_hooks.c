/* Benchmark: a hook call through each dispatch class with 1 and 10 in-process implementations, against a direct
 * function call and a bare ffi_call of the same function, all measured in this run. Reports ns per call and,
 * per implementation, the ratio to the bare ffi_call (goal: at most 2x), each a median of several rounds, with
 * one @row line per configuration for test/bench/run's table (report.h). Fails only on real errors. */
#include "hooks/hooks.h"
#include "report.h"

#include <ffi.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((noinline)) static int32_t add32(int32_t a, int32_t b) { return a + b; }

static const char spec[] =
    "kind = \"bench\"; api = \"1.0\";\n"
    "hooks = (\n"
    "  { name = \"singleton\"; dispatch = \"singleton\"; args = ( \"i32\", \"i32\" ); returns = \"i32\"; },\n"
    "  { name = \"collect\"; dispatch = \"broadcast-collect\"; args = ( \"i32\", \"i32\" ); returns = \"i32\"; },\n"
    "  { name = \"notify\"; dispatch = \"broadcast-notify\"; args = ( \"i32\", \"i32\" ); },\n"
    "  { name = \"chain\"; dispatch = \"chain\"; args = ( \"i32\", \"i32\" ); returns = \"i32\"; },\n"
    "  { name = \"capability\"; dispatch = \"capability\"; args = ( \"i32\", \"i32\" ); returns = \"i32\"; }\n"
    ");\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* A plugin directory with `n` in-process plugins (test/hook-a ...) implementing every bench hook. */
static void make_dir(char *dir, size_t size, int n)
{
    const char *libs = getenv("SH_TEST_PLUGIN_DIR");
    snprintf(dir, size, "/tmp/sh-bench-hooks-XXXXXX");
    if (!libs || !mkdtemp(dir)) {
        fprintf(stderr, "SH_TEST_PLUGIN_DIR unset or no temporary directory\n");
        exit(1);
    }
    char path[PATH_MAX + 64], target[PATH_MAX + 64], text[4096];
    snprintf(path, sizeof path, "%s/bench.hooks", dir);
    write_file(path, spec);
    for (int i = 0; i < n; i++) {
        char l = (char)('a' + i);
        snprintf(target, sizeof target, "%s/libhook_%c.so", libs, l);
        snprintf(path, sizeof path, "%s/libhook_%c.so", dir, l);
        if (symlink(target, path) != 0) {
            perror("symlink");
            exit(1);
        }
        snprintf(text, sizeof text,
                 "format = 1; name = \"test/hook-%c\"; version = \"1.0.0\"; library = \"libhook_%c.so\"; abi = \"1.0\";\n"
                 "isolation = \"none\"; stages = ( { type = \"numbers\"; }, { type = \"ctx\"; } );\n"
                 "hooks = ( { hook = \"bench.singleton\"; symbol = \"h_add32\"; priority = %d; },\n"
                 "  { hook = \"bench.collect\"; symbol = \"h_add32\"; }, { hook = \"bench.notify\"; symbol = \"h_note32\"; },\n"
                 "  { hook = \"bench.chain\"; symbol = \"h_add32\"; },\n"
                 "  { hook = \"bench.capability\"; symbol = \"h_add32\"; priority = %d; supports = ( \"t\" ); } );\n",
                 l, l, 100 - i, 100 - i);
        snprintf(path, sizeof path, "%s/hook-%c.plugin", dir, l);
        write_file(path, text);
    }
}

/* Median of `n` doubles (sorted in place). */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The floors, measured again before every configuration: on a shared machine the load drifts, and a ratio is
 * only fair against a floor taken under the same load. */
static int32_t (*volatile direct)(int32_t, int32_t) = add32;
static volatile int32_t sink;

static double time_direct(long iters)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++)
        sink += direct(1, 2);
    return (double)(now_ns() - t0) / (double)iters;
}

static double time_ffi(long iters)
{
    ffi_cif cif;
    ffi_type *types[2] = {&ffi_type_sint32, &ffi_type_sint32};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, types) != FFI_OK)
        exit(1);
    int32_t x = 1, y = 2;
    void *values[2] = {&x, &y};
    ffi_arg rv;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        ffi_call(&cif, FFI_FN(add32), &rv, values);
        sink += (int32_t)rv;
    }
    return (double)(now_ns() - t0) / (double)iters;
}

/* The hook convention's own shape, int fn(sh_call *, i32, i32, i32 *out), as the test plugins' h_add32: what a
 * bare ffi_call costs for the function a hook call actually makes (libffi's per-call work grows with the
 * argument count, so this, not add32, is what the dispatch itself adds to). */
__attribute__((noinline)) static int conv_add32(void *call, int32_t a, int32_t b, int32_t *out)
{
    (void)call;
    *out = a + b;
    return 0;
}

static double time_ffi_convention(long iters)
{
    ffi_cif cif;
    ffi_type *types[4] = {&ffi_type_pointer, &ffi_type_sint32, &ffi_type_sint32, &ffi_type_pointer};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 4, &ffi_type_sint, types) != FFI_OK)
        exit(1);
    void *call = NULL;
    int32_t x = 1, y = 2, out = 0;
    int32_t *outp = &out;
    void *values[4] = {&call, &x, &y, &outp};
    ffi_arg rv;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        ffi_call(&cif, FFI_FN(conv_add32), &rv, values);
        sink += (int32_t)rv + out;
    }
    return (double)(now_ns() - t0) / (double)iters;
}

static double time_hook(sh_hooks *h, sh_hook *hk, long iters)
{
    sh_value *a = sh_value_int(1), *b = sh_value_int(2);
    const sh_value *args[2] = {a, b};
    const char *tags[1] = {"t"};
    sh_error err;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        sh_value *r = NULL;
        if (sh_hooks_call(h, hk, args, 2, tags, 1, &r, &err) != SH_S_OK) {
            fprintf(stderr, "%s: %s\n", sh_hook_spec(hk)->full_name, err.message);
            exit(1);
        }
        sh_value_free(r);
    }
    double ns = (double)(now_ns() - t0) / (double)iters;
    sh_value_free(a);
    sh_value_free(b);
    return ns;
}

/* Rounds per figure; the median is reported. */
#define ROUNDS 7

int main(void)
{
    /* SH_BENCH_HOOKS_ITERS: fewer calls per round, for callgrind (instruction counts) or a quick look. */
    const char *it = getenv("SH_BENCH_HOOKS_ITERS");
    const long iters = it && atol(it) > 0 ? atol(it) : 300000;
    double d[ROUNDS], f[ROUNDS], c[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        d[r] = time_direct(iters);
        f[r] = time_ffi(iters);
        c[r] = time_ffi_convention(iters);
    }
    double direct_ns = median(d, ROUNDS), ffi_ns = median(f, ROUNDS), conv_ns = median(c, ROUNDS);
    printf("floor: direct call %.1f ns, bare ffi_call %.1f ns, bare ffi_call of the hook convention %.1f ns "
           "(%.2fx; medians of %d rounds of %ld calls)\n",
           direct_ns, ffi_ns, conv_ns, conv_ns / ffi_ns, ROUNDS, iters);
    sh_bench_row_max("bare ffi_call of the hook convention (sh_call *, i32, i32, i32 *out) vs bare ffi_call", conv_ns,
                     ffi_ns, "ns", 0);

    static const char *const names[] = {"bench.singleton", "bench.collect", "bench.notify", "bench.chain",
                                        "bench.capability"};
    static const char *const classes[] = {"singleton", "broadcast-collect", "broadcast-notify", "chain",
                                          "capability"};
    int over = 0;
    for (int n = 1; n <= 10; n += 9) {
        char dir[PATH_MAX];
        make_dir(dir, sizeof dir, n);
        sh_runtime rt;
        sh_error err;
        const char *dirs[1] = {dir};
        setenv("STAGEHOST_NO_CACHE", "1", 1);
        sh_env env;
        if (sh_env_capture(&env, &err) != SH_S_OK ||
            sh_runtime_start(&rt, &env, false, NULL, dirs, 1, &err) != SH_S_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        sh_hooks *h = NULL;
        if (sh_hooks_get(&rt, &h, &err) != SH_S_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            sh_hook *hk = sh_hooks_find(h, names[k]);
            if (!hk) {
                fprintf(stderr, "no hook %s\n", names[k]);
                return 1;
            }
            /* Warm: loads the plugins and resolves the symbols. */
            time_hook(h, hk, 1000);
            long calls = n == 1 ? iters : iters / 5;
            double ns[ROUNDS];
            for (int r = 0; r < ROUNDS; r++) {
                f[r] = time_ffi(iters);
                c[r] = time_ffi_convention(iters);
                ns[r] = time_hook(h, hk, calls);
            }
            ffi_ns = median(f, ROUNDS);
            conv_ns = median(c, ROUNDS);
            double call_ns = median(ns, ROUNDS);
            /* singleton and capability call one implementation whatever the count. */
            int called = (k == 0 || k == 4) ? 1 : n;
            double per = call_ns / called;
            printf("%-17s %2d impl%s  %8.1f ns/call  %6.1f ns/impl  bare ffi_call %5.1f ns  %5.2fx per impl  "
                   "(%.2fx the hook convention's bare ffi_call)\n",
                   names[k], n, n == 1 ? " " : "s", call_ns, per, ffi_ns, per / ffi_ns, per / conv_ns);
            char what[128];
            snprintf(what, sizeof what, "hook call, %s, %d in-process impl%s, per impl vs bare ffi_call", classes[k],
                     n, n == 1 ? "" : "s");
            over += sh_bench_row_max(what, per, ffi_ns, "ns", 2.0) != SH_BENCH_PASS;
        }
        sh_hooks_free(h);
        sh_runtime_stop(&rt);
        sh_env_free(&env);
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    printf("%d of 10 configurations above the 2x bare ffi_call goal per implementation\n", over);
    return 0;
}
