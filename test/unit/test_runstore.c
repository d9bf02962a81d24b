/* Unit tests for the run store: creation and schema, runs and stages, lossless outputs, resume lookups by
 * fingerprint, the output cache, run id prefixes, reports, refusing files that are not a store, refusing
 * outputs of another value codec version, outputs in many bounded rows, migrations from stores of schema 1 and 2,
 * nested batches, pruning, and the WAL checkpointed on close. */
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
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Records stage st with its output, as the engine does: the rows, then the record that seals them, in one
 * transaction. */
static sh_status put_stage_output(fixture *fx, const sh_stage_record *st, const sh_value *const *items, size_t count,
                                  const sh_log_record *logs, size_t log_count, sh_error *err)
{
    sh_error ignored;
    sh_status rc = sh_runstore_batch_begin(fx->s, err);
    uint32_t seq = 0;
    if (rc == SH_S_OK)
        rc = sh_runstore_put_output_batch(fx->s, st->run_id, st->name, &seq, items, count, err);
    if (rc == SH_S_OK)
        rc = sh_runstore_put_stage(fx->s, st, true, logs, log_count, err);
    if (rc == SH_S_OK)
        return sh_runstore_batch_end(fx->s, true, err);
    sh_runstore_batch_end(fx->s, false, &ignored);
    return rc;
}

