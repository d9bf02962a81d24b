/* The run store: an SQLite database of pipeline runs, their stages and attempts (status, error, timings,
 * metrics), each finished stage's output, log lines, and the output cache. It is what lets a run resume after
 * the host died, and what `stagehost runs` reads.
 *
 * Every write is one transaction: a stage's status, output and logs land together or not at all, so a host
 * killed at any point leaves a store that opens and reads. WAL mode lets `runs list` read while a run writes;
 * closing the store checkpoints the WAL into the database file when no other process is using it, so that the
 * file alone is a complete copy.
 *
 * An output (a stage's, or a cached one) is a sequence of rows, each holding at most the row bound of encoded
 * items (or one item, however large), numbered from 0; it is read back row by row in that order. A stage's rows
 * become its finished output only when its record says so (sh_runstore_put_stage with `with_output`), in the
 * same transaction, so rows that an attempt left behind are never taken for a result.
 * [thread] one thread per handle. */
#ifndef SH_RUNSTORE_H
#define SH_RUNSTORE_H

#include "util/error.h"
#include "value/value.h"

#include <stdint.h>

#define SH_RUNSTORE_SCHEMA 3 /* the number of migrations (store.c) */
#define SH_RUNSTORE_DEFAULT ".stagehost/runs.db" /* beside the pipeline */

typedef struct sh_runstore sh_runstore;

/* Opens (creating it and its directory when `create` is set) the store at `path`. */
sh_status sh_runstore_open(const char *path, bool create, sh_runstore **out, sh_error *err);
/* Tests only: as sh_runstore_open, for a stagehost whose value codec has version `codec`. */
sh_status sh_runstore_open_codec(const char *path, bool create, int codec, sh_runstore **out, sh_error *err);
/* Tests only: rows of at most `bytes` encoded bytes and `items` items from now on (0: the default). */
void sh_runstore_set_row_bound(sh_runstore *s, size_t bytes, size_t items);
void sh_runstore_close(sh_runstore *s);
const char *sh_runstore_path(const sh_runstore *s);

/* The default store of the pipeline at `pipeline_path`: .stagehost/runs.db in the pipeline's directory. */
char *sh_runstore_default_path(const char *pipeline_path);

typedef struct sh_run_record {
    const char *id;
    const char *pipeline_path;
    const char *pipeline_name;
    const char *pipeline_version; /* may be NULL */
} sh_run_record;

sh_status sh_runstore_begin_run(sh_runstore *s, const sh_run_record *run, sh_error *err);
/* Whether run `run_id` is being run right now: its status is "running" and its host process (*pid) is alive. */
sh_status sh_runstore_run_active(sh_runstore *s, const char *run_id, int64_t *pid, bool *active, sh_error *err);
/* Marks an existing run as running again (resumed by this process). A run that succeeded is refused
 * (SH_S_CONFIG): its outputs may be gone, and there is nothing left to do. */
sh_status sh_runstore_resume_run(sh_runstore *s, const char *run_id, sh_error *err);
/* status: "succeeded", "failed" or "partial" (a stage with on_failure = "continue" failed). */
sh_status sh_runstore_finish_run(sh_runstore *s, const char *run_id, const char *status, const char *error,
                                 sh_error *err);

/* Finds a run by its id or a unique prefix of it (at least 4 characters); fills `full` with the whole id and
 * returns its pipeline's name in *pipeline (caller frees). SH_S_CONFIG when none or several match. */
sh_status sh_runstore_find_run(sh_runstore *s, const char *id_or_prefix, char full[65], char **pipeline,
                               sh_error *err);

typedef struct sh_stage_record {
    const char *run_id;
    const char *name;
    int position;         /* in the pipeline file, from 0 */
    const char *type;
    const char *source;   /* "core/text 1.2.0" or "built-in" */
    const char *fingerprint; /* digest of what defines the stage: type, config, upstream stages */
    const char *status;   /* pending, running, succeeded, failed, skipped, cached, reused */
    uint32_t attempts;
    int64_t items_in, items_out;
    int64_t started_ns, finished_ns; /* CLOCK_REALTIME; 0: not yet */
    const char *error;    /* may be NULL */
} sh_stage_record;

typedef struct sh_attempt_record {
    const char *run_id;
    const char *stage;
    uint32_t attempt;
    const char *status; /* succeeded, failed, crashed, timeout, protocol */
    const char *error;  /* may be NULL */
    int64_t started_ns, finished_ns;
    int64_t cpu_user_us, cpu_sys_us, peak_rss_kb;
} sh_attempt_record;

typedef struct sh_log_record {
    int64_t ts_ns;
    int level; /* sh_log_level */
    char *message;
} sh_log_record;

/* Appends `count` items to the output of stage `stage` of run `run_id` as rows *seq, *seq + 1, ..., each within
 * the row bound; *seq becomes the number of the next row. Row 0 starts the output afresh: whatever an earlier
 * attempt stored for the stage goes. Outside a batch the rows commit on their own, one call at a time. */
