/* A list of owned strings, NULL-terminated as well as counted (so `items` can be handed to an argv-style API). */
#ifndef SH_STRLIST_H
#define SH_STRLIST_H

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sh_strlist {
    char **items;
    size_t len;
} sh_strlist;

/* Appends a copy of `s`. */
sh_status sh_strlist_push(sh_strlist *l, const char *s, sh_error *err);
/* Appends a copy of every entry of `from`. */
sh_status sh_strlist_extend(sh_strlist *l, const sh_strlist *from, sh_error *err);
bool sh_strlist_has(const sh_strlist *l, const char *s);
/* Frees the entries and leaves `l` empty. */
void sh_strlist_clear(sh_strlist *l);

/* For each of names[0..n), the index of the first earlier name equal to it, or SIZE_MAX (also for a NULL name):
 * found by sorting, so a file declaring a hundred thousand names is checked in n log n, not n squared. */
sh_status sh_find_duplicates(const char *const *names, size_t n, size_t *first, sh_error *err);

#endif
