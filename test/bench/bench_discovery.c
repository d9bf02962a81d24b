/*
 * bench_discovery: how long discovery takes with thousands of plugins, against a floor measured by this program
 * in the same run on the same machine.
 *
 *   floor   the same scandir (same filter, byte order), then config_init + config_read_file + config_destroy of
 *           libconfig for every file: parsing alone, no validation, no registry.
 *   cold    sh_discover_dir with STAGEHOST_NO_CACHE=1: every descriptor parsed and validated, the registry built.
 *   first   sh_discover_dir with an empty cache directory: cold, plus encoding and writing the cache (shown for
 *           information; no goal).
 *   warm    sh_discover_dir with the cache written by a previous run: the directory's listing and every
 *           descriptor from the cache (each file still stat'ed).
 *   ... without the registry: the same listing and descriptor loads (sh_dirlist_at, sh_regcache_load, as
 *           discovery calls them),
 *           descriptors freed instead of added to a registry, to show what sh_registry_add costs (information).
 *
 * For 1,000 and 10,000 descriptors of 15 lines each (three stages, limits, a description) next to one dummy
 * library, with mtimes in the past as installed plugins have (the cache refuses files modified in the last
 * seconds), and measured once the directory itself is more than 2 s old (the cache reads a directory changed
 * more recently than that; its ctime cannot be backdated). Page caches cannot be dropped, so every variant runs once unmeasured first, and the variants then
 * alternate round by round; figures are medians, in milliseconds.
 *
 * Goals: cold <= 1.2x the floor; warm <= 15 ms for 10,000. Missed goals are reported, not failed: the exit
 * status is non-zero only when something that should work does not (discovery failing, a plugin missing, a warm
 * run that parses).
 */
#include "registry/discovery.h"
#include "registry/cache.h"
#include "registry/registry.h"
#include "util/dirlist.h"

#include "report.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS_SMALL 9
#define ROUNDS_LARGE 5
#define COLD_GOAL_RATIO 1.2
#define WARM_GOAL_MS 15.0

static int failures;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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

static bool write_text(const char *path, const char *text, time_t mtime)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok;
    struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    return ok && utimensat(AT_FDCWD, path, ts, 0) == 0;
}

static bool make_plugins(const char *dir, int n)
{
    if (mkdir(dir, 0755) != 0)
        return false;
    char path[PATH_MAX + 64], text[2048];
    time_t when = time(NULL) - 86400;
    snprintf(path, sizeof path, "%s/libdummy.so", dir);
    if (!write_text(path, "not a library: discovery never loads it\n", when))
        return false;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/p%05d.plugin", dir, i);
        snprintf(text, sizeof text,
                 "format = 1;\n"
                 "name = \"bench/p%05d\";\n"
                 "version = \"1.%d.%d\";\n"
                 "library = \"libdummy.so\";\n"
                 "abi = \"1.0\";\n"
                 "description = \"Benchmark plugin %d: splits, normalises and counts text\";\n"
                 "isolation = \"%s\";\n"
                 "limits = { timeout_ms = %d; memory_mb = 256; };\n"
                 "permissions = { env = [ \"LANG\" ]; };\n"
                 "stages = (\n"
                 "  { type = \"chunk%d\"; input = \"document\"; output = \"chunk\"; },\n"
                 "  { type = \"normalize%d\"; input = \"chunk\"; output = \"chunk\"; },\n"
                 "  { type = \"count%d\"; input = \"chunk\"; output = \"any\"; description = \"counts words\"; }\n"
                 ");\n"
                 "priority = %d;\n",
                 i, i % 10, i % 7, i, i % 3 ? "process" : "call", 1000 + i, i, i, i, i % 5);
        if (!write_text(path, text, when))
            return false;
    }
    return true;
}

/* Waits until the directory's last change is more than 2 s old, as an installed plugin directory is. */
static void settle(const char *dir)
{
    struct stat st;
    struct timespec now;
    if (stat(dir, &st) != 0 || clock_gettime(CLOCK_REALTIME, &now) != 0)
        return;
    double age = (double)(now.tv_sec - st.st_ctim.tv_sec) + (double)(now.tv_nsec - st.st_ctim.tv_nsec) / 1e9;
    if (age < 2.2)
        usleep((useconds_t)((2.2 - age) * 1e6));
}

