#include "util/strlist.h"

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
