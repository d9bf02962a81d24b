/* Unit tests for pipeline files: sh_pipeline_load() parsing, configuration conversion and "PATH:LINE:" errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/pipeline.h"
#include "testutil.h"
#include "value/value.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX]; /* the pipeline file */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (!tu_mkdtemp(fx->dir, sizeof fx->dir, "sh-pipe")) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/demo.pipeline", fx->dir);
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

static sh_status load(fixture *fx, const char *text, sh_pipeline **out, sh_error *err)
{
    tu_write_file(fx->path, text);
    sh_error_clear(err);
    return sh_pipeline_load(fx->path, out, err);
}

/* Asserts that `text` is refused with SH_S_CONFIG, a message starting with "PATH:LINE: " and containing each of
 * the NULL-terminated strings. */
static void expect_refused_at(fixture *fx, const char *text, int line, ...)
{
    sh_pipeline *p = (sh_pipeline *)(uintptr_t)1;
    sh_error err;
    sh_status rc = load(fx, text, &p, &err);
    if (rc != SH_S_CONFIG)
        print_error("pipeline was not refused (status %d): %s\n--- pipeline:\n%s", (int)rc, err.message, text);
    assert_int_equal(rc, SH_S_CONFIG);
    assert_null(p);
    assert_int_equal(err.status, SH_S_CONFIG);

    va_list ap;
    va_start(ap, line);
    tu_vexpect_at(err.message, fx->path, line, ap);
    va_end(ap);
}

#define REFUSED(fx, text, line, ...) expect_refused_at((fx), (text), (line), __VA_ARGS__, (const char *)NULL)

/* Takes ownership of v, asserting it is not NULL (constructors return NULL only when out of memory). */
static sh_value *V(sh_value *v)
{
    assert_non_null(v);
    return v;
}

static void set(sh_value *map, const char *key, sh_value *v) { assert_int_equal(sh_value_map_set(map, key, V(v)), SH_OK); }
static void push(sh_value *a, sh_value *v) { assert_int_equal(sh_value_array_push(a, V(v)), SH_OK); }

/* ------------------------------------------------------------------------------------------------------------ */

static const char valid_pipeline[] =
    "# ingest documents\n"                                                  /* 1 */
    "pipeline = {\n"                                                        /* 2 */
    "  name = \"ingest docs\";\n"                                           /* 3 */
    "  stages = (\n"                                                        /* 4 */
    "    {\n"                                                               /* 5 */
    "      name = \"src\";\n"                                               /* 6 */
    "      type = \"read\";\n"                                              /* 7 */
    "      config = {\n"                                                    /* 8 */
    "        path = \"in/docs.txt\";\n"                                     /* 9 */
    "        count = 42;\n"                                                 /* 10 */
    "        big = 5000000000L;\n"                                          /* 11 */
    "        negative = -7;\n"                                              /* 12 */
    "        ratio = 0.25;\n"                                               /* 13 */
    "        on = true;\n"                                                  /* 14 */
    "        off = false;\n"                                                /* 15 */
    "        empty = \"\";\n"                                               /* 16 */
    "        nested = { depth = 2; inner = { leaf = \"x\"; }; };\n"         /* 17 */
    "        mixed = ( 1, \"two\", 3.5, { k = true; }, ( ) );\n"            /* 18 */
    "        ints = [ 1, 2, 3 ];\n"                                         /* 19 */
    "      };\n"                                                            /* 20 */
    "    },\n"                                                              /* 21 */
    "    { name = \"split-2\"; type = \"core/text.chunk\";\n"               /* 22 */
    "      isolation = \"none\"; timeout_ms = 1500; },\n"                   /* 23 */
    "    { name = \"Out_3\"; type = \"write\"; isolation = \"call\"; config = { }; },\n" /* 24 */
    "    { name = \"p\"; type = \"passthrough\"; isolation = \"process\"; }\n" /* 25 */
    "  );\n"                                                                /* 26 */
    "};\n";                                                                 /* 27 */