static int is_descriptor(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 7 && strcmp(e->d_name + n - 7, ".plugin") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static double run_floor(const char *dir, int want)
{
    double t0 = now_ms();
    struct dirent **names;
    int n = scandir(dir, &names, is_descriptor, by_name);
    char path[PATH_MAX + 300];
    int parsed = 0;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        config_t cfg;
        config_init(&cfg);
        parsed += config_read_file(&cfg, path) == CONFIG_TRUE;
        config_destroy(&cfg);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    double t = now_ms() - t0;
    if (parsed != want) {
        fprintf(stderr, "floor: %d of %d descriptors parsed in %s\n", parsed, want, dir);
        failures++;
    }
    return t;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef enum variant { COLD, FIRST, WARM, COLD_BARE, WARM_BARE } variant;

static const char *const variant_names[] = {"cold (no cache)", "first run (writes cache)", "warm cache",
                                            "  cold, without registry", "  warm, without registry"};

/* Discovery's loop without the registry (and, like it, without reading the directory when the cache knows its
 * listing). Returns the number of valid descriptors. */
static size_t load_bare(const sh_env *env, const char *dir)
{
    sh_regcache *c = sh_regcache_open(env);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *real = realpath(dir, NULL);
    const char *const *listed = NULL;
    long n = sh_regcache_begin_dir(c, dir, dfd, real, &listed);
    sh_descriptor_dir info = {.real = real};
    sh_strlist names = {0};
    sh_error err;
    if (n < 0)
        n = sh_dirlist_at(dfd, dir, ".plugin", &names, &err) == SH_S_OK ? (long)names.len : 0;
    char path[PATH_MAX + 300];
    size_t valid = 0;
    for (long i = 0; i < n; i++) {
        const char *file = listed ? listed[i] : names.items[i];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        sh_descriptor *d = NULL;
        char *name = NULL;
        valid += sh_regcache_load(c, path, file, &info, &d, &name, &err) == SH_S_OK;
        sh_descriptor_free(d);
        free(name);
    }
    sh_strlist_clear(&names);
    sh_regcache_end_dir(c);
    sh_regcache_close(c);
    sh_descriptor_dir_release(&info);
    free(real);
    close(dfd);
    return valid;
}

static double run_stagehost(const char *dir, const char *cache_dir, variant v, int want)
{
    if (v == COLD || v == COLD_BARE) {
        setenv("STAGEHOST_NO_CACHE", "1", 1);
    } else {
        unsetenv("STAGEHOST_NO_CACHE");
        if (v == FIRST)
            nftw(cache_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    sh_registry reg;
    sh_registry_init(&reg);
    sh_error err;
    sh_env env; /* as a host start would capture it, after the setenv above */
    if (sh_env_capture(&env, &err) != SH_S_OK) {
        failures++;
        return 0;
    }
    sh_regcache_reset_stats();
    sh_status rc = SH_S_OK;
    size_t available = 0;
    double t0 = now_ms();
    if (v == COLD_BARE || v == WARM_BARE)
        available = load_bare(&env, dir);
    else
        rc = sh_discover_dir(&reg, &env, dir, &err);
    double t = now_ms() - t0;
    sh_env_free(&env);
    sh_regcache_stats s;
    sh_regcache_get_stats(&s);
    for (size_t i = 0; i < reg.len; i++)
        available += reg.entries[i].status == SH_PLUGIN_AVAILABLE;
    if (rc != SH_S_OK || available != (size_t)want) {
        fprintf(stderr, "%s: %zu of %d plugins available in %s%s%s\n", variant_names[v], available, want, dir,
                rc == SH_S_OK ? "" : ": ", rc == SH_S_OK ? "" : err.message);
        for (size_t i = 0; i < reg.len && i < 3; i++)
            if (reg.entries[i].reason)
                fprintf(stderr, "  %s: %s\n", reg.entries[i].path, reg.entries[i].reason);
        failures++;
    }
    if (((v == WARM || v == WARM_BARE) && (s.hits != (unsigned long)want || s.misses || s.listings != 1)) ||
        (v == FIRST && s.writes != 1)) {
        fprintf(stderr, "%s: %lu hits, %lu misses, %lu writes, %lu listings for %d descriptors\n",
                variant_names[v], s.hits, s.misses, s.writes, s.listings, want);
        failures++;
    }
    sh_registry_free(&reg);
    return t;
}

typedef struct row {
    const char *measure;
    int plugins;
    double stagehost, floor;
    const char *goal;
    int pass; /* 1 pass, 0 fail, -1 no goal */
} row;

static void bench(const char *root, int n, int rounds, row *rows)
{
    char dir[PATH_MAX], cache[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/plugins-%d", root, n);
    snprintf(cache, sizeof cache, "%s/cache-%d", root, n);
    if (!make_plugins(dir, n)) {
        fprintf(stderr, "cannot create %d descriptors in %s\n", n, dir);
        failures++;
        return;
    }
    setenv("STAGEHOST_CACHE_DIR", cache, 1);
    settle(dir);
    /* Warm-up: every variant once, unmeasured; the last leaves a valid cache behind for WARM. */
    run_floor(dir, n);
    run_stagehost(dir, cache, COLD, n);
    run_stagehost(dir, cache, FIRST, n);
    run_stagehost(dir, cache, WARM, n);
    run_stagehost(dir, cache, COLD_BARE, n);
    run_stagehost(dir, cache, WARM_BARE, n);
    double floor_t[16], t[5][16];
    for (int r = 0; r < rounds; r++) {
        floor_t[r] = run_floor(dir, n);
        for (int v = COLD; v <= WARM_BARE; v++)
            t[v][r] = run_stagehost(dir, cache, (variant)v, n);
    }
    double f = median(floor_t, rounds), m[5];
    for (int v = COLD; v <= WARM_BARE; v++)
        m[v] = median(t[v], rounds);
    rows[0] = (row){variant_names[COLD], n, m[COLD], f, "<= 1.2x floor", m[COLD] <= COLD_GOAL_RATIO * f};
    rows[1] = (row){variant_names[FIRST], n, m[FIRST], f, "-", -1};
    rows[2] = n >= 10000 ? (row){variant_names[WARM], n, m[WARM], f, "<= 15 ms", m[WARM] <= WARM_GOAL_MS}
                         : (row){variant_names[WARM], n, m[WARM], f, "-", -1};
    rows[3] = (row){variant_names[COLD_BARE], n, m[COLD_BARE], f, "-", -1};
    rows[4] = (row){variant_names[WARM_BARE], n, m[WARM_BARE], f, "-", -1};
    nftw(dir, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/sh-bench-discovery-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    row rows[10] = {{0}};
    bench(root, 1000, ROUNDS_SMALL, rows);
    bench(root, 10000, ROUNDS_LARGE, rows + 5);
    nftw(root, rm_entry, 64, FTW_DEPTH | FTW_PHYS);

    printf("\ndiscovery: medians of %d (1,000) and %d (10,000) rounds, milliseconds\n\n", ROUNDS_SMALL, ROUNDS_LARGE);
    printf("%-26s %8s %13s %10s %7s  %-14s %s\n", "measure", "plugins", "stagehost ms", "floor ms", "ratio", "goal",
           "result");
    for (int i = 0; i < 10; i++) {
        if (!rows[i].measure)
            continue;
        printf("%-26s %8d %13.2f %10.2f %6.2fx  %-14s %s\n", rows[i].measure, rows[i].plugins, rows[i].stagehost,
               rows[i].floor, rows[i].stagehost / rows[i].floor, rows[i].goal,
               rows[i].pass < 0 ? "-" : rows[i].pass ? "pass" : "FAIL (goal missed)");
    }
    /* The rows of the one table (test/bench/run): the 10,000-descriptor figures. */
    const row *cold = &rows[5], *warm = &rows[7];
    if (cold->measure) {
        char v[48], f[48];
        snprintf(v, sizeof v, "%.1f ms", cold->stagehost);
        snprintf(f, sizeof f, "%.1f ms", cold->floor);
        sh_bench_row("discovery of 10,000 descriptors, cold vs libconfig parse alone", v, f,
                     cold->stagehost / cold->floor, "<= 1.2x", cold->pass ? SH_BENCH_PASS : SH_BENCH_FAIL);
        snprintf(v, sizeof v, "%.1f ms", warm->stagehost);
        sh_bench_row("discovery of 10,000 descriptors, cached", v, f, warm->stagehost / warm->floor, "<= 15 ms",
                     warm->pass ? SH_BENCH_PASS : SH_BENCH_FAIL);
        /* libpeas (libpeas-dev) pulls in about 90 Debian packages (GObject introspection and its kin): not
         * worth a build dependency for a comparison; the row says so instead of a figure. */
        sh_bench_row("libpeas discovering 10,000 .plugin files (comparison)", "-", "not installed", 0, "-",
                     SH_BENCH_NA);
    }
    printf("\nfloor: scandir + libconfig config_read_file/config_destroy per file, nothing else\n"
           "without registry: the same loads, descriptors freed instead of passed to sh_registry_add\n");
    if (failures)
        fprintf(stderr, "%d unexpected failure(s)\n", failures);
    return failures ? 1 : 0;
}
