/* Unit tests for plugin descriptors: sh_descriptor_load() and the shape checks it shares with the CLI.
 * Every test writes its descriptor into a fresh mkdtemp() directory, next to a dummy library file: the loader is
 * never involved, since a descriptor is read and validated without opening its library. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "registry/descriptor.h"
#include "value/cfgread.h"
#include "testutil.h"

#include <stagehost/abi.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* Fixture: a temporary directory holding a dummy library "libdemo.so".                                          */

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX]; /* the descriptor file */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (!tu_mkdtemp(fx->dir, sizeof fx->dir, "sh-desc")) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/demo.plugin", fx->dir);
    char lib[PATH_MAX];
    snprintf(lib, sizeof lib, "%s/libdemo.so", fx->dir);
    tu_write_file(lib, "not really an ELF file\n");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = tu_remove_tree(fx->dir);
    free(fx);
    return rc;
}

/* Writes `text` as the descriptor and loads it. */
static sh_status load(fixture *fx, const char *text, sh_descriptor **out, sh_error *err)
{
    tu_write_file(fx->path, text);
    sh_error_clear(err);
    return sh_descriptor_load(fx->path, out, err);
}

/* Asserts that `text` is refused with SH_S_CONFIG, a message starting "PATH:LINE: " and containing every
 * string in the NULL-terminated list. */
static void expect_refused_at(fixture *fx, const char *text, int line, ...)
{
    sh_descriptor *d = (sh_descriptor *)(uintptr_t)1;
    sh_error err;
    sh_status rc = load(fx, text, &d, &err);
    if (rc != SH_S_CONFIG)
        print_error("descriptor was not refused (status %d): %s\n--- descriptor:\n%s", (int)rc, err.message, text);
    assert_int_equal(rc, SH_S_CONFIG);
    assert_null(d);
    assert_int_equal(err.status, SH_S_CONFIG);

    va_list ap;
    va_start(ap, line);
    tu_vexpect_at(err.message, fx->path, line, ap);
    va_end(ap);
}

#define REFUSED(fx, text, line, ...) expect_refused_at((fx), (text), (line), __VA_ARGS__, (const char *)NULL)

/* The lines of a minimal valid descriptor; tests assemble variations of it. */
#define L_FORMAT "format = 1;\n"
#define L_NAME "name = \"acme/demo\";\n"
#define L_VERSION "version = \"1.0.0\";\n"
#define L_LIBRARY "library = \"libdemo.so\";\n"
#define L_ABI "abi = \"1.0\";\n"
#define L_STAGES "stages = ( { type = \"upper\"; } );\n"

/* ------------------------------------------------------------------------------------------------------------ */
/* Valid descriptors                                                                                             */