static void test_valid_pipeline(void **state)
{
    fixture *fx = *state;
    sh_pipeline *p = NULL;
    sh_error err;
    sh_status rc = load(fx, valid_pipeline, &p, &err);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    assert_non_null(p);

    assert_string_equal(p->path, fx->path);
    char real[PATH_MAX];
    assert_non_null(realpath(fx->dir, real));
    assert_string_equal(p->dir, real);
    assert_true(p->dir[0] == '/');
    assert_string_equal(p->name, "ingest docs");
    assert_int_equal(p->count, 4);

    static const struct {
        const char *name, *type;
        sh_isolation iso;
        int64_t timeout;
        int line;
    } want[] = {
        {"src", "read", SH_ISOLATION_DEFAULT, 0, 5},
        {"split-2", "core/text.chunk", SH_ISOLATION_NONE, 1500, 22},
        {"Out_3", "write", SH_ISOLATION_CALL, 0, 24},
        {"p", "passthrough", SH_ISOLATION_PROCESS, 0, 25},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(p->stages[i].name, want[i].name);
        assert_string_equal(p->stages[i].type, want[i].type);
        assert_int_equal(p->stages[i].isolation, want[i].iso);
        assert_int_equal(p->stages[i].timeout_ms, want[i].timeout);
        assert_int_equal(p->stages[i].line, want[i].line);
        assert_non_null(p->stages[i].config);
        assert_int_equal(sh_value_type(p->stages[i].config), SH_TYPE_MAP);
    }
    /* Stages without `config`, or with an empty one, get an empty map. */
    assert_int_equal(sh_value_count(p->stages[1].config), 0);
    assert_int_equal(sh_value_count(p->stages[2].config), 0);
    assert_int_equal(sh_value_count(p->stages[3].config), 0);

    /* The first stage's configuration, converted type by type, in file order. */
    const sh_value *c = p->stages[0].config;
    sh_value *expect = V(sh_value_map());
    set(expect, "path", sh_value_cstring("in/docs.txt"));
    set(expect, "count", sh_value_int(42));
    set(expect, "big", sh_value_int(INT64_C(5000000000)));
    set(expect, "negative", sh_value_int(-7));
    set(expect, "ratio", sh_value_double(0.25));
    set(expect, "on", sh_value_bool(1));
    set(expect, "off", sh_value_bool(0));
    set(expect, "empty", sh_value_cstring(""));
    sh_value *nested = V(sh_value_map());
    set(nested, "depth", sh_value_int(2));
    sh_value *inner = V(sh_value_map());
    set(inner, "leaf", sh_value_cstring("x"));
    set(nested, "inner", inner);
    set(expect, "nested", nested);
    sh_value *mixed = V(sh_value_array());
    push(mixed, sh_value_int(1));
    push(mixed, sh_value_cstring("two"));
    push(mixed, sh_value_double(3.5));
    sh_value *k = V(sh_value_map());
    set(k, "k", sh_value_bool(1));
    push(mixed, k);
    push(mixed, sh_value_array());
    set(expect, "mixed", mixed);
    sh_value *ints = V(sh_value_array());
    push(ints, sh_value_int(1));
    push(ints, sh_value_int(2));
    push(ints, sh_value_int(3));
    set(expect, "ints", ints);
    assert_true(sh_value_equal(c, expect));
    sh_value_free(expect);

    /* And a few fields read directly, so a broken sh_value_equal cannot hide a conversion bug. */
    assert_int_equal(sh_value_count(c), 11);
    const sh_value *v = NULL;
    assert_string_equal(sh_value_map_entry(c, 0, &v), "path");
    size_t len = 0;
    assert_string_equal(sh_value_get_string(v, &len), "in/docs.txt");
    assert_int_equal(len, 11);
    assert_int_equal(sh_value_type(sh_value_map_get(c, "count")), SH_TYPE_INT);
    assert_int_equal(sh_value_get_int(sh_value_map_get(c, "count")), 42);
    assert_true(sh_value_get_int(sh_value_map_get(c, "big")) == INT64_C(5000000000));
    assert_int_equal(sh_value_type(sh_value_map_get(c, "ratio")), SH_TYPE_DOUBLE);
    assert_true(sh_value_get_double(sh_value_map_get(c, "ratio")) == 0.25);
    assert_int_equal(sh_value_type(sh_value_map_get(c, "on")), SH_TYPE_BOOL);
    assert_int_equal(sh_value_get_bool(sh_value_map_get(c, "on")), 1);
    assert_int_equal(sh_value_get_bool(sh_value_map_get(c, "off")), 0);
    const sh_value *n = sh_value_map_get(c, "nested");
    assert_int_equal(sh_value_type(n), SH_TYPE_MAP);
    assert_string_equal(sh_value_get_string(sh_value_map_get(sh_value_map_get(n, "inner"), "leaf"), NULL), "x");
    const sh_value *m = sh_value_map_get(c, "mixed");
    assert_int_equal(sh_value_type(m), SH_TYPE_ARRAY);
    assert_int_equal(sh_value_count(m), 5);
    assert_string_equal(sh_value_get_string(sh_value_array_get(m, 1), NULL), "two");
    assert_int_equal(sh_value_type(sh_value_array_get(m, 4)), SH_TYPE_ARRAY);
    assert_int_equal(sh_value_type(sh_value_map_get(c, "ints")), SH_TYPE_ARRAY);
    assert_int_equal(sh_value_get_int(sh_value_array_get(sh_value_map_get(c, "ints"), 2)), 3);

    sh_pipeline_free(p);
}

