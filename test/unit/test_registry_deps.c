/* Plugin dependencies (`requires`): version constraints, then the registry's check over discovered descriptors:
 * dependencies listed deepest first for loading, a missing dependency, a version that does not satisfy, an
 * unavailable dependency making its dependents unavailable however indirectly, and cycles. Discovery reads
 * descriptors only, so each plugin's library is an empty file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry/discovery.h"
#include "registry/version.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];
static sh_env env;
static sh_registry reg;

static bool satisfied(const char *requirement, const char *version)
{
    sh_requirement r;
    char why[256];
    if (!sh_requirement_parse(requirement, &r, why, sizeof why))
        fail_msg("%s", why);
    return sh_requirement_satisfied(&r, version);
}

static void constraints_compare_versions(void **state)
{
    (void)state;
    assert_true(satisfied("core/io", "0.0.1"));
    assert_true(satisfied("core/io >= 1.2, < 2", "1.2.0"));
    assert_true(satisfied("core/io >= 1.2, < 2", "1.99.7"));
    assert_false(satisfied("core/io >= 1.2, < 2", "2.0.0"));
    assert_false(satisfied("core/io >= 1.2, < 2", "1.1.9"));
    assert_true(satisfied("core/io<2", "1.9")); /* "< 2" is "< 2.0.0"; no spaces needed */
    assert_true(satisfied("core/io = 1.4", "1.4.0"));
    assert_true(satisfied("core/io == 1.4.2", "1.4.2"));
    assert_false(satisfied("core/io != 1.4.2", "1.4.2"));
    assert_true(satisfied("core/io > 1.4.2", "1.4.3"));
    assert_false(satisfied("core/io > 1.4.2", "1.4.2"));
    assert_true(satisfied("core/io <= 1.4.2", "1.4.2"));
    /* A pre-release or build suffix does not take part, in a constraint or in a version. */
    assert_true(satisfied("core/io >= 1.4.2", "1.4.2-rc1"));
    assert_true(satisfied("core/io >= 1.4.2-rc1, < 2", "1.4.2"));
    assert_true(satisfied("core/io = 1.2.3", "1.2.3-beta+build"));
    assert_true(satisfied("core/io >= 1.10", "1.10.0"));    /* numbers, not text */
    assert_false(satisfied("core/io >= 1.10", "1.9.0"));
    assert_false(satisfied("core/io", "not a version"));

    sh_requirement r;
    char why[256];
    assert_false(sh_requirement_parse(">= 1.0", &r, why, sizeof why));
    tu_expect_contains(why, "must start with a plugin name");
    assert_false(sh_requirement_parse("core/io ~ 1.0", &r, why, sizeof why));
    tu_expect_contains(why, "expected a comparison");
    assert_false(sh_requirement_parse("core/io >= x", &r, why, sizeof why));
    tu_expect_contains(why, "expected a version such as 1.2 or 1.2.3");
    assert_false(sh_requirement_parse("core/io >= 1 < 2", &r, why, sizeof why));
    tu_expect_contains(why, "expected ',' between constraints");
}

/* Writes DIR/FILE.plugin for plugin `name` at `version` with the requirements `requires` (the body of the list). */
static void plugin(const char *name, const char *version, const char *requires)
{
    char path[PATH_MAX], text[1024], file[128];
    snprintf(file, sizeof file, "%s", name);
    for (char *c = file; *c; c++)
        if (*c == '/')
            *c = '_';
    snprintf(path, sizeof path, "%s/%s.plugin", dir, file);
    snprintf(text, sizeof text,
             "format = 1; name = \"%s\"; version = \"%s\"; library = \"lib.so\"; abi = \"1.0\";\n"
             "stages = ( { type = \"x\"; } );\nrequires = ( %s );\n",
             name, version, requires);
    tu_write_file(path, text);
}

/* Discovers DIR and checks the dependencies, as the runtime does at start. */
static void discover(void)
{
    sh_error err;
    if (sh_discover_dir(&reg, &env, dir, &err) != SH_S_OK)
        fail_msg("%s", err.message);
    sh_registry_check_dependencies(&reg);
}

static const sh_registry_entry *entry(const char *name)
{
    const sh_registry_entry *e = sh_registry_find_any(&reg, name);
    if (!e)
        fail_msg("no plugin '%s' in the registry", name);
    return e;
}

static void expect_available(const char *name)
{
    const sh_registry_entry *e = entry(name);
    if (e->status != SH_PLUGIN_AVAILABLE)
        print_error("%s: %s: %s\n", name, sh_plugin_status_name(e->status), e->reason ? e->reason : "");
    assert_int_equal(e->status, SH_PLUGIN_AVAILABLE);
}

static void expect_unavailable(const char *name, const char *why)
{
    const sh_registry_entry *e = entry(name);
    assert_int_equal(e->status, SH_PLUGIN_UNAVAILABLE);
    assert_non_null(e->reason);
    tu_expect_contains(e->reason, why);
}

