/* The loader: magic-block checks, two-way negotiation, and the metadata check, against real libraries built
 * in test/plugins (each breaking one rule), plus an in-process run of a real plugin. */
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

#define ECHO_STAGE "{ type = \"echo\"; }"

/* Writes a descriptor for library `lib` (in the test plugin dir) with the given stages list body, and loads it. */
static sh_descriptor *descriptor(const char *lib, const char *name, const char *version, const char *stages,
                                 const char *entry)
{
    char path[512], body[8192];
    snprintf(path, sizeof path, "%s/d.plugin", tmpdir);
    tu_link_test_lib(tmpdir, lib);
    snprintf(body, sizeof body,
             "format = 1; name = \"%s\"; version = \"%s\"; library = \"%s\"; abi = \"1.0\"; entry = \"%s\";\n"
             "stages = ( %s );\n",
             name, version, lib, entry, stages);
    tu_write_file(path, body);
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK)
        fail_msg("descriptor: %s", err.message);
    return d;
}

static void expect_refused(const char *lib, const char *needle)
{
    sh_descriptor *d = descriptor(lib, "test/abi", "1.0.0", ECHO_STAGE, "stagehost_plugin");
    sh_loaded l;
    sh_error err;
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_LOAD);
    tu_expect_contains(err.message, needle);
    sh_descriptor_free(d);
}

static sh_magic good_magic(void)
{
    sh_entry e = {SH_MAGIC_INIT, NULL};
    return e.magic;
}

static void magic_good_is_accepted(void **state)
{
    (void)state;
    sh_magic m = good_magic();
    sh_error err;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_OK);
}

static void magic_mismatches_name_field_and_both_values(void **state)
{
    (void)state;
    sh_error err;
    sh_magic m = good_magic();
    m.abi_major = 2;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'abi_major' is 2 in the plugin, 1 in the host"));

    m = good_magic();
    m.pointer_size = 4;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'pointer_size' is 4 in the plugin, 8 in the host"));

    m = good_magic();
    m.byte_order = 0x04030201u;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'byte_order'"));

    m = good_magic();
    m.stage_size -= 8;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'stage_size'"));
}

static void magic_newer_minor_needs_at_least_our_sizes(void **state)
{
    (void)state;
    sh_error err;
    /* A plugin built against a newer 1.x: its structs may be larger than ours, never smaller. */
    sh_magic m = good_magic();
    m.abi_minor = SH_ABI_MINOR + 3;
    m.host_size += 16;
    m.plugin_size += 8;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_OK);
    m.host_size = sizeof(sh_host) - 8;
    assert_int_equal(sh_loader_check_magic(&m, "lib.so", &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'host_size'"));
}

static void real_good_plugin_loads_and_negotiates(void **state)
{
    (void)state;
    sh_descriptor *d = descriptor("libabi_good.so", "test/abi", "1.0.0", ECHO_STAGE, "stagehost_plugin");
    sh_loaded l;
    sh_error err;
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_OK);
    assert_int_equal(l.abi, SH_ABI_VERSION(1, 0));
    assert_string_equal(l.plugin->name, "test/abi");
    sh_loader_close(&l);
    sh_descriptor_free(d);
}

static void older_minor_plugin_keeps_loading_on_newer_host(void **state)
{
    (void)state;
    /* The host offers 1.7; a plugin built for 1.0 answers 1.0 and is accepted. */
    sh_descriptor *d = descriptor("libabi_good.so", "test/abi", "1.0.0", ECHO_STAGE, "stagehost_plugin");
    sh_loaded l;
    sh_error err;
    assert_int_equal(sh_loader_open(d, SH_ABI_VERSION(1, 7), &l, &err), SH_S_OK);
    assert_int_equal(l.abi, SH_ABI_VERSION(1, 0));
    sh_loader_close(&l);
    sh_descriptor_free(d);
}

static void broken_plugins_are_refused_with_the_reason(void **state)
{
    (void)state;
    expect_refused("libabi_wrong_major.so", "field 'abi_major' is 2 in the plugin, 1 in the host");
    expect_refused("libabi_bad_magic.so", "field 'magic' is 0xdeadbeef");
    expect_refused("libabi_bad_pointer.so", "field 'pointer_size' is 4");
    expect_refused("libabi_small_host_size.so", "field 'host_size'");
    expect_refused("libabi_newer_answer.so", "the host offered 1.1 and the plugin answered 1.9");
    expect_refused("libabi_refuse.so", "refused ABI 1.1 offered by the host: this test plugin refuses every host");
    expect_refused("libabi_func_entry.so", "is not an sh_entry object (a function");
}