static void test_relative_path_gives_absolute_dir(void **state)
{
    fixture *fx = *state;
    tu_write_file(fx->path, valid_pipeline);
    char cwd[PATH_MAX], real[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_non_null(realpath(fx->dir, real));
    assert_int_equal(chdir(fx->dir), 0);

    sh_pipeline *p = NULL;
    sh_error err;
    sh_error_clear(&err);
    sh_status rc = sh_pipeline_load("demo.pipeline", &p, &err);
    sh_pipeline *q = NULL;
    sh_status rc2 = rc == SH_S_OK ? sh_pipeline_load("./demo.pipeline", &q, &err) : rc;
    assert_int_equal(chdir(cwd), 0);

    assert_int_equal(rc, SH_S_OK);
    assert_string_equal(p->path, "demo.pipeline");
    assert_string_equal(p->dir, real);
    assert_int_equal(rc2, SH_S_OK);
    assert_string_equal(q->dir, real);
    sh_pipeline_free(p);
    sh_pipeline_free(q);
}

static void test_unreadable_file(void **state)
{
    fixture *fx = *state;
    sh_pipeline *p = (sh_pipeline *)(uintptr_t)1;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_pipeline_load(fx->path, &p, &err), SH_S_CONFIG); /* not written yet */
    assert_null(p);
    assert_non_null(strstr(err.message, fx->path));
    assert_non_null(strstr(err.message, "cannot read pipeline"));
}

static void test_syntax_error(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = = ( );\n};\n", 3, "syntax error", "libconfig syntax");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\"; }\n  );\n", 6,
            "syntax error");
}

static void test_missing_pipeline_group(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "# nothing here\n", 1, "missing the 'pipeline' group");
    REFUSED(fx, "\n\npipline = { name = \"x\"; stages = ( { name = \"a\"; type = \"read\"; } ); };\n", 3,
            "unknown key 'pipline' in the pipeline file", "did you mean 'pipeline'?");
    REFUSED(fx, "\npipeline = ( 1 );\n", 2, "'pipeline' must be a group", "got a list");
}

static void test_missing_name(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "\npipeline = {\n  stages = ( { name = \"a\"; type = \"read\"; } );\n};\n", 2,
            "missing required key 'name'");
    REFUSED(fx, "pipeline = {\n  name = 7;\n  stages = ( { name = \"a\"; type = \"read\"; } );\n};\n", 2,
            "key 'name'", "got an integer");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  nme = \"y\";\n  stages = ( { name = \"a\"; type = \"read\"; } );\n};\n",
            3, "unknown key 'nme' in 'pipeline'", "did you mean 'name'?");
}

static void test_no_stages(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = ( );\n};\n", 3, "the pipeline has no stages");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n};\n", 1, "missing required key 'stages'");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = { name = \"a\"; type = \"read\"; };\n};\n", 3,
            "key 'stages' must be a list", "got a group");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\"; }, \"write\" );\n};\n", 4,
            "element 2 of 'stages'", "got a string");
}

