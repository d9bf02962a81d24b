/*
 * index: writes each item into an SQLite FTS5 table and passes it on.
 *
 * The table has three columns: `text` (the indexed text, from the item's `field`), `item` (the item's other
 * fields as JSON, not indexed, so that search can give them back) and `vector` (the item's `vector_field`, an
 * array of numbers, as a blob of native doubles, not indexed; NULL when the item has none). Each batch is one
 * transaction: a failing batch leaves the table as it was. `mode = "replace"` empties the table before the
 * stage's first batch, so running an ingest pipeline twice does not index everything twice.
 */
#include "core_sqlite.h"
#include "json_value.h"
#include "plugin_config.h"

typedef struct index_state {
    const char *db_path, *table, *field, *vector_field;
    int replace;
    sqlite3 *db;
    sqlite3_stmt *insert;
    int cleared;
} index_state;

int index_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"db", "table", "field", "vector_field", "mode"};
    static const char *const modes[] = {"append", "replace", NULL};
    index_state s = {0};
    size_t mode = 0;
    int rc = db_check_fts5(call);
    if (rc == SH_OK)
        rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "db", NULL, &s.db_path);
    if (rc == SH_OK && !s.db_path)
        rc = sh_failf(call, "config: 'db' is required: the SQLite file to index into, relative to the pipeline's "
                            "directory, e.g. db = \"out/index.db\"");
    if (rc == SH_OK)
        rc = pc_identifier(call, def->config, "table", "documents", &s.table);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "field", "text", &s.field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "vector_field", "embedding", &s.vector_field);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "mode", modes, 0, &mode);
    if (rc != SH_OK)
        return rc;
    s.replace = mode == 1;
    index_state *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = s;
    *user = p;
    return SH_OK;
}

void index_destroy(void *user)
{
    index_state *s = user;
    sqlite3_finalize(s->insert);
    sqlite3_close(s->db);
    free(s);
}

static int exec(sh_call *call, index_state *s, const char *sql, const char *what)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(call, s->db, s->db_path, what);
    return SH_OK;
}

/* Opens the database and prepares the table on the first batch (the context's base directory is known only
 * inside a call). */
static int prepare(sh_call *call, index_state *s)
{
    if (s->insert)
        return SH_OK;
    /* A batch retried after a failure here finds the database open already: reuse it rather than leak it. */
    int rc = s->db ? SH_OK : db_open(call, s->db_path, 1, &s->db);
    if (rc != SH_OK)
        return rc;
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE IF NOT EXISTS \"%s\" USING fts5(text, item UNINDEXED, vector UNINDEXED, "
             "tokenize = 'unicode61 remove_diacritics 2')", s->table);
    if ((rc = exec(call, s, sql, "creating the FTS5 table")) != SH_OK)
        return rc;
    snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(text, item, vector) VALUES (?, ?, ?)", s->table);
    if (sqlite3_prepare_v2(s->db, sql, -1, &s->insert, NULL) != SQLITE_OK)
        return db_fail(call, s->db, s->db_path, "preparing the insert (is the table one core/sqlite made?)");
    return SH_OK;
}

/* The item without its text and vector fields, as JSON. */
static char *rest_as_json(const index_state *s, const sh_value *item, char *why, size_t len)
{
    sh_value *rest = sh_new_map();
    if (!rest) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    size_t n = sh_sdk_host->value_count(item);
    for (size_t e = 0; e < n; e++) {
        const sh_value *v;
        const char *key = sh_sdk_host->map_entry(item, e, &v);
        if (strcmp(key, s->field) != 0 && strcmp(key, s->vector_field) != 0 &&
            sh_sdk_host->map_set(rest, key, sh_copy(v)) != SH_OK) {
            sh_free(rest);
            snprintf(why, len, "out of memory");
            return NULL;
        }
    }
    char *json = jv_dump(rest, 0, 0, why, len);
    sh_free(rest);
    return json;
}

/* The vector field as doubles (malloc'd, *n of them); NULL when absent. Fails on a non-numeric element. */
static int vector_of(sh_call *call, const index_state *s, const sh_value *item, size_t i, double **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const sh_value *v = sh_get(item, s->vector_field);
    if (!v)
        return SH_OK;
    if (sh_sdk_host->value_type(v) != SH_TYPE_ARRAY)
        return sh_failf(call, "item %zu: field '%s' must be an array of numbers (an embedding), or set vector_field",
                        i + 1, s->vector_field);
    size_t count = sh_sdk_host->value_count(v);
    double *d = malloc((count ? count : 1) * sizeof *d);
    if (!d)
        return sh_failf(call, "out of memory");
    for (size_t k = 0; k < count; k++) {
        const sh_value *e = sh_sdk_host->array_get(v, k);
        sh_type t = sh_sdk_host->value_type(e);
        if (t != SH_TYPE_DOUBLE && t != SH_TYPE_INT) {
            free(d);
            return sh_failf(call, "item %zu: element %zu of '%s' is not a number", i + 1, k + 1, s->vector_field);
        }
        d[k] = sh_sdk_host->value_double(e);
    }
    *out = d;
    *n = count;
    return SH_OK;
}

static int insert_one(sh_call *call, index_state *s, const sh_value *item, size_t i)
{
    size_t text_len;
    const sh_value *f = sh_get(item, s->field);
    const char *text = f ? sh_sdk_host->value_string(f, &text_len) : NULL;
    if (!text)
        return sh_failf(call, "item %zu has no text field '%s' to index; name it with 'field' in the stage's config "
                              "(chunks have 'text', documents from 'read' have 'content')", i + 1, s->field);
    char why[256] = "";
    char *json = rest_as_json(s, item, why, sizeof why);
    if (!json)
        return sh_failf(call, "cannot store the fields of item %zu: %s", i + 1, why);
    double *vec;
    size_t dims;
    int rc = vector_of(call, s, item, i, &vec, &dims);
    if (rc != SH_OK) {
        free(json);
        return rc;
    }
    sqlite3_reset(s->insert);
    sqlite3_bind_text(s->insert, 1, text, (int)text_len, SQLITE_STATIC);
    sqlite3_bind_text(s->insert, 2, json, -1, SQLITE_STATIC);
    if (vec)
        sqlite3_bind_blob(s->insert, 3, vec, (int)(dims * sizeof *vec), SQLITE_STATIC);
    else
        sqlite3_bind_null(s->insert, 3);
    if (sqlite3_step(s->insert) != SQLITE_DONE)
        rc = db_fail(call, s->db, s->db_path, "inserting an item");
    sqlite3_clear_bindings(s->insert);
    free(vec);
    free(json);
    return rc;
}

int index_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    index_state *s = user;
    int rc = prepare(call, s);
    if (rc != SH_OK)
        return rc;
    if ((rc = exec(call, s, "BEGIN IMMEDIATE", "starting a transaction")) != SH_OK)
        return rc;
    if (s->replace && !s->cleared) {
        char sql[256];
        snprintf(sql, sizeof sql, "DELETE FROM \"%s\"", s->table);
        rc = exec(call, s, sql, "emptying the table (mode = \"replace\")");
    }
    for (size_t i = 0; rc == SH_OK && i < count; i++)
        rc = insert_one(call, s, items[i], i);
    if (rc == SH_OK)
        rc = exec(call, s, "COMMIT", "committing the batch");
    if (rc != SH_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    s->cleared = 1;
    for (size_t i = 0; i < count; i++)
        if (sh_emit(call, sh_copy(items[i])) != SH_OK)
            return sh_failf(call, "cannot pass on item %zu: the host refused the output", i + 1);
    return SH_OK;
}
