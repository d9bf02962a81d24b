#include "engine/store.h"
#include "util/buf.h"
#include "util/strlist.h"
#include "util/clock.h"
#include "value/codec.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The bound of one output row. A row is read and written whole (SQLite materializes a blob, and builds the
 * record holding it in memory), so it is what a stored output costs in memory beyond its items; past a few MiB
 * a bigger row saves nothing measurable per byte (test/bench/bench_store.c). The item bound keeps the decoded
 * form of a row of tiny items as small: a value is far larger in memory than in the codec. A single item is
 * never split: it is a row of its own, up to SQLite's length limit. */
#define ROW_BYTES ((size_t)4 << 20)
#define ROW_ITEMS ((size_t)16384)

struct sh_runstore {
    sqlite3 *db;
    char *path;
    int codec; /* the value codec version this handle writes and accepts: SH_VALUE_CODEC_VERSION but in tests */
    size_t row_bytes, row_items;
    /* Open batches, innermost last; bit n of `txn` (of `savepoint`) is set when batch n began a transaction
     * (a savepoint). A batch whose beginning failed has neither, and its end does nothing. */
    unsigned depth;
    uint64_t txn, savepoint;
};

/* Append-only: a new column or table is a new statement at the end, and user_version counts how many ran.
 *
 * Stored outputs and cached outputs are value codec bytes: each row records the codec version that wrote it
 * (schema 2), and a row of another version is refused, not decoded (see codec_mismatch). Such rows are not
 * migrated (they cannot be re-encoded without the other codec) nor deleted (a stagehost of that version may share
 * the store): the stage runs again, and its new output replaces the row. Rows from before schema 2 were written
 * by codec version 1, the only one there was: hence the default. Schema 3 keeps the version on each row. */
static const char *const migrations[] = {
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
    "  data BLOB NOT NULL, created_ns INTEGER NOT NULL, used_ns INTEGER NOT NULL);",
    "ALTER TABLE outputs ADD COLUMN codec INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE cache ADD COLUMN codec INTEGER NOT NULL DEFAULT 1;",
    /* Schema 3: an output is rows of bounded size (one blob could not hold more than SQLite's length limit, about
     * 1 GB); `outputs` and `cache` keep what describes it, and how many rows it has. A single blob of before
     * becomes row 0: it is the same encoding, an array of the items. */
    "CREATE TABLE output_rows ("
    "  run_id TEXT NOT NULL, stage TEXT NOT NULL, seq INTEGER NOT NULL, items INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL, codec INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, stage, seq));"
    "INSERT INTO output_rows SELECT run_id, stage, 0, items, length(data), codec, data FROM outputs;"
    "CREATE TABLE outputs_3 ("
    "  run_id TEXT NOT NULL, stage TEXT NOT NULL, fingerprint TEXT, items INTEGER NOT NULL,"
    "  row_count INTEGER NOT NULL, PRIMARY KEY (run_id, stage));"
    "INSERT INTO outputs_3 SELECT run_id, stage, fingerprint, items, 1 FROM outputs;"
    "DROP TABLE outputs;"
    "ALTER TABLE outputs_3 RENAME TO outputs;"
    "CREATE TABLE cache_rows ("
    "  key TEXT NOT NULL, seq INTEGER NOT NULL, items INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    "  codec INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (key, seq));"
    "INSERT INTO cache_rows SELECT key, 0, items, length(data), codec, data FROM cache;"
    "CREATE TABLE cache_3 ("
    "  key TEXT PRIMARY KEY, plugin TEXT NOT NULL, version TEXT, type TEXT NOT NULL, items INTEGER NOT NULL,"
    "  row_count INTEGER NOT NULL, created_ns INTEGER NOT NULL, used_ns INTEGER NOT NULL);"
    "INSERT INTO cache_3 SELECT key, plugin, version, type, items, 1, created_ns, used_ns FROM cache;"
    "DROP TABLE cache;"
    "ALTER TABLE cache_3 RENAME TO cache;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == SH_RUNSTORE_SCHEMA,
               "SH_RUNSTORE_SCHEMA counts the migrations");

static sh_status db_error(sh_runstore *s, sh_error *err, const char *doing)
{
    int code = sqlite3_errcode(s->db);
    const char *hint = code == SQLITE_BUSY || code == SQLITE_LOCKED
                           ? "another stagehost holds it; wait for it to finish or use --store PATH"
                       : code == SQLITE_FULL ? "the disk is full; free space"
                       : code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM
                           ? "make it writable, or choose another store with --store PATH"
                       : code == SQLITE_CORRUPT || code == SQLITE_NOTADB
                           ? "it is not a stagehost run store; move it aside or use --store PATH"
                           : "check the file and the disk";
    return sh_error_set(err, SH_S_IO, "run store %s: %s: %s; %s", s->path, doing, sqlite3_errmsg(s->db), hint);
}

static sh_status exec(sh_runstore *s, const char *sql, const char *doing, sh_error *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, err, doing);
    return SH_S_OK;
}

static sh_status prepare(sh_runstore *s, const char *sql, sqlite3_stmt **st, sh_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(s, err, "preparing a query");
    return SH_S_OK;
}

/* Steps a statement that returns no rows, and finalizes it. */
static sh_status step_done(sh_runstore *s, sqlite3_stmt *st, const char *doing, sh_error *err)
{
    int rc = sqlite3_step(st);
    sh_status out = rc == SQLITE_DONE ? SH_S_OK : db_error(s, err, doing);
    sqlite3_finalize(st);
    return out;
}

/* Ends a failed transaction. A failed COMMIT (SQLITE_BUSY) leaves it open, and every later write would join it
 * and be lost with it: whatever failed, nothing stays open. */