static void test_full_descriptor(void **state)
{
    fixture *fx = *state;
    const char *text = "# a comment on line 1\n"                                                      /* 1 */
                       "format = 1;\n"                                                                /* 2 */
                       "name = \"acme/text-tools-2\";\n"                                              /* 3 */
                       "version = \"1.2.3-beta.1+build.5\";\n"                                        /* 4 */
                       "library = \"libdemo.so\";\n"                                                  /* 5 */
                       "entry = \"acme_entry_v1\";\n"                                                 /* 6 */
                       "abi = \"1.7\";\n"                                                             /* 7 */
                       "description = \"Text tools\";\n"                                              /* 8 */
                       "stages = (\n"                                                                 /* 9 */
                       "  { type = \"chunk\"; input = \"document\"; output = \"chunk\";\n"            /* 10 */
                       "    description = \"split documents\"; },\n"                                  /* 11 */
                       "  { type = \"Upper_case-2\"; }\n"                                             /* 12 */
                       ");\n"                                                                         /* 13 */
                       "requires = ( \"core/text\", \"acme/base\" );\n"                               /* 14 */
                       "priority = -5;\n"                                                             /* 15 */
                       "isolation = \"call\";\n"                                                      /* 16 */
                       "limits = { memory_mb = 512; cpu_seconds = 10; timeout_ms = 2500;\n"          /* 17 */
                       "           open_files = 64; processes = 8; file_size_mb = 100; output_mb = 7; };\n" /* 18 */
                       "permissions = { network = true; exec = false;\n"                              /* 19 */
                       "  read = ( \"/etc\", \"/srv/data\" ); write = [ \"/tmp/out\" ]; env = ( \"HOME\" ); };\n";
    sh_descriptor *d = NULL;
    sh_error err;
    sh_status rc = load(fx, text, &d, &err);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    assert_non_null(d);

    char want[PATH_MAX + 32];
    assert_string_equal(d->path, fx->path);
    assert_string_equal(d->dir, fx->dir);
    assert_int_equal(d->format, 1);
    assert_string_equal(d->name, "acme/text-tools-2");
    assert_int_equal(d->name_line, 3);
    assert_string_equal(d->version, "1.2.3-beta.1+build.5");
    assert_int_equal(d->version_line, 4);
    assert_string_equal(d->library, "libdemo.so");
    snprintf(want, sizeof want, "%s/libdemo.so", fx->dir);
    assert_string_equal(d->library_path, want);
    assert_string_equal(d->entry, "acme_entry_v1");
    assert_int_equal(d->abi_major, 1);
    assert_int_equal(d->abi_minor, 7);
    assert_string_equal(d->description, "Text tools");

    assert_int_equal(d->stages_line, 9);
    assert_int_equal(d->stage_count, 2);
    assert_string_equal(d->stages[0].type, "chunk");
    assert_string_equal(d->stages[0].input, "document");
    assert_string_equal(d->stages[0].output, "chunk");
    assert_string_equal(d->stages[0].description, "split documents");
    assert_int_equal(d->stages[0].line, 10);
    assert_string_equal(d->stages[1].type, "Upper_case-2");
    assert_string_equal(d->stages[1].input, "any");
    assert_string_equal(d->stages[1].output, "any");
    assert_null(d->stages[1].description);
    assert_int_equal(d->stages[1].line, 12);

    assert_ptr_equal(sh_descriptor_find_stage(d, "chunk"), &d->stages[0]);
    assert_ptr_equal(sh_descriptor_find_stage(d, "Upper_case-2"), &d->stages[1]);
    assert_null(sh_descriptor_find_stage(d, "upper_case-2"));
    assert_null(sh_descriptor_find_stage(d, "chun"));

    assert_int_equal(d->requires.len, 2);
    assert_string_equal(d->requires.items[0], "core/text");
    assert_string_equal(d->requires.items[1], "acme/base");
    assert_int_equal(d->priority, -5);
    assert_int_equal(d->isolation, SH_ISOLATION_CALL);

    assert_int_equal(d->limits.memory_mb, 512);
    assert_int_equal(d->limits.cpu_seconds, 10);
    assert_int_equal(d->limits.timeout_ms, 2500);
    assert_int_equal(d->limits.open_files, 64);
    assert_int_equal(d->limits.processes, 8);
    assert_int_equal(d->limits.file_size_mb, 100);
    assert_int_equal(d->limits.output_mb, 7);

    assert_true(d->permissions.network);
    assert_false(d->permissions.exec);
    assert_int_equal(d->permissions.read.len, 2);
    assert_string_equal(d->permissions.read.items[0], "/etc");
    assert_string_equal(d->permissions.read.items[1], "/srv/data");
    assert_int_equal(d->permissions.write.len, 1);
    assert_string_equal(d->permissions.write.items[0], "/tmp/out");
    assert_int_equal(d->permissions.env.len, 1);
    assert_string_equal(d->permissions.env.items[0], "HOME");
    sh_descriptor_free(d);
}

