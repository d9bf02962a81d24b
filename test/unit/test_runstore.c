/* Unit tests for the run store: creation and schema, runs and stages, lossless outputs, resume lookups by
 * fingerprint, the output cache, run id prefixes, reports, refusing files that are not a store, and refusing
 * outputs of another value codec version. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/store.h"
#include "testutil.h"
#include "value/codec.h"
#include "value/value.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 32];
    sh_runstore *s;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || !tu_mkdtemp(fx->dir, sizeof fx->dir, "sh-store")) {
        free(fx);
        return -1;
    }
    /* A directory that does not exist yet: the store creates it. */
    snprintf(fx->path, sizeof fx->path, "%s/.stagehost/runs.db", fx->dir);
    sh_error err;
    if (sh_runstore_open(fx->path, true, &fx->s, &err) != SH_S_OK) {
        print_error("%s\n", err.message);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sh_runstore_close(fx->s);
    int rc = tu_remove_tree(fx->dir);
    free(fx);
    return rc;
}

static void begin(fixture *fx, const char *id)
{
    sh_error err;
    sh_run_record r = {.id = id, .pipeline_path = "/p/demo.cfg", .pipeline_name = "demo", .pipeline_version = "2"};
    assert_int_equal(sh_runstore_begin_run(fx->s, &r, &err), SH_S_OK);
}

/* Every value type, nested, bytes with a NUL inside: what a stage emits must come back exactly. */
static sh_value *rich_item(void)
{
    sh_value *m = sh_value_map();
    sh_value_map_set(m, "s", sh_value_cstring("héllo"));
    sh_value_map_set(m, "i", sh_value_int(-42));
    sh_value_map_set(m, "d", sh_value_double(0.125));
    sh_value_map_set(m, "b", sh_value_bool(1));
    sh_value_map_set(m, "n", sh_value_null());
    sh_value_map_set(m, "raw", sh_value_bytes("a\0b", 3));
    sh_value *a = sh_value_array();
    sh_value_array_push(a, sh_value_int(1));
    sh_value_array_push(a, sh_value_cstring("two"));
    sh_value_map_set(m, "list", a);
    return m;
}