static void rollback(sh_runstore *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static sh_status commit(sh_runstore *s, const char *doing, sh_error *err)
{
    sh_status rc = exec(s, "COMMIT", doing, err);
    if (rc != SH_S_OK)
        rollback(s);
    return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static sh_status make_parent(const char *path, sh_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return SH_S_OK;
    *slash = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return sh_error_set(err, SH_S_IO, "run store %s: cannot create directory %s: %s; create it, or choose "
                                          "another store with --store PATH", path, dir, strerror(errno));
    return SH_S_OK;
}

static sh_status migrate(sh_runstore *s, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "PRAGMA user_version", &st, err);
    if (rc != SH_S_OK)
        return rc;
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > latest)
        return sh_error_set(err, SH_S_CONFIG, "run store %s has schema version %d, newer than this stagehost's %d; "
                                              "use a newer stagehost or another store with --store PATH",
                            s->path, version, latest);
    for (int v = version; v < latest; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if ((rc = exec(s, "BEGIN IMMEDIATE", "starting a schema upgrade", err)) != SH_S_OK)
            return rc;
        /* Another process may have upgraded the store between our first look and taking the write lock. */
        if ((rc = prepare(s, "PRAGMA user_version", &st, err)) != SH_S_OK) {
            rollback(s);
            return rc;
        }
        int now = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_finalize(st);
        if (now > v) {
            exec(s, "COMMIT", "ending a schema check", err);
            v = now - 1;
            continue;
        }
        if ((rc = exec(s, migrations[v], "creating its tables", err)) != SH_S_OK ||
            (rc = exec(s, bump, "recording its schema version", err)) != SH_S_OK) {
            rollback(s);
            return rc;
        }
        if ((rc = commit(s, "committing a schema upgrade", err)) != SH_S_OK)
            return rc;
    }
    return SH_S_OK;
}

sh_status sh_runstore_open(const char *path, bool create, sh_runstore **out, sh_error *err)
{
    return sh_runstore_open_codec(path, create, SH_VALUE_CODEC_VERSION, out, err);
}

sh_status sh_runstore_open_codec(const char *path, bool create, int codec, sh_runstore **out, sh_error *err)
{
    *out = NULL;
    if (!create && access(path, F_OK) != 0)
        return sh_error_set(err, SH_S_CONFIG, "run store %s does not exist: no run was recorded there yet; run a "
                                              "pipeline first, or name the store with --store PATH", path);
    if (create) {
        sh_status rc = make_parent(path, err);
        if (rc != SH_S_OK)
            return rc;
    }
    sh_runstore *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return sh_error_set(err, SH_S_NOMEM, "out of memory opening run store %s", path);
    }
    s->codec = codec;
    s->row_bytes = ROW_BYTES;
    s->row_items = ROW_ITEMS;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    sh_status rc = SH_S_OK;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = s->db ? db_error(s, err, "opening it")
                   : sh_error_set(err, SH_S_NOMEM, "out of memory opening run store %s", path);
    } else {
        /* Another process writing (serve, a second run) is waited for, not an error. */
        sqlite3_busy_timeout(s->db, 10000);
        /* WAL with synchronous=NORMAL: a killed host loses nothing committed; only a power loss can lose the
         * last transactions, and never corrupts the file. On a new store only (before its first table): pages of
         * 16 KiB make the overflow chains of big outputs, which writing and dropping an output walk, a quarter as
         * long; incremental auto-vacuum lets dropped outputs give their space back to the file system without a
         * VACUUM, which would rewrite the whole file (in an older store freed pages are reused instead). A
         * stage's output passes through the WAL; the size limit truncates the WAL after a checkpoint instead of
         * leaving it as large as the biggest output until the store is closed. */
        rc = exec(s,
                  "PRAGMA page_size = 16384; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
                  " PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864;",
                  "setting it up", err);
        if (rc == SH_S_OK)
            rc = migrate(s, err);
    }
    if (rc != SH_S_OK) {
        sh_runstore_close(s);
        return rc;
    }
    *out = s;
    return SH_S_OK;
}

void sh_runstore_set_row_bound(sh_runstore *s, size_t bytes, size_t items)
{
    s->row_bytes = bytes ? bytes : ROW_BYTES;
    s->row_items = items ? items : ROW_ITEMS;
}

void sh_runstore_close(sh_runstore *s)
{
    if (!s)
        return;
    if (s->db) {
        rollback(s); /* a batch left open (a caller's error path) is lost, as it would be had the host died */
        /* The WAL into the database file, so that the file alone is the whole store (a copy, a backup). Not
         * waited for: when another process is in the middle of a transaction, it is the one that checkpoints
         * last. */
        sqlite3_busy_timeout(s->db, 0);
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->db);
    }
    free(s->path);
    free(s);
}

const char *sh_runstore_path(const sh_runstore *s) { return s->path; }

char *sh_runstore_default_path(const char *pipeline_path)
{
    const char *slash = strrchr(pipeline_path, '/');
    int dir_len = slash ? (int)(slash - pipeline_path) : 1;
    const char *dir = slash ? pipeline_path : ".";
    if (slash == pipeline_path)
        dir_len = 0;
    size_t n = (size_t)dir_len + strlen(SH_RUNSTORE_DEFAULT) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s/%s", dir_len, dir, SH_RUNSTORE_DEFAULT);
    return out;
}

sh_status sh_runstore_begin_run(sh_runstore *s, const sh_run_record *run, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "INSERT INTO runs (id, pipeline_path, pipeline_name, pipeline_version, status, started_ns,"
                           " host_pid) VALUES (?, ?, ?, ?, 'running', ?, ?)",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, run->id);
    bind_text(st, 2, run->pipeline_path);
    bind_text(st, 3, run->pipeline_name);
    bind_text(st, 4, run->pipeline_version);
    sqlite3_bind_int64(st, 5, sh_wall_ns());
    sqlite3_bind_int64(st, 6, getpid());
    return step_done(s, st, "recording a new run", err);
}

static bool process_alive(int64_t pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

sh_status sh_runstore_run_active(sh_runstore *s, const char *run_id, int64_t *pid, bool *active, sh_error *err)
{
    *active = false;
    *pid = 0;
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "SELECT status, host_pid FROM runs WHERE id = ?", &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, run_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        *pid = sqlite3_column_int64(st, 1);
        *active = status && strcmp(status, "running") == 0 && process_alive(*pid);
    } else if (step != SQLITE_DONE) {
        rc = db_error(s, err, "reading a run");
    }
    sqlite3_finalize(st);
    return rc;
}