static void test_minimal_descriptor_defaults(void **state)
{
    fixture *fx = *state;
    sh_descriptor *d = NULL;
    sh_error err;
    sh_status rc = load(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES, &d, &err);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    assert_string_equal(d->name, "acme/demo");
    assert_string_equal(d->version, "1.0.0");
    assert_string_equal(d->entry, "stagehost_plugin");
    assert_string_equal(d->entry, SH_DEFAULT_ENTRY);
    assert_int_equal(d->abi_major, 1);
    assert_int_equal(d->abi_minor, 0);
    assert_null(d->description);
    assert_int_equal(d->stage_count, 1);
    assert_string_equal(d->stages[0].type, "upper");
    assert_string_equal(d->stages[0].input, "any");
    assert_string_equal(d->stages[0].output, "any");
    assert_null(d->stages[0].description);
    assert_int_equal(d->stages[0].line, 6);
    assert_int_equal(d->isolation, SH_ISOLATION_DEFAULT);
    assert_string_equal(sh_isolation_name(d->isolation), "process");
    assert_int_equal(d->priority, 0);
    assert_int_equal(d->requires.len, 0);
    assert_int_equal(d->limits.memory_mb, 0);
    assert_int_equal(d->limits.cpu_seconds, 0);
    assert_int_equal(d->limits.timeout_ms, 0);
    assert_int_equal(d->limits.open_files, 0);
    assert_int_equal(d->limits.processes, 0);
    assert_int_equal(d->limits.file_size_mb, 0);
    assert_int_equal(d->limits.output_mb, 0);
    assert_false(d->permissions.network);
    assert_false(d->permissions.exec);
    assert_int_equal(d->permissions.read.len, 0);
    assert_int_equal(d->permissions.write.len, 0);
    assert_int_equal(d->permissions.env.len, 0);
    sh_descriptor_free(d);
}

static void test_isolation_values(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *word;
        sh_isolation iso;
    } cases[] = {{"process", SH_ISOLATION_PROCESS}, {"call", SH_ISOLATION_CALL}, {"none", SH_ISOLATION_NONE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "isolation = \"%s\";\n",
                 cases[i].word);
        sh_descriptor *d = NULL;
        sh_error err;
        assert_int_equal(load(fx, text, &d, &err), SH_S_OK);
        assert_int_equal(d->isolation, cases[i].iso);
        assert_string_equal(sh_isolation_name(d->isolation), cases[i].word);
        sh_descriptor_free(d);

        sh_isolation parsed = SH_ISOLATION_DEFAULT;
        assert_true(sh_isolation_parse(cases[i].word, &parsed));
        assert_int_equal(parsed, cases[i].iso);
    }
    sh_isolation parsed = SH_ISOLATION_NONE;
    assert_false(sh_isolation_parse("Process", &parsed));
    assert_false(sh_isolation_parse("", &parsed));
    assert_false(sh_isolation_parse("thread", &parsed));
    assert_int_equal(parsed, SH_ISOLATION_NONE); /* untouched on failure */
}

