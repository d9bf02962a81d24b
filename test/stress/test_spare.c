/* After a crash the worker layer starts a replacement at once and leaves it with the zygote: the next start for
 * the same plugin, configuration and policy adopts it (it is already running); a start that asks for something
 * else does not; and a spare nobody takes is ended, so no process is left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry/descriptor.h"
#include "testutil.h"
#include "worker/worker.h"
#include "worker/zygote.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const sh_invocation inv = {.execution_id = "spare", .task_id = "t", .pipeline = "p", .stage = "s",
                                  .plugin = "test/faults", .base_dir = "/tmp", .attempt = 1};

/* The living (not zombie) children of `parent`; the first goes to *first. */
static int children(pid_t parent, pid_t *first)
{
    int live = 0, f = 0;
    tu_children(parent, &live, &f, NULL);
    *first = f;
    return live;
}

static sh_worker *start(const sh_descriptor *d, sh_zygote *z, const sh_value *config)
{
    sh_worker_limits limits;
    memset(&limits, 0, sizeof limits);
    limits.timeout_ms = 20000;
    sh_worker *w = NULL;
    sh_error err;
    if (sh_worker_start(d, &limits, config, NULL, z, &w, &err) != SH_S_OK)
        fail_msg("worker start: %s", err.message);
    return w;
}

static void crash(sh_worker *w)
{
    sh_values out = {0};
    sh_error err;
    assert_int_equal(sh_worker_call(w, &inv, "segv", NULL, NULL, 0, false, &out, &err), SH_S_CRASH);
    assert_false(sh_worker_alive(w));
}

static void echo(sh_worker *w)
{
    sh_value *item = sh_value_cstring("hello");
    sh_values out = {0};
    sh_error err;
    if (sh_worker_call(w, &inv, "echo", NULL, (const sh_value *const *)&item, 1, false, &out, &err) != SH_S_OK)
        fail_msg("echo: %s", err.message);
    assert_int_equal(out.len, 1);
    assert_true(sh_value_equal(out.items[0], item));
    sh_values_clear(&out);
    sh_value_free(item);
}

static void test_spare(void **state)
{
    (void)state;
    char dir[256];
    assert_non_null(tu_mkdtemp(dir, sizeof dir, "sh-test-spare"));
    char path[PATH_MAX];
    tu_faults_plugin(dir, path, sizeof path);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK)
        fail_msg("descriptor: %s", err.message);
    sh_zygote *z = NULL;
    assert_int_equal(sh_zygote_start(&z, &err), SH_S_OK);
    pid_t zp = sh_zygote_pid(z), spare = 0;

    /* A crash leaves exactly one process with the zygote: the replacement, which the next equal start adopts. */
    sh_worker *a = start(d, z, NULL);
    crash(a);
    sh_worker_stop(a);
    assert_int_equal(children(zp, &spare), 1);
    sh_worker *b = start(d, z, NULL);
    assert_int_equal(sh_worker_pid(b), spare);
    echo(b);

    /* A start with another configuration does not take a spare made for the first. */
    crash(b);
    sh_worker_stop(b);
    assert_int_equal(children(zp, &spare), 1);
    sh_value *config = sh_value_map();
    assert_int_equal(sh_value_map_set(config, "other", sh_value_int(1)), SH_OK);
    sh_worker *c = start(d, z, config);
    assert_int_not_equal(sh_worker_pid(c), spare);
    echo(c);

    /* A spare nobody took ends once it is stale, at the next start: only the live workers remain. */
    struct timespec ts = {5, 300000000};
    nanosleep(&ts, NULL);
    sh_worker *e = start(d, z, config);
    pid_t first;
    assert_int_equal(children(zp, &first), 2);
    sh_worker_stop(c);
    sh_worker_stop(e);
    assert_int_equal(children(zp, &first), 0);

    sh_value_free(config);
    sh_zygote_stop(z);
    sh_descriptor_free(d);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_spare)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
