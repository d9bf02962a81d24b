#include "engine/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "value/codec.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sh_runstore {
    sqlite3 *db;
    char *path;
    int codec; /* the value codec version this handle writes and accepts: SH_VALUE_CODEC_VERSION but in tests */
};

/* Append-only: a new column or table is a new statement at the end, and user_version counts how many ran.
 *
 * Stored outputs and cached outputs are value codec bytes: each row records the codec version that wrote it
 * (schema 2), and a row of another version is refused, not decoded (see codec_mismatch). Such rows are not
 * migrated (they cannot be re-encoded without the other codec) nor deleted (a stagehost of that version may share
 * the store): the stage runs again, and its new output replaces the row. Rows from before schema 2 were written
 * by codec version 1, the only one there was: hence the default. */
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
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    sh_status rc = SH_S_OK;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = s->db ? db_error(s, err, "opening it")
                   : sh_error_set(err, SH_S_NOMEM, "out of memory opening run store %s", path);
    } else {
        /* Another process writing (serve, a second run) is waited for, not an error. */
        sqlite3_busy_timeout(s->db, 10000);
        /* No checkpoint when the host exits: that is three fsyncs (8 ms here) on every run. The WAL stays and is
         * checkpointed when it grows past SQLite's threshold, which spreads the cost over many runs. */
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        /* WAL with synchronous=NORMAL: a killed host loses nothing committed; only a power loss can lose the
         * last transactions, and never corrupts the file. */
        rc = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
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

void sh_runstore_close(sh_runstore *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
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
                           " resumes = resumes + 1 WHERE id = ?",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    sqlite3_bind_int64(st, 1, getpid());
    bind_text(st, 2, run_id);
    return step_done(s, st, "marking a run resumed", err);
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

/* The items as one array value in the value codec: lossless for every type, bytes included. */
static void encode_items(sh_buf *b, const sh_value *const *items, size_t count)
{
    sh_buf_u8(b, SH_CODEC_ARRAY);
    sh_buf_u32(b, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        sh_codec_put_value(b, items[i]);
}

/* An output written by another version of the value codec: its bytes may mean something else to this one. */
static sh_status codec_mismatch(sh_runstore *s, int written, const char *what, sh_error *err)
{
    return sh_error_set(err, SH_S_IO, "run store %s: %s was written with value codec version %d and this stagehost "
                                      "reads version %d; it is not used, and the stage runs instead",
                        s->path, what, written, s->codec);
}

static sh_status decode_items(sh_runstore *s, const void *data, int len, sh_value **out, sh_error *err)
{
    sh_codec_reader r;
    sh_codec_reader_init(&r, data, (size_t)(len < 0 ? 0 : len));
    sh_error e;
    const char *why = NULL;
    *out = NULL;
    if (sh_codec_get_value(&r, out, &e) != SH_S_OK)
        why = e.message;
    else if (sh_value_type(*out) != SH_TYPE_ARRAY)
        why = "it is not a list of items";
    else if (!sh_codec_reader_done(&r))
        why = "it has bytes after its items";
    if (why) {
        sh_value_free(*out);
        *out = NULL;
        return sh_error_set(err, SH_S_IO, "run store %s: a stored output does not decode (%s); it is not used, and "
                                          "the stage runs instead", s->path, why);
    }
    return SH_S_OK;
}

sh_status sh_runstore_batch_begin(sh_runstore *s, sh_error *err)
{
    return exec(s, "BEGIN IMMEDIATE", "starting a transaction", err);
}

sh_status sh_runstore_batch_end(sh_runstore *s, bool keep, sh_error *err)
{
    if (sqlite3_get_autocommit(s->db))
        return SH_S_OK; /* the batch never started: its records committed one by one */
    if (!keep) {
        rollback(s);
        return SH_S_OK;
    }
    return commit(s, "committing a transaction", err);
}

sh_status sh_runstore_put_stage(sh_runstore *s, const sh_stage_record *r, bool with_output,
                                const sh_value *const *output, size_t output_count, const sh_log_record *logs,
                                size_t log_count, sh_error *err)
{
    /* Inside a batch the batch's transaction holds it all; otherwise it is a transaction of its own. */
    bool own = sqlite3_get_autocommit(s->db) != 0;
    sh_status rc = own ? exec(s, "BEGIN IMMEDIATE", "starting a transaction", err) : SH_S_OK;
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
    if (rc == SH_S_OK && with_output) {
        sh_buf b;
        sh_buf_init(&b);
        encode_items(&b, output, output_count);
        if (b.failed || b.len > INT_MAX)
            rc = sh_error_set(err, SH_S_NOMEM, "stage '%s': its output (%zu items) is too large to store", r->name,
                              output_count);
        else if ((rc = prepare(s,
                               "INSERT OR REPLACE INTO outputs (run_id, stage, fingerprint, items, data, codec)"
                               " VALUES (?,?,?,?,?,?)",
                               &st, err)) == SH_S_OK) {
            bind_text(st, 1, r->run_id);
            bind_text(st, 2, r->name);
            bind_text(st, 3, r->fingerprint);
            sqlite3_bind_int64(st, 4, (int64_t)output_count);
            sqlite3_bind_blob(st, 5, b.data, (int)b.len, SQLITE_STATIC);
            sqlite3_bind_int(st, 6, s->codec);
            rc = step_done(s, st, "storing a stage's output", err);
        }
        sh_buf_free(&b);
    }
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
    if (!own)
        return rc; /* the batch's owner commits or rolls back */
    if (rc != SH_S_OK) {
        rollback(s);
        return rc;
    }
    return commit(s, "committing a stage", err);
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

sh_status sh_runstore_finished_output(sh_runstore *s, const char *run_id, const char *stage, const char *fingerprint,
                                      sh_value **items, uint32_t *attempts, bool *found, sh_error *err)
{
    *items = NULL;
    *found = false;
    sqlite3_stmt *st;
    sh_status rc = prepare(s,
                           "SELECT o.data, s.attempts, o.codec FROM stages s JOIN outputs o ON o.run_id = s.run_id AND"
                           " o.stage = s.name WHERE s.run_id = ? AND s.name = ? AND s.fingerprint = ? AND"
                           " o.fingerprint = s.fingerprint AND s.status IN ('succeeded', 'cached', 'reused')",
                           &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, run_id);
    bind_text(st, 2, stage);
    bind_text(st, 3, fingerprint);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_int(st, 2) != s->codec) {
        char what[256];
        snprintf(what, sizeof what, "the stored output of stage '%s'", stage);
        rc = codec_mismatch(s, sqlite3_column_int(st, 2), what, err);
    } else if (step == SQLITE_ROW) {
        rc = decode_items(s, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), items, err);
        *attempts = (uint32_t)sqlite3_column_int(st, 1);
        *found = rc == SH_S_OK;
    } else if (step != SQLITE_DONE) {
        rc = db_error(s, err, "reading a stage's output");
    }
    sqlite3_finalize(st);
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
    sqlite3_stmt *st;
    sh_status rc = prepare(s, "SELECT data, codec FROM cache WHERE key = ?", &st, err);
    if (rc != SH_S_OK)
        return rc;
    bind_text(st, 1, key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_int(st, 1) != s->codec) {
        rc = codec_mismatch(s, sqlite3_column_int(st, 1), "a cached output", err);
    } else if (step == SQLITE_ROW) {
        rc = decode_items(s, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), items, err);
        *found = rc == SH_S_OK;
    } else if (step != SQLITE_DONE) {
        rc = db_error(s, err, "reading the output cache");
    }
    sqlite3_finalize(st);
    if (*found && prepare(s, "UPDATE cache SET used_ns = ? WHERE key = ?", &st, err) == SH_S_OK) {
        sqlite3_bind_int64(st, 1, sh_wall_ns());
        bind_text(st, 2, key);
        /* Only bookkeeping for a future eviction: a failure here does not make the hit less valid. */
        sh_error ignored;
        step_done(s, st, "touching a cache entry", &ignored);
    }
    return rc;
}

sh_status sh_runstore_cache_put(sh_runstore *s, const char *key, const char *plugin, const char *version,
                                const char *type, const sh_value *const *items, size_t count, sh_error *err)
{
    sh_buf b;
    sh_buf_init(&b);
    encode_items(&b, items, count);
    sh_status rc = SH_S_OK;
    sqlite3_stmt *st = NULL;
    if (b.failed || b.len > INT_MAX)
        rc = sh_error_set(err, SH_S_NOMEM, "an output of %zu items is too large to cache", count);
    else
        rc = prepare(s,
                     "INSERT OR REPLACE INTO cache (key, plugin, version, type, items, data, created_ns, used_ns,"
                     " codec) VALUES (?,?,?,?,?,?,?,?,?)",
                     &st, err);
    if (rc == SH_S_OK) {
        int64_t now = sh_wall_ns();
        bind_text(st, 1, key);
        bind_text(st, 2, plugin);
        bind_text(st, 3, version);
        bind_text(st, 4, type);
        sqlite3_bind_int64(st, 5, (int64_t)count);
        sqlite3_bind_blob(st, 6, b.data, (int)b.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, now);
        sqlite3_bind_int64(st, 8, now);
        sqlite3_bind_int(st, 9, s->codec);
        rc = step_done(s, st, "storing into the output cache", err);
    }
    sh_buf_free(&b);
    return rc;
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
                  "SELECT name, type, source, status, attempts, items_in, items_out, started_ns, finished_ns, error"
                  " FROM stages WHERE run_id = ?1 ORDER BY position",
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