static void test_library_in_subdir_and_absolute(void **state)
{
    fixture *fx = *state;
    char sub[PATH_MAX], lib[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/lib", fx->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(lib, sizeof lib, "%s/libsub.so", sub);
    tu_write_file(lib, "x");

    sh_descriptor *d = NULL;
    sh_error err;
    assert_int_equal(load(fx, L_FORMAT L_NAME L_VERSION "library = \"lib/libsub.so\";\n" L_ABI L_STAGES, &d, &err),
                     SH_S_OK);
    assert_string_equal(d->library, "lib/libsub.so");
    assert_string_equal(d->library_path, lib);
    sh_descriptor_free(d);

    /* Absolute paths and ".." would let a descriptor point at a library outside its plugin's directory. */
    char text[PATH_MAX + 256];
    snprintf(text, sizeof text, L_FORMAT L_NAME L_VERSION "library = \"%s\";\n" L_ABI L_STAGES, lib);
    assert_int_equal(load(fx, text, &d, &err), SH_S_CONFIG);
    assert_null(d);
    assert_non_null(strstr(err.message, "must be a path inside the plugin's directory"));
    assert_int_equal(load(fx, L_FORMAT L_NAME L_VERSION "library = \"lib/../../x.so\";\n" L_ABI L_STAGES, &d, &err),
                     SH_S_CONFIG);
    assert_non_null(strstr(err.message, ":4: library 'lib/../../x.so' must be a path inside"));
}

/* Every problem of a descriptor is reported at once, each with its own line. */
static void test_all_errors_at_once(void **state)
{
    fixture *fx = *state;
    sh_descriptor *d = NULL;
    sh_error err;
    assert_int_equal(load(fx, "format = 1;\nname = \"Bad/Name\";\nversion = \"1.x\";\n" L_LIBRARY L_ABI
                              "stages = ( { type = \"a.b\"; } );\nlimits = { timeout_ms = 0; };\nfrobnicate = 1;\n",
                          &d, &err),
                     SH_S_CONFIG);
    assert_null(d);
    const char *expect[] = {":2: plugin name 'Bad/Name'", ":3: version '1.x'", "stage type 'a.b' is invalid",
                            "key 'timeout_ms' must be at least 1", "unknown key 'frobnicate'"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        tu_expect_contains(err.message, expect[i]);
}

static void test_relative_descriptor_path(void **state)
{
    fixture *fx = *state;
    tu_write_file(fx->path, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES);
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fx->dir), 0);
    sh_descriptor *d = NULL;
    sh_error err;
    sh_error_clear(&err);
    sh_status rc = sh_descriptor_load("demo.plugin", &d, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, SH_S_OK);
    assert_string_equal(d->path, "demo.plugin");
    /* The directory is made absolute: a worker runs in another working directory. */
    char real[PATH_MAX], lib[PATH_MAX + 16];
    assert_non_null(realpath(fx->dir, real));
    assert_string_equal(d->dir, real);
    snprintf(lib, sizeof lib, "%s/libdemo.so", real);
    assert_string_equal(d->library_path, lib);
    sh_descriptor_free(d);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Refused descriptors: SH_S_CONFIG with "PATH:LINE: " and the key                                                */

static void test_syntax_error(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME "version = = \"1.0.0\";\n" L_LIBRARY L_ABI L_STAGES, 3, "syntax error");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = ( { type = \"x\"; }\n", 7, "syntax error");
}

static void test_unreadable_file(void **state)
{
    fixture *fx = *state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/absent.plugin", fx->dir);
    sh_descriptor *d = (sh_descriptor *)(uintptr_t)1;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_descriptor_load(path, &d, &err), SH_S_CONFIG);
    assert_null(d);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "cannot read descriptor"));
}

static void test_missing_required_keys(void **state)
{
    fixture *fx = *state;
    /* A missing key has no line of its own: the error points at the enclosing group, the root, line 1. */
    REFUSED(fx, L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES, 1, "missing required key 'format'");
    REFUSED(fx, L_FORMAT L_VERSION L_LIBRARY L_ABI L_STAGES, 1, "missing required key 'name'");
    REFUSED(fx, L_FORMAT L_NAME L_LIBRARY L_ABI L_STAGES, 1, "missing required key 'version'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_ABI L_STAGES, 1, "missing required key 'library'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_STAGES, 1, "missing required key 'abi'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI, 1, "missing required key 'stages'");
}

static void test_wrong_types(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME "version = 1;\n" L_LIBRARY L_ABI L_STAGES, 3, "key 'version'", "got an integer");
    REFUSED(fx, "format = \"1\";\n" L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES, 1, "key 'format'", "got a string");
    REFUSED(fx, L_FORMAT "name = [ \"acme/demo\" ];\n" L_VERSION L_LIBRARY L_ABI L_STAGES, 2, "key 'name'",
            "got an array");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION "library = true;\n" L_ABI L_STAGES, 4, "key 'library'", "got a boolean");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = 1.0;\n" L_STAGES, 5, "key 'abi'", "got a number");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = { type = \"x\"; };\n", 6, "key 'stages'",
            "got a group");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = ( \"upper\" );\n", 6,
            "element 1 of 'stages'", "got a string");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "priority = \"high\";\n", 7, "key 'priority'",
            "got a string");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "requires = \"core/text\";\n", 7,
            "key 'requires'", "got a string");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "requires = ( \"core/text\", 3 );\n", 7,
            "element 2 of 'requires'", "got an integer");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = 5;\n", 7, "key 'limits'",
            "got an integer");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = { timeout_ms = 1.5; };\n", 7,
            "key 'timeout_ms'", "got a number");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "permissions = ( );\n", 7,
            "key 'permissions'", "got a list");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "permissions = {\n network = \"yes\"; };\n", 8,
            "key 'network'", "true or false", "got a string");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "isolation = 1;\n", 7, "key 'isolation'",
            "got an integer");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "description = 3;\n", 7, "key 'description'",
            "got an integer");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n { type = \"a\"; input = 3; } );\n", 7,
            "key 'input'", "got an integer");
}

