/* 1,000 crash-and-respawn cycles through the instance cache, the way the engine drives it: the host's open file
 * descriptors, child processes and memory must not grow, and no zombie may remain. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "runtime/pool.h"
#include "testutil.h"
#include "worker/zygote.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CYCLES 1000

/* AddressSanitizer holds freed memory in quarantine, so resident size grows without a leak; there,
 * LeakSanitizer checks for leaks at exit instead. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Children of `parent` (zombies included; the last zombie seen goes to *zombies). */
static int count_children(pid_t parent, pid_t *zombies)
{
    int z = 0;
    int n = tu_children(parent, NULL, NULL, &z);
    *zombies = z;
    return n;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static sh_descriptor *faults_descriptor(char *dir)
{
    char path[PATH_MAX];
    tu_faults_plugin(dir, path, sizeof path);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    unlink(path);
    return d;
}

/* One cycle: a call that crashes its worker, then a call that must succeed on a fresh one. */
static void cycle(sh_pool *pool, const sh_descriptor *d, int i)
{
    sh_limits limits = {.timeout_ms = 10000};
    sh_invocation inv = {.execution_id = "stress", .task_id = "t", .stage = "s", .plugin = d->name, .attempt = 1};
    sh_values in = {0}, out = {0};
    sh_instance *instance;
    bool reused;
    sh_error err;
    sh_call_usage usage;
    if (sh_pool_acquire(pool, d, SH_ISOLATION_PROCESS, &limits, NULL, NULL, &instance, &reused, &err) != SH_S_OK)
        fail_msg("cycle %d: %s", i, err.message);
    assert_int_equal(sh_instance_call(instance, &inv, "segv", NULL, 0, &in, &out, &usage, &err), SH_S_CRASH);
    if (i == 0)
        assert_non_null(strstr(err.message, "SIGSEGV"));
    sh_pool_release(pool, instance);
    assert_int_equal(sh_pool_acquire(pool, d, SH_ISOLATION_PROCESS, &limits, NULL, NULL, &instance, &reused, &err),
                     SH_S_OK);
    assert_false(reused);
    if (sh_instance_call(instance, &inv, "echo", NULL, 0, &in, &out, &usage, &err) != SH_S_OK)
        fail_msg("cycle %d: %s", i, err.message);
    assert_int_equal(out.len, 1);
    sh_values_clear(&out);
    sh_pool_release(pool, instance);
}

static void crash_and_respawn_leaks_nothing(void **state)
{
    (void)state;
    sh_zygote *z = NULL;
    sh_error err;
    assert_int_equal(sh_zygote_start(&z, &err), SH_S_OK);
    char dir[256];
    assert_non_null(tu_mkdtemp(dir, sizeof dir, "sh-stress"));
    sh_descriptor *d = faults_descriptor(dir);
    sh_pool_config cfg = {0};
    sh_pool *pool = sh_pool_new(&cfg, z, NULL);
    assert_non_null(pool);

    /* Warm up first, so one-time allocations (dlopen of nothing, stdio buffers) don't count as growth. */
    for (int i = 0; i < 20; i++)
        cycle(pool, d, i);
    int fds = count_fds();
    pid_t zombie;
    int children = count_children(getpid(), &zombie);
    int workers = count_children(sh_zygote_pid(z), &zombie);
    long rss = rss_kb();
    for (int i = 0; i < CYCLES; i++)
        cycle(pool, d, i);
    int fds_after = count_fds();
    int children_after = count_children(getpid(), &zombie);
    pid_t worker_zombie;
    int workers_after = count_children(sh_zygote_pid(z), &worker_zombie);
    long rss_after = rss_kb();
    print_message("after %d cycles: fds %d -> %d, children %d -> %d, workers %d -> %d, rss %ld -> %ld KiB\n", CYCLES,
                  fds, fds_after, children, children_after, workers, workers_after, rss, rss_after);
    assert_int_equal(fds_after, fds);
    assert_int_equal(children_after, children); /* the zygote */
    assert_int_equal(workers_after, workers);   /* the one warm worker, forked by the zygote */
    assert_int_equal(workers_after, 1);
    assert_int_equal(zombie, 0);
    assert_int_equal(worker_zombie, 0);
    /* Allocator noise is allowed; a leak of even 100 bytes per cycle would show as 100 KiB. */
#ifndef UNDER_ASAN
    assert_true(rss_after - rss < 512);
#endif

    sh_pool_free(pool);
    sh_zygote_stop(z);
    assert_int_equal(count_children(getpid(), &zombie), 0);
    sh_descriptor_free(d);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(crash_and_respawn_leaks_nothing)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
