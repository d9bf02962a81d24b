/* A 1.1 host with plugins built for 1.0 and 1.1: the struct sizes the magic block may report for each, and
 * finish() as the in-process runner drives it (after the last batch, in place of any, once, never read past a
 * 1.0 stage's size), against real libraries built in test/plugins. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "plugin/inproc.h"
#include "plugin/loader.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

/* The magic block of a plugin built against ABI 1.0. */
static sh_magic magic_1_0(void)
{
    sh_entry e = {SH_MAGIC_INIT, NULL};
    e.magic.abi_minor = 0;
    e.magic.stage_size = (uint32_t)SH_THROUGH(sh_stage, destroy);
    return e.magic;
}

static void magic_of_1_0_is_accepted(void **state)
{
    (void)state;
    sh_error err;
    sh_magic m = magic_1_0();
    assert_true(m.stage_size < sizeof(sh_stage));
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_OK);
    /* Our own sizes are fine for an older minor too: a plugin may fill a struct it does not use. */
    m.stage_size = sizeof(sh_stage);
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_OK);
}

static void magic_of_1_0_is_bounded_both_ways(void **state)
{
    (void)state;
    sh_error err;
    sh_magic m = magic_1_0();
    m.stage_size -= 8;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    tu_expect_contains(err.message, "field 'stage_size' is 24 in the plugin, 40 in the host; a plugin built for "
                                    "ABI 1.0 has 32 to 40 there");
    m = magic_1_0();
    m.host_size = sizeof(sh_host) + 8;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    tu_expect_contains(err.message, "field 'host_size' is 240 in the plugin");
    m = magic_1_0();
    m.size = sizeof(sh_magic) - 4;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    tu_expect_contains(err.message, "field 'size' is 44 in the plugin");
}

static void magic_of_this_minor_must_match_exactly(void **state)
{
    (void)state;
    sh_error err;
    sh_magic m = magic_1_0();
    m.abi_minor = SH_ABI_MINOR; /* claims 1.1 with a 1.0 stage */
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    tu_expect_contains(err.message, "field 'stage_size' is 32 in the plugin, 40 in the host");
}

/* Links test library `lib` into the temporary directory beside a descriptor with the given stage types, and
 * opens it in this process. */
static sh_inproc *open_plugin(const char *lib, const char *name, const char *version, const char *types)
{
    char path[512], link[512], target[512], body[1024];
    const char *dir = getenv("SH_TEST_PLUGIN_DIR");
    snprintf(link, sizeof link, "%s/%s", tmpdir, lib);
    snprintf(target, sizeof target, "%s/%s", dir ? dir : "build/test/plugins", lib);
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    snprintf(path, sizeof path, "%s/%s.plugin", tmpdir, lib);
    snprintf(body, sizeof body,
             "format = 1; name = \"%s\"; version = \"%s\"; library = \"%s\"; abi = \"1.0\"; stages = ( %s );\n",
             name, version, lib, types);
    tu_write_file(path, body);
    sh_descriptor *d = NULL;
    sh_inproc *ip = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK || sh_inproc_open(d, NULL, &ip, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    sh_descriptor_free(d);
    return ip;
}

static int collect(void *sink, sh_value *item) { return sh_values_push(sink, item); }

static const sh_invocation inv = {.execution_id = "x", .task_id = "t", .stage = "s", .plugin = "p", .attempt = 1};

static int64_t field(const sh_value *item, const char *key) { return sh_value_get_int(sh_value_map_get(item, key)); }

static sh_value *item_with_content(const char *text)
{
    sh_value *m = sh_value_map();
    assert_int_equal(sh_value_map_set(m, "content", sh_value_string(text, strlen(text))), SH_S_OK);
    return m;
}

static void finish_follows_the_last_batch(void **state)
{
    (void)state;
    sh_inproc *ip = open_plugin("libfinish.so", "test/finish", "1.1.0", "{ type = \"total\"; }");
    assert_int_equal(sh_inproc_abi(ip), SH_ABI_VERSION(1, 1));
    sh_value *config = sh_value_map();
    sh_value_map_set(config, "pass", sh_value_bool(true));
    uint32_t id;
    sh_error err;
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "total", config, &id, &err), SH_S_OK);
    sh_value *batch[] = {item_with_content("abc"), item_with_content("de")};
    sh_values out = {0};
    for (int k = 0; k < 2; k++)
        assert_int_equal(sh_inproc_process(ip, id, &inv, (const sh_value *const *)batch, 2, collect, &out, NULL, NULL,
                                           &err),
                         SH_S_OK);
    assert_int_equal(out.len, 4);
    assert_int_equal(sh_inproc_finish(ip, id, &inv, collect, &out, NULL, NULL, &err), SH_S_OK);
    assert_int_equal(out.len, 5);
    assert_int_equal(field(out.items[4], "items"), 4);
    assert_int_equal(field(out.items[4], "bytes"), 10);
    assert_int_equal(field(out.items[4], "batches"), 2);
    /* Once: no more batches, no second finish. */
    assert_int_equal(sh_inproc_process(ip, id, &inv, NULL, 0, collect, &out, NULL, NULL, &err), SH_S_STAGE);
    tu_expect_contains(err.message, "has finished: it takes no more input");
    assert_int_equal(sh_inproc_finish(ip, id, &inv, collect, &out, NULL, NULL, &err), SH_S_STAGE);
    assert_int_equal(out.len, 5);
    sh_inproc_destroy_stage(ip, id);
    sh_values_clear(&out);
    sh_value_free(batch[0]);
    sh_value_free(batch[1]);
    sh_value_free(config);
    sh_inproc_close(ip);
}