static void test_stage_missing_name_or_type(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\"; },\n"
                "    { type = \"write\"; }\n  );\n};\n",
            5, "missing required key 'name'");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\"; },\n"
                "    { name = \"b\"; }\n  );\n};\n",
            5, "missing required key 'type'");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\";\n      type = \"\"; }\n  );\n};\n", 5,
            "stage 'a' has an empty type");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\";\n      type = 3; }\n  );\n};\n", 5,
            "key 'type'", "got an integer");
}

/* Asserts that `text` parses but its graph is refused: sh_pipeline_check() counts `errors` problems, and the
 * message has "PATH:LINE: " and each NULL-terminated string. */
static void expect_graph_refused(fixture *fx, const char *text, size_t errors, int line, ...)
{
    sh_pipeline *p = NULL;
    sh_error err;
    sh_status rc = load(fx, text, &p, &err);
    if (rc != SH_S_OK)
        print_error("pipeline did not parse: %s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    sh_error_clear(&err);
    size_t n = sh_pipeline_check(p, &err);
    if (n != errors)
        print_error("%zu graph errors, expected %zu: %s\n", n, errors, err.message);
    assert_int_equal(n, errors);
    assert_int_equal(err.status, SH_S_CONFIG);
    va_list ap;
    va_start(ap, line);
    tu_vexpect_at(err.message, fx->path, line, ap);
    va_end(ap);
    sh_pipeline_free(p);
}

static void test_duplicate_stage_name(void **state)
{
    fixture *fx = *state;
    expect_graph_refused(fx,
                         "pipeline = {\n"                              /* 1 */
                         "  name = \"x\";\n"                           /* 2 */
                         "  stages = (\n"                              /* 3 */
                         "    { name = \"a\"; type = \"read\"; },\n"   /* 4 */
                         "    { name = \"b\"; type = \"chunk\"; },\n"  /* 5 */
                         "    { name = \"a\"; type = \"write\"; depends_on = (\"b\"); }\n" /* 6 */
                         "  );\n"
                         "};\n",
                         1, 6, "stage name 'a' is used twice", "(first at line 4)", NULL);
}

static void test_unknown_dependency_and_self(void **state)
{
    fixture *fx = *state;
    const char *text = "pipeline = {\n  name = \"x\";\n  stages = (\n"
                       "    { name = \"a\"; type = \"read\"; depends_on = (); },\n"                 /* 4 */
                       "    { name = \"b\"; type = \"chunk\"; depends_on = (\n"
                       "        \"a\", \"nowhere\"); },\n"                                            /* 6 */
                       "    { name = \"c\"; type = \"write\"; depends_on = (\"c\", \"b\", \"b\"); }\n" /* 7 */
                       "  );\n};\n";
    expect_graph_refused(fx, text, 3, 6, "stage 'b' depends on 'nowhere', but no stage has that name",
                         "the stages are: 'a', 'c'", NULL);
    sh_pipeline *p = NULL;
    sh_error err;
    assert_int_equal(load(fx, text, &p, &err), SH_S_OK);
    sh_error_clear(&err);
    assert_int_equal(sh_pipeline_check(p, &err), 3);
    tu_expect_contains(err.message, "demo.pipeline:7: stage 'c' depends on itself");
    tu_expect_contains(err.message, "demo.pipeline:7: stage 'c' lists 'b' twice");
    sh_pipeline_free(p);
}

static void test_cycle_is_printed_as_a_path(void **state)
{
    fixture *fx = *state;
    expect_graph_refused(fx,
                         "pipeline = {\n  name = \"x\";\n  stages = (\n"
                         "    { name = \"src\"; type = \"read\"; depends_on = (); },\n"      /* 4 */
                         "    { name = \"a\"; type = \"chunk\"; depends_on = (\"src\", \"c\"); },\n" /* 5 */
                         "    { name = \"b\"; type = \"chunk\"; depends_on = (\"a\"); },\n"  /* 6 */
                         "    { name = \"c\"; type = \"chunk\"; depends_on = (\"b\"); }\n"   /* 7 */
                         "  );\n};\n",
                         1, 5, "stages depend on each other in a cycle", "a -> c -> b -> a", NULL);
}

static void test_graph_defaults_and_order(void **state)
{
    /* Without depends_on a stage follows the one before it; depends_on = () makes a root; the order puts every
     * stage after its upstream stages, ties in declared order. */
    fixture *fx = *state;
    sh_pipeline *p = NULL;
    sh_error err;
    assert_int_equal(load(fx,
                          "pipeline = { name = \"x\"; version = \"2.1\"; metadata = { owner = \"data\"; };\n"
                          "  stages = (\n"
                          "    { name = \"join\"; type = \"write\"; depends_on = (\"left\", \"right\"); },\n"
                          "    { name = \"left\"; type = \"read\"; depends_on = (); },\n"
                          "    { name = \"right\"; type = \"read\"; depends_on = ();\n"
                          "      retry = { max = 3; backoff_ms = 5; multiplier = 1.5; }; cache = true;\n"
                          "      on_failure = \"continue\"; },\n"
                          "    { name = \"after\"; type = \"passthrough\"; }\n"
                          "  );\n};\n",
                          &p, &err),
                     SH_S_OK);
    assert_int_equal(sh_pipeline_check(p, &err), 0);
    assert_string_equal(p->version, "2.1");
    assert_string_equal(sh_value_get_string(sh_value_map_get(p->metadata, "owner"), NULL), "data");
    assert_int_equal(p->stages[3].dep_count, 1);
    assert_string_equal(p->stages[3].depends_on[0], "right");
    assert_int_equal(p->stages[2].retry.max, 3);
    assert_int_equal(p->stages[2].retry.backoff_ms, 5);
    assert_true(p->stages[2].retry.multiplier > 1.49 && p->stages[2].retry.multiplier < 1.51);
    assert_int_equal(p->stages[2].cache, 1);
    assert_int_equal(p->stages[1].cache, -1);
    assert_int_equal(p->stages[2].on_failure, SH_ON_FAILURE_CONTINUE);
    size_t order[4];
    sh_pipeline_order(p, order);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 0);
    assert_int_equal(order[3], 3);
    sh_pipeline_free(p);
}