/* One integer from `sql` on the store's file, through a connection of its own. */
static int64_t sql_int(fixture *fx, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sql_exec(fixture *fx, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
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
    assert_int_equal(put_stage_output(fx, &st, (const sh_value *const *)items, 2, logs, 1, &err), SH_S_OK);

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
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, false, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_finished_output(fx->s, st.run_id, "b", "f1", &out, &attempts, &found, &err),
                     SH_S_OK);
    assert_false(found);

    /* A finished stage that emitted nothing has an output to reuse all the same: zero items. */
    st.name = "empty";
    st.status = "succeeded";
    st.items_out = 0;
    assert_int_equal(put_stage_output(fx, &st, NULL, 0, NULL, 0, &err), SH_S_OK);
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
    assert_int_equal(put_stage_output(fx, &st, items, 1, NULL, 0, &err), SH_S_OK);
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
    assert_int_equal(put_stage_output(fx, &st, items, 1, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_cache_put(fx->s, "k1", "core/x", "1.0.0", "t", items, 1, &err), SH_S_OK);
    expect_reuse(fx, id, item, true);
    reopen_codec(fx, SH_VALUE_CODEC_VERSION);
    expect_reuse(fx, id, item, false);
    sh_value_free(item);
}

/* The tables of schema 1 and the columns schema 2 added, as those stagehosts created them (store.c). */
static const char schema_1[] =
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY, pipeline_path TEXT NOT NULL, pipeline_name TEXT NOT NULL, pipeline_version TEXT,"
    "  status TEXT NOT NULL, error TEXT, started_ns INTEGER NOT NULL, finished_ns INTEGER,"
    "  host_pid INTEGER, resumes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE stages ("
    "  run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, position INTEGER NOT NULL, type TEXT NOT NULL,"
    "  source TEXT, fingerprint TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    "  items_in INTEGER, items_out INTEGER, started_ns INTEGER, finished_ns INTEGER, error TEXT,"
    "  PRIMARY KEY (run_id, name));"
    "CREATE TABLE attempts ("
    "  run_id TEXT NOT NULL, stage TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL, error TEXT,"
    "  started_ns INTEGER, finished_ns INTEGER, cpu_user_us INTEGER, cpu_sys_us INTEGER, peak_rss_kb INTEGER,"
    "  PRIMARY KEY (run_id, stage, attempt));"
    "CREATE TABLE outputs ("
    "  run_id TEXT NOT NULL, stage TEXT NOT NULL, fingerprint TEXT, items INTEGER NOT NULL, data BLOB NOT NULL,"
    "  PRIMARY KEY (run_id, stage));"
    "CREATE TABLE logs ("
    "  run_id TEXT NOT NULL, stage TEXT NOT NULL, ts_ns INTEGER NOT NULL, level INTEGER NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX logs_by_run ON logs(run_id, stage);"
    "CREATE TABLE cache ("
    "  key TEXT PRIMARY KEY, plugin TEXT NOT NULL, version TEXT, type TEXT NOT NULL, items INTEGER NOT NULL,"
    "  data BLOB NOT NULL, created_ns INTEGER NOT NULL, used_ns INTEGER NOT NULL);";
static const char schema_2[] = "ALTER TABLE outputs ADD COLUMN codec INTEGER NOT NULL DEFAULT 1;"
                               "ALTER TABLE cache ADD COLUMN codec INTEGER NOT NULL DEFAULT 1;";

/* Replaces the fixture's store with one of `schema` (1 or 2) holding run `run_id`, whose finished stage "a"
 * (fingerprint "f1") output `count` items in one blob, as those versions stored it, finished stage "e" nothing,
 * and cache entry "k1" the same items. */
static void make_old_store(fixture *fx, int schema, const char *run_id, const sh_value *const *items, size_t count)
{
    sh_runstore_close(fx->s);
    fx->s = NULL;
    unlink(fx->path);
    sh_buf b, empty;
    sh_buf_init(&b);
    sh_buf_init(&empty);
    sh_buf_u8(&b, SH_CODEC_ARRAY);
    sh_buf_u32(&b, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        sh_codec_put_value(&b, items[i]);
    sh_buf_u8(&empty, SH_CODEC_ARRAY);
    sh_buf_u32(&empty, 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema_1, NULL, NULL, NULL), SQLITE_OK);
    if (schema >= 2)
        assert_int_equal(sqlite3_exec(db, schema_2, NULL, NULL, NULL), SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO runs (id, pipeline_path, pipeline_name, status, started_ns, host_pid) VALUES"
             " ('%s', '/p/demo.cfg', 'demo', 'failed', 1, 1);"
             "INSERT INTO stages (run_id, name, position, type, fingerprint, status, attempts, items_out) VALUES"
             " ('%s', 'a', 0, 'read', 'f1', 'succeeded', 1, %zu), ('%s', 'e', 1, 'read', 'f1', 'succeeded', 1, 0);"
             "PRAGMA user_version = %d;",
             run_id, run_id, count, run_id, schema);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    const char *blobs[] = {"INSERT INTO outputs (run_id, stage, fingerprint, items, data)"
                           " VALUES (?1, 'a', 'f1', ?2, ?3)",
                           "INSERT INTO outputs (run_id, stage, fingerprint, items, data)"
                           " VALUES (?1, 'e', 'f1', 0, ?4)",
                           "INSERT INTO cache (key, plugin, version, type, items, data, created_ns, used_ns) VALUES"
                           " ('k1', 'core/x', '1.0.0', 't', ?2, ?3, 1, 1)"};
    for (size_t i = 0; i < 3; i++) {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, blobs[i], -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)count);
        sqlite3_bind_blob(st, 3, b.data, (int)b.len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, empty.data, (int)empty.len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    sh_buf_free(&b);
    sh_buf_free(&empty);
}

/* A store of schema 1 knew no codec versions: its outputs were written by codec version 1 and stay usable. */
static void test_schema_1_outputs_are_codec_1(void **state)
{
    fixture *fx = *state;
    const char *id = "01d0000000000000000000000000000a";
    sh_value *item = rich_item();
    make_old_store(fx, 1, id, (const sh_value *const *)&item, 1);
    reopen_codec(fx, 1);
    expect_reuse(fx, id, item, true);
    reopen_codec(fx, 2);
    expect_reuse(fx, id, item, false);
    sh_value_free(item);
}

/* A store of schema 2 kept an output as one blob: it becomes row 0 of the output, read as before, and the stage's
 * next output is written in rows beside it. */
static void test_schema_2_blob_becomes_row_0(void **state)
{
    fixture *fx = *state;
    const char *id = "02d0000000000000000000000000000b";
    sh_value *items[3] = {rich_item(), sh_value_cstring("two"), sh_value_int(3)};
    make_old_store(fx, 2, id, (const sh_value *const *)items, 3);
    reopen_codec(fx, SH_VALUE_CODEC_VERSION);
    assert_int_equal(sql_int(fx, "PRAGMA user_version"), SH_RUNSTORE_SCHEMA);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'a' AND seq = 0 AND items = 3"), 1);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM pragma_table_info('outputs') WHERE name = 'data'"), 0);
    expect_reuse(fx, id, items[0], true);
    sh_error err;
    sh_value *out = NULL;
    bool found = false;
    uint32_t attempts = 0;
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "a", "f1", &out, &attempts, &found, &err), SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(sh_value_equal(sh_value_array_get(out, i), items[i]));
    sh_value_free(out);
    /* An empty output of before is found as zero items, not as a miss. */
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "e", "f1", &out, &attempts, &found, &err), SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), 0);
    sh_value_free(out);

    sh_runstore_set_row_bound(fx->s, 0, 1);
    sh_stage_record st = {.run_id = id, .name = "a", .type = "read", .source = "built-in", .fingerprint = "f1",
                          .status = "succeeded", .attempts = 2, .items_in = 0, .items_out = 2};
    assert_int_equal(put_stage_output(fx, &st, (const sh_value *const *)items + 1, 2, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'a'"), 2);
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "a", "f1", &out, &attempts, &found, &err), SH_S_OK);
    assert_int_equal(sh_value_count(out), 2);
    assert_true(sh_value_equal(sh_value_array_get(out, 0), items[1]));
    sh_value_free(out);
    for (size_t i = 0; i < 3; i++)
        sh_value_free(items[i]);
}