sh_status sh_runstore_put_output_batch(sh_runstore *s, const char *run_id, const char *stage, uint32_t *seq,
                                       const sh_value *const *items, size_t count, sh_error *err);
/* Records a stage's state and its log lines in one transaction. With `with_output`, the rows put for the stage
 * (none: zero items, an output too) become its finished output, which must hold st->items_out items. */
sh_status sh_runstore_put_stage(sh_runstore *s, const sh_stage_record *st, bool with_output, const sh_log_record *logs,
                                size_t log_count, sh_error *err);
sh_status sh_runstore_put_attempt(sh_runstore *s, const sh_attempt_record *a, sh_error *err);

/* Groups the records written until sh_runstore_batch_end() into one transaction: fewer commits, and they land
 * together. `keep` false rolls them all back. Batches nest: an inner one is a savepoint of the outer one's
 * transaction, and rolling it back undoes only its own records. */
sh_status sh_runstore_batch_begin(sh_runstore *s, sh_error *err);
sh_status sh_runstore_batch_end(sh_runstore *s, bool keep, sh_error *err);

/* A finished stage of run `run_id` whose fingerprint equals `fingerprint`: its output (owned by the caller, as
 * an array value) and its attempt count. *found is false when there is none. */
sh_status sh_runstore_finished_output(sh_runstore *s, const char *run_id, const char *stage, const char *fingerprint,
                                      sh_value **items, uint32_t *attempts, bool *found, sh_error *err);
/* Drops the stored outputs of the given stages of run `run_id` (their records stay), in one transaction. */
sh_status sh_runstore_drop_outputs(sh_runstore *s, const char *run_id, const char *const *stages, size_t count,
                                   sh_error *err);

/* Reading an output back row by row: the batch engine's way, which never holds more than one row. */
typedef struct sh_runstore_reader sh_runstore_reader;
/* The finished output of stage `stage` of run `run_id` whose fingerprint equals `fingerprint`, with the stage's
 * attempt count; *out is NULL when there is none. */
sh_status sh_runstore_output_open(sh_runstore *s, const char *run_id, const char *stage, const char *fingerprint,
                                  uint32_t *attempts, sh_runstore_reader **out, sh_error *err);
/* The cached output under `key`; *out is NULL when there is none. */
sh_status sh_runstore_cache_open(sh_runstore *s, const char *key, sh_runstore_reader **out, sh_error *err);
size_t sh_runstore_reader_items(const sh_runstore_reader *r); /* all the output's items */
/* Appends the items of the next row to `into`; *more is false (and nothing appended) after the last row. An
 * error (a row of another codec version, one that does not decode, a row missing) leaves `into` as it was. */
sh_status sh_runstore_reader_next(sh_runstore_reader *r, sh_values *into, bool *more, sh_error *err);
void sh_runstore_reader_close(sh_runstore_reader *r);

/* How many attempts stage `stage` of run `run_id` has had so far (0: none). */
sh_status sh_runstore_attempt_count(sh_runstore *s, const char *run_id, const char *stage, uint32_t *out,
                                    sh_error *err);

/* The output cache, keyed by a digest of plugin, version, stage type, configuration and input items. */
sh_status sh_runstore_cache_get(sh_runstore *s, const char *key, sh_value **items, bool *found, sh_error *err);
sh_status sh_runstore_cache_put(sh_runstore *s, const char *key, const char *plugin, const char *version,
                                const char *type, const sh_value *const *items, size_t count, sh_error *err);

/* Deleting old runs, for `stagehost runs prune`: a run goes with its stages, attempts, log lines and outputs; a
 * run still running never goes. Freed space goes back to the file system in a store created with schema 3 or
 * later; in an older one later runs reuse it (no VACUUM, which rewrites the whole file under a lock). */
typedef struct sh_prune_options {
    int64_t older_than_ns; /* only runs that ended (or, unfinished, started) longer ago than this; -1: any age */
    int64_t keep;          /* never the newest `keep` finished runs (of the pipeline, when given); -1: no bound */
    const char *pipeline;  /* only runs of the pipeline of this name; NULL: all */
} sh_prune_options;

typedef struct sh_prune_result {
    size_t runs, stages, attempts, logs, output_rows;
    int64_t output_bytes;
    size_t cache_entries; /* with older_than_ns: cache entries not used for that long */
    int64_t cache_bytes;
    size_t kept, running; /* runs left, of which still running (never pruned) */
} sh_prune_result;

sh_status sh_runstore_prune(sh_runstore *s, const sh_prune_options *o, sh_prune_result *r, sh_error *err);

/* Reports as values, for `stagehost runs`: an array of runs, newest first (at most `limit`, 0: all), and one run
 * with its stages (and the size of each stored output), attempts and log lines. A run left "running" by a
 * process that is gone reads "interrupted". */
sh_status sh_runstore_list(sh_runstore *s, size_t limit, sh_value **out, sh_error *err);
sh_status sh_runstore_show(sh_runstore *s, const char *run_id, sh_value **out, sh_error *err);

#endif
