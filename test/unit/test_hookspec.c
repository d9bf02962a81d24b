/* Unit tests for hookspec files (sh_hookspec_parse_text, sh_hookspec_load) and the libffi signatures they
 * declare: every type, every dispatch class, and each error with its line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "plugin/ffi.h"
#include "registry/hookspec.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static sh_hookspec *parse_ok(const char *text)
{
    sh_hookspec *s = NULL;
    sh_error err;
    sh_status rc = sh_hookspec_parse_text(text, "t.hooks", &s, &err);
    if (rc != SH_S_OK)
        fprintf(stderr, "unexpected error: %s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    return s;
}

static void parse_fails(const char *text, const char *want)
{
    sh_hookspec *s = NULL;
    sh_error err;
    assert_int_equal(sh_hookspec_parse_text(text, "t.hooks", &s, &err), SH_S_CONFIG);
    assert_null(s);
    tu_expect_contains(err.message, want);
}

#define HEAD "kind = \"doc\"; api = \"1.2\";\n"

static void every_type_and_dispatch(void **state)
{
    (void)state;
    sh_hookspec *s = parse_ok(HEAD "hooks = (\n"
                              "{ name = \"a\"; dispatch = \"singleton\"; args = ( \"i32\", \"u32\", \"i64\", \"u64\", "
                              "\"double\", \"bool\", \"string\", \"bytes\", \"value\" ); returns = \"u64\"; },\n"
                              "{ name = \"b\"; dispatch = \"broadcast-collect\"; best_effort = true; returns = \"value\"; },\n"
                              "{ name = \"c\"; dispatch = \"broadcast-notify\"; description = \"d\"; },\n"
                              "{ name = \"d\"; dispatch = \"chain\"; args = ( \"bytes\", \"i32\" ); returns = \"bytes\"; },\n"
                              "{ name = \"e\"; dispatch = \"capability\"; args = ( \"string\" ); returns = \"bool\"; }\n"
                              ");\n");
    assert_string_equal(s->kind, "doc");
    assert_int_equal(s->api_major, 1);
    assert_int_equal(s->api_minor, 2);
    assert_int_equal(s->count, 5);
    assert_string_equal(s->hooks[0].full_name, "doc.a");
    assert_int_equal(s->hooks[0].sig.nargs, 9);
    assert_int_equal(s->hooks[0].sig.args[8], SH_NT_VALUE);
    assert_int_equal(s->hooks[0].sig.ret, SH_NT_U64);
    assert_int_equal(s->hooks[1].dispatch, SH_DISPATCH_COLLECT);
    assert_true(s->hooks[1].best_effort);
    assert_int_equal(s->hooks[2].sig.ret, SH_NT_VOID);
    assert_string_equal(s->hooks[2].description, "d");
    assert_int_equal(s->hooks[3].dispatch, SH_DISPATCH_CHAIN);
    assert_int_equal(s->hooks[4].dispatch, SH_DISPATCH_CAPABILITY);
    assert_int_equal(s->hooks[2].line, 5);
    /* Every declared signature prepares under both conventions where allowed. */
    for (size_t i = 0; i < s->count; i++) {
        sh_ffi_call c;
        sh_error err;
        assert_int_equal(sh_ffi_prepare(&c, &s->hooks[i].sig, SH_CONV_HOOK, &err), SH_S_OK);
    }
    sh_hookspec_free(s);
}

static void errors_name_the_line(void **state)
{
    (void)state;
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"sometimes\"; }\n);", "t.hooks:3: dispatch 'sometimes'");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"singleton\"; args = ( \"float\" ); }\n);",
                "t.hooks:3: unknown type 'float'");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"singleton\"; returns = \"int\"; }\n);",
                "t.hooks:3: unknown type 'int'");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"singleton\"; },\n{ name = \"a\"; dispatch = \"chain\"; "
                     "args = ( \"i32\" ); returns = \"i32\"; }\n);",
                "t.hooks:4: hook 'a' is declared twice (first at line 3)");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"chain\"; args = ( \"i32\" ); returns = \"i64\"; }\n);",
                "chain hook 'a' must return the type of its first argument");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"broadcast-notify\"; returns = \"i32\"; }\n);",
                "broadcast-notify hook 'a' returns nothing");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"singleton\"; best_effort = true; }\n);",
                "best_effort applies to broadcast-collect hooks only");
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"singleton\"; colour = 1; }\n);", "t.hooks:3:");
    parse_fails("kind = \"Doc\"; api = \"1.0\"; hooks = ( { name = \"a\"; dispatch = \"singleton\"; } );",
                "kind 'Doc' is invalid");
    parse_fails("kind = \"doc\"; api = \"one\"; hooks = ( { name = \"a\"; dispatch = \"singleton\"; } );",
                "api must look like \"1.0\"");
    parse_fails("kind = \"doc\"; api = \"1.0\"; hooks = ( );", "'hooks' is empty");
    parse_fails("kind = \"doc\"; api = \"1.0\";", "missing required key 'hooks'");
    parse_fails("kind = \"doc\" api", "t.hooks:1: syntax error");
    /* Every problem at once. */
    parse_fails(HEAD "hooks = (\n{ name = \"a\"; dispatch = \"x\"; },\n{ name = \"b\"; dispatch = \"singleton\"; "
                     "args = ( \"q\" ); }\n);",
                "t.hooks:4: unknown type 'q'");
}

static void loads_from_a_file(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    assert_non_null(tu_mkdtemp(dir, sizeof dir, "sh-hookspec"));
    snprintf(path, sizeof path, "%s/x.hooks", dir);
    tu_write_file(path, "kind = \"x\"; api = \"1.0\";\nhooks = ( { name = \"y\"; dispatch = \"bogus\"; } );\n");
    sh_hookspec *s = NULL;
    sh_error err;
    assert_int_equal(sh_hookspec_load(path, &s, &err), SH_S_CONFIG);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s:2: dispatch 'bogus'", path);
    tu_expect_contains(err.message, want);
    tu_remove_tree(dir);
}

static void values_convert_with_type_checks(void **state)
{
    (void)state;
    sh_signature sig = {.ret = SH_NT_I32, .nargs = 3, .args = {SH_NT_I32, SH_NT_BYTES, SH_NT_DOUBLE}};
    sh_ffi_call c;
    sh_error err;
    assert_int_equal(sh_ffi_prepare(&c, &sig, SH_CONV_PLAIN, &err), SH_S_OK);
    sh_ffi_args a;
    sh_ffi_args_init(&a, &c);
    sh_value *big = sh_value_int(INT64_C(1) << 40), *text = sh_value_cstring("xyz"), *i = sh_value_int(7);
    assert_int_equal(sh_ffi_arg_set(&a, &c, 0, big, "arg", &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "out of range");
    assert_int_equal(sh_ffi_arg_set(&a, &c, 0, text, "arg", &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "expected i32, got string");
    assert_int_equal(sh_ffi_arg_set(&a, &c, 1, text, "arg", &err), SH_S_OK); /* bytes takes strings */
    assert_int_equal(sh_ffi_arg_set(&a, &c, 2, i, "arg", &err), SH_S_OK);   /* double takes integers */
    sh_value_free(big);
    sh_value_free(text);
    sh_value_free(i);
    sh_signature bad = {.ret = SH_NT_BYTES};
    assert_int_equal(sh_ffi_prepare(&c, &bad, SH_CONV_PLAIN, &err), SH_S_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_and_dispatch),
        cmocka_unit_test(errors_name_the_line),
        cmocka_unit_test(loads_from_a_file),
        cmocka_unit_test(values_convert_with_type_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