sh_status sh_runstore_resume_run(sh_runstore *s, const char *run_id, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "UPDATE runs SET status = 'running', error = NULL, finished_ns = NULL, host_pid = ?,"
                           " resumes = resumes + 1 WHERE id = ? AND status != 'succeeded'",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    sqlite3_bind_int64(st, 1, getpid());
    bind_text(st, 2, run_id);
    rc = step_done(s, st, "marking a run resumed", err);
    if (rc == SH_S_OK && sqlite3_changes(s->db) == 0)
        rc = sh_error_set(err, SH_S_CONFIG, "run %s succeeded: there is nothing left to resume; run the pipeline again "
                                            "without --resume",
                          run_id);
    return rc;
}

sh_status sh_runstore_finish_run(sh_runstore *s, const char *run_id, const char *status, const char *error,
                                 sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "UPDATE runs SET status = ?, error = ?, finished_ns = ? WHERE id = ?", &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, status);
    bind_text(st, 2, error);
    sqlite3_bind_int64(st, 3, sh_wall_ns());
    bind_text(st, 4, run_id);
    return step_done(s, st, "recording the end of a run", err);
}

sh_status sh_runstore_find_run(sh_runstore *s, const char *id_or_prefix, char full[65], char **pipeline,
                               sh_error *err)
{
    *pipeline = NULL;
    size_t len = strlen(id_or_prefix);
    if (len < 4 || len > 64 || strspn(id_or_prefix, "0123456789abcdef") != len)
        return sh_error_set(err, SH_S_CONFIG, "'%s' is not a run id: run ids are hexadecimal (at least the first 4 "
                                              "digits); 'stagehost runs list' shows them", id_or_prefix);
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "SELECT id, pipeline_name FROM runs WHERE substr(id, 1, ?) = ? LIMIT 2", &st, err);
    if (rc != SH_S_OK)
        return rc;
    sqlite3_bind_int(st, 1, (int)len);
    bind_text(st, 2, id_or_prefix);
    int found = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (found++ == 0) {
            snprintf(full, 65, "%s", (const char *)sqlite3_column_text(st, 0));
            *pipeline = strdup((const char *)sqlite3_column_text(st, 1));
        }
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        free(*pipeline);
        *pipeline = NULL;
        return db_error(s, err, "looking up a run");
    }
    if (found == 0)
        return sh_error_set(err, SH_S_CONFIG, "no run '%s' in run store %s; 'stagehost runs list' shows the runs "
                                              "there", id_or_prefix, s->path);
    if (found > 1) {
        free(*pipeline);
        *pipeline = NULL;
        return sh_error_set(err, SH_S_CONFIG, "run id prefix '%s' matches several runs in %s; give more digits",
                            id_or_prefix, s->path);
    }
    if (!*pipeline)
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", s->path);
    return SH_S_OK;
}

/* An output written by another version of the value codec: its bytes may mean something else to this one. */
static sh_status codec_mismatch(sh_runstore *s, int written, const char *what, sh_error *err)
{
    return sh_error_set(err, SH_S_IO, "run store %s: %s was written with value codec version %d and this stagehost "
                                      "reads version %d; it is not used, and the stage runs instead",
                        s->path, what, written, s->codec);
}

/* Gives the pages that deletions freed back to the file system (a store of schema 3 onwards, created with
 * incremental auto-vacuum; in an older one they wait to be reused). Only a cost, never a failure. */
static void give_back_space(sh_runstore *s)
{
    sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
}

sh_status sh_runstore_batch_begin(sh_runstore *s, sh_error *err)
{
    unsigned level = s->depth++;
    uint64_t bit = level < 64 ? (uint64_t)1 << level : 0;
    if (sqlite3_get_autocommit(s->db)) {
        sh_status rc = exec(s, "BEGIN IMMEDIATE", "starting a transaction", err);
        if (rc == SH_S_OK)
            s->txn |= bit;
        return rc;
    }
    sh_status rc = exec(s, "SAVEPOINT batch", "starting a transaction", err);
    if (rc == SH_S_OK)
        s->savepoint |= bit;
    return rc;
}

sh_status sh_runstore_batch_end(sh_runstore *s, bool keep, sh_error *err)
{
    if (s->depth == 0)
        return SH_S_OK;
    unsigned level = --s->depth;
    uint64_t bit = level < 64 ? (uint64_t)1 << level : 0;
    bool txn = (s->txn & bit) != 0, savepoint = (s->savepoint & bit) != 0;
    s->txn &= ~bit;
    s->savepoint &= ~bit;
    if (savepoint && sqlite3_get_autocommit(s->db))
        return sh_error_set(err, SH_S_IO, "run store %s: its transaction was rolled back by an error; the records "
                                          "written with it are lost", s->path);
    if (savepoint && keep)
        return exec(s, "RELEASE batch", "committing a transaction", err);
    if (savepoint) {
        sqlite3_exec(s->db, "ROLLBACK TO batch; RELEASE batch", NULL, NULL, NULL);
        return SH_S_OK;
    }
    if (!txn || sqlite3_get_autocommit(s->db))
        return SH_S_OK; /* the batch never started (its records committed one by one), or an error ended it */
    if (!keep) {
        rollback(s);
        return SH_S_OK;
    }
    return commit(s, "committing a transaction", err);
}

/* Ends a part of a write begun with sh_runstore_batch_begin: kept when `rc` is SH_S_OK, else undone. */
static sh_status end_part(sh_runstore *s, sh_status rc, sh_error *err)
{
    sh_error ignored;
    if (rc != SH_S_OK) {
        sh_runstore_batch_end(s, false, &ignored);
        return rc;
    }
    return sh_runstore_batch_end(s, true, err);
}

/* Where an output's rows go: a stage's (run id, stage) or a cache entry's (key, NULL). */
typedef struct rows_owner {
    const char *insert; /* binds ?1 and ?2 (the owner), ?3 seq, ?4 items, ?5 bytes, ?6 codec, ?7 data */
    const char *k1, *k2;
    const char *what; /* for errors: "stage 'a'" */
} rows_owner;

static void bind_owner(sqlite3_stmt *st, const rows_owner *o)
{
    bind_text(st, 1, o->k1);
    if (o->k2)
        bind_text(st, 2, o->k2);
}

