/* core/sqlite: shared pieces of the index and search stages. */
#ifndef STAGEHOST_CORE_SQLITE_H
#define STAGEHOST_CORE_SQLITE_H

#include <stagehost/sdk.h>

#include <sqlite3.h>

/* Checks that this SQLite has FTS5, naming the fix when it does not. */
int db_check_fts5(sh_call *call);

/* Opens the database at config path `db` (relative to the pipeline's directory) into *out, for writing (and
 * creating it and its directory) or read-only. */
int db_open(sh_call *call, const char *db, int writable, sqlite3 **out);

/* Fails the call with SQLite's message for `what` on `db`, and what to do about it. */
int db_fail(sh_call *call, sqlite3 *db, const char *path, const char *what);

/* sqlite_index.c */
int index_create(sh_call *call, const sh_stage_def *def, void **user);
int index_process(void *user, sh_call *call, const sh_value *const *items, size_t count);
void index_destroy(void *user);

/* sqlite_search.c */
int search_create(sh_call *call, const sh_stage_def *def, void **user);
int search_process(void *user, sh_call *call, const sh_value *const *items, size_t count);
void search_destroy(void *user);

#endif
