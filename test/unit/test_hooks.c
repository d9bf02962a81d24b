/* The five hook dispatch classes, in-process: test/hook-a, -b and -c (test/plugins/hookimpl.c, isolation "none")
 * implement one hookspec, and each call goes through sh_hooks_get and sh_hooks_call. Each answer names the plugin
 * that gave it, so the order and choice of implementations show in the results. The startup problems (a singleton
 * tie, two capability fallbacks) and what chooses between tied implementations come last. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hooks/hooks.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char spec[] =
    "kind = \"doc\"; api = \"1.0\";\n"
    "hooks = (\n"
    "  { name = \"render\"; dispatch = \"singleton\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"none\"; dispatch = \"singleton\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"validate\"; dispatch = \"broadcast-collect\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"strict\"; dispatch = \"broadcast-collect\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"check\"; dispatch = \"broadcast-collect\"; args = ( \"string\" ); returns = \"string\";\n"
    "    best_effort = true; },\n"
    "  { name = \"changed\"; dispatch = \"broadcast-notify\"; args = ( \"string\", \"string\" ); },\n"
    "  { name = \"transform\"; dispatch = \"chain\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"stopper\"; dispatch = \"chain\"; args = ( \"string\" ); returns = \"string\"; },\n"
    "  { name = \"inc\"; dispatch = \"chain\"; args = ( \"i64\", \"i64\" ); returns = \"i64\"; },\n"
    "  { name = \"parse\"; dispatch = \"capability\"; args = ( \"string\" ); returns = \"string\"; }\n"
    ");\n";

/* Each plugin's implementations, as the body of its descriptor's `hooks` list. */
static const char hooks_a[] =
    "{ hook = \"doc.render\"; symbol = \"h_tag\"; priority = 5; },\n"
    "{ hook = \"doc.validate\"; symbol = \"h_tag\"; priority = 1; },\n"
    "{ hook = \"doc.strict\"; symbol = \"h_tag\"; priority = 9; },\n"
    "{ hook = \"doc.check\"; symbol = \"h_fail\"; priority = 9; },\n"
    "{ hook = \"doc.changed\"; symbol = \"h_notify_fail\"; priority = 9; },\n"
    "{ hook = \"doc.transform\"; symbol = \"h_append\"; priority = 3; },\n"
    "{ hook = \"doc.stopper\"; symbol = \"h_append\"; priority = 3; },\n"
    "{ hook = \"doc.inc\"; symbol = \"h_add\"; },\n"
    "{ hook = \"doc.parse\"; symbol = \"h_tag\"; priority = 1; supports = ( \"json\", \"yaml\" ); }";
static const char hooks_b[] =
    "{ hook = \"doc.render\"; symbol = \"h_tag\"; priority = 2; },\n"
    "{ hook = \"doc.validate\"; symbol = \"h_tag\"; priority = 1; },\n"
    "{ hook = \"doc.strict\"; symbol = \"h_fail\"; priority = 5; },\n"
    "{ hook = \"doc.check\"; symbol = \"h_tag\"; },\n"
    "{ hook = \"doc.changed\"; symbol = \"h_notify\"; },\n"
    "{ hook = \"doc.transform\"; symbol = \"h_append\"; priority = 2; },\n"
    "{ hook = \"doc.stopper\"; symbol = \"h_stop\"; priority = 2; },\n"
    "{ hook = \"doc.inc\"; symbol = \"h_add\"; },\n"
    "{ hook = \"doc.parse\"; symbol = \"h_tag\"; priority = 5; supports = ( \"yaml\" ); }";
static const char hooks_c[] =
    "{ hook = \"doc.validate\"; symbol = \"h_tag\"; priority = 7; },\n"
    "{ hook = \"doc.strict\"; symbol = \"h_tag\"; },\n"
    "{ hook = \"doc.check\"; symbol = \"h_tag\"; },\n"
    "{ hook = \"doc.changed\"; symbol = \"h_notify\"; },\n"
    "{ hook = \"doc.transform\"; symbol = \"h_append\"; priority = 1; },\n"
    "{ hook = \"doc.stopper\"; symbol = \"h_append\"; priority = 1; },\n"
    "{ hook = \"doc.inc\"; symbol = \"h_add\"; },\n"
    "{ hook = \"doc.parse\"; symbol = \"h_tag\"; fallback = true; }";

static char dir[256];
static sh_env env;
static sh_runtime rt;
static sh_hooks *table;

/* test/hook-LETTER, in-process, in directory `in`, with `hooks` as its implementations. */
static void hook_plugin(const char *in, char letter, const char *hooks)
{
    char lib[32], path[PATH_MAX], text[4096];
    snprintf(lib, sizeof lib, "libhook_%c.so", letter);
    tu_link_test_lib(in, lib);
    snprintf(path, sizeof path, "%s/hook-%c.plugin", in, letter);
    snprintf(text, sizeof text,
             "format = 1; name = \"test/hook-%c\"; version = \"1.0.0\"; library = \"%s\"; abi = \"1.0\";\n"
             "isolation = \"none\"; stages = ( { type = \"numbers\"; }, { type = \"ctx\"; } );\n"
             "hooks = ( %s );\n",
             letter, lib, hooks);
    tu_write_file(path, text);
}