/* Writes items as rows *seq, *seq + 1, ...: each row is the codec's array of its items (the encoding a whole
 * output had before schema 3), within the row bound but for a single large item. */
static sh_status put_rows(sh_runstore *s, const rows_owner *o, uint32_t *seq, const sh_value *const *items,
                          size_t count, sh_error *err)
{
    if (count == 0)
        return SH_S_OK;
    sqlite3_stmt *st;
    sh_status rc = prepare(s, o->insert, &st, err);
    if (rc != SH_S_OK)
        return rc;
    /* A row must fit SQLite's limit on a value, and its record (the row's other columns) too. */
    size_t limit = (size_t)sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1) - 4096;
    sh_buf b;
    sh_buf_init(&b);
    size_t i = 0;
    while (rc == SH_S_OK && i < count) {
        sh_buf_reset(&b);
        sh_buf_u8(&b, SH_CODEC_ARRAY);
        sh_buf_u32(&b, 0); /* the count, once known */
        uint32_t n = 0;
        while (i < count && n < s->row_items) {
            size_t size = sh_codec_value_size(items[i]);
            if (size == SIZE_MAX || size > limit - b.len) {
                if (n > 0)
                    break;
                char got[32] = "over 4 GiB";
                if (size != SIZE_MAX)
                    snprintf(got, sizeof got, "%zu bytes", size);
                rc = sh_error_set(err, SH_S_IO, "%s: item %zu of its output is %s encoded, more than the run store "
                                                "holds in one row (%zu bytes); emit smaller items (for read, smaller "
                                                "files; the chunk stage splits documents)",
                                  o->what, i + 1, got, limit);
                break;
            }
            if (n > 0 && b.len + size > s->row_bytes)
                break;
            sh_codec_put_value(&b, items[i]);
            i++;
            n++;
        }
        if (rc != SH_S_OK)
            break;
        if (b.failed) {
            rc = sh_error_set(err, SH_S_NOMEM, "%s: out of memory storing its output (row %u)", o->what, *seq);
            break;
        }
        for (int k = 0; k < 4; k++)
            b.data[1 + k] = (uint8_t)(n >> (8 * k));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        bind_owner(st, o);
        sqlite3_bind_int64(st, 3, *seq);
        sqlite3_bind_int64(st, 4, n);
        sqlite3_bind_int64(st, 5, (int64_t)b.len);
        sqlite3_bind_int(st, 6, s->codec);
        sqlite3_bind_blob(st, 7, b.data, (int)b.len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_error(s, err, "storing an output");
        else
            (*seq)++;
    }
    sqlite3_finalize(st);
    sh_buf_free(&b);
    return rc;
}

/* Runs `sql`, with ?1 and ?2 bound to k1 and k2 (when not NULL), as a statement that returns no rows. */
static sh_status run2(sh_runstore *s, const char *sql, const char *k1, const char *k2, const char *doing,
                      sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s, sql, &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, k1);
    if (k2)
        bind_text(st, 2, k2);
    return step_done(s, st, doing, err);
}

static sh_status drop_output(sh_runstore *s, const char *run_id, const char *stage, sh_error *err)
{
    sh_status rc = run2(s, "DELETE FROM output_rows WHERE run_id = ?1 AND stage = ?2", run_id, stage,
                        "dropping a stage's output", err);
    if (rc == SH_S_OK)
        rc = run2(s, "DELETE FROM outputs WHERE run_id = ?1 AND stage = ?2", run_id, stage,
                  "dropping a stage's output", err);
    return rc;
}

sh_status sh_runstore_put_output_batch(sh_runstore *s, const char *run_id, const char *stage, uint32_t *seq,
                                       const sh_value *const *items, size_t count, sh_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "stage '%s'", stage);
    rows_owner o = {.insert = "INSERT INTO output_rows (run_id, stage, seq, items, bytes, codec, data)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    .k1 = run_id, .k2 = stage, .what = what};
    sh_status rc = sh_runstore_batch_begin(s, err);
    if (rc != SH_S_OK)
        return rc;
    if (*seq == 0)
        rc = drop_output(s, run_id, stage, err);
    uint32_t next = *seq;
    if (rc == SH_S_OK)
        rc = put_rows(s, &o, &next, items, count, err);
    rc = end_part(s, rc, err);
    if (rc == SH_S_OK)
        *seq = next;
    return rc;
}

/* Makes the rows put for a stage its finished output, after checking that they are all there. */
static sh_status seal_output(sh_runstore *s, const sh_stage_record *r, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "SELECT coalesce(sum(items), 0), count(*), coalesce(max(seq), -1) FROM output_rows"
                           " WHERE run_id = ?1 AND stage = ?2",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, r->run_id);
    bind_text(st, 2, r->name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(s, err, "counting a stage's output");
        sqlite3_finalize(st);
        return rc;
    }
    int64_t items = sqlite3_column_int64(st, 0), rows = sqlite3_column_int64(st, 1);
    int64_t last = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    if (last != rows - 1 || (r->items_out >= 0 && items != r->items_out))
        return sh_error_set(err, SH_S_IO, "run store %s: stage '%s': its stored output has %lld items in %lld rows "
                                          "(the last numbered %lld), its record %lld items; it is not recorded as "
                                          "finished",
                            s->path, r->name, (long long)items, (long long)rows, (long long)last,
                            (long long)r->items_out);
    if ((rc = prepare(s, "INSERT OR REPLACE INTO outputs (run_id, stage, fingerprint, items, row_count)"
                         " VALUES (?, ?, ?, ?, ?)", &st, err)) != SH_S_OK)
        return rc;
    bind_text(st, 1, r->run_id);
    bind_text(st, 2, r->name);
    bind_text(st, 3, r->fingerprint);
    sqlite3_bind_int64(st, 4, items);
    sqlite3_bind_int64(st, 5, rows);
    return step_done(s, st, "storing a stage's output", err);
}

