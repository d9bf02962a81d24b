/* Opening the index database, with errors that say which file and what to do. */
#include "core_sqlite.h"
#include "plugin_path.h"

#include <errno.h>
#include <unistd.h>

int db_check_fts5(sh_call *call)
{
    if (sqlite3_compileoption_used("ENABLE_FTS5"))
        return SH_OK;
    return sh_failf(call, "this SQLite library (%s) was built without FTS5, which core/sqlite needs for its full-text "
                          "index; install a SQLite with FTS5 (Debian's libsqlite3-0 has it)", sqlite3_libversion());
}

int db_fail(sh_call *call, sqlite3 *db, const char *path, const char *what)
{
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
    const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
    const char *hint = "";
    if ((code & 0xff) == SQLITE_CANTOPEN || (code & 0xff) == SQLITE_READONLY || (code & 0xff) == SQLITE_PERM)
        hint = pp_access_hint(EACCES);
    else if ((code & 0xff) == SQLITE_BUSY)
        hint = "; another process holds the database: retry when it is done";
    else if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB)
        hint = "; the file is not a usable SQLite database: remove it and index again";
    return sh_failf(call, "%s in SQLite database '%s' failed: %s%s", what, path, msg, hint);
}

int db_open(sh_call *call, const char *db, int writable, sqlite3 **out)
{
    *out = NULL;
    char *full = pp_resolve(call, db);
    if (!full)
        return SH_ERR_NOMEM;
    if (writable) {
        char failed[4096];
        if (pp_make_parents(full, failed, sizeof failed) != 0) {
            int e = errno;
            int rc = sh_failf(call, "cannot create directory '%s' for the database '%s': %s%s", failed, db,
                              strerror(e), pp_access_hint(e));
            free(full);
            return rc;
        }
    }
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(full, &h, flags, NULL);
    if (rc != SQLITE_OK) {
        int st;
        if (!writable && access(full, F_OK) != 0)
            st = sh_failf(call, "cannot open the index '%s' (%s): no such file; run the pipeline that builds it (a "
                                "core/sqlite.index stage with db = \"%s\") first", db, full, db);
        else
            st = db_fail(call, h, db, "opening");
        sqlite3_close(h);
        free(full);
        return st;
    }
    free(full);
    /* Another run indexing the same file waits a little instead of failing at once. */
    sqlite3_busy_timeout(h, 5000);
    *out = h;
    return SH_OK;
}