static void test_all_key_errors_at_once(void **state)
{
    fixture *fx = *state;
    sh_pipeline *p = NULL;
    sh_error err;
    assert_int_equal(load(fx,
                          "pipeline = { name = \"x\";\n  stages = (\n"
                          "    { name = \"a\"; type = \"read\"; retry = { max = -1; }; },\n"           /* 3 */
                          "    { name = \"b\"; type = \"chunk\"; on_failure = \"ignore\"; },\n"      /* 4 */
                          "    { name = \"c\"; type = \"chunk\"; depends_on = \"a\"; cache = 1; }\n" /* 5 */
                          "  );\n};\n",
                          &p, &err),
                     SH_S_CONFIG);
    assert_null(p);
    tu_expect_contains(err.message, ":3: key 'max' must be at least 0");
    tu_expect_contains(err.message, ":4: on_failure 'ignore' is not one of");
    tu_expect_contains(err.message, ":5: key 'cache' must be true or false");
    tu_expect_contains(err.message, ":5: key 'depends_on' of stage 'c' must be a list");

    /* Bounds: a typo must not keep a run alive for days. */
    assert_int_equal(load(fx,
                          "pipeline = { name = \"x\";\n  stages = (\n"
                          "    { name = \"a\"; type = \"read\"; retry = { max = 101; backoff_ms = 3600001; }; },\n"
                          "    { name = \"b\"; type = \"read\"; retry = { multiplier = 0.5; }; timeout_ms = 604800001; }\n"
                          "  );\n};\n",
                          &p, &err),
                     SH_S_CONFIG);
    tu_expect_contains(err.message, ":3: key 'max' is 101: at most 100 retries");
    tu_expect_contains(err.message, ":3: key 'backoff_ms' is more than an hour");
    tu_expect_contains(err.message, ":4: key 'multiplier' must be a number from 1.0 to 100.0");
    tu_expect_contains(err.message, ":4: key 'timeout_ms' is 604800001: at most a week");
}