sh_status sh_runstore_put_stage(sh_runstore *s, const sh_stage_record *r, bool with_output, const sh_log_record *logs,
                                size_t log_count, sh_error *err)
{
    /* Inside a batch, a savepoint of the batch's transaction; otherwise a transaction of its own. */
    sh_status rc = sh_runstore_batch_begin(s, err);
    if (rc != SH_S_OK)
        return rc;
    sqlite3_stmt *st;
    rc = prepare(s,
                 "INSERT INTO stages (run_id, name, position, type, source, fingerprint, status, attempts, items_in,"
                 " items_out, started_ns, finished_ns, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                 " ON CONFLICT (run_id, name) DO UPDATE SET position = excluded.position, type = excluded.type,"
                 " source = excluded.source, fingerprint = excluded.fingerprint, status = excluded.status,"
                 " attempts = excluded.attempts, items_in = excluded.items_in, items_out = excluded.items_out,"
                 " started_ns = excluded.started_ns, finished_ns = excluded.finished_ns, error = excluded.error",
                 &st, err);
    if (rc == SH_S_OK) {
        bind_text(st, 1, r->run_id);
        bind_text(st, 2, r->name);
        sqlite3_bind_int(st, 3, r->position);
        bind_text(st, 4, r->type);
        bind_text(st, 5, r->source);
        bind_text(st, 6, r->fingerprint);
        bind_text(st, 7, r->status);
        sqlite3_bind_int(st, 8, (int)r->attempts);
        if (r->items_in >= 0)
            sqlite3_bind_int64(st, 9, r->items_in);
        if (r->items_out >= 0)
            sqlite3_bind_int64(st, 10, r->items_out);
        if (r->started_ns)
            sqlite3_bind_int64(st, 11, r->started_ns);
        if (r->finished_ns)
            sqlite3_bind_int64(st, 12, r->finished_ns);
        bind_text(st, 13, r->error);
        rc = step_done(s, st, "recording a stage", err);
    }
    if (rc == SH_S_OK && with_output)
        rc = seal_output(s, r, err);
    for (size_t i = 0; rc == SH_S_OK && i < log_count; i++) {
        if ((rc = prepare(s, "INSERT INTO logs (run_id, stage, ts_ns, level, message) VALUES (?,?,?,?,?)", &st,
                          err)) != SH_S_OK)
            break;
        bind_text(st, 1, r->run_id);
        bind_text(st, 2, r->name);
        sqlite3_bind_int64(st, 3, logs[i].ts_ns);
        sqlite3_bind_int(st, 4, logs[i].level);
        bind_text(st, 5, logs[i].message);
        rc = step_done(s, st, "storing a log line", err);
    }
    return end_part(s, rc, err);
}

sh_status sh_runstore_put_attempt(sh_runstore *s, const sh_attempt_record *a, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "INSERT OR REPLACE INTO attempts (run_id, stage, attempt, status, error, started_ns,"
                           " finished_ns, cpu_user_us, cpu_sys_us, peak_rss_kb) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, a->run_id);
    bind_text(st, 2, a->stage);
    sqlite3_bind_int(st, 3, (int)a->attempt);
    bind_text(st, 4, a->status);
    bind_text(st, 5, a->error);
    sqlite3_bind_int64(st, 6, a->started_ns);
    sqlite3_bind_int64(st, 7, a->finished_ns);
    sqlite3_bind_int64(st, 8, a->cpu_user_us);
    sqlite3_bind_int64(st, 9, a->cpu_sys_us);
    sqlite3_bind_int64(st, 10, a->peak_rss_kb);
    return step_done(s, st, "recording an attempt", err);
}

struct sh_runstore_reader {
    sh_runstore *s;
    sqlite3_stmt *rows; /* seq, items, codec, data, in seq order */
    uint32_t row_count, next;
    size_t items;
    char what[300]; /* for errors: "the stored output of stage 'a'" */
};

/* A reader of the rows that `rows_sql` selects (with ?1, ?2 bound to k1, k2), row_count of them. */
static sh_status reader_new(sh_runstore *s, const char *rows_sql, const char *k1, const char *k2, int64_t row_count,
                            int64_t items, const char *what, sh_runstore_reader **out, sh_error *err)
{
    sh_runstore_reader *r = calloc(1, sizeof *r);
    if (!r)
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", s->path);
    r->s = s;
    r->row_count = (uint32_t)row_count;
    r->items = (size_t)items;
    snprintf(r->what, sizeof r->what, "%s", what);
    sh_status rc = prepare(s, rows_sql, &r->rows, err);
    if (rc != SH_S_OK) {
        free(r);
        return rc;
    }
    bind_text(r->rows, 1, k1);
    if (k2)
        bind_text(r->rows, 2, k2);
    *out = r;
    return SH_S_OK;
}

size_t sh_runstore_reader_items(const sh_runstore_reader *r) { return r->items; }

void sh_runstore_reader_close(sh_runstore_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->rows);
    free(r);
}

/* Appends the `count` items of one row (the codec's array of them) to `into`. */
static const char *decode_row(const uint8_t *data, size_t len, int64_t count, sh_values *into, sh_error *e)
{
    if (len < 5 || data[0] != SH_CODEC_ARRAY)
        return "it is not a list of items";
    uint32_t n = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    if ((int64_t)n != count)
        return "its count of items is not the one recorded";
    sh_codec_reader r;
    sh_codec_reader_init(&r, data, len);
    r.pos = 5;
    for (uint32_t k = 0; k < n; k++) {
        sh_value *v = NULL;
        if (sh_codec_get_value(&r, &v, e) != SH_S_OK)
            return e->message;
        if (sh_values_push(into, v) != SH_OK)
            return "out of memory";
    }
    return sh_codec_reader_done(&r) ? NULL : "it has bytes after its items";
}