/* A diamond: top needs mid and side, both need base; base comes first, and once. */
static void dependencies_deepest_first(void **state)
{
    (void)state;
    plugin("test/top", "1.0.0", "\"test/mid\", \"test/side >= 1.0\"");
    plugin("test/mid", "1.0.0", "\"test/base\"");
    plugin("test/side", "1.1.0", "\"test/base >= 1.0\"");
    plugin("test/base", "1.4.0", "");
    discover();
    for (const char *const *n = (const char *const[]){"test/top", "test/mid", "test/side", "test/base", NULL}; *n;
         n++)
        expect_available(*n);

    const sh_registry_entry *deps[8];
    size_t count = sh_registry_dependencies(&reg, entry("test/top"), deps, 8);
    assert_int_equal(count, 3);
    assert_string_equal(deps[0]->name, "test/base");
    assert_string_equal(deps[1]->name, "test/mid");
    assert_string_equal(deps[2]->name, "test/side");
    /* The same list hangs on the descriptor, for the loader. */
    const sh_descriptor *top = entry("test/top")->desc;
    assert_int_equal(top->dep_count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_ptr_equal(top->deps[i], deps[i]->desc);
    assert_int_equal(sh_registry_dependencies(&reg, entry("test/mid"), deps, 8), 1);
    assert_int_equal(sh_registry_dependencies(&reg, entry("test/base"), deps, 8), 0);
    /* A short output array gets the deepest ones. */
    assert_int_equal(sh_registry_dependencies(&reg, entry("test/top"), deps, 1), 1);
    assert_string_equal(deps[0]->name, "test/base");
}

static void missing_dependency_and_its_dependents(void **state)
{
    (void)state;
    plugin("test/lost", "1.0.0", "\"test/nowhere\"");
    plugin("test/chain", "1.0.0", "\"test/lost\"");
    plugin("test/far", "1.0.0", "\"test/chain\"");
    plugin("test/fine", "1.0.0", "");
    discover();
    expect_unavailable("test/lost", "requires \"test/nowhere\", but no plugin 'test/nowhere' is on the search path");
    expect_unavailable("test/chain", "requires \"test/lost\", but 'test/lost' is unavailable: requires");
    expect_unavailable("test/far", "requires \"test/chain\", but 'test/chain' is unavailable");
    expect_available("test/fine");
}

static void version_constraint_not_met(void **state)
{
    (void)state;
    plugin("test/base", "1.4.0", "");
    plugin("test/old", "1.0.0", "\"test/base >= 2\"");
    plugin("test/ok", "1.0.0", "\"test/base >= 1.2, < 2\"");
    plugin("test/exact", "1.0.0", "\"test/base != 1.4.0\"");
    discover();
    expect_available("test/base");
    expect_available("test/ok");
    expect_unavailable("test/old", "requires \"test/base >= 2\", but 'test/base' is version 1.4.0 (");
    tu_expect_contains(entry("test/old")->reason, "test_base.plugin)");
    expect_unavailable("test/exact", "requires \"test/base != 1.4.0\", but 'test/base' is version 1.4.0");
}

static void cycles_are_printed(void **state)
{
    (void)state;
    plugin("test/cyc-a", "1.0.0", "\"test/cyc-b\"");
    plugin("test/cyc-b", "1.0.0", "\"test/cyc-c\"");
    plugin("test/cyc-c", "1.0.0", "\"test/cyc-a\"");
    plugin("test/self", "1.0.0", "\"test/self\"");
    plugin("test/user", "1.0.0", "\"test/cyc-a\""); /* outside the cycle, but needs it */
    discover();
    /* Each member gets the cycle from itself round. */
    expect_unavailable("test/cyc-a", "dependency cycle: test/cyc-a \u2192 test/cyc-b \u2192 test/cyc-c \u2192 "
                                     "test/cyc-a; break it by removing one of these requirements");
    expect_unavailable("test/cyc-b",
                       "dependency cycle: test/cyc-b \u2192 test/cyc-c \u2192 test/cyc-a \u2192 test/cyc-b;");
    expect_unavailable("test/cyc-c", "dependency cycle: test/cyc-c \u2192");
    expect_unavailable("test/self", "test_self.plugin:3: plugin 'test/self' requires itself"); /* its descriptor */
    expect_unavailable("test/user", "requires \"test/cyc-a\", but 'test/cyc-a' is unavailable: dependency cycle");
}

static int setup(void **state)
{
    (void)state;
    if (!tu_mkdtemp(dir, sizeof dir, "sh-test-deps"))
        return -1;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/lib.so", dir);
    tu_write_file(path, "");
    snprintf(path, sizeof path, "%s/state", dir); /* the registry cache, out of the descriptors' way */
    tu_env(&env, path, NULL);
    sh_registry_init(&reg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sh_registry_free(&reg);
    sh_env_free(&env);
    return tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constraints_compare_versions),
        cmocka_unit_test_setup_teardown(dependencies_deepest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_dependency_and_its_dependents, setup, teardown),
        cmocka_unit_test_setup_teardown(version_constraint_not_met, setup, teardown),
        cmocka_unit_test_setup_teardown(cycles_are_printed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
