/* The instance cache: idle instances expire after the TTL, the least recently used worker goes when a new one
 * would exceed max_workers, unload by plugin name, and the live worker count (in-process instances are not
 * workers; a dead worker is dropped when handed back). Three plugins (test/faults, test/marker, test/hook-a) in
 * worker processes forked by the host, unconfined. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/pool.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char dir[256];
static sh_descriptor *faults, *marker, *hook;

static sh_descriptor *load(const char *path)
{
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    return d;
}

/* Writes DIR/NAME.plugin for the test library `lib` with `body` after its library line, and loads it. */
static sh_descriptor *plugin(const char *file, const char *name, const char *version, const char *lib,
                             const char *body)
{
    char path[PATH_MAX], text[1024];
    tu_link_test_lib(dir, lib);
    snprintf(path, sizeof path, "%s/%s.plugin", dir, file);
    snprintf(text, sizeof text,
             "format = 1; name = \"%s\"; version = \"%s\"; library = \"%s\"; abi = \"1.0\";\n%s\n", name, version,
             lib, body);
    tu_write_file(path, text);
    return load(path);
}

static sh_pool *pool_new(int64_t ttl_ms, size_t max_workers)
{
    sh_pool_config cfg = {.ttl_ms = ttl_ms, .max_workers = max_workers};
    sh_pool *p = sh_pool_new(&cfg, NULL, NULL);
    assert_non_null(p);
    return p;
}

/* The instance of `d`, warm or new as `want_reused` says, marked in use. */
static sh_instance *acquire(sh_pool *p, const sh_descriptor *d, sh_isolation iso, bool want_reused)
{
    sh_limits limits = {.timeout_ms = 20000};
    sh_instance *in = NULL;
    bool reused = !want_reused;
    sh_error err;
    if (sh_pool_acquire(p, d, iso, &limits, NULL, NULL, &in, &reused, &err) != SH_S_OK)
        fail_msg("acquire %s: %s", d ? d->name : "built-ins", err.message);
    assert_non_null(in);
    assert_int_equal(reused, want_reused);
    return in;
}

/* Acquires a new worker of `d` and hands it back at once: it stays warm. */
static void warm(sh_pool *p, const sh_descriptor *d)
{
    sh_pool_release(p, acquire(p, d, SH_ISOLATION_PROCESS, false));
}

/* Whether a warm worker of `d` is cached; if so it is handed back again. */
static bool is_warm(sh_pool *p, const sh_descriptor *d)
{
    sh_instance *in = sh_pool_take_warm(p, d, SH_ISOLATION_PROCESS);
    if (in)
        sh_pool_release(p, in);
    return in != NULL;
}

static void count_entry(void *ctx, const char *plugin, sh_isolation iso, int pid, int64_t idle_ms)
{
    (void)plugin, (void)iso, (void)pid, (void)idle_ms;
    ++*(size_t *)ctx;
}

