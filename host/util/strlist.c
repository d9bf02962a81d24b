#include "util/strlist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

sh_status sh_strlist_push(sh_strlist *l, const char *s, sh_error *err)
{
    char **p = realloc(l->items, (l->len + 2) * sizeof *p);
    if (!p)
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    l->items = p;
    if (!(l->items[l->len] = strdup(s))) {
        l->items[l->len] = NULL;
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    }
    l->items[++l->len] = NULL;
    return SH_S_OK;
}

sh_status sh_strlist_extend(sh_strlist *l, const sh_strlist *from, sh_error *err)
{
    for (size_t i = 0; i < from->len; i++) {
        sh_status rc = sh_strlist_push(l, from->items[i], err);
        if (rc != SH_S_OK)
            return rc;
    }
    return SH_S_OK;
}

bool sh_strlist_has(const sh_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], s) == 0)
            return true;
    return false;
}

void sh_strlist_clear(sh_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

typedef struct named {
    const char *name;
    size_t index;
} named;

static int by_name_then_index(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

sh_status sh_find_duplicates(const char *const *names, size_t n, size_t *first, sh_error *err)
{
    named *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = SIZE_MAX;
        if (names[i])
            sorted[m++] = (named){names[i], i};
    }
    qsort(sorted, m, sizeof *sorted, by_name_then_index);
    for (size_t i = 1; i < m; i++) {
        size_t head = i - 1;
        if (strcmp(sorted[i].name, sorted[head].name) != 0)
            continue;
        /* the run's first entry is the earliest declaration */
        size_t earliest = first[sorted[head].index] == SIZE_MAX ? sorted[head].index : first[sorted[head].index];
        first[sorted[i].index] = earliest;
    }
    free(sorted);
    return SH_S_OK;
}