static void write_spec(const char *in, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", in, name);
    tu_write_file(path, text);
}

/* Starts the runtime of the test on directory `in`, with the environment variables `extra` (NAME=VALUE, ended
 * by NULL; may be NULL) and the test's state directory, and gets its hook table, as a front end does. */
static sh_status start(const char *in, const char *const *extra, sh_error *err)
{
    char state[PATH_MAX];
    snprintf(state, sizeof state, "%s/state", dir);
    tu_env(&env, state, extra);
    const char *dirs[] = {in};
    if (sh_runtime_start(&rt, &env, false, NULL, dirs, 1, err) != SH_S_OK)
        fail_msg("%s", err->message);
    table = NULL;
    return sh_hooks_get(&rt, &table, err);
}

/* The caller owns the table, which holds in-process instances of the runtime's pool: it goes first. */
static void stop(void)
{
    sh_hooks_free(table);
    table = NULL;
    sh_runtime_stop(&rt);
    sh_env_free(&env);
}

/* Calls `name` with string arguments `a` (and `b` unless NULL), and the capability tags. */
static sh_status call(const char *name, const char *a, const char *b, const char *const *tags, size_t ntags,
                      sh_value **result, sh_error *err)
{
    sh_hook *hk = sh_hooks_find(table, name);
    if (!hk)
        fail_msg("no hook '%s' in the table", name);
    sh_value *args[2] = {sh_value_cstring(a), b ? sh_value_cstring(b) : NULL};
    *result = NULL;
    sh_status rc = sh_hooks_call(table, hk, (const sh_value *const *)args, b ? 2 : 1, tags, ntags, result, err);
    sh_value_free(args[0]);
    sh_value_free(args[1]);
    return rc;
}

/* Asserts that `name` answers the string `want`. */
static void expect_answer(const char *name, const char *arg, const char *const *tags, size_t ntags, const char *want)
{
    sh_value *r;
    sh_error err;
    if (call(name, arg, NULL, tags, ntags, &r, &err) != SH_S_OK)
        fail_msg("%s: %s", name, err.message);
    assert_non_null(r);
    assert_string_equal(sh_value_get_string(r, NULL), want);
    sh_value_free(r);
}