static void test_stage_output_round_trip_and_fingerprint(void **state)
{
    fixture *fx = *state;
    begin(fx, "0123456789abcdef0123456789abcdef");
    sh_value *items[2] = {rich_item(), sh_value_cstring("plain")};
    sh_log_record logs[1] = {{.ts_ns = 5, .level = 2, .message = (char *)"hello from the plugin"}};
    sh_stage_record st = {.run_id = "0123456789abcdef0123456789abcdef",
                          .name = "a",
                          .type = "read",
                          .source = "built-in",
                          .fingerprint = "f1",
                          .status = "succeeded",
                          .attempts = 2,
                          .items_in = 0,
                          .items_out = 2,
                          .started_ns = 1,
                          .finished_ns = 2};
    sh_error err;
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, (const sh_value *const *)items, 2, logs, 1, &err), SH_S_OK);

    sh_value *out = NULL;
    bool found = false;
    uint32_t attempts = 0;
    assert_int_equal(sh_runstore_finished_output(fx->s, st.run_id, "a", "f1", &out, &attempts, &found, &err),
                     SH_S_OK);
    assert_true(found);
    assert_int_equal(attempts, 2);
    assert_int_equal(sh_value_count(out), 2);
    assert_true(sh_value_equal(sh_value_array_get(out, 0), items[0]));
    assert_true(sh_value_equal(sh_value_array_get(out, 1), items[1]));
    sh_value_free(out);

    /* Another definition of the stage: its old output must not be reused. */
    assert_int_equal(sh_runstore_finished_output(fx->s, st.run_id, "a", "f2", &out, &attempts, &found, &err),
                     SH_S_OK);
    assert_false(found);
    assert_null(out);
    /* A stage that did not finish has no output to reuse, even with its fingerprint. */
    st.name = "b";
    st.status = "failed";
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, false, NULL, 0, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_finished_output(fx->s, st.run_id, "b", "f1", &out, &attempts, &found, &err),
                     SH_S_OK);
    assert_false(found);

    /* A finished stage that emitted nothing has an output to reuse all the same: zero items. */
    st.name = "empty";
    st.status = "succeeded";
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, NULL, 0, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_finished_output(fx->s, st.run_id, "empty", "f1", &out, &attempts, &found, &err),
                     SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), 0);
    sh_value_free(out);

    sh_attempt_record a = {.run_id = st.run_id, .stage = "b", .attempt = 3, .status = "crashed", .error = "SIGSEGV"};
    assert_int_equal(sh_runstore_put_attempt(fx->s, &a, &err), SH_S_OK);
    uint32_t n = 0;
    assert_int_equal(sh_runstore_attempt_count(fx->s, st.run_id, "b", &n, &err), SH_S_OK);
    assert_int_equal(n, 3);
    assert_int_equal(sh_runstore_attempt_count(fx->s, st.run_id, "nobody", &n, &err), SH_S_OK);
    assert_int_equal(n, 0);

    sh_value *show = NULL;
    assert_int_equal(sh_runstore_show(fx->s, st.run_id, &show, &err), SH_S_OK);
    assert_string_equal(sh_value_get_string(sh_value_map_get(show, "pipeline"), NULL), "demo");
    const sh_value *stages = sh_value_map_get(show, "stage_list");
    assert_int_equal(sh_value_count(stages), 3);
    const sh_value *l0 = sh_value_array_get(sh_value_map_get(show, "logs"), 0);
    assert_string_equal(sh_value_get_string(sh_value_map_get(l0, "message"), NULL), "hello from the plugin");
    const sh_value *a0 = sh_value_array_get(sh_value_map_get(show, "attempts"), 0);
    assert_string_equal(sh_value_get_string(sh_value_map_get(a0, "error"), NULL), "SIGSEGV");
    sh_value_free(show);
    sh_value_free(items[0]);
    sh_value_free(items[1]);
}