sh_status sh_runstore_reader_next(sh_runstore_reader *r, sh_values *into, bool *more, sh_error *err)
{
    *more = false;
    if (r->next >= r->row_count)
        return SH_S_OK;
    sh_runstore *s = r->s;
    int step = sqlite3_step(r->rows);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "reading an output");
    if (step == SQLITE_DONE || sqlite3_column_int64(r->rows, 0) != r->next)
        return sh_error_set(err, SH_S_IO, "run store %s: %s lacks its row %u of %u; it is not used, and the stage "
                                          "runs instead", s->path, r->what, r->next, r->row_count);
    if (sqlite3_column_int(r->rows, 2) != s->codec)
        return codec_mismatch(s, sqlite3_column_int(r->rows, 2), r->what, err);
    const uint8_t *data = sqlite3_column_blob(r->rows, 3);
    size_t len = (size_t)sqlite3_column_bytes(r->rows, 3);
    size_t before = into->len;
    sh_error e;
    const char *why = decode_row(data, len, sqlite3_column_int64(r->rows, 1), into, &e);
    if (why) {
        while (into->len > before)
            sh_value_free(into->items[--into->len]);
        return sh_error_set(err, SH_S_IO, "run store %s: %s does not decode (row %u: %s); it is not used, and the "
                                          "stage runs instead", s->path, r->what, r->next, why);
    }
    r->next++;
    *more = true;
    return SH_S_OK;
}

sh_status sh_runstore_output_open(sh_runstore *s, const char *run_id, const char *stage, const char *fingerprint,
                                  uint32_t *attempts, sh_runstore_reader **out, sh_error *err)
{
    *out = NULL;
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "SELECT o.row_count, o.items, s.attempts FROM stages s JOIN outputs o ON o.run_id = s.run_id"
                           " AND o.stage = s.name WHERE s.run_id = ? AND s.name = ? AND s.fingerprint = ? AND"
                           " o.fingerprint = s.fingerprint AND s.status IN ('succeeded', 'cached', 'reused')",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, run_id);
    bind_text(st, 2, stage);
    bind_text(st, 3, fingerprint);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        char what[300];
        snprintf(what, sizeof what, "the stored output of stage '%s'", stage);
        *attempts = (uint32_t)sqlite3_column_int(st, 2);
        rc = reader_new(s, "SELECT seq, items, codec, data FROM output_rows WHERE run_id = ?1 AND stage = ?2"
                           " ORDER BY seq", run_id, stage, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                        what, out, err);
    } else if (step != SQLITE_DONE) {
        rc = db_error(s, err, "reading a stage's output");
    }
    sqlite3_finalize(st);
    return rc;
}

sh_status sh_runstore_cache_open(sh_runstore *s, const char *key, sh_runstore_reader **out, sh_error *err)
{
    *out = NULL;
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "SELECT row_count, items FROM cache WHERE key = ?", &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = reader_new(s, "SELECT seq, items, codec, data FROM cache_rows WHERE key = ?1 ORDER BY seq", key, NULL,
                        sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), "a cached output", out, err);
    else if (step != SQLITE_DONE)
        rc = db_error(s, err, "reading the output cache");
    sqlite3_finalize(st);
    return rc;
}

/* Reads every row of `r` into one array value, and closes `r`. */
static sh_status read_all(sh_runstore_reader *r, sh_value **items, sh_error *err)
{
    sh_values all = {0};
    bool more = true;
    sh_status rc = SH_S_OK;
    while (rc == SH_S_OK && more)
        rc = sh_runstore_reader_next(r, &all, &more, err);
    sh_value *arr = rc == SH_S_OK ? sh_value_array() : NULL;
    if (rc == SH_S_OK && !arr)
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", r->s->path);
    size_t k = 0;
    for (; rc == SH_S_OK && k < all.len; k++)
        if (sh_value_array_push(arr, all.items[k]) != SH_OK) /* owns the item either way */
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", r->s->path);
    if (rc != SH_S_OK) {
        for (; k < all.len; k++)
            sh_value_free(all.items[k]);
        sh_value_free(arr);
        arr = NULL;
    }
    free(all.items);
    sh_runstore_reader_close(r);
    *items = arr;
    return rc;
}

sh_status sh_runstore_finished_output(sh_runstore *s, const char *run_id, const char *stage, const char *fingerprint,
                                      sh_value **items, uint32_t *attempts, bool *found, sh_error *err)
{
    *items = NULL;
    *found = false;
    sh_runstore_reader *r = NULL;
    sh_status rc = sh_runstore_output_open(s, run_id, stage, fingerprint, attempts, &r, err);
    if (rc == SH_S_OK && r) {
        rc = read_all(r, items, err);
        *found = rc == SH_S_OK;
    }
    return rc;
}

sh_status sh_runstore_drop_outputs(sh_runstore *s, const char *run_id, const char *const *stages, size_t count,
                                   sh_error *err)
{
    sh_status rc = sh_runstore_batch_begin(s, err);
    for (size_t i = 0; rc == SH_S_OK && i < count; i++)
        rc = drop_output(s, run_id, stages[i], err);
    rc = end_part(s, rc, err);
    if (rc == SH_S_OK && s->depth == 0)
        give_back_space(s);
    return rc;
}

sh_status sh_runstore_attempt_count(sh_runstore *s, const char *run_id, const char *stage, uint32_t *out,
                                    sh_error *err)
{
    *out = 0;
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "SELECT coalesce(max(attempt), 0) FROM attempts WHERE run_id = ? AND stage = ?", &st,
                           err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, run_id);
    bind_text(st, 2, stage);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = (uint32_t)sqlite3_column_int(st, 0);
    else
        rc = db_error(s, err, "counting attempts");
    sqlite3_finalize(st);
    return rc;
}

sh_status sh_runstore_cache_get(sh_runstore *s, const char *key, sh_value **items, bool *found, sh_error *err)
{
    *items = NULL;
    *found = false;
    sh_runstore_reader *r = NULL;
    sh_status rc = sh_runstore_cache_open(s, key, &r, err);
    if (rc == SH_S_OK && r) {
        rc = read_all(r, items, err);
        *found = rc == SH_S_OK;
    }
    sqlite3_stmt *st;
    if (*found && prepare(s, "UPDATE cache SET used_ns = ? WHERE key = ?", &st, err) == SH_S_OK) {
        sqlite3_bind_int64(st, 1, sh_wall_ns());
        bind_text(st, 2, key);
        /* Bookkeeping for pruning: a failure here does not make the hit less valid. */
        sh_error ignored;
        step_done(s, st, "touching a cache entry", &ignored);
    }
    return rc;
}