static void finish_runs_for_a_stage_no_batch_reached(void **state)
{
    (void)state;
    sh_inproc *ip = open_plugin("libfinish.so", "test/finish", "1.1.0", "{ type = \"total\"; }");
    uint32_t id;
    sh_error err;
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "total", NULL, &id, &err), SH_S_OK);
    sh_values out = {0};
    assert_int_equal(sh_inproc_finish(ip, id, &inv, collect, &out, NULL, NULL, &err), SH_S_OK);
    assert_int_equal(out.len, 1);
    assert_int_equal(field(out.items[0], "items"), 0);
    assert_int_equal(field(out.items[0], "batches"), 0);
    sh_values_clear(&out);
    sh_inproc_close(ip); /* destroys the stage */
}

static void a_failing_finish_reports_its_message(void **state)
{
    (void)state;
    sh_inproc *ip = open_plugin("libfinish.so", "test/finish", "1.1.0", "{ type = \"total\"; }");
    sh_value *config = sh_value_map();
    sh_value_map_set(config, "fail", sh_value_bool(true));
    uint32_t id;
    sh_error err;
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "total", config, &id, &err), SH_S_OK);
    sh_values out = {0};
    assert_int_equal(sh_inproc_finish(ip, id, &inv, collect, &out, NULL, NULL, &err), SH_S_STAGE);
    assert_string_equal(err.message, "finish failed on purpose after 0 items");
    sh_values_clear(&out);
    sh_value_free(config);
    sh_inproc_close(ip);
}

static void a_1_0_stage_has_no_finish(void **state)
{
    (void)state;
    /* Its sh_stage is the 32 bytes of 1.0, allocated to the byte: reading `finish` would read past it. */
    sh_inproc *ip = open_plugin("libabi_1_0.so", "test/stamp", "1.0.0", "{ type = \"stamp\"; }");
    assert_int_equal(sh_inproc_abi(ip), SH_ABI_VERSION(1, 0));
    uint32_t id;
    sh_error err;
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "stamp", NULL, &id, &err), SH_S_OK);
    sh_value *batch[] = {item_with_content("x")};
    sh_values out = {0};
    assert_int_equal(sh_inproc_process(ip, id, &inv, (const sh_value *const *)batch, 1, collect, &out, NULL, NULL,
                                       &err),
                     SH_S_OK);
    assert_int_equal(sh_inproc_finish(ip, id, &inv, collect, &out, NULL, NULL, &err), SH_S_OK);
    assert_int_equal(out.len, 1);
    assert_int_equal(field(out.items[0], "stamp"), 0);
    assert_int_equal(field(out.items[0], "batch"), 1);
    sh_values_clear(&out);
    sh_value_free(batch[0]);
    sh_inproc_close(ip);
}

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(tmpdir, sizeof tmpdir, "sh-test-abi") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tu_remove_tree(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(magic_of_1_0_is_accepted),
        cmocka_unit_test(magic_of_1_0_is_bounded_both_ways),
        cmocka_unit_test(magic_of_this_minor_must_match_exactly),
        cmocka_unit_test(finish_follows_the_last_batch),
        cmocka_unit_test(finish_runs_for_a_stage_no_batch_reached),
        cmocka_unit_test(a_failing_finish_reports_its_message),
        cmocka_unit_test(a_1_0_stage_has_no_finish),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