static void test_runs_prefixes_and_status(void **state)
{
    fixture *fx = *state;
    begin(fx, "aaaa1111000000000000000000000000");
    begin(fx, "aaaa2222000000000000000000000000");
    begin(fx, "bbbb0000000000000000000000000000");
    sh_error err;
    assert_int_equal(sh_runstore_finish_run(fx->s, "bbbb0000000000000000000000000000", "failed", "it broke", &err),
                     SH_S_OK);
    char full[65];
    char *pipeline = NULL;
    assert_int_equal(sh_runstore_find_run(fx->s, "bbbb", full, &pipeline, &err), SH_S_OK);
    assert_string_equal(full, "bbbb0000000000000000000000000000");
    assert_string_equal(pipeline, "demo");
    free(pipeline);
    assert_int_equal(sh_runstore_find_run(fx->s, "aaaa", full, &pipeline, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "matches several runs");
    assert_int_equal(sh_runstore_find_run(fx->s, "cccc", full, &pipeline, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "no run 'cccc'");
    assert_int_equal(sh_runstore_find_run(fx->s, "aa'; drop table runs; --", full, &pipeline, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "is not a run id");

    sh_value *list = NULL;
    assert_int_equal(sh_runstore_list(fx->s, 0, &list, &err), SH_S_OK);
    assert_int_equal(sh_value_count(list), 3);
    for (size_t i = 0; i < 3; i++) {
        const sh_value *r = sh_value_array_get(list, i);
        const char *id = sh_value_get_string(sh_value_map_get(r, "id"), NULL);
        const char *status = sh_value_get_string(sh_value_map_get(r, "status"), NULL);
        /* This process is alive, so its unfinished runs are still running, not interrupted. */
        assert_string_equal(status, strncmp(id, "bbbb", 4) == 0 ? "failed" : "running");
    }
    sh_value_free(list);
    assert_int_equal(sh_runstore_list(fx->s, 1, &list, &err), SH_S_OK);
    assert_int_equal(sh_value_count(list), 1);
    sh_value_free(list);
}

static void test_cache(void **state)
{
    fixture *fx = *state;
    sh_error err;
    sh_value *out = NULL;
    bool found = true;
    assert_int_equal(sh_runstore_cache_get(fx->s, "k1", &out, &found, &err), SH_S_OK);
    assert_false(found);
    sh_value *items[1] = {rich_item()};
    assert_int_equal(sh_runstore_cache_put(fx->s, "k1", "core/x", "1.0.0", "t", (const sh_value *const *)items, 1,
                                           &err),
                     SH_S_OK);
    assert_int_equal(sh_runstore_cache_get(fx->s, "k1", &out, &found, &err), SH_S_OK);
    assert_true(found);
    assert_true(sh_value_equal(sh_value_array_get(out, 0), items[0]));
    sh_value_free(out);
    /* Zero items are a result too: a cached empty output is found, not mistaken for a miss. */
    assert_int_equal(sh_runstore_cache_put(fx->s, "k2", "core/x", "1.0.0", "t", NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_cache_get(fx->s, "k2", &out, &found, &err), SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), 0);
    sh_value_free(out);
    sh_value_free(items[0]);
}

static void test_reopen_keeps_everything(void **state)
{
    fixture *fx = *state;
    begin(fx, "cafe0000000000000000000000000000");
    sh_runstore_close(fx->s);
    fx->s = NULL;
    sh_error err;
    assert_int_equal(sh_runstore_open(fx->path, false, &fx->s, &err), SH_S_OK);
    char full[65];
    char *pipeline = NULL;
    assert_int_equal(sh_runstore_find_run(fx->s, "cafe", full, &pipeline, &err), SH_S_OK);
    free(pipeline);
}

static void test_refuses_what_is_not_a_store(void **state)
{
    fixture *fx = *state;
    sh_error err;
    sh_runstore *s = NULL;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/missing.db", fx->dir);
    assert_int_equal(sh_runstore_open(path, false, &s, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "does not exist");
    assert_int_equal(access(path, F_OK), -1);

    snprintf(path, sizeof path, "%s/junk.db", fx->dir);
    tu_write_file(path, "this is a text file, not an SQLite database, and it is long enough to be read as one");
    assert_int_not_equal(sh_runstore_open(path, true, &s, &err), SH_S_OK);
    assert_null(s);
    tu_expect_contains(err.message, path);
    tu_expect_contains(err.message, "--store PATH");

    /* A store written by a newer stagehost is not touched. */
    sh_runstore_close(fx->s);
    fx->s = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sh_runstore_open(fx->path, true, &s, &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "newer than this stagehost's");
}

/* Writes one finished stage "a" (fingerprint "f1") with one output item, and a cache entry "k1". */
static void put_output_and_cache(fixture *fx, const char *run_id, sh_value *item)
{
    begin(fx, run_id);
    sh_stage_record st = {.run_id = run_id, .name = "a", .type = "read", .source = "built-in", .fingerprint = "f1",
                          .status = "succeeded", .attempts = 1, .items_in = 0, .items_out = 1};
    sh_error err;
    const sh_value *const items[1] = {item};
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, items, 1, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_cache_put(fx->s, "k1", "core/x", "1.0.0", "t", items, 1, &err), SH_S_OK);
}

/* Whether this handle reuses stage "a"'s output and cache entry "k1"; when `want` is false, both refusals must
 * say why. */
static void expect_reuse(fixture *fx, const char *run_id, const sh_value *item, bool want)
{
    sh_error err;
    sh_error_clear(&err);
    sh_value *out = NULL;
    bool found = !want;
    uint32_t attempts = 0;
    sh_status rc = sh_runstore_finished_output(fx->s, run_id, "a", "f1", &out, &attempts, &found, &err);
    assert_int_equal(found, want);
    if (want) {
        assert_int_equal(rc, SH_S_OK);
        assert_true(sh_value_equal(sh_value_array_get(out, 0), item));
    } else {
        assert_int_equal(rc, SH_S_IO);
        assert_null(out);
        tu_expect_contains(err.message, "the stored output of stage 'a' was written with value codec version");
        tu_expect_contains(err.message, "the stage runs instead");
    }
    sh_value_free(out);
    out = NULL;
    found = !want;
    rc = sh_runstore_cache_get(fx->s, "k1", &out, &found, &err);
    assert_int_equal(found, want);
    if (want) {
        assert_int_equal(rc, SH_S_OK);
        assert_true(sh_value_equal(sh_value_array_get(out, 0), item));
    } else {
        assert_int_equal(rc, SH_S_IO);
        tu_expect_contains(err.message, "a cached output was written with value codec version");
    }
    sh_value_free(out);
}

static void reopen_codec(fixture *fx, int codec)
{
    sh_runstore_close(fx->s);
    fx->s = NULL;
    sh_error err;
    assert_int_equal(sh_runstore_open_codec(fx->path, false, codec, &fx->s, &err), SH_S_OK);
}

/* Outputs are codec bytes: a stagehost with another codec version refuses them (and says so) instead of decoding
 * them, and its own outputs replace them. */
static void test_other_codec_version_is_refused(void **state)
{
    fixture *fx = *state;
    const char *id = "c0dec000000000000000000000000000";
    sh_value *item = rich_item();
    put_output_and_cache(fx, id, item);
    expect_reuse(fx, id, item, true);

    reopen_codec(fx, SH_VALUE_CODEC_VERSION + 1);
    expect_reuse(fx, id, item, false);
    sh_error err;
    sh_error_clear(&err);
    sh_value *out = NULL;
    bool found = true;
    uint32_t attempts = 0;
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "a", "f1", &out, &attempts, &found, &err), SH_S_IO);
    char want[128];
    snprintf(want, sizeof want, "version %d and this stagehost reads version %d", SH_VALUE_CODEC_VERSION,
             SH_VALUE_CODEC_VERSION + 1);
    tu_expect_contains(err.message, want);

    /* The stage ran again under the other codec: its output replaces the old one, which this codec refuses. */
    const sh_value *const items[1] = {item};
    sh_stage_record st = {.run_id = id, .name = "a", .type = "read", .source = "built-in", .fingerprint = "f1",
                          .status = "succeeded", .attempts = 2, .items_in = 0, .items_out = 1};
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, items, 1, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_cache_put(fx->s, "k1", "core/x", "1.0.0", "t", items, 1, &err), SH_S_OK);
    expect_reuse(fx, id, item, true);
    reopen_codec(fx, SH_VALUE_CODEC_VERSION);
    expect_reuse(fx, id, item, false);
    sh_value_free(item);
}

