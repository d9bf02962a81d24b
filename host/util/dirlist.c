#include "util/dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool wanted(const char *name, const char *suffix, size_t slen)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > slen && memcmp(name + n - slen, suffix, slen) == 0;
}

static int by_bytes(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Reads and closes `d`. The array grows by doubling, not one entry at a time: directories of thousands of
 * descriptors are listed at every cold start (bench_discovery). */
static sh_status list(DIR *d, const char *dir, const char *suffix, sh_strlist *out, sh_error *err)
{
    if (!suffix)
        suffix = "";
    size_t slen = strlen(suffix), cap = 0;
    char **items = NULL;
    size_t len = 0;
    sh_status rc = SH_S_OK;
    int why = ENOMEM;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if ((why = errno))
                rc = sh_error_set(err, SH_S_IO, "cannot read directory %s: %s", dir, strerror(why));
            break;
        }
        if (!wanted(e->d_name, suffix, slen))
            continue;
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **p = realloc(items, ncap * sizeof *p);
            if (!p) {
                rc = sh_error_set(err, SH_S_NOMEM, "out of memory listing %s", dir);
                break;
            }
            items = p;
            cap = ncap;
        }
        if (!(items[len] = strdup(e->d_name))) {
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory listing %s", dir);
            break;
        }
        len++;
    }
    closedir(d);
    if (rc != SH_S_OK) {
        for (size_t i = 0; i < len; i++)
            free(items[i]);
        free(items);
        errno = why;
        return rc;
    }
    if (len)
        qsort(items, len, sizeof *items, by_bytes);
    if (items)
        items[len] = NULL;
    out->items = items;
    out->len = len;
    return SH_S_OK;
}

sh_status sh_dirlist(const char *dir, const char *suffix, sh_strlist *out, sh_error *err)
{
    *out = (sh_strlist){0};
    DIR *d = opendir(dir);
    if (!d) {
        int why = errno;
        sh_error_set(err, SH_S_IO, "cannot read directory %s: %s", dir, strerror(why));
        errno = why;
        return SH_S_IO;
    }
    return list(d, dir, suffix, out, err);
}

sh_status sh_dirlist_at(int dfd, const char *dir, const char *suffix, sh_strlist *out, sh_error *err)
{
    *out = (sh_strlist){0};
    /* A descriptor of its own: closedir closes it, and reading moves its position, not the caller's. */
    int own = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = own >= 0 ? fdopendir(own) : NULL;
    if (!d) {
        int why = errno;
        if (own >= 0)
            close(own);
        sh_error_set(err, SH_S_IO, "cannot read directory %s: %s", dir, strerror(why));
        errno = why;
        return SH_S_IO;
    }
    return list(d, dir, suffix, out, err);
}
