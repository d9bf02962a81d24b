#include "grants.h"
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sh_status push(sh_strlist *l, const char *s, sh_error *err)
{
    char **p = realloc(l->items, (l->len + 2) * sizeof *p);
    if (!p)
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    l->items = p;
    if (!(l->items[l->len] = strdup(s)))
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    l->items[++l->len] = NULL;
    return SH_S_OK;
}

sh_status sh_grants_add(sh_grants *g, const char *perm, sh_error *err)
{
    if (strcmp(perm, "network") == 0) {
        g->network = true;
        return SH_S_OK;
    }
    if (strcmp(perm, "exec") == 0) {
        g->exec = true;
        return SH_S_OK;
    }
    const char *eq = strchr(perm, '=');
    if (eq && eq[1]) {
        size_t k = (size_t)(eq - perm);
        if (k == 4 && strncmp(perm, "read", 4) == 0)
            return push(&g->read, eq + 1, err);
        if (k == 5 && strncmp(perm, "write", 5) == 0)
            return push(&g->write, eq + 1, err);
        if (k == 3 && strncmp(perm, "env", 3) == 0)
            return push(&g->env, eq + 1, err);
    }
    return sh_error_set(err, SH_S_CONFIG,
                        "unknown permission '%s': use network, exec, read=PATH, write=PATH or env=NAME", perm);
}

static void free_list(sh_strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = 0;
}

void sh_grants_free(sh_grants *g)
{
    free_list(&g->read);
    free_list(&g->write);
    free_list(&g->env);
}

/* True when `path` is `granted` or lies beneath it, compared by whole path components. */
static bool beneath(const char *path, const char *granted)
{
    size_t n = strlen(granted);
    while (n > 1 && granted[n - 1] == '/')
        n--;
    return strncmp(path, granted, n) == 0 && (path[n] == '\0' || path[n] == '/' || (n == 1 && granted[0] == '/'));
}

static bool covered(const char *path, const sh_strlist *granted)
{
    for (size_t i = 0; granted && i < granted->len; i++)
        if (beneath(path, granted->items[i]))
            return true;
    return false;
}

static bool named(const char *name, const sh_strlist *granted)
{
    for (size_t i = 0; granted && i < granted->len; i++)
        if (strcmp(name, granted->items[i]) == 0)
            return true;
    return false;
}

sh_status sh_grants_check(const sh_descriptor *d, const sh_grants *g, sh_error *err)
{
    const sh_permissions *p = &d->permissions;
    sh_buf missing, flags, cfg;
    sh_buf_init(&missing);
    sh_buf_init(&flags);
    sh_buf_init(&cfg);
    size_t count = 0;
#define MISSING(what, flag, conf)                                                                                 \
    do {                                                                                                          \
        sh_buf_printf(&missing, "%s%s", count ? ", " : "", what);                                                 \
        sh_buf_printf(&flags, " --grant %s:%s", d->name, flag);                                                   \
        sh_buf_printf(&cfg, "%s%s", count ? " " : "", conf);                                                      \
        count++;                                                                                                  \
    } while (0)
    if (p->network && !(g && g->network))
        MISSING("network", "network", "network = true;");
    if (p->exec && !(g && g->exec))
        MISSING("exec", "exec", "exec = true;");
    char what[4200], flag[4200], conf[4200];
    for (size_t i = 0; i < p->read.len; i++) {
        const char *path = p->read.items[i];
        if (covered(path, g ? &g->read : NULL) || covered(path, g ? &g->write : NULL))
            continue;
        snprintf(what, sizeof what, "read %s", path);
        snprintf(flag, sizeof flag, "read=%s", path);
        snprintf(conf, sizeof conf, "read = ( \"%s\" );", path);
        MISSING(what, flag, conf);
    }
    for (size_t i = 0; i < p->write.len; i++) {
        const char *path = p->write.items[i];
        if (covered(path, g ? &g->write : NULL))
            continue;
        snprintf(what, sizeof what, "write %s", path);
        snprintf(flag, sizeof flag, "write=%s", path);
        snprintf(conf, sizeof conf, "write = ( \"%s\" );", path);
        MISSING(what, flag, conf);
    }
    for (size_t i = 0; i < p->env.len; i++) {
        if (named(p->env.items[i], g ? &g->env : NULL))
            continue;
        snprintf(what, sizeof what, "env %s", p->env.items[i]);
        snprintf(flag, sizeof flag, "env=%s", p->env.items[i]);
        snprintf(conf, sizeof conf, "env = ( \"%s\" );", p->env.items[i]);
        MISSING(what, flag, conf);
    }
#undef MISSING
    sh_status rc = SH_S_OK;
    if (count)
        rc = sh_error_set(err, SH_S_CONFIG,
                          "plugin '%s' asks for permissions it was not granted: %s (declared in %s). Grant them on "
                          "the command line with%s, or in the host configuration: plugins = ( { name = \"%s\"; "
                          "grants = { %s }; } );",
                          d->name, missing.failed ? "?" : (const char *)missing.data, d->path,
                          flags.failed ? " ?" : (const char *)flags.data, d->name,
                          cfg.failed ? "?" : (const char *)cfg.data);
    sh_buf_free(&missing);
    sh_buf_free(&flags);
    sh_buf_free(&cfg);
    return rc;
}