/* A store of schema 1 knew no codec versions: its outputs were written by codec version 1 and stay usable. */
static void test_schema_1_outputs_are_codec_1(void **state)
{
    fixture *fx = *state;
    if (sqlite3_libversion_number() < 3035000)
        skip(); /* DROP COLUMN, to make a schema 1 store out of this one */
    const char *id = "01d0000000000000000000000000000a";
    sh_value *item = rich_item();
    put_output_and_cache(fx, id, item);
    sh_runstore_close(fx->s);
    fx->s = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE outputs DROP COLUMN codec; ALTER TABLE cache DROP COLUMN codec;"
                                  " PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    reopen_codec(fx, 1);
    expect_reuse(fx, id, item, true);
    reopen_codec(fx, 2);
    expect_reuse(fx, id, item, false);
    sh_value_free(item);
}

static void test_default_path(void **state)
{
    (void)state;
    char *p = sh_runstore_default_path("examples/demo.cfg");
    assert_string_equal(p, "examples/.stagehost/runs.db");
    free(p);
    p = sh_runstore_default_path("demo.cfg");
    assert_string_equal(p, "./.stagehost/runs.db");
    free(p);
    p = sh_runstore_default_path("/demo.cfg");
    assert_string_equal(p, "/.stagehost/runs.db");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stage_output_round_trip_and_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_prefixes_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_what_is_not_a_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_codec_version_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_outputs_are_codec_1, setup, teardown),
        cmocka_unit_test(test_default_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