/* Items of every size, some larger than the row bound. */
static sh_value *sized_item(size_t i)
{
    size_t len = (i * 37) % 300 + (i % 50 == 7 ? 5000 : 0);
    char *text = malloc(len + 1);
    for (size_t k = 0; k < len; k++)
        text[k] = (char)('a' + (i + k) % 26);
    sh_value *m = sh_value_map();
    sh_value_map_set(m, "i", sh_value_int((int64_t)i));
    sh_value_map_set(m, "text", sh_value_string(text, len));
    free(text);
    return m;
}

/* With a row bound of a few hundred bytes an output becomes many rows: each within the bound but for an item
 * larger than it, alone in its row; written in several batches, each committed on its own; read back whole and
 * row by row, in order. */
static void test_output_in_many_rows(void **state)
{
    fixture *fx = *state;
    const char *id = "b07c000000000000000000000000000c";
    enum { N = 600, BOUND = 512, MAX_ITEMS = 5 };
    sh_runstore_set_row_bound(fx->s, BOUND, MAX_ITEMS);
    begin(fx, id);
    sh_value *items[N];
    for (size_t i = 0; i < N; i++)
        items[i] = sized_item(i);
    sh_error err;
    /* An earlier attempt's rows, which row 0 of the next one replaces. */
    uint32_t seq = 0;
    assert_int_equal(sh_runstore_put_output_batch(fx->s, id, "big", &seq, (const sh_value *const *)items + 7, 40, &err),
                     SH_S_OK);
    assert_true(seq > 1);
    seq = 0;
    for (size_t at = 0; at < N; at += 100)
        assert_int_equal(
            sh_runstore_put_output_batch(fx->s, id, "big", &seq, (const sh_value *const *)items + at, 100, &err),
            SH_S_OK);
    uint32_t rows = seq;
    assert_true(rows >= N / MAX_ITEMS);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'big'"), rows);
    assert_int_equal(sql_int(fx, "SELECT max(seq) FROM output_rows WHERE stage = 'big'"), rows - 1);
    assert_int_equal(sql_int(fx, "SELECT sum(items) FROM output_rows WHERE stage = 'big'"), N);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'big' AND items > 5"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'big' AND bytes > 512 AND items > 1"),
                     0);
    assert_true(sql_int(fx, "SELECT count(*) FROM output_rows WHERE stage = 'big' AND bytes > 512") > 0);

    /* Rows are not an output until the stage's record says so. */
    sh_runstore_reader *r = NULL;
    uint32_t attempts = 0;
    sh_stage_record st = {.run_id = id, .name = "big", .type = "read", .source = "built-in", .fingerprint = "f1",
                          .status = "running", .attempts = 1, .items_in = 0, .items_out = -1};
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, false, NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_output_open(fx->s, id, "big", "f1", &attempts, &r, &err), SH_S_OK);
    assert_null(r);
    /* A record that counts other items than the rows hold does not seal them. */
    st.status = "succeeded";
    st.items_out = N + 1;
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, NULL, 0, &err), SH_S_IO);
    tu_expect_contains(err.message, "its stored output has 600 items in");
    st.items_out = N;
    assert_int_equal(sh_runstore_put_stage(fx->s, &st, true, NULL, 0, &err), SH_S_OK);

    assert_int_equal(sh_runstore_output_open(fx->s, id, "big", "f1", &attempts, &r, &err), SH_S_OK);
    assert_non_null(r);
    assert_int_equal(sh_runstore_reader_items(r), N);
    sh_values got = {0};
    bool more = true;
    uint32_t calls = 0;
    while (more) {
        size_t before = got.len;
        assert_int_equal(sh_runstore_reader_next(r, &got, &more, &err), SH_S_OK);
        if (more) {
            assert_true(got.len > before && got.len - before <= MAX_ITEMS);
            calls++;
        }
    }
    sh_runstore_reader_close(r);
    assert_int_equal(calls, rows);
    assert_int_equal(got.len, N);
    for (size_t i = 0; i < N; i++)
        assert_true(sh_value_equal(got.items[i], items[i]));
    sh_values_clear(&got);

    sh_value *out = NULL;
    bool found = false;
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "big", "f1", &out, &attempts, &found, &err), SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), N);
    assert_true(sh_value_equal(sh_value_array_get(out, N - 1), items[N - 1]));
    sh_value_free(out);

    /* A row gone missing is named, and the output is not used. */
    sql_exec(fx, "DELETE FROM output_rows WHERE stage = 'big' AND seq = 3");
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "big", "f1", &out, &attempts, &found, &err), SH_S_IO);
    assert_false(found);
    tu_expect_contains(err.message, "lacks its row 3 of");

    /* The cache in rows too. */
    assert_int_equal(sh_runstore_cache_put(fx->s, "big", "core/x", "1", "t", (const sh_value *const *)items, N, &err),
                     SH_S_OK);
    assert_true(sql_int(fx, "SELECT count(*) FROM cache_rows WHERE key = 'big'") >= N / MAX_ITEMS);
    assert_int_equal(sh_runstore_cache_put(fx->s, "big", "core/x", "1", "t", (const sh_value *const *)items, 3, &err),
                     SH_S_OK);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM cache_rows WHERE key = 'big'"), 1);
    assert_int_equal(sh_runstore_cache_put(fx->s, "big", "core/x", "1", "t", (const sh_value *const *)items, N, &err),
                     SH_S_OK);
    assert_int_equal(sh_runstore_cache_get(fx->s, "big", &out, &found, &err), SH_S_OK);
    assert_true(found);
    assert_int_equal(sh_value_count(out), N);
    for (size_t i = 0; i < N; i++)
        assert_true(sh_value_equal(sh_value_array_get(out, i), items[i]));
    sh_value_free(out);

    /* Dropped after a success: the record stays, the rows go. */
    const char *names[] = {"big"};
    assert_int_equal(sh_runstore_drop_outputs(fx->s, id, names, 1, &err), SH_S_OK);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE run_id = 'b07c000000000000000000000000000c'"),
                     0);
    assert_int_equal(sh_runstore_finished_output(fx->s, id, "big", "f1", &out, &attempts, &found, &err), SH_S_OK);
    assert_false(found);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM cache_rows WHERE key = 'big'") >= N / MAX_ITEMS, 1);
    for (size_t i = 0; i < N; i++)
        sh_value_free(items[i]);
}