static void missing_entry_symbol_is_named(void **state)
{
    (void)state;
    sh_descriptor *d = descriptor("libabi_good.so", "test/abi", "1.0.0", ECHO_STAGE, "no_such_entry");
    sh_loaded l;
    sh_error err;
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "does not export the entry symbol 'no_such_entry'"));
    sh_descriptor_free(d);
}

static void metadata_mismatch_names_the_field(void **state)
{
    (void)state;
    sh_loaded l;
    sh_error err;
    sh_descriptor *d = descriptor("libabi_good.so", "test/abi", "2.0.0", ECHO_STAGE, "stagehost_plugin");
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'version' is '1.0.0' in the binary, '2.0.0' in the descriptor"));
    sh_descriptor_free(d);

    d = descriptor("libabi_good.so", "test/other", "1.0.0", ECHO_STAGE, "stagehost_plugin");
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "field 'name' is 'test/abi' in the binary, 'test/other' in the descriptor"));
    sh_descriptor_free(d);

    d = descriptor("libabi_good.so", "test/abi", "1.0.0", ECHO_STAGE ", { type = \"extra\"; }", "stagehost_plugin");
    assert_int_equal(sh_loader_open(d, SH_ABI_CURRENT, &l, &err), SH_S_LOAD);
    assert_non_null(strstr(err.message, "declares type 'extra', which the binary does not provide"));
    sh_descriptor_free(d);
}

static int collect(void *sink, sh_value *item) { return sh_values_push(sink, item); }

static void inproc_runs_a_real_plugin(void **state)
{
    (void)state;
    sh_descriptor *d = descriptor("libfaults.so", "test/faults", "1.0.0", tu_faults_stages(), "stagehost_plugin");
    sh_inproc *ip = NULL;
    sh_error err;
    if (sh_inproc_open(d, NULL, &ip, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    sh_invocation inv = {.execution_id = "x1", .task_id = "t1", .stage = "src", .plugin = "test/faults",
                         .attempt = 2};
    uint32_t id;
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "echo", NULL, &id, &err), SH_S_OK);
    sh_values out = {0};
    assert_int_equal(sh_inproc_process(ip, id, &inv, NULL, 0, collect, &out, NULL, NULL, &err), SH_S_OK);
    assert_int_equal(out.len, 1);
    assert_string_equal(sh_value_get_string(sh_value_map_get(out.items[0], "stage"), NULL), "src");
    assert_int_equal(sh_value_get_int(sh_value_map_get(out.items[0], "attempt")), 2);
    assert_true(sh_value_get_bool(sh_value_map_get(out.items[0], "tmp_dir_exists")));
    sh_values_clear(&out);

    assert_int_equal(sh_inproc_create_stage(ip, &inv, "fail", NULL, &id, &err), SH_S_OK);
    assert_int_equal(sh_inproc_process(ip, id, &inv, NULL, 0, collect, &out, NULL, NULL, &err), SH_S_STAGE);
    assert_string_equal(err.message, "refusing 0 items on purpose");
    assert_int_equal(sh_inproc_create_stage(ip, &inv, "badconfig", NULL, &id, &err), SH_S_STAGE);
    assert_non_null(strstr(err.message, "cannot build stage 'src'"));
    sh_inproc_close(ip);
    sh_descriptor_free(d);
}

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(tmpdir, sizeof tmpdir, "sh-test-loader") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    /* The descriptor and the library links (the links themselves: the tree walk does not follow them). */
    return tu_remove_tree(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(magic_good_is_accepted),
        cmocka_unit_test(magic_mismatches_name_field_and_both_values),
        cmocka_unit_test(magic_newer_minor_needs_at_least_our_sizes),
        cmocka_unit_test(real_good_plugin_loads_and_negotiates),
        cmocka_unit_test(older_minor_plugin_keeps_loading_on_newer_host),
        cmocka_unit_test(broken_plugins_are_refused_with_the_reason),
        cmocka_unit_test(missing_entry_symbol_is_named),
        cmocka_unit_test(metadata_mismatch_names_the_field),
        cmocka_unit_test(inproc_runs_a_real_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
