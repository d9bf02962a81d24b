/* Unit tests for discovery, the registry and stage type resolution. Descriptors are written into temporary
 * directories next to dummy library files: discovery and resolution read descriptors only, never code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "builtin/builtins.h"
#include "registry/discovery.h"
#include "registry/registry.h"
#include "runtime/resolve.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
    char root[PATH_MAX];
    sh_registry reg;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (!tu_mkdtemp(fx->root, sizeof fx->root, "sh-resolve")) {
        free(fx);
        return -1;
    }
    sh_registry_init(&fx->reg);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sh_registry_free(&fx->reg);
    int rc = tu_remove_tree(fx->root);
    free(fx);
    return rc;
}

/* Creates (if needed) the directory `sub` under the root, with a dummy library, and returns its path. */
static const char *plugin_dir(fixture *fx, const char *sub, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", fx->root, sub);
    struct stat st;
    if (stat(out, &st) != 0) {
        assert_int_equal(mkdir(out, 0755), 0);
        char lib[PATH_MAX + 32];
        snprintf(lib, sizeof lib, "%s/libdummy.so", out);
        tu_write_file(lib, "not a library: resolution never loads it\n");
    }
    return out;
}

/* Writes dir/file: a valid descriptor for plugin `name` with the given stage groups and priority. */
static void write_plugin(const char *dir, const char *file, const char *name, const char *version, int priority,
                         const char *stages)
{
    char path[PATH_MAX + 64], text[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(text, sizeof text,
             "format = 1;\n"
             "name = \"%s\";\n"
             "version = \"%s\";\n"
             "library = \"libdummy.so\";\n"
             "abi = \"1.0\";\n"
             "priority = %d;\n"
             "stages = ( %s );\n",
             name, version, priority, stages);
    tu_write_file(path, text);
}

/* The process environment, captured once in main. */
static sh_env env;

static void discover(fixture *fx, const char *dir)
{
    sh_error err;
    sh_error_clear(&err);
    sh_status rc = sh_discover_dir(&fx->reg, &env, dir, &err);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Resolves `type`, expecting SH_S_RESOLVE; returns the message in `err`. */
static void expect_unresolved(fixture *fx, const char *type, sh_error *err)
{
    sh_target t;
    memset(&t, 0xa5, sizeof t);
    sh_error_clear(err);
    sh_status rc = sh_resolve(&fx->reg, type, &t, err);
    if (rc != SH_S_RESOLVE)
        print_error("'%s' should not resolve (status %d): %s\n", type, (int)rc, err->message);
    assert_int_equal(rc, SH_S_RESOLVE);
    assert_int_equal(err->status, SH_S_RESOLVE);
    assert_null(t.plugin);
    assert_null(t.action);
}

/* The standard fixture: core/text (chunk, upper) and acme/img (resize). */
static void standard_registry(fixture *fx)
{
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    write_plugin(dir, "text.plugin", "core/text", "1.4.0", 0,
                 "{ type = \"chunk\"; input = \"document\"; output = \"chunk\"; }, { type = \"upper\"; }");
    write_plugin(dir, "img.plugin", "acme/img", "0.1.0", 0,
                 "{ type = \"resize\"; input = \"image\"; output = \"image\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 2);
    /* img.plugin sorts before text.plugin */
    assert_string_equal(fx->reg.entries[0].desc->name, "acme/img");
    assert_string_equal(fx->reg.entries[1].desc->name, "core/text");
}

/* ------------------------------------------------------------------------------------------------------------ */

static void test_qualified_resolves(void **state)
{
    fixture *fx = *state;
    standard_registry(fx);
    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "core/text.upper", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[1]);
    assert_string_equal(t.plugin->desc->name, "core/text");
    assert_string_equal(t.action, "upper");
    assert_string_equal(t.input, "any");
    assert_string_equal(t.output, "any");
    tu_expect_contains(t.how, "qualified type: plugin core/text 1.4.0");
    tu_expect_contains(t.how, "text.plugin");

    assert_int_equal(sh_resolve(&fx->reg, "core/text.chunk", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[1]);
    assert_string_equal(t.action, "chunk");
    assert_string_equal(t.input, "document");
    assert_string_equal(t.output, "chunk");

    assert_int_equal(sh_resolve(&fx->reg, "acme/img.resize", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[0]);
    assert_string_equal(t.action, "resize");
    assert_string_equal(t.input, "image");
}

static void test_qualified_errors_are_exact(void **state)
{
    fixture *fx = *state;
    standard_registry(fx);
    sh_error err;
    expect_unresolved(fx, "unknown/nonexistent.x", &err);
    assert_string_equal(err.message, "Plugin not found: unknown/nonexistent");
    expect_unresolved(fx, "core/text.nonexistent", &err);
    assert_string_equal(err.message, "Action 'nonexistent' not found in plugin 'core/text'");
    /* Case matters: "Core/Text" is not "core/text". */
    expect_unresolved(fx, "Core/Text.upper", &err);
    assert_string_equal(err.message, "Plugin not found: Core/Text");
    /* An action from another plugin is not found in this one. */
    expect_unresolved(fx, "core/text.resize", &err);
    assert_string_equal(err.message, "Action 'resize' not found in plugin 'core/text'");
    /* A very long plugin name is refused without overflowing anything. */
    char longname[600];
    memset(longname, 'n', sizeof longname);
    longname[3] = '/';
    memcpy(longname + sizeof longname - 3, ".x", 3);
    expect_unresolved(fx, longname, &err);
    tu_expect_contains(err.message, "Plugin not found: nnn/nnnn");
}

static void test_qualified_without_action(void **state)
{
    fixture *fx = *state;
    standard_registry(fx);
    sh_error err;
    expect_unresolved(fx, "core/text", &err);
    tu_expect_contains(err.message, "Stage type 'core/text' names plugin 'core/text' but no action");
    tu_expect_contains(err.message, "'core/text.ACTION'");
    expect_unresolved(fx, "core/text.", &err);
    tu_expect_contains(err.message, "but no action");
}

static void test_bare_type_plugin_ahead_of_builtin(void **state)
{
    fixture *fx = *state;
    standard_registry(fx);
    assert_non_null(sh_builtin_find("chunk")); /* there is a built-in of that name... */
    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "chunk", &t, &err), SH_S_OK);
    /* ...but the plugin answers first. */
    assert_ptr_equal(t.plugin, &fx->reg.entries[1]);
    assert_string_equal(t.plugin->desc->name, "core/text");
    assert_string_equal(t.action, "chunk");
    assert_ptr_equal(t.action, fx->reg.entries[1].desc->stages[0].type);
    assert_string_equal(t.input, "document");
    tu_expect_contains(t.how, "bare type: plugin core/text 1.4.0");
    tu_expect_contains(t.how, "ahead of the built-in of the same name");

    /* A bare type only a plugin provides. */
    assert_int_equal(sh_resolve(&fx->reg, "resize", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[0]);
    assert_string_equal(t.action, "resize");
    assert_null(strstr(t.how, "built-in"));
}

static void test_bare_type_builtin(void **state)
{
    fixture *fx = *state; /* empty registry */
    static const struct {
        const char *type, *input, *output;
    } builtins[] = {
        {"chunk", "document", "chunk"},
        {"read", "any", "document"},
        {"write", "any", "any"},
        {"passthrough", "any", "any"},
    };
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        sh_target t;
        memset(&t, 0xa5, sizeof t);
        sh_error err;
        sh_error_clear(&err);
        assert_int_equal(sh_resolve(&fx->reg, builtins[i].type, &t, &err), SH_S_OK);
        assert_null(t.plugin);
        assert_string_equal(t.action, builtins[i].type);
        assert_string_equal(t.input, builtins[i].input);
        assert_string_equal(t.output, builtins[i].output);
        tu_expect_contains(t.how, "built-in");
    }

    /* Plugins that do not provide "chunk" leave it to the built-in. */
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    write_plugin(dir, "img.plugin", "acme/img", "0.1.0", 0, "{ type = \"resize\"; }");
    discover(fx, dir);
    sh_target t;
    sh_error err;
    assert_int_equal(sh_resolve(&fx->reg, "chunk", &t, &err), SH_S_OK);
    assert_null(t.plugin);
    assert_string_equal(t.action, "chunk");
    assert_string_equal(t.how, "bare type: built-in (no plugin provides 'chunk')");
}

static void test_bare_unknown_type(void **state)
{
    fixture *fx = *state;
    sh_error err;
    /* Empty registry: the built-ins are the candidates. */
    expect_unresolved(fx, "chnk", &err);
    tu_expect_contains(err.message, "'chnk'");
    tu_expect_contains(err.message, "no plugin and no built-in");
    tu_expect_contains(err.message, "Closest known types: chunk");

    /* With plugins, their types are candidates too, bare and qualified. */
    standard_registry(fx);
    expect_unresolved(fx, "chnk", &err);
    tu_expect_contains(err.message, "Stage type 'chnk' not found: no plugin and no built-in provides it");
    tu_expect_contains(err.message, "Closest known types: chunk");
    tu_expect_contains(err.message, "core/text.chunk");
    expect_unresolved(fx, "resise", &err);
    tu_expect_contains(err.message, "Closest known types: resize");
    tu_expect_contains(err.message, "acme/img.resize");

    /* Nothing close at all. */
    expect_unresolved(fx, "qqqqqqqqqqqqqqqqqqqqqqqqqqqq", &err);
    tu_expect_contains(err.message, "no known type is close");
    assert_null(strstr(err.message, "Closest"));

    /* A dot without a slash is a bare type, not a qualified one. */
    expect_unresolved(fx, "text.chunk", &err);
    tu_expect_contains(err.message, "Stage type 'text.chunk' not found");
}

static void test_equal_priority_is_ambiguous(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    write_plugin(dir, "b.plugin", "acme/beta", "1.0.0", 3, "{ type = \"split\"; }");
    write_plugin(dir, "a.plugin", "acme/alpha", "1.0.0", 3, "{ type = \"split\"; }, { type = \"only-alpha\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 2);

    sh_error err;
    expect_unresolved(fx, "split", &err);
    tu_expect_contains(err.message, "Stage type 'split' is provided by two plugins of priority 3");
    tu_expect_contains(err.message, "'acme/alpha'");
    tu_expect_contains(err.message, "'acme/beta'");
    tu_expect_contains(err.message, "a.plugin");
    tu_expect_contains(err.message, "b.plugin");
    tu_expect_contains(err.message, "'acme/alpha.split'");
    tu_expect_contains(err.message, "priority");

    /* Naming one explicitly works, and so do types only one of them provides. */
    sh_target t;
    assert_int_equal(sh_resolve(&fx->reg, "acme/beta.split", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->name, "acme/beta");
    assert_int_equal(sh_resolve(&fx->reg, "only-alpha", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->name, "acme/alpha");
}

static void test_higher_priority_wins(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    /* Whatever the order in the registry, the highest priority wins. */
    write_plugin(dir, "a.plugin", "acme/low", "1.0.0", -1, "{ type = \"split\"; }, { type = \"chunk\"; }");
    write_plugin(dir, "b.plugin", "acme/high", "2.0.0", 10, "{ type = \"split\"; }");
    write_plugin(dir, "c.plugin", "acme/mid", "1.0.0", 0, "{ type = \"split\"; }, { type = \"chunk\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 3);

    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "split", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[1]);
    assert_string_equal(t.plugin->desc->name, "acme/high");
    tu_expect_contains(t.how, "highest priority among its providers");

    /* Priority 0 beats -1, and the built-in "chunk" comes after both. */
    assert_int_equal(sh_resolve(&fx->reg, "chunk", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->name, "acme/mid");
}

static void test_tie_only_among_the_best(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    /* Two at priority 0 and then a higher one: no ambiguity. */
    write_plugin(dir, "a.plugin", "acme/a", "1.0.0", 0, "{ type = \"split\"; }");
    write_plugin(dir, "b.plugin", "acme/b", "1.0.0", 0, "{ type = \"split\"; }");
    write_plugin(dir, "c.plugin", "acme/c", "1.0.0", 5, "{ type = \"split\"; }");
    /* A higher one, then two equal lower ones: no ambiguity either. */
    write_plugin(dir, "d.plugin", "acme/d", "1.0.0", 5, "{ type = \"join\"; }");
    write_plugin(dir, "e.plugin", "acme/e", "1.0.0", 1, "{ type = \"join\"; }");
    write_plugin(dir, "f.plugin", "acme/f", "1.0.0", 1, "{ type = \"join\"; }");
    /* Lower, then two equal higher ones: ambiguous between those two only. */
    write_plugin(dir, "g.plugin", "acme/g", "1.0.0", 0, "{ type = \"merge\"; }");
    write_plugin(dir, "h.plugin", "acme/h", "1.0.0", 7, "{ type = \"merge\"; }");
    write_plugin(dir, "i.plugin", "acme/i", "1.0.0", 7, "{ type = \"merge\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 9);

    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "split", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->name, "acme/c");
    assert_int_equal(sh_resolve(&fx->reg, "join", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->name, "acme/d");
    expect_unresolved(fx, "merge", &err);
    tu_expect_contains(err.message, "priority 7");
    tu_expect_contains(err.message, "'acme/h'");
    tu_expect_contains(err.message, "'acme/i'");
    assert_null(strstr(err.message, "'acme/g'"));
}

static void test_shadowing(void **state)
{
    fixture *fx = *state;
    char first[PATH_MAX], second[PATH_MAX];
    plugin_dir(fx, "first", first, sizeof first);
    plugin_dir(fx, "second", second, sizeof second);
    write_plugin(first, "x.plugin", "acme/x", "1.0.0", 0, "{ type = \"one\"; }");
    /* The later copy is newer, has a higher priority and more types: none of that matters. */
    write_plugin(second, "x.plugin", "acme/x", "2.0.0", 100, "{ type = \"one\"; }, { type = \"two\"; }");
    discover(fx, first);
    discover(fx, second);
    assert_int_equal(fx->reg.len, 2);

    const sh_registry_entry *e0 = &fx->reg.entries[0], *e1 = &fx->reg.entries[1];
    assert_int_equal(e0->status, SH_PLUGIN_AVAILABLE);
    assert_null(e0->reason);
    assert_int_equal(e1->status, SH_PLUGIN_SHADOWED);
    assert_non_null(e1->desc);
    assert_string_equal(e1->desc->version, "2.0.0");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "shadowed by %s/x.plugin", first);
    tu_expect_contains(e1->reason, want);
    assert_string_equal(sh_plugin_status_name(e1->status), "shadowed");

    assert_ptr_equal(sh_registry_find(&fx->reg, "acme/x"), e0);
    assert_ptr_equal(sh_registry_find_any(&fx->reg, "acme/x"), e0);

    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "acme/x.one", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, e0);
    assert_string_equal(t.plugin->desc->version, "1.0.0");
    assert_int_equal(sh_resolve(&fx->reg, "one", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, e0);
    /* The shadowed copy's extra type is not reachable, qualified or bare. */
    expect_unresolved(fx, "acme/x.two", &err);
    assert_string_equal(err.message, "Action 'two' not found in plugin 'acme/x'");
    expect_unresolved(fx, "two", &err);
    tu_expect_contains(err.message, "'two' not found");
}

/* The same name twice in one directory is a mistake, not shadowing: the second (in byte order) is refused. */
static void test_same_name_in_one_dir_is_an_error(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    /* Created in the opposite order to their names. */
    write_plugin(dir, "b.plugin", "acme/same", "2.0.0", 0, "{ type = \"t\"; }");
    write_plugin(dir, "a.plugin", "acme/same", "1.0.0", 0, "{ type = \"t\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 2);
    assert_true(ends_with(fx->reg.entries[0].path, "/a.plugin"));
    assert_int_equal(fx->reg.entries[0].status, SH_PLUGIN_AVAILABLE);
    assert_true(ends_with(fx->reg.entries[1].path, "/b.plugin"));
    assert_int_equal(fx->reg.entries[1].status, SH_PLUGIN_UNAVAILABLE);
    tu_expect_contains(fx->reg.entries[1].reason, "plugin 'acme/same' is already defined by");
    tu_expect_contains(fx->reg.entries[1].reason, "/a.plugin in the same directory");
    sh_target t;
    sh_error err;
    assert_int_equal(sh_resolve(&fx->reg, "acme/same.t", &t, &err), SH_S_OK);
    assert_string_equal(t.plugin->desc->version, "1.0.0");
}

static void test_invalid_descriptor_does_not_block_others(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    write_plugin(dir, "a.plugin", "acme/a", "1.0.0", 0, "{ type = \"alpha\"; }");
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/b.plugin", dir);
    tu_write_file(bad, "format = 2;\nname = \"acme/broken\";\n");
    char syntax[PATH_MAX + 32];
    snprintf(syntax, sizeof syntax, "%s/c.plugin", dir);
    tu_write_file(syntax, "format = 1;\nname = \"acme/c\"\nversion = = 3;\n");
    write_plugin(dir, "d.plugin", "acme/d", "1.0.0", 0, "{ type = \"delta\"; }");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 4);

    const sh_registry_entry *e = fx->reg.entries;
    assert_int_equal(e[0].status, SH_PLUGIN_AVAILABLE);
    assert_int_equal(e[1].status, SH_PLUGIN_UNAVAILABLE);
    assert_null(e[1].desc);
    assert_string_equal(e[1].path, bad);
    assert_non_null(e[1].reason);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:1: descriptor format 2 is not supported", bad);
    tu_expect_contains(e[1].reason, want);
    assert_string_equal(sh_plugin_status_name(e[1].status), "unavailable");
    assert_int_equal(e[2].status, SH_PLUGIN_UNAVAILABLE);
    snprintf(want, sizeof want, "%s:3: syntax error", syntax);
    tu_expect_contains(e[2].reason, want);
    assert_int_equal(e[3].status, SH_PLUGIN_AVAILABLE);

    sh_target t;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_resolve(&fx->reg, "alpha", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &e[0]);
    assert_int_equal(sh_resolve(&fx->reg, "acme/d.delta", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &e[3]);
}

static void test_qualified_type_naming_invalid_plugin_says_why(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/broken.plugin", dir);
    /* The name parses; the version does not. */
    tu_write_file(bad, "format = 1;\nname = \"acme/broken\";\nversion = \"1.x\";\nlibrary = \"libdummy.so\";\n"
                    "abi = \"1.0\";\nstages = ( { type = \"fix\"; } );\n");
    discover(fx, dir);
    assert_int_equal(fx->reg.len, 1);
    assert_int_equal(fx->reg.entries[0].status, SH_PLUGIN_UNAVAILABLE);
    tu_expect_contains(fx->reg.entries[0].reason, "version '1.x'");

    sh_error err;
    expect_unresolved(fx, "acme/broken.fix", &err);
    tu_expect_contains(err.message, "acme/broken");
    tu_expect_contains(err.message, "unavailable");
    tu_expect_contains(err.message, "version '1.x'");
}

static void test_discovery_order_is_bytewise(void **state)
{
    fixture *fx = *state;
    char dir[PATH_MAX];
    plugin_dir(fx, "plugins", dir, sizeof dir);
    /* Created in an order unrelated to their names; byte order is B < Z < _ < a-b < a < b (a locale collation
     * would interleave upper and lower case and ignore punctuation). */
    static const char *const created[] = {"b.plugin", "_u.plugin", "a.plugin", "Z.plugin", "a-b.plugin", "B.plugin"};
    static const char *const sorted[] = {"B.plugin", "Z.plugin", "_u.plugin", "a-b.plugin", "a.plugin", "b.plugin"};
    /* One plugin name in six files: the first in byte order is available, the rest are shadowed by it. The
     * version records the creation order. */
    for (size_t i = 0; i < 6; i++) {
        char version[16];
        snprintf(version, sizeof version, "1.0.%zu", i);
        write_plugin(dir, created[i], "acme/same", version, 0, "{ type = \"t\"; }");
    }
    static const char *const sorted_versions[] = {"1.0.5", "1.0.3", "1.0.1", "1.0.4", "1.0.2", "1.0.0"};
    /* Files that are not descriptors are ignored. */
    static const char *const ignored[] = {".hidden.plugin", "notes.txt", "x.plugin~", "x.plugin.bak", "plugin"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        write_plugin(dir, ignored[i], "acme/ignored", "1.0.0", 0, "{ type = \"ignored\"; }");

    discover(fx, dir);
    assert_int_equal(fx->reg.len, 6);
    char first[PATH_MAX + 32];
    snprintf(first, sizeof first, "%s/%s", dir, sorted[0]);
    for (size_t i = 0; i < 6; i++) {
        char want[PATH_MAX + 32];
        snprintf(want, sizeof want, "%s/%s", dir, sorted[i]);
        assert_string_equal(fx->reg.entries[i].path, want);
        assert_string_equal(fx->reg.entries[i].desc->version, sorted_versions[i]);
        assert_int_equal(fx->reg.entries[i].status, i == 0 ? SH_PLUGIN_AVAILABLE : SH_PLUGIN_UNAVAILABLE);
        if (i > 0)
            tu_expect_contains(fx->reg.entries[i].reason, first);
    }
    assert_null(sh_registry_find(&fx->reg, "acme/ignored"));
    sh_target t;
    sh_error err;
    assert_int_equal(sh_resolve(&fx->reg, "t", &t, &err), SH_S_OK);
    assert_ptr_equal(t.plugin, &fx->reg.entries[0]);
    assert_string_equal(t.plugin->desc->version, "1.0.5"); /* B.plugin, created last */
}

static void test_discover_search_path(void **state)
{
    fixture *fx = *state;
    char one[PATH_MAX], two[PATH_MAX], three[PATH_MAX], four[PATH_MAX], missing[PATH_MAX + 16];
    plugin_dir(fx, "one", one, sizeof one);
    plugin_dir(fx, "two", two, sizeof two);
    plugin_dir(fx, "three", three, sizeof three);
    plugin_dir(fx, "four", four, sizeof four);
    snprintf(missing, sizeof missing, "%s/missing", fx->root);
    write_plugin(one, "p.plugin", "acme/p", "1.0.0", 0, "{ type = \"t\"; }");
    write_plugin(two, "p.plugin", "acme/p", "2.0.0", 0, "{ type = \"t\"; }");
    write_plugin(two, "q.plugin", "acme/q", "1.0.0", 0, "{ type = \"u\"; }");
    write_plugin(three, "p.plugin", "acme/p", "3.0.0", 0, "{ type = \"t\"; }");
    write_plugin(three, "r.plugin", "acme/r", "1.0.0", 0, "{ type = \"v\"; }");
    write_plugin(four, "s.plugin", "acme/s", "1.0.0", 0, "{ type = \"w\"; }");

    /* The command line first (twice: scanned once), then the environment (missing directories skipped), then
     * the host configuration's directories, then the system directory. */
    char path_var[3 * PATH_MAX], system_var[PATH_MAX + 64];
    snprintf(path_var, sizeof path_var, "STAGEHOST_PLUGIN_PATH=%s::%s", missing, two);
    snprintf(system_var, sizeof system_var, "STAGEHOST_SYSTEM_PLUGIN_PATH=%s", four);
    const char *vars[] = {path_var, system_var, "STAGEHOST_NO_CACHE=1", NULL};
    sh_env search;
    sh_error err;
    assert_int_equal(sh_env_capture_from(&search, vars, &err), SH_S_OK);
    char *config_items[] = {missing, three};
    sh_strlist config_dirs = {.items = config_items, .len = 2};
    const char *cli[] = {one, one};
    sh_error_clear(&err);
    sh_status rc = sh_discover(&fx->reg, &search, cli, 2, &config_dirs, &err);
    sh_env_free(&search);
    vars[1] = "STAGEHOST_SYSTEM_PLUGIN_PATH=";
    assert_int_equal(sh_env_capture_from(&search, vars, &err), SH_S_OK);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    assert_int_equal(fx->reg.dir_count, 5);
    assert_string_equal(fx->reg.dirs[0], one);
    assert_string_equal(fx->reg.dirs[1], one);
    assert_string_equal(fx->reg.dirs[2], two);
    assert_string_equal(fx->reg.dirs[3], three);
    assert_string_equal(fx->reg.dirs[4], four);
    static const struct {
        const char *name, *version;
        sh_plugin_status status;
    } want[] = {
        {"acme/p", "1.0.0", SH_PLUGIN_AVAILABLE}, {"acme/p", "2.0.0", SH_PLUGIN_SHADOWED},
        {"acme/q", "1.0.0", SH_PLUGIN_AVAILABLE}, {"acme/p", "3.0.0", SH_PLUGIN_SHADOWED},
        {"acme/r", "1.0.0", SH_PLUGIN_AVAILABLE}, {"acme/s", "1.0.0", SH_PLUGIN_AVAILABLE},
    };
    assert_int_equal(fx->reg.len, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(fx->reg.entries[i].desc->name, want[i].name);
        assert_string_equal(fx->reg.entries[i].desc->version, want[i].version);
        assert_int_equal(fx->reg.entries[i].status, want[i].status);
    }
    sh_registry_free(&fx->reg);

    /* No configuration directories (NULL) and an empty system path: the command line and environment only. */
    rc = sh_discover(&fx->reg, &search, cli, 1, NULL, &err);
    assert_int_equal(rc, SH_S_OK);
    assert_int_equal(fx->reg.dir_count, 2);
    assert_int_equal(fx->reg.len, 3);

    /* A command-line directory that does not exist is an error. */
    sh_registry_free(&fx->reg);
    const char *bad[] = {missing};
    assert_int_equal(sh_discover(&fx->reg, &search, bad, 1, NULL, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "--plugins-dir");
    tu_expect_contains(err.message, missing);
    sh_registry_free(&fx->reg);

    /* And sh_discover_dir on a missing directory too. */
    assert_int_equal(sh_discover_dir(&fx->reg, &search, missing, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "cannot read plugins directory");
    assert_int_equal(fx->reg.len, 0);
    sh_env_free(&search);
}

int main(void)
{
    /* Keep sh_discover() away from anything installed on this machine. */
    setenv("STAGEHOST_SYSTEM_PLUGIN_PATH", "", 1);
    unsetenv("STAGEHOST_PLUGIN_PATH");
    sh_error err;
    if (sh_env_capture(&env, &err) != SH_S_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qualified_resolves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qualified_errors_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qualified_without_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_type_plugin_ahead_of_builtin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_type_builtin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_unknown_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_equal_priority_is_ambiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_higher_priority_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tie_only_among_the_best, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_name_in_one_dir_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_descriptor_does_not_block_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qualified_type_naming_invalid_plugin_says_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery_order_is_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discover_search_path, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    sh_env_free(&env);
    return failed;
}