/* A batch inside a batch is a savepoint: rolling it back loses its records only. */
static void test_nested_batches(void **state)
{
    fixture *fx = *state;
    const char *id = "ba7c000000000000000000000000000d";
    sh_error err;
    assert_int_equal(sh_runstore_batch_begin(fx->s, &err), SH_S_OK);
    begin(fx, id);
    assert_int_equal(sh_runstore_batch_begin(fx->s, &err), SH_S_OK);
    sh_attempt_record a = {.run_id = id, .stage = "x", .attempt = 1, .status = "failed"};
    assert_int_equal(sh_runstore_put_attempt(fx->s, &a, &err), SH_S_OK);
    assert_int_equal(sh_runstore_batch_end(fx->s, false, &err), SH_S_OK);
    a.stage = "y";
    assert_int_equal(sh_runstore_put_attempt(fx->s, &a, &err), SH_S_OK);
    assert_int_equal(sh_runstore_batch_end(fx->s, true, &err), SH_S_OK);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM runs WHERE id = 'ba7c000000000000000000000000000d'"), 1);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM attempts WHERE stage = 'x'"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM attempts WHERE stage = 'y'"), 1);
    /* An end without a beginning does nothing. */
    assert_int_equal(sh_runstore_batch_end(fx->s, true, &err), SH_S_OK);
}