/* How many instances the pool holds, workers or not, in use or not. */
static size_t cached(const sh_pool *p)
{
    size_t n = 0;
    sh_pool_each(p, count_entry, &n);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void idle_instances_expire_after_the_ttl(void **state)
{
    (void)state;
    sh_pool *p = pool_new(60000, 0);
    warm(p, faults);
    assert_int_equal(sh_pool_expire(p), 0);
    assert_true(is_warm(p, faults));
    sh_pool_free(p);

    p = pool_new(1, 0);
    warm(p, faults);
    sh_instance *busy = acquire(p, marker, SH_ISOLATION_PROCESS, false);
    assert_int_equal(sh_pool_live_workers(p), 2);
    sleep_ms(20);
    /* The idle one goes; the one in use stays however long it has been out. */
    assert_int_equal(sh_pool_expire(p), 1);
    assert_int_equal(sh_pool_live_workers(p), 1);
    assert_null(sh_pool_take_warm(p, faults, SH_ISOLATION_PROCESS));
    sh_pool_release(p, busy);
    sleep_ms(20);
    /* Taking a warm instance expires first. */
    assert_null(sh_pool_take_warm(p, marker, SH_ISOLATION_PROCESS));
    assert_int_equal(sh_pool_live_workers(p), 0);
    sh_pool_free(p);
}

static void the_least_recently_used_worker_goes_beyond_max_workers(void **state)
{
    (void)state;
    sh_pool *p = pool_new(0, 2);
    warm(p, faults);
    warm(p, marker);
    assert_true(is_warm(p, faults)); /* now marker is the least recently used */
    warm(p, hook);
    assert_int_equal(sh_pool_live_workers(p), 2);
    assert_false(is_warm(p, marker));
    assert_true(is_warm(p, faults));
    assert_true(is_warm(p, hook));

    /* With every worker in use, the limit gives way rather than waiting. */
    sh_instance *a = acquire(p, faults, SH_ISOLATION_PROCESS, true);
    sh_instance *b = acquire(p, hook, SH_ISOLATION_PROCESS, true);
    sh_instance *c = acquire(p, marker, SH_ISOLATION_PROCESS, false);
    assert_int_equal(sh_pool_live_workers(p), 3);
    sh_pool_release(p, a);
    sh_pool_release(p, b);
    sh_pool_release(p, c);
    /* The next new worker makes room down to the limit, least recently used first. */
    sh_instance *again = acquire(p, faults, SH_ISOLATION_CALL, false);
    assert_int_equal(sh_pool_live_workers(p), 2);
    assert_false(is_warm(p, faults));
    assert_false(is_warm(p, hook));
    assert_true(is_warm(p, marker));
    sh_pool_release(p, again);
    sh_pool_free(p);
}

static void unload_by_name(void **state)
{
    (void)state;
    sh_pool *p = pool_new(0, 0);
    warm(p, faults);
    warm(p, marker);
    sh_pool_release(p, acquire(p, faults, SH_ISOLATION_NONE, false)); /* a second instance of the same plugin */
    assert_int_equal(sh_pool_unload(p, "test/faults"), 2);
    assert_int_equal(sh_pool_unload(p, "test/nothing"), 0);
    assert_int_equal(sh_pool_live_workers(p), 1);
    assert_false(is_warm(p, faults));
    assert_true(is_warm(p, marker));

    /* An instance in use is not taken from its caller. */
    sh_instance *busy = acquire(p, marker, SH_ISOLATION_PROCESS, true);
    assert_int_equal(sh_pool_unload(p, "test/marker"), 0);
    sh_pool_release(p, busy);
    assert_int_equal(sh_pool_unload(p, "test/marker"), 1);
    assert_int_equal(sh_pool_live_workers(p), 0);
    sh_pool_free(p);
}

static void live_workers_counts_worker_processes(void **state)
{
    (void)state;
    sh_pool *p = pool_new(0, 0);
    assert_int_equal(sh_pool_live_workers(p), 0);
    sh_instance *builtins = acquire(p, NULL, SH_ISOLATION_NONE, false);
    sh_instance *inproc = acquire(p, faults, SH_ISOLATION_NONE, false);
    assert_int_equal(sh_pool_live_workers(p), 0);
    sh_instance *worker = acquire(p, faults, SH_ISOLATION_PROCESS, false);
    assert_int_equal(sh_pool_live_workers(p), 1); /* in use, still counted */
    sh_pool_release(p, builtins);
    sh_pool_release(p, inproc);

    /* A worker that died is dropped when handed back: the next call gets a fresh one. */
    sh_invocation inv = {.execution_id = "pool", .task_id = "t", .stage = "s", .plugin = "test/faults",
                         .attempt = 1};
    sh_values in = {0}, out = {0};
    sh_call_usage usage;
    sh_error err;
    assert_int_equal(sh_instance_call(worker, &inv, "segv", NULL, 0, &in, &out, &usage, &err), SH_S_CRASH);
    assert_int_equal(cached(p), 3);
    sh_pool_release(p, worker);
    assert_int_equal(sh_pool_live_workers(p), 0);
    assert_int_equal(cached(p), 2); /* the built-ins and the in-process test/faults */
    sh_pool_release(p, acquire(p, faults, SH_ISOLATION_PROCESS, false));
    assert_int_equal(sh_pool_live_workers(p), 1);
    sh_pool_free(p);
}

static int setup(void **state)
{
    (void)state;
    if (!tu_mkdtemp(dir, sizeof dir, "sh-test-pool"))
        return -1;
    char path[PATH_MAX];
    tu_faults_plugin(dir, path, sizeof path);
    faults = load(path);
    marker = plugin("marker", "test/marker", "0.1.0", "libmarker.so",
                    "stages = ( { type = \"mark\"; output = \"document\"; } );");
    hook = plugin("hook-a", "test/hook-a", "1.0.0", "libhook_a.so",
                  "stages = ( { type = \"numbers\"; }, { type = \"ctx\"; } );");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh_descriptor_free(faults);
    sh_descriptor_free(marker);
    sh_descriptor_free(hook);
    return tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_instances_expire_after_the_ttl),
        cmocka_unit_test(the_least_recently_used_worker_goes_beyond_max_workers),
        cmocka_unit_test(unload_by_name),
        cmocka_unit_test(live_workers_counts_worker_processes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