static void test_bad_format(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_NAME "format = 2;\n" L_VERSION L_LIBRARY L_ABI L_STAGES, 2, "descriptor format 2 is not supported",
            "format 1");
    REFUSED(fx, "format = 0;\n" L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES, 1, "descriptor format 0");
}

static void test_bad_name(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT "\nname = \"Core/Text\";\n" L_VERSION L_LIBRARY L_ABI L_STAGES, 3,
            "plugin name 'Core/Text'", "namespace/name");
    REFUSED(fx, L_FORMAT "name = \"notnamespaced\";\n" L_VERSION L_LIBRARY L_ABI L_STAGES, 2,
            "plugin name 'notnamespaced'");
    REFUSED(fx, L_FORMAT "name = \"a/b/c\";\n" L_VERSION L_LIBRARY L_ABI L_STAGES, 2, "plugin name 'a/b/c'");
}

static void test_bad_semver(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME "version = \"1.x\";\n" L_LIBRARY L_ABI L_STAGES, 3, "version '1.x'",
            "semantic version");
    REFUSED(fx, L_FORMAT L_NAME "version = \"01.0.0\";\n" L_LIBRARY L_ABI L_STAGES, 3, "version '01.0.0'");
    REFUSED(fx, L_FORMAT L_NAME "version = \"1.0\";\n" L_LIBRARY L_ABI L_STAGES, 3, "version '1.0'");
}

static void test_bad_abi(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"2.0\";\n" L_STAGES, 5, "ABI 2.0", "rebuild");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"0.9\";\n" L_STAGES, 5, "ABI 0.9", "rebuild");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"1\";\n" L_STAGES, 5, "key 'abi'", "MAJOR.MINOR",
            "\"1\"");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"1.0.0\";\n" L_STAGES, 5, "key 'abi'", "\"1.0.0\"");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"1.x\";\n" L_STAGES, 5, "key 'abi'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"1.70000\";\n" L_STAGES, 5, "key 'abi'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "abi = \"\";\n" L_STAGES, 5, "key 'abi'");
}

static void test_bad_stages(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "\nstages = ( );\n", 7, "key 'stages' is empty");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n  { type = \"a\"; },\n  { input = \"document\"; }\n);\n",
            8, "missing required key 'type'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI
            "stages = (\n  { type = \"split\"; },\n  { type = \"other\"; },\n  { type = \"split\"; }\n);\n",
            9, "stage type 'split' is declared twice", "(first at line 7)");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n  { type = \"text.chunk\"; }\n);\n", 7,
            "stage type 'text.chunk' is invalid");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n  { type = \"core/chunk\"; }\n);\n", 7,
            "stage type 'core/chunk' is invalid");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n  { type = \"\"; }\n);\n", 7,
            "stage type '' is invalid");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stages = (\n  { type = \"a\"; input = \"Doc\"; }\n);\n",
            7, "contract names", "input 'Doc'");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI
            "stages = (\n  { type = \"a\";\n    typo = \"b\"; }\n);\n", 8,
            "unknown key 'typo' in a stage", "did you mean 'type'?");
}

static void test_unknown_keys(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI "stage = ( { type = \"a\"; } );\n", 6,
            "unknown key 'stage' in the descriptor", "did you mean 'stages'?");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "\npriorty = 3;\n", 8,
            "unknown key 'priorty'", "did you mean 'priority'?");
    /* Too far from every known key for a suggestion. */
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "colour = \"blue\";\n", 7,
            "unknown key 'colour' in the descriptor");
    sh_descriptor *d = NULL;
    sh_error err;
    assert_int_equal(load(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "colour = \"blue\";\n", &d, &err),
                     SH_S_CONFIG);
    assert_null(strstr(err.message, "did you mean"));

    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES
            "limits = {\n  memory_mb = 64;\n  memroy_mb = 128;\n};\n", 9,
            "unknown key 'memroy_mb' in 'limits'", "did you mean 'memory_mb'?");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "permissions = {\n  netwrk = true; };\n", 8,
            "unknown key 'netwrk' in 'permissions'", "did you mean 'network'?");
}