/* A run `age_s` seconds old, finished with `status` (NULL: still running, by this process), with a stage, an
 * attempt, a log line and an output of one row. */
static void old_run(fixture *fx, const char *id, const char *pipeline, int64_t age_s, const char *status)
{
    sh_error err;
    sh_run_record run = {.id = id, .pipeline_path = "/p/x.cfg", .pipeline_name = pipeline};
    assert_int_equal(sh_runstore_begin_run(fx->s, &run, &err), SH_S_OK);
    if (status)
        assert_int_equal(sh_runstore_finish_run(fx->s, id, status, NULL, &err), SH_S_OK);
    sh_value *item = sh_value_cstring("some output");
    sh_log_record log = {.ts_ns = 1, .level = 2, .message = (char *)"a line"};
    sh_stage_record st = {.run_id = id, .name = "a", .type = "read", .source = "built-in", .fingerprint = "f",
                          .status = "succeeded", .attempts = 1, .items_in = 0, .items_out = 1};
    assert_int_equal(put_stage_output(fx, &st, (const sh_value *const *)&item, 1, &log, 1, &err), SH_S_OK);
    sh_attempt_record a = {.run_id = id, .stage = "a", .attempt = 1, .status = "succeeded"};
    assert_int_equal(sh_runstore_put_attempt(fx->s, &a, &err), SH_S_OK);
    sh_value_free(item);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE runs SET started_ns = started_ns - %lld, finished_ns = finished_ns - %lld WHERE id = '%s'",
             (long long)age_s * 1000000000LL, (long long)age_s * 1000000000LL, id);
    sql_exec(fx, sql);
}

static bool has_run(fixture *fx, const char *id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id = '%s'", id);
    return sql_int(fx, sql) == 1;
}

