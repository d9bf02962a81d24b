/* Benchmark: a hook call through each dispatch class with 1 and 10 in-process implementations, against a direct
 * function call and a bare ffi_call of the same function, all measured in this run. Reports ns per call and,
 * per implementation, the ratio to the bare ffi_call (goal: at most 2x). Fails only on real errors. */
#include "hooks.h"

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

static double bench_hook(sh_hooks *h, const char *name, long iters)
{
    sh_hook *hk = sh_hooks_find(h, name);
    sh_value *a = sh_value_int(1), *b = sh_value_int(2);
    const sh_value *args[2] = {a, b};
    const char *tags[1] = {"t"};
    sh_error err;
    if (!hk) {
        fprintf(stderr, "no hook %s\n", name);
        exit(1);
    }
    /* Warm: loads the plugins and resolves the symbols. */
    for (long i = 0; i < 1000; i++) {
        sh_value *r = NULL;
        if (sh_hooks_call(h, hk, args, 2, tags, 1, &r, &err) != SH_S_OK) {
            fprintf(stderr, "%s: %s\n", name, err.message);
            exit(1);
        }
        sh_value_free(r);
    }
    int64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        sh_value *r = NULL;
        sh_hooks_call(h, hk, args, 2, tags, 1, &r, &err);
        sh_value_free(r);
    }
    double ns = (double)(now_ns() - t0) / (double)iters;
    sh_value_free(a);
    sh_value_free(b);
    return ns;
}

int main(void)
{
    const long iters = 1000000;
    /* Floors, in this run. */
    int32_t (*volatile direct)(int32_t, int32_t) = add32;
    volatile int32_t sink = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < iters * 10; i++)
        sink += direct(1, 2);
    double direct_ns = (double)(now_ns() - t0) / (double)(iters * 10);
    ffi_cif cif;
    ffi_type *types[2] = {&ffi_type_sint32, &ffi_type_sint32};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint32, types) != FFI_OK)
        return 1;
    int32_t x = 1, y = 2;
    void *values[2] = {&x, &y};
    ffi_arg rv;
    t0 = now_ns();
    for (long i = 0; i < iters * 10; i++) {
        ffi_call(&cif, FFI_FN(add32), &rv, values);
        sink += (int32_t)rv;
    }
    double ffi_ns = (double)(now_ns() - t0) / (double)(iters * 10);
    printf("floor: direct call %.1f ns, bare ffi_call %.1f ns\n", direct_ns, ffi_ns);

    static const char *const names[] = {"bench.singleton", "bench.collect", "bench.notify", "bench.chain",
                                        "bench.capability"};
    int over = 0;
    for (int n = 1; n <= 10; n += 9) {
        char dir[PATH_MAX];
        make_dir(dir, sizeof dir, n);
        sh_runtime rt;
        sh_error err;
        const char *dirs[1] = {dir};
        setenv("STAGEHOST_NO_CACHE", "1", 1);
        if (sh_runtime_start(&rt, false, NULL, dirs, 1, &err) != SH_S_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        sh_hooks *h = NULL;
        if (sh_hooks_get(&rt, &h, &err) != SH_S_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            double ns = bench_hook(h, names[k], n == 1 ? iters : iters / 5);
            /* singleton and capability call one implementation whatever the count. */
            int called = (k == 0 || k == 4) ? 1 : n;
            double per = ns / called;
            printf("%-17s %2d impl%s  %8.1f ns/call  %6.1f ns/impl  %5.2fx bare ffi_call per impl  %5.1fx direct\n",
                   names[k], n, n == 1 ? " " : "s", ns, per, per / ffi_ns, per / direct_ns);
            over += per > 2 * ffi_ns;
        }
        sh_runtime_stop(&rt);
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    printf("%d of 10 configurations above the 2x bare ffi_call goal per implementation\n", over);
    (void)sink;
    return 0;
}