static void test_order_with_a_cycle_places_every_stage(void **state)
{
    /* The order is only meaningful for a sound graph, but it must stay a permutation whatever it is given. */
    fixture *fx = *state;
    sh_pipeline *p = NULL;
    sh_error err;
    assert_int_equal(load(fx,
                          "pipeline = { name = \"x\"; stages = (\n"
                          "  { name = \"a\"; type = \"read\"; depends_on = (\"b\"); },\n"
                          "  { name = \"b\"; type = \"read\"; depends_on = (\"a\"); },\n"
                          "  { name = \"c\"; type = \"read\"; depends_on = (); } ); };\n",
                          &p, &err),
                     SH_S_OK);
    sh_error_clear(&err);
    assert_int_equal(sh_pipeline_check(p, &err), 1);
    size_t order[3];
    sh_pipeline_order(p, order);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[0] + order[1] + order[2], 3);
    assert_int_not_equal(order[1], order[2]);
    sh_pipeline_free(p);
}

static void test_invalid_stage_name(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { type = \"read\";\n      name = \"bad name\"; }\n  );\n};\n",
            5, "stage name 'bad name' is invalid");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a.b\"; type = \"read\"; }\n  );\n};\n", 4,
            "stage name 'a.b' is invalid");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"\"; type = \"read\"; }\n  );\n};\n", 4,
            "stage name '' is invalid");
}

static void test_config_not_a_group(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      config = ( \"path\", \"x\" ); }\n  );\n};\n",
            5, "key 'config' of stage 'a' must be a group", "got a list");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      config = \"path=x\"; }\n  );\n};\n",
            5, "key 'config' of stage 'a'", "got a string");
}

static void test_unknown_stage_key(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      confg = { path = \"x\"; }; }\n  );\n};\n",
            5, "unknown key 'confg' in a stage", "did you mean 'config'?");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      timeout = 5; }\n  );\n};\n",
            5, "unknown key 'timeout' in a stage");
}

static void test_bad_isolation_and_timeout(void **state)
{
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      isolation = \"threads\"; }\n  );\n};\n",
            5, "isolation 'threads' of stage 'a'", "\"process\", \"call\" or \"none\"");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      isolation = true; }\n  );\n};\n",
            5, "key 'isolation'", "got a boolean");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      timeout_ms = 0; }\n  );\n};\n",
            5, "key 'timeout_ms' must be at least 1, got 0");
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
                "      timeout_ms = \"5s\"; }\n  );\n};\n",
            5, "key 'timeout_ms'", "got a string");
}

static void test_error_in_later_stage_frees_earlier(void **state)
{
    /* Under ASan/valgrind: the stages parsed before the failing one (with their configuration maps) are freed. */
    fixture *fx = *state;
    REFUSED(fx, "pipeline = {\n  name = \"x\";\n  stages = (\n"
                "    { name = \"a\"; type = \"read\"; config = { p = ( 1, { q = \"r\"; } ); }; isolation = \"none\"; },\n"
                "    { name = \"b\"; type = \"chunk\"; config = { size = 10; }; isolation = \"bogus\"; }\n  );\n};\n",
            5, "isolation 'bogus' of stage 'b'");
}

static void test_config_string_not_utf8(void **state)
{
    /* Configuration strings become string values, which must be UTF-8. A string that is not (written with a
     * libconfig "\xff" escape, or as raw bytes) is the user's configuration error, to be reported at its line. */
    fixture *fx = *state;
    const char *texts[] = {
        "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
        "      config = { path = \"\\xff\"; }; }\n  );\n};\n",
        "pipeline = {\n  name = \"x\";\n  stages = (\n    { name = \"a\"; type = \"read\";\n"
        "      config = { path = \"\xc3\x28\"; }; }\n  );\n};\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sh_pipeline *p = (sh_pipeline *)(uintptr_t)1;
        sh_error err;
        sh_status rc = load(fx, texts[i], &p, &err);
        assert_null(p);
        assert_int_not_equal(rc, SH_S_OK);
        assert_int_equal(rc, SH_S_CONFIG);
        char prefix[PATH_MAX + 32];
        snprintf(prefix, sizeof prefix, "%s:5: ", fx->path);
        assert_int_equal(strncmp(err.message, prefix, strlen(prefix)), 0);
        assert_non_null(strstr(err.message, "UTF-8"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_path_gives_absolute_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_pipeline_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_stages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_missing_name_or_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_stage_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_dependency_and_self, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycle_is_printed_as_a_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_defaults_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_key_errors_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_with_a_cycle_places_every_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_stage_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_not_a_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_stage_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_isolation_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_in_later_stage_frees_earlier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_string_not_utf8, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