static void test_limits_minimum(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  memory_mb = 0; };\n", 8,
            "key 'memory_mb' must be at least 1, got 0");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  cpu_seconds = -3; };\n", 8,
            "key 'cpu_seconds' must be at least 1, got -3");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  timeout_ms = 0; };\n", 8,
            "key 'timeout_ms' must be at least 1, got 0");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n\n  open_files = 15; };\n", 9,
            "key 'open_files' must be at least 16, got 15");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  processes = 0; };\n", 8,
            "key 'processes' must be at least 1, got 0");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  file_size_mb = 0; };\n", 8,
            "key 'file_size_mb' must be at least 1, got 0");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  output_mb = -1; };\n", 8,
            "key 'output_mb' must be at least 1, got -1");

    /* The minimum itself is accepted, and 64-bit values survive. */
    sh_descriptor *d = NULL;
    sh_error err;
    assert_int_equal(load(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES
                          "limits = { memory_mb = 1; cpu_seconds = 1; timeout_ms = 604800000L; open_files = 16; };\n",
                          &d, &err),
                     SH_S_OK);
    assert_int_equal(d->limits.memory_mb, 1);
    assert_int_equal(d->limits.cpu_seconds, 1);
    assert_true(d->limits.timeout_ms == INT64_C(604800000));
    assert_int_equal(d->limits.open_files, 16);
    sh_descriptor_free(d);
    /* Past the maximum is a unit mistake, refused with the bound. */
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "limits = {\n  timeout_ms = 6000000000L; };\n", 8,
            "limits.timeout_ms = 6000000000 is out of range: at most 604800000 ms (a week)");
}

static void test_bad_isolation(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "isolation = \"thread\";\n", 7,
            "isolation 'thread'", "\"process\", \"call\" or \"none\"");
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI L_STAGES "isolation = \"\";\n", 7, "isolation ''");
}

static void test_bad_entry(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, L_FORMAT L_NAME L_VERSION L_LIBRARY "entry = \"1bad-name\";\n" L_ABI L_STAGES, 5,
            "entry '1bad-name' is not a C identifier");
}

static void test_library_missing(void **state)
{
    fixture *fx = *state;
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "not found at %s/build/libnothere.so", fx->dir);
    REFUSED(fx, L_FORMAT L_NAME L_VERSION "\nlibrary = \"build/libnothere.so\";\n" L_ABI L_STAGES, 5,
            "library 'build/libnothere.so'", want, "No such file or directory");

    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/adir.so", fx->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    REFUSED(fx, L_FORMAT L_NAME L_VERSION "library = \"adir.so\";\n" L_ABI L_STAGES, 4, sub,
            "is not a regular file");
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Shape checks                                                                                                  */

static void test_valid_semver_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"0.0.0", true},        {"1.0.0", true},           {"10.20.30", true},     {"1.2.3-alpha", true},
        {"1.2.3-alpha.1", true}, {"1.2.3+build.7", true},  {"1.2.3-rc.1+exp.sha.5114f85", true},
        {"1.0.0-0.3.7", true},  {"1.0.0-x-y-z.--", true},  {"999999999.0.0", true},
        {"", false},            {"1", false},              {"1.0", false},         {"1.x", false},
        {"1.0.x", false},       {"01.0.0", false},         {"1.01.0", false},      {"1.0.01", false},
        {"v1.0.0", false},      {"1.0.0.0", false},        {"1.0.0-", false},      {"1.0.0+", false},
        {"1.0.0-a b", false},   {"1.0.0-a_b", false},      {" 1.0.0", false},      {"1.0.0 ", false},
        {"-1.0.0", false},      {"1..0", false},           {"1.0.", false},        {".1.0", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sh_valid_semver(cases[i].s) != cases[i].ok)
            print_error("sh_valid_semver(\"%s\") should be %s\n", cases[i].s, cases[i].ok ? "true" : "false");
        assert_int_equal(sh_valid_semver(cases[i].s), cases[i].ok);
    }
}