sh_status sh_runstore_cache_put(sh_runstore *s, const char *key, const char *plugin, const char *version,
                                const char *type, const sh_value *const *items, size_t count, sh_error *err)
{
    rows_owner o = {.insert = "INSERT INTO cache_rows (key, seq, items, bytes, codec, data)"
                              " VALUES (?1, ?3, ?4, ?5, ?6, ?7)",
                    .k1 = key, .what = "the output cache"};
    sh_status rc = sh_runstore_batch_begin(s, err);
    if (rc == SH_S_OK)
        rc = run2(s, "DELETE FROM cache_rows WHERE key = ?1", key, NULL, "replacing a cache entry", err);
    uint32_t rows = 0;
    if (rc == SH_S_OK)
        rc = put_rows(s, &o, &rows, items, count, err);
    sqlite3_stmt *st = NULL;
    if (rc == SH_S_OK)
        rc = prepare(s,
                     "INSERT OR REPLACE INTO cache (key, plugin, version, type, items, row_count, created_ns, used_ns)"
                     " VALUES (?,?,?,?,?,?,?,?)",
                     &st, err);
    if (rc == SH_S_OK) {
        int64_t now = sh_wall_ns();
        bind_text(st, 1, key);
        bind_text(st, 2, plugin);
        bind_text(st, 3, version);
        bind_text(st, 4, type);
        sqlite3_bind_int64(st, 5, (int64_t)count);
        sqlite3_bind_int64(st, 6, rows);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, now);
        rc = step_done(s, st, "storing into the output cache", err);
    }
    return end_part(s, rc, err);
}

/* A column as a value: integers, text, or null. */
static sh_value *column_value(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return sh_value_int(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return sh_value_double(sqlite3_column_double(st, i));
    case SQLITE_TEXT:
        return sh_value_cstring((const char *)sqlite3_column_text(st, i));
    default:
        return sh_value_null();
    }
}

/* Runs `sql` (with run_id bound to ?1 when given) and returns its rows as an array of maps, column names as
 * keys. `fix` may adjust each row. */
static sh_status rows(sh_runstore *s, const char *sql, const char *run_id, void (*fix)(sh_value *row),
                      sh_value **out, sh_error *err)
{
    *out = NULL;
    sqlite3_stmt *st;
    sh_status rc = prepare(s, sql, &st, err);
    if (rc != SH_S_OK)
        return rc;
    if (run_id)
        bind_text(st, 1, run_id);
    sh_value *arr = sh_value_array();
    int step;
    bool nomem = !arr;
    while (!nomem && (step = sqlite3_step(st)) == SQLITE_ROW) {
        sh_value *row = sh_value_map();
        nomem = !row;
        for (int i = 0; !nomem && i < sqlite3_column_count(st); i++) {
            sh_value *v = column_value(st, i);
            nomem = !v || sh_value_map_set(row, sqlite3_column_name(st, i), v) != SH_OK;
        }
        if (nomem) {
            sh_value_free(row);
            break;
        }
        if (fix)
            fix(row);
        nomem = sh_value_array_push(arr, row) != SH_OK; /* the array owns the row either way */
    }
    if (!nomem && step != SQLITE_DONE)
        rc = db_error(s, err, "reading runs");
    sqlite3_finalize(st);
    if (nomem)
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", s->path);
    if (rc != SH_S_OK) {
        sh_value_free(arr);
        return rc;
    }
    *out = arr;
    return SH_S_OK;
}

/* A run that says "running" but whose host process is gone was interrupted (killed, or the machine stopped). */
static void fix_run_status(sh_value *row)
{
    const char *status = sh_value_get_string(sh_value_map_get(row, "status"), NULL);
    int64_t pid = sh_value_get_int(sh_value_map_get(row, "host_pid"));
    if (status && strcmp(status, "running") == 0 && pid > 0 && !process_alive(pid))
        sh_value_map_set(row, "status", sh_value_cstring("interrupted"));
}

static const char run_columns[] =
    "SELECT id, pipeline_name AS pipeline, pipeline_version AS version, pipeline_path AS path, status, error,"
    " started_ns, finished_ns, host_pid, resumes,"
    " (SELECT count(*) FROM stages s WHERE s.run_id = runs.id) AS stages,"
    " (SELECT count(*) FROM stages s WHERE s.run_id = runs.id AND s.status IN ('succeeded', 'cached', 'reused'))"
    " AS stages_done FROM runs";

sh_status sh_runstore_list(sh_runstore *s, size_t limit, sh_value **out, sh_error *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%s ORDER BY started_ns DESC, rowid DESC LIMIT %lld", run_columns,
             limit ? (long long)limit : -1LL);
    return rows(s, sql, NULL, fix_run_status, out, err);
}

sh_status sh_runstore_show(sh_runstore *s, const char *run_id, sh_value **out, sh_error *err)
{
    *out = NULL;
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE id = ?1", run_columns);
    sh_value *run = NULL, *stages = NULL, *attempts = NULL, *logs = NULL;
    sh_status rc = rows(s, sql, run_id, fix_run_status, &run, err);
    if (rc == SH_S_OK && sh_value_count(run) == 0)
        rc = sh_error_set(err, SH_S_CONFIG, "no run '%s' in run store %s", run_id, s->path);
    if (rc == SH_S_OK)
        rc = rows(s,
                  "SELECT name, type, source, status, attempts, items_in, items_out, started_ns, finished_ns, error,"
                  " (SELECT o.row_count FROM outputs o WHERE o.run_id = stages.run_id AND o.stage = stages.name)"
                  " AS stored_rows,"
                  " (SELECT coalesce(sum(r.bytes), 0) FROM outputs o LEFT JOIN output_rows r ON r.run_id = o.run_id"
                  " AND r.stage = o.stage WHERE o.run_id = stages.run_id AND o.stage = stages.name GROUP BY o.stage)"
                  " AS stored_bytes FROM stages WHERE run_id = ?1 ORDER BY position",
                  run_id, NULL, &stages, err);
    if (rc == SH_S_OK)
        rc = rows(s,
                  "SELECT stage, attempt, status, error, started_ns, finished_ns, cpu_user_us, cpu_sys_us,"
                  " peak_rss_kb FROM attempts WHERE run_id = ?1 ORDER BY started_ns, stage, attempt",
                  run_id, NULL, &attempts, err);
    if (rc == SH_S_OK)
        rc = rows(s, "SELECT stage, ts_ns, level, message FROM logs WHERE run_id = ?1 ORDER BY rowid", run_id, NULL,
                  &logs, err);
    sh_value *result = NULL;
    if (rc == SH_S_OK) {
        /* map_set owns what it is given, even when it fails. */
        result = sh_value_copy(sh_value_array_get(run, 0));
        bool ok = result != NULL;
        ok = sh_value_map_set(result, "stage_list", stages) == SH_OK && ok;
        ok = sh_value_map_set(result, "attempts", attempts) == SH_OK && ok;
        ok = sh_value_map_set(result, "logs", logs) == SH_OK && ok;
        stages = attempts = logs = NULL;
        if (!ok)
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory reading run store %s", s->path);
    }
    sh_value_free(run);
    sh_value_free(stages);
    sh_value_free(attempts);
    sh_value_free(logs);
    if (rc != SH_S_OK) {
        sh_value_free(result);
        return rc;
    }
    *out = result;
    return SH_S_OK;
}