static void test_prune(void **state)
{
    fixture *fx = *state;
    const int64_t day = 24 * 3600;
    /* Oldest first: p1 .. p5 of pipeline "p", q1 of "q", and r1, 30 days old and running. */
    old_run(fx, "a1000000000000000000000000000001", "p", 30 * day, "succeeded");
    old_run(fx, "a2000000000000000000000000000002", "p", 20 * day, "failed");
    old_run(fx, "a3000000000000000000000000000003", "p", 10 * day, "succeeded");
    old_run(fx, "a4000000000000000000000000000004", "p", 2 * day, "partial");
    old_run(fx, "a5000000000000000000000000000005", "p", 3600, "succeeded");
    old_run(fx, "b1000000000000000000000000000001", "q", 40 * day, "succeeded");
    old_run(fx, "c1000000000000000000000000000001", "p", 30 * day, NULL);
    sh_error err;
    assert_int_equal(sh_runstore_cache_put(fx->s, "stale", "core/x", "1", "t", NULL, 0, &err), SH_S_OK);
    assert_int_equal(sh_runstore_cache_put(fx->s, "fresh", "core/x", "1", "t", NULL, 0, &err), SH_S_OK);
    sql_exec(fx, "UPDATE cache SET used_ns = used_ns - 9 * 86400000000000 WHERE key = 'stale'");

    /* By age, of one pipeline: the runs of "p" ended more than 15 days ago, but the running one. */
    sh_prune_result r;
    sh_prune_options o = {.older_than_ns = 15 * day * 1000000000LL, .keep = -1, .pipeline = "p"};
    assert_int_equal(sh_runstore_prune(fx->s, &o, &r, &err), SH_S_OK);
    assert_int_equal(r.runs, 2);
    assert_int_equal(r.stages, 2);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.logs, 2);
    assert_int_equal(r.output_rows, 2);
    assert_true(r.output_bytes > 0);
    assert_int_equal(r.kept, 4);
    assert_int_equal(r.running, 1);
    assert_int_equal(r.cache_entries, 0); /* the stale entry is 9 days unused, not 15 */
    assert_false(has_run(fx, "a1000000000000000000000000000001"));
    assert_false(has_run(fx, "a2000000000000000000000000000002"));
    assert_true(has_run(fx, "a3000000000000000000000000000003"));
    assert_true(has_run(fx, "b1000000000000000000000000000001"));
    assert_true(has_run(fx, "c1000000000000000000000000000001"));
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM output_rows WHERE run_id LIKE 'a1%' OR run_id LIKE 'a2%'"), 0);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM logs WHERE run_id LIKE 'a1%' OR run_id LIKE 'a2%'"), 0);

    /* By count, in the whole store: the newest 2 stay (a5, a4), and the running one whatever its age. */
    o = (sh_prune_options){.older_than_ns = -1, .keep = 2};
    assert_int_equal(sh_runstore_prune(fx->s, &o, &r, &err), SH_S_OK);
    assert_int_equal(r.runs, 2); /* a3, b1 */
    assert_int_equal(r.kept, 3);
    assert_int_equal(r.running, 1);
    assert_true(has_run(fx, "a5000000000000000000000000000005"));
    assert_true(has_run(fx, "a4000000000000000000000000000004"));
    assert_true(has_run(fx, "c1000000000000000000000000000001"));
    assert_false(has_run(fx, "a3000000000000000000000000000003"));
    assert_false(has_run(fx, "b1000000000000000000000000000001"));

    /* Both: older than a day and not among the newest 1. The cache entry unused for 9 days goes too. */
    o = (sh_prune_options){.older_than_ns = day * 1000000000LL, .keep = 1};
    assert_int_equal(sh_runstore_prune(fx->s, &o, &r, &err), SH_S_OK);
    assert_int_equal(r.runs, 1); /* a4 */
    assert_int_equal(r.cache_entries, 1);
    assert_true(has_run(fx, "a5000000000000000000000000000005"));
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM cache WHERE key = 'fresh'"), 1);
    assert_int_equal(sql_int(fx, "SELECT count(*) FROM cache WHERE key = 'stale'"), 0);

    /* A run left running by a process that is gone was interrupted: it can be pruned. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE runs SET host_pid = %d WHERE id LIKE 'c1%%'", (int)child);
    sql_exec(fx, sql);
    o = (sh_prune_options){.older_than_ns = day * 1000000000LL, .keep = -1};
    assert_int_equal(sh_runstore_prune(fx->s, &o, &r, &err), SH_S_OK);
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.running, 0);
    assert_false(has_run(fx, "c1000000000000000000000000000001"));
}

/* A run that succeeded cannot be resumed; one that failed can. */
static void test_resume_refuses_success(void **state)
{
    fixture *fx = *state;
    sh_error err;
    old_run(fx, "d1000000000000000000000000000001", "p", 0, "succeeded");
    old_run(fx, "d2000000000000000000000000000002", "p", 0, "failed");
    assert_int_equal(sh_runstore_resume_run(fx->s, "d1000000000000000000000000000001", &err), SH_S_CONFIG);
    tu_expect_contains(err.message, "succeeded: there is nothing left to resume");
    assert_int_equal(sh_runstore_resume_run(fx->s, "d2000000000000000000000000000002", &err), SH_S_OK);
}

/* Closing the store leaves the database file complete: its WAL checkpointed into it. */
static void test_close_checkpoints(void **state)
{
    fixture *fx = *state;
    old_run(fx, "e1000000000000000000000000000001", "p", 0, "succeeded");
    char wal[PATH_MAX + 40];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 0);
    sh_runstore_close(fx->s);
    fx->s = NULL;
    assert_true(stat(wal, &st) != 0 || st.st_size == 0);
    char copy[PATH_MAX + 40];
    snprintf(copy, sizeof copy, "%s/copy.db", fx->dir);
    FILE *in = fopen(fx->path, "rb"), *out = fopen(copy, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    sh_error err;
    assert_int_equal(sh_runstore_open(copy, false, &fx->s, &err), SH_S_OK);
    sh_value *show = NULL;
    assert_int_equal(sh_runstore_show(fx->s, "e1000000000000000000000000000001", &show, &err), SH_S_OK);
    const sh_value *a = sh_value_array_get(sh_value_map_get(show, "stage_list"), 0);
    assert_int_equal(sh_value_get_int(sh_value_map_get(a, "stored_rows")), 1);
    assert_true(sh_value_get_int(sh_value_map_get(a, "stored_bytes")) > 0);
    sh_value_free(show);
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
        cmocka_unit_test_setup_teardown(test_schema_2_blob_becomes_row_0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_in_many_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_refuses_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_checkpoints, setup, teardown),
        cmocka_unit_test(test_default_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