/* Asserts that the broadcast-collect hook `name` answers the strings `wants` (NULL-terminated), in order. */
static void expect_collected(const char *name, const char *arg, const char *const *wants)
{
    sh_value *r;
    sh_error err;
    if (call(name, arg, NULL, NULL, 0, &r, &err) != SH_S_OK)
        fail_msg("%s: %s", name, err.message);
    size_t n = 0;
    while (wants[n])
        n++;
    assert_int_equal(sh_value_count(r), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(sh_value_get_string(sh_value_array_get(r, i), NULL), wants[i]);
    sh_value_free(r);
}

static void singleton_the_highest_priority_answers(void **state)
{
    (void)state;
    expect_answer("doc.render", "hi", NULL, 0, "a:hi");
    sh_value *r;
    sh_error err;
    assert_int_equal(call("doc.none", "hi", NULL, NULL, 0, &r, &err), SH_S_STAGE);
    tu_expect_contains(err.message, "singleton hook 'doc.none' has no implementation");
    assert_null(r);
}

static void chain_passes_each_output_on(void **state)
{
    (void)state;
    expect_answer("doc.transform", "x", NULL, 0, "xabc");
    /* b stops the chain: what was passed into it is the answer, and c is not called. */
    expect_answer("doc.stopper", "x", NULL, 0, "xa");

    /* A scalar chain: the running sum is each link's first argument. */
    sh_value *args[2] = {sh_value_int(1), sh_value_int(10)}, *r = NULL;
    sh_error err;
    sh_hook *inc = sh_hooks_find(table, "doc.inc");
    assert_non_null(inc);
    if (sh_hooks_call(table, inc, (const sh_value *const *)args, 2, NULL, 0, &r, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    assert_int_equal(sh_value_get_int(r), 31);
    sh_value_free(r);
    sh_value_free(args[0]);
    sh_value_free(args[1]);
}

static void capability_picks_a_cover_of_the_tags_then_fallback(void **state)
{
    (void)state;
    const char *yaml[] = {"yaml"}, *json[] = {"json"}, *both[] = {"yaml", "json"}, *xml[] = {"xml", "toml"},
               *yaml_xml[] = {"yaml", "xml"};
    expect_answer("doc.parse", "x", yaml, 1, "b:x"); /* a supports it too, with a lower priority */
    expect_answer("doc.parse", "x", json, 1, "a:x");
    expect_answer("doc.parse", "x", both, 2, "a:x"); /* b shares one tag at a higher priority, a covers both */
    expect_answer("doc.parse", "x", xml, 2, "c:x"); /* nobody supports them: the fallback */
    expect_answer("doc.parse", "x", yaml_xml, 2, "c:x"); /* supporting one of the tags is not enough */
    expect_answer("doc.parse", "x", NULL, 0, "b:x"); /* nothing asked: every implementation covers it */
}

static void broadcast_collect_in_priority_order(void **state)
{
    (void)state;
    /* Priorities 7, 1, 1: the tie goes by plugin name. */
    expect_collected("doc.validate", "x", (const char *const[]){"c:x", "a:x", "b:x", NULL});
    /* Best effort: a's failure is skipped. */
    expect_collected("doc.check", "x", (const char *const[]){"b:x", "c:x", NULL});
    /* Fail-fast: b's failure is the call's. */
    sh_value *r;
    sh_error err;
    assert_int_equal(call("doc.strict", "x", NULL, NULL, 0, &r, &err), SH_S_STAGE);
    tu_expect_contains(err.message, "plugin 'test/hook-b'");
    tu_expect_contains(err.message, "plugin b refuses 'x'");
    assert_null(r);
}

static void broadcast_notify_calls_everyone_and_keeps_failures(void **state)
{
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/notified.txt", dir);
    sh_value *r;
    sh_error err;
    /* a fails first (it has the highest priority): b and c are still told, and the call succeeds. */
    if (call("doc.changed", path, "saved", NULL, 0, &r, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    assert_null(r);
    char *text = tu_read_file(path);
    assert_string_equal(text, "b saved\nc saved\n");
    free(text);
}

static int setup(void **state)
{
    (void)state;
    if (!tu_mkdtemp(dir, sizeof dir, "sh-test-hooks"))
        return -1;
    write_spec(dir, "doc.hooks", spec);
    hook_plugin(dir, 'a', hooks_a);
    hook_plugin(dir, 'b', hooks_b);
    hook_plugin(dir, 'c', hooks_c);
    sh_error err;
    if (start(dir, NULL, &err) != SH_S_OK) {
        print_error("%s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop();
    return tu_remove_tree(dir);
}

/* Startup problems stop the table, naming both plugins; a choice by environment settles a singleton tie. */
static void ties_are_startup_problems(void **state)
{
    (void)state;
    char tie[PATH_MAX];
    snprintf(tie, sizeof tie, "%s/tie", dir);
    assert_int_equal(mkdir(tie, 0755), 0);
    write_spec(tie, "tie.hooks",
               "kind = \"tie\"; api = \"1.0\";\n"
               "hooks = (\n"
               "  { name = \"pick\"; dispatch = \"singleton\"; args = ( \"string\" ); returns = \"string\"; },\n"
               "  { name = \"cap\"; dispatch = \"capability\"; args = ( \"string\" ); returns = \"string\"; } );\n");
    hook_plugin(tie, 'd', "{ hook = \"tie.pick\"; symbol = \"h_tag\"; }, "
                          "{ hook = \"tie.cap\"; symbol = \"h_tag\"; fallback = true; }");
    hook_plugin(tie, 'e', "{ hook = \"tie.pick\"; symbol = \"h_tag\"; }, "
                          "{ hook = \"tie.cap\"; symbol = \"h_tag\"; fallback = true; }");
    sh_error err;
    stop(); /* the group's runtime: this test starts its own */
    assert_int_equal(start(tie, NULL, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "the hook system cannot start");
    tu_expect_contains(err.message, "singleton hook 'tie.pick' has two implementations of equal top priority 0: "
                                    "plugin 'test/hook-d'");
    tu_expect_contains(err.message, "and plugin 'test/hook-e'");
    tu_expect_contains(err.message, "STAGEHOST_ACTIVE_TIE=test/hook-d");
    tu_expect_contains(err.message, "capability hook 'tie.cap' has two fallback implementations");
    stop();

    /* The environment chooses the singleton; the second fallback still stops the table. */
    const char *const choose_e[] = {"STAGEHOST_ACTIVE_TIE=test/hook-e", NULL};
    assert_int_equal(start(tie, choose_e, &err), SH_S_CONFIG);
    assert_null(strstr(err.message, "tie.pick"));
    tu_expect_contains(err.message, "capability hook 'tie.cap' has two fallback implementations");
    stop();

    hook_plugin(tie, 'e', "{ hook = \"tie.pick\"; symbol = \"h_tag\"; }");
    sh_status rc = start(tie, choose_e, &err);
    if (rc != SH_S_OK)
        fail_msg("%s", err.message);
    expect_answer("tie.pick", "x", NULL, 0, "e:x");
    stop();
    assert_int_equal(start(dir, NULL, &err), SH_S_OK); /* for the teardown */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(singleton_the_highest_priority_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(chain_passes_each_output_on, setup, teardown),
        cmocka_unit_test_setup_teardown(capability_picks_a_cover_of_the_tags_then_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(broadcast_collect_in_priority_order, setup, teardown),
        cmocka_unit_test_setup_teardown(broadcast_notify_calls_everyone_and_keeps_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(ties_are_startup_problems, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