/* One integer from `sql` with ?1 bound to `k1`. */
static sh_status count_of(sh_runstore *s, const char *sql, const char *k1, int64_t *out, sh_error *err)
{
    sqlite3_stmt *st;
    sh_status rc = prepare(s, sql, &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, k1);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = db_error(s, err, "counting what to prune");
    sqlite3_finalize(st);
    return rc;
}

/* Deletes run `id` and everything recorded of it, adding what went to `r`. */
static sh_status prune_run(sh_runstore *s, const char *id, sh_prune_result *r, sh_error *err)
{
    static const struct {
        const char *sql;
        size_t offset;
    } parts[] = {
        {"DELETE FROM output_rows WHERE run_id = ?1", offsetof(sh_prune_result, output_rows)},
        {"DELETE FROM outputs WHERE run_id = ?1", SIZE_MAX},
        {"DELETE FROM logs WHERE run_id = ?1", offsetof(sh_prune_result, logs)},
        {"DELETE FROM attempts WHERE run_id = ?1", offsetof(sh_prune_result, attempts)},
        {"DELETE FROM stages WHERE run_id = ?1", offsetof(sh_prune_result, stages)},
        {"DELETE FROM runs WHERE id = ?1", offsetof(sh_prune_result, runs)},
    };
    int64_t bytes = 0;
    sh_status rc = count_of(s, "SELECT coalesce(sum(bytes), 0) FROM output_rows WHERE run_id = ?1", id, &bytes, err);
    r->output_bytes += bytes;
    for (size_t i = 0; rc == SH_S_OK && i < sizeof parts / sizeof parts[0]; i++) {
        rc = run2(s, parts[i].sql, id, NULL, "pruning a run", err);
        if (rc == SH_S_OK && parts[i].offset != SIZE_MAX)
            *(size_t *)((char *)r + parts[i].offset) += (size_t)sqlite3_changes(s->db);
    }
    return rc;
}

sh_status sh_runstore_prune(sh_runstore *s, const sh_prune_options *o, sh_prune_result *r, sh_error *err)
{
    memset(r, 0, sizeof *r);
    int64_t cutoff = o->older_than_ns >= 0 ? sh_wall_ns() - o->older_than_ns : INT64_MAX;
    sh_status rc = sh_runstore_batch_begin(s, err);
    if (rc != SH_S_OK)
        return rc;
    sqlite3_stmt *st;
    /* Newest first, as `runs list` shows them: --keep N keeps the first N of this order. */
    rc = prepare(s,
                 "SELECT id, status, host_pid, coalesce(finished_ns, started_ns) FROM runs"
                 " WHERE ?1 IS NULL OR pipeline_name = ?1 ORDER BY started_ns DESC, rowid DESC",
                 &st, err);
    sh_strlist doomed = {0};
    if (rc == SH_S_OK) {
        bind_text(st, 1, o->pipeline);
        int64_t n = 0;
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *status = (const char *)sqlite3_column_text(st, 1);
            bool running = status && strcmp(status, "running") == 0 && process_alive(sqlite3_column_int64(st, 2));
            /* A running run is always kept, and does not count among the newest `keep`. */
            bool keep = running || (o->keep >= 0 && n < o->keep) || sqlite3_column_int64(st, 3) > cutoff;
            n += !running;
            if (keep) {
                r->kept++;
                r->running += running;
            } else if ((rc = sh_strlist_push(&doomed, (const char *)sqlite3_column_text(st, 0), err)) != SH_S_OK) {
                break;
            }
        }
        if (rc == SH_S_OK && step != SQLITE_DONE)
            rc = db_error(s, err, "listing the runs to prune");
        sqlite3_finalize(st);
    }
    for (size_t i = 0; rc == SH_S_OK && i < doomed.len; i++)
        rc = prune_run(s, doomed.items[i], r, err);
    sh_strlist_clear(&doomed);
    /* The output cache is not a run's: an entry goes when it has not been used for as long. */
    static const char *const evict[] = {
        "SELECT coalesce(sum(bytes), 0) FROM cache_rows WHERE key IN (SELECT key FROM cache WHERE used_ns < ?1)",
        "DELETE FROM cache_rows WHERE key IN (SELECT key FROM cache WHERE used_ns < ?1)",
        "DELETE FROM cache WHERE used_ns < ?1",
    };
    for (size_t i = 0; rc == SH_S_OK && o->older_than_ns >= 0 && i < sizeof evict / sizeof evict[0]; i++) {
        if ((rc = prepare(s, evict[i], &st, err)) != SH_S_OK)
            break;
        sqlite3_bind_int64(st, 1, cutoff);
        int step = sqlite3_step(st);
        if (i == 0 && step == SQLITE_ROW)
            r->cache_bytes = sqlite3_column_int64(st, 0);
        else if (step != SQLITE_DONE)
            rc = db_error(s, err, "pruning the output cache");
        r->cache_entries = (size_t)sqlite3_changes(s->db);
        sqlite3_finalize(st);
    }
    rc = end_part(s, rc, err);
    if (rc != SH_S_OK)
        memset(r, 0, sizeof *r);
    else if (s->depth == 0)
        give_back_space(s);
    return rc;
}
