#include "registry/quarantine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct record {
    char *path;
    long long size;
    long long mtime_ns;
    int crashes;
    char *reason;
} record;

struct sh_quarantine {
    char file[4096];
    int threshold;
    record *records;
    size_t len, cap;
};

static bool identity(const char *path, long long *size, long long *mtime_ns)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *size = (long long)st.st_size;
    *mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return true;
}

static void free_record(record *r)
{
    free(r->path);
    free(r->reason);
}

static record *find(const sh_quarantine *q, const char *path)
{
    for (size_t i = 0; i < q->len; i++)
        if (strcmp(q->records[i].path, path) == 0)
            return &q->records[i];
    return NULL;
}

static record *add(sh_quarantine *q, const char *path)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        record *p = realloc(q->records, cap * sizeof *p);
        if (!p)
            return NULL;
        q->records = p;
        q->cap = cap;
    }
    record *r = &q->records[q->len];
    memset(r, 0, sizeof *r);
    if (!(r->path = strdup(path)))
        return NULL;
    q->len++;
    return r;
}

/* One line per library: crashes, size, mtime, reason and path, tab-separated (the reason has no tabs or
 * newlines: they are replaced on the way in). */
static void load(sh_quarantine *q)
{
    FILE *f = q->file[0] ? fopen(q->file, "r") : NULL;
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[5];
        char *p = line;
        size_t n = 0;
        for (; n < 5 && p; n++) {
            fields[n] = p;
            char *tab = n < 4 ? strchr(p, '\t') : NULL;
            if (tab)
                *tab = '\0';
            p = tab ? tab + 1 : NULL;
        }
        if (n != 5 || !*fields[4])
            continue; /* a damaged line is forgotten, not fatal */
        record *r = add(q, fields[4]);
        if (!r)
            break;
        r->crashes = atoi(fields[0]);
        r->size = atoll(fields[1]);
        r->mtime_ns = atoll(fields[2]);
        r->reason = strdup(fields[3]);
    }
    fclose(f);
}

static void save(const sh_quarantine *q)
{
    if (!q->file[0])
        return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", q->file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    /* mkdir -p of the state directory; failures show up as the fopen below failing. */
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0700);
            *p = '/';
        }
    mkdir(dir, 0700);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", q->file, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return; /* the quarantine is a convenience: a read-only home must not fail a run */
    for (size_t i = 0; i < q->len; i++) {
        const record *r = &q->records[i];
        if (r->crashes > 0)
            fprintf(f, "%d\t%lld\t%lld\t%s\t%s\n", r->crashes, r->size, r->mtime_ns, r->reason ? r->reason : "",
                    r->path);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, q->file) != 0)
        unlink(tmp);
}

sh_quarantine *sh_quarantine_open(const char *dir, int threshold)
{
    sh_quarantine *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->threshold = threshold > 0 ? threshold : SH_DEFAULT_QUARANTINE_AFTER;
    if (dir && snprintf(q->file, sizeof q->file, "%s/quarantine", dir) >= (int)sizeof q->file)
        q->file[0] = '\0'; /* a path that long names no file: kept in memory */
    load(q);
    return q;
}

void sh_quarantine_free(sh_quarantine *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        free_record(&q->records[i]);
    free(q->records);
    free(q);
}

int sh_quarantine_threshold(const sh_quarantine *q) { return q->threshold; }

int sh_quarantine_crashes(const sh_quarantine *q, const char *library_path, const char **last_reason)
{
    record *r = q ? find(q, library_path) : NULL;
    long long size, mtime;
    /* A rebuilt library is a new plugin as far as its crash history goes. */
    if (!r || !identity(library_path, &size, &mtime) || size != r->size || mtime != r->mtime_ns)
        return 0;
    if (last_reason)
        *last_reason = r->reason;
    return r->crashes;
}

bool sh_quarantine_is_quarantined(const sh_quarantine *q, const char *library_path, const char **last_reason)
{
    return q && sh_quarantine_crashes(q, library_path, last_reason) >= q->threshold;
}

bool sh_quarantine_record(sh_quarantine *q, const char *library_path, bool crashed, const char *reason)
{
    if (!q)
        return false;
    record *r = find(q, library_path);
    /* The common case, a success with no history, costs no system call. */
    if (!crashed && (!r || !r->crashes))
        return false;
    long long size, mtime;
    if (!identity(library_path, &size, &mtime))
        return false;
    if (!crashed) {
        if (r && r->crashes) {
            r->crashes = 0;
            save(q);
        }
        return false;
    }
    if (!r && !(r = add(q, library_path)))
        return false;
    if (r->size != size || r->mtime_ns != mtime)
        r->crashes = 0;
    r->size = size;
    r->mtime_ns = mtime;
    r->crashes++;
    free(r->reason);
    r->reason = strdup(reason ? reason : "");
    for (char *p = r->reason; p && *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    save(q);
    return r->crashes == q->threshold;
}

bool sh_quarantine_reset(sh_quarantine *q, const char *library_path)
{
    record *r = find(q, library_path);
    if (!r || r->crashes == 0)
        return false;
    r->crashes = 0;
    save(q);
    return true;
}
