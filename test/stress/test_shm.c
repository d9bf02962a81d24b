/* The shared buffer between the host and a worker (large items): items of every kind come back intact through
 * it, in a forked call too and when it has to grow; and hostile workers that scribble over it while the host
 * copies out, forge item frames pointing outside it, or try to shrink it fail only their own call: the host
 * survives, and what it accepts is valid (strings are UTF-8). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry/descriptor.h"
#include "worker/shmbuf.h"
#include "testutil.h"
#include "worker/worker.h"
#include "worker/zygote.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sh_zygote *zygote;
static char dir[256];

static const sh_invocation inv = {.execution_id = "shm", .task_id = "t", .pipeline = "p", .stage = "s",
                                  .plugin = "test", .base_dir = "/tmp", .attempt = 1};

/* A descriptor for library `lib` (in SH_TEST_PLUGIN_DIR/`sub`) as plugin `name` with the given stages. */
static sh_descriptor *descriptor(const char *sub, const char *lib, const char *name, const char *stages)
{
    const char *plugins = getenv("SH_TEST_PLUGIN_DIR");
    char target[PATH_MAX], link[PATH_MAX], path[PATH_MAX], text[2048];
    snprintf(target, sizeof target, "%s%s/%s", plugins ? plugins : "build/test/plugins", sub, lib);
    snprintf(link, sizeof link, "%s/%s", dir, lib);
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    snprintf(path, sizeof path, "%s/%s.plugin", dir, lib);
    snprintf(text, sizeof text,
             "format = 1; name = \"%s\"; version = \"1.0.0\"; library = \"%s\"; abi = \"1.0\";\nstages = ( %s );\n",
             name, lib, stages);
    tu_write_file(path, text);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK)
        fail_msg("descriptor: %s", err.message);
    return d;
}

static sh_worker *start(const sh_descriptor *d)
{
    sh_worker_limits limits;
    memset(&limits, 0, sizeof limits);
    limits.timeout_ms = 20000;
    sh_worker *w = NULL;
    sh_error err;
    if (sh_worker_start(d, &limits, NULL, NULL, zygote, &w, &err) != SH_S_OK)
        fail_msg("worker start: %s", err.message);
    return w;
}

static sh_value *big_string(size_t len)
{
    char *s = malloc(len);
    assert_non_null(s);
    /* Multi-byte UTF-8 throughout: "é" is two bytes. */
    for (size_t i = 0; i + 1 < len; i += 2)
        s[i] = (char)0xc3, s[i + 1] = (char)0xa9;
    if (len % 2)
        s[len - 1] = 'x';
    sh_value *v = sh_value_string(s, len);
    free(s);
    assert_non_null(v);
    return v;
}

static sh_value *big_bytes(size_t len)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(i * 7);
    sh_value *v = sh_value_bytes(b, len);
    free(b);
    assert_non_null(v);
    return v;
}