static void test_valid_plugin_name_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"core/text", true},   {"acme/text-tools", true}, {"a/b", true},          {"0ns/9p", true},
        {"my-ns/p-2", true}, {"my_ns/p_2", false},   {"Core/Text", false},      {"core/Text", false},   {"notnamespaced", false},
        {"", false},           {"/text", false},          {"core/", false},       {"/", false},
        {"a/b/c", false},      {"_ns/p", false},          {"ns/-p", false},       {"ns/p.x", false},
        {"ns /p", false},      {"ns/p ", false},          {"n\xc3\xa9/p", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sh_valid_plugin_name(cases[i].s) != cases[i].ok)
            print_error("sh_valid_plugin_name(\"%s\") should be %s\n", cases[i].s, cases[i].ok ? "true" : "false");
        assert_int_equal(sh_valid_plugin_name(cases[i].s), cases[i].ok);
    }
}

static void test_valid_stage_type_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"chunk", true},     {"Chunk", true},     {"chunk_2", true},  {"to-json", true},  {"_x", true},
        {"9", true},         {"", false},         {"a.b", false},     {"core/chunk", false},
        {"a b", false},      {"a\tb", false},     {"\xc3\xa9", false}, {"a:b", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sh_valid_stage_type(cases[i].s) != cases[i].ok)
            print_error("sh_valid_stage_type(\"%s\") should be %s\n", cases[i].s, cases[i].ok ? "true" : "false");
        assert_int_equal(sh_valid_stage_type(cases[i].s), cases[i].ok);
    }
}

/* Every later copy of a stage type names the line of the first, in line order, whatever their number. */
static void test_duplicate_stage_types_name_the_first(void **state)
{
    fixture *fx = *state;
    sh_descriptor *d = NULL;
    sh_error err;
    const char *text = L_FORMAT L_NAME L_VERSION L_LIBRARY L_ABI
        "stages = (\n"
        "  { type = \"b\"; },\n"       /* line 7 */
        "  { type = \"a\"; },\n"       /* line 8 */
        "  { type = \"b\"; },\n"       /* line 9 */
        "  { type = \"c\"; },\n"       /* line 10 */
        "  { type = \"b\"; },\n"       /* line 11 */
        "  { type = \"a\"; } );\n";    /* line 12 */
    assert_int_equal(load(fx, text, &d, &err), SH_S_CONFIG);
    const char *b9 = strstr(err.message, ":9: stage type 'b' is declared twice (first at line 7)");
    const char *b11 = strstr(err.message, ":11: stage type 'b' is declared twice (first at line 7)");
    const char *a12 = strstr(err.message, ":12: stage type 'a' is declared twice (first at line 8)");
    if (!b9 || !b11 || !a12 || !(b9 < b11 && b11 < a12))
        print_error("duplicates not reported in line order with their first line:\n%s\n", err.message);
    assert_true(b9 && b11 && a12 && b9 < b11 && b11 < a12);
    assert_null(strstr(err.message, ":7:"));
    assert_null(strstr(err.message, ":10:"));
}

/* A descriptor larger than the cap is refused before it is parsed; a directory is not a descriptor. */
static void test_oversized_and_not_a_file(void **state)
{
    fixture *fx = *state;
    size_t n = SH_CFG_MAX_DESCRIPTOR + 1;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, ' ', n);
    memcpy(text, L_FORMAT, strlen(L_FORMAT));
    text[n] = '\0';
    sh_descriptor *d = NULL;
    sh_error err;
    assert_int_equal(load(fx, text, &d, &err), SH_S_CONFIG);
    free(text);
    assert_non_null(strstr(err.message, "more than the 1024 KiB a descriptor may be"));
    assert_non_null(strstr(err.message, fx->path));
    assert_int_equal(sh_descriptor_load(fx->dir, &d, &err), SH_S_CONFIG);
    assert_non_null(strstr(err.message, "is a directory, not a descriptor file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_descriptor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimal_descriptor_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolation_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_in_subdir_and_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_descriptor_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_required_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_semver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_abi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_stages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_stage_types_name_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_and_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_minimum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_missing, setup, teardown),
        cmocka_unit_test(test_valid_semver_table),
        cmocka_unit_test(test_valid_plugin_name_table),
        cmocka_unit_test(test_valid_stage_type_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