static int setup(void **state)
{
    (void)state;
    sh_error err;
    if (sh_zygote_start(&zygote, &err) != SH_S_OK)
        fail_msg("zygote: %s", err.message);
    assert_non_null(tu_mkdtemp(dir, sizeof dir, "sh-test-shm"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh_zygote_stop(zygote);
    tu_remove_tree(dir);
    return 0;
}

/* Items of every kind, small and large, come back equal from `echo`; the buffer grows when it must. */
static void test_round_trip(void **state)
{
    (void)state;
    sh_descriptor *d = descriptor("", "libfaults.so", "test/faults", tu_faults_stages());
    sh_worker *w = start(d);
    size_t sizes[] = {100 * 1024, 1 << 20, 3 << 20};
    for (int fork_call = 0; fork_call < 2; fork_call++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            sh_value *items[4];
            items[0] = big_string(sizes[k]);
            items[1] = big_bytes(sizes[k] / 2 + 1);
            items[2] = sh_value_map();
            assert_int_equal(sh_value_map_set(items[2], "text", big_string(sizes[k] / 3)), SH_OK);
            items[3] = sh_value_int(42);
            for (int rep = 0; rep < 2; rep++) {
                sh_values out = {0};
                sh_error err;
                if (sh_worker_call(w, &inv, "echo", NULL, (const sh_value *const *)items, 4, fork_call, &out, &err) !=
                    SH_S_OK)
                    fail_msg("echo of %zu bytes (fork %d): %s", sizes[k], fork_call, err.message);
                assert_int_equal(out.len, 4);
                for (int i = 0; i < 4; i++)
                    assert_true(sh_value_equal(out.items[i], items[i]));
                sh_values_clear(&out);
            }
            for (int i = 0; i < 4; i++)
                sh_value_free(items[i]);
        }
    }
    assert_true(sh_worker_alive(w));
    sh_worker_stop(w);
    sh_descriptor_free(d);
}

static sh_descriptor *hostile(const char *attack)
{
    char lib[128], name[128];
    snprintf(lib, sizeof lib, "libhostile_%s.so", attack);
    snprintf(name, sizeof name, "hostile/%s", attack);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    return descriptor("/hostile", lib, name, "{ type = \"attack\"; }");
}

/* A worker that rewrites the buffer with garbage while the host copies its items out: a call fails or returns
 * values that are valid; the host never crashes. */
static void test_scribble(void **state)
{
    (void)state;
    sh_descriptor *d = hostile("shm_scribble");
    sh_value *input = big_bytes(128 * 1024); /* large: the worker gets a shared buffer */
    sh_worker *w = NULL;
    int ok = 0, refused = 0;
    for (int i = 0; i < 40; i++) {
        if (!w)
            w = start(d);
        sh_values out = {0};
        sh_error err;
        sh_status st = sh_worker_call(w, &inv, "attack", NULL, (const sh_value *const *)&input, 1, false, &out, &err);
        if (st == SH_S_OK) {
            ok++;
            for (size_t k = 0; k < out.len; k++) {
                const sh_value *v = out.items[k];
                if (sh_value_type(v) == SH_TYPE_MAP)
                    v = sh_value_map_get(v, "text");
                if (v && sh_value_type(v) == SH_TYPE_STRING) {
                    size_t len = 0;
                    const char *s = sh_value_get_string(v, &len);
                    assert_true(sh_utf8_valid(s, len));
                }
            }
        } else {
            if (refused++ < 3)
                print_message("scribble: refused: %s\n", err.message);
            assert_true(st == SH_S_PROTOCOL || st == SH_S_STAGE || st == SH_S_CRASH);
        }
        sh_values_clear(&out);
        if (!sh_worker_alive(w)) {
            sh_worker_stop(w);
            w = NULL;
        }
    }
    print_message("scribble: %d calls accepted, %d refused\n", ok, refused);
    assert_int_equal(ok + refused, 40);
    sh_worker_stop(w);
    sh_value_free(input);
    sh_descriptor_free(d);
}

/* An item frame whose offset and length wrap around: refused as a protocol error, the worker killed. */
static void test_forge(void **state)
{
    (void)state;
    sh_descriptor *d = hostile("shm_forge");
    sh_value *input = big_bytes(128 * 1024);
    sh_worker *w = start(d);
    sh_values out = {0};
    sh_error err;
    assert_int_equal(sh_worker_call(w, &inv, "attack", NULL, (const sh_value *const *)&input, 1, false, &out, &err),
                     SH_S_PROTOCOL);
    tu_expect_contains(err.message, "outside the");
    tu_expect_contains(err.message, "shared buffer");
    assert_int_equal(out.len, 0);
    assert_false(sh_worker_alive(w));
    sh_worker_stop(w);
    sh_value_free(input);
    sh_descriptor_free(d);
}

/* The buffer cannot be shrunk (it is sealed); pages punched out of it read as zeros and leave the host fine. */
static void test_truncate(void **state)
{
    (void)state;
    sh_descriptor *d = hostile("shm_truncate");
    sh_value *input = big_bytes(128 * 1024);
    sh_worker *w = start(d);
    for (int i = 0; i < 3; i++) {
        sh_values out = {0};
        sh_error err;
        if (sh_worker_call(w, &inv, "attack", NULL, (const sh_value *const *)&input, 1, false, &out, &err) != SH_S_OK)
            fail_msg("truncate attack call %d: %s", i, err.message);
        assert_int_equal(out.len, 1);
        assert_false(sh_value_get_bool(sh_value_map_get(out.items[0], "succeeded")));
        sh_values_clear(&out);
    }
    assert_true(sh_worker_alive(w));
    sh_worker_stop(w);
    sh_value_free(input);
    sh_descriptor_free(d);
}

/* Bounds: no offset or length a worker can send gets past the check, however it overflows. */
static void test_contains(void **state)
{
    (void)state;
    sh_shmbuf s;
    sh_error err;
    assert_int_equal(sh_shmbuf_create(&s, 100, &err), SH_S_OK);
    assert_int_equal(s.size, 1 << 20);
    assert_true(sh_shmbuf_contains(&s, 0, s.size));
    assert_true(sh_shmbuf_contains(&s, s.size, 0));
    assert_false(sh_shmbuf_contains(&s, 1, s.size));
    assert_false(sh_shmbuf_contains(&s, s.size + 1, 0));
    assert_false(sh_shmbuf_contains(&s, UINT64_MAX - 10, 100));
    assert_false(sh_shmbuf_contains(&s, 10, UINT64_MAX - 5));
    assert_false(sh_shmbuf_contains(&s, 1ull << 62, 1ull << 62));
    /* Sealed: neither shrinks nor grows. */
    assert_int_not_equal(ftruncate(s.fd, 0), 0);
    assert_int_not_equal(ftruncate(s.fd, (off_t)s.size * 2), 0);
    sh_shmbuf_release(&s);
    sh_shmbuf none = SH_SHMBUF_NONE;
    assert_false(sh_shmbuf_contains(&none, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_scribble),
        cmocka_unit_test(test_forge),
        cmocka_unit_test(test_truncate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
