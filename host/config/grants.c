#include "config/grants.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sh_status sh_grants_add(sh_permissions *g, const char *perm, sh_error *err)
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
            return sh_strlist_push(&g->read, eq + 1, err);
        if (k == 5 && strncmp(perm, "write", 5) == 0)
            return sh_strlist_push(&g->write, eq + 1, err);
        if (k == 3 && strncmp(perm, "env", 3) == 0)
            return sh_strlist_push(&g->env, eq + 1, err);
    }
    return sh_error_set(err, SH_S_CONFIG,
                        "unknown permission '%s': use network, exec, read=PATH, write=PATH or env=NAME", perm);
}

sh_status sh_grants_merge(sh_permissions *to, const sh_permissions *from, sh_error *err)
{
    to->network |= from->network;
    to->exec |= from->exec;
    sh_status rc = sh_strlist_extend(&to->read, &from->read, err);
    if (rc == SH_S_OK)
        rc = sh_strlist_extend(&to->write, &from->write, err);
    if (rc == SH_S_OK)
        rc = sh_strlist_extend(&to->env, &from->env, err);
    return rc;
}

void sh_grants_free(sh_permissions *g)
{
    sh_strlist_clear(&g->read);
    sh_strlist_clear(&g->write);
    sh_strlist_clear(&g->env);
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

/* One kind of list permission (read, write, env): which requested entries no grant covers. Appends them to
 * the three renderings of the refusal: the summary, the command-line flags, and one host-configuration key
 * holding them all (a repeated key would not be valid libconfig). */
static size_t missing_list(const char *plugin, const char *kind, const sh_strlist *asked,
                           bool (*granted)(const char *item, const sh_permissions *g), const sh_permissions *g,
                           sh_buf *summary, sh_buf *flags, sh_buf *conf, size_t count)
{
    size_t added = 0;
    for (size_t i = 0; i < asked->len; i++) {
        const char *item = asked->items[i];
        if (g && granted(item, g))
            continue;
        sh_buf_printf(summary, "%s%s %s", count + added ? ", " : "", kind, item);
        sh_buf_printf(flags, " --grant %s:%s=%s", plugin, kind, item);
        if (!added)
            sh_buf_printf(conf, "%s%s = ( ", count ? " " : "", kind);
        else
            sh_buf_printf(conf, ", ");
        sh_buf_printf(conf, "\"%s\"", item);
        added++;
    }
    if (added)
        sh_buf_printf(conf, " );"); /* printf, not puts: it keeps the text NUL-terminated */
    return added;
}

static bool read_granted(const char *path, const sh_permissions *g) { return covered(path, &g->read) || covered(path, &g->write); }
static bool write_granted(const char *path, const sh_permissions *g) { return covered(path, &g->write); }
static bool env_granted(const char *name, const sh_permissions *g) { return named(name, &g->env); }

sh_status sh_grants_check(const sh_descriptor *d, const sh_permissions *g, sh_error *err)
{
    const sh_permissions *p = &d->permissions;
    sh_buf summary, flags, conf;
    sh_buf_init(&summary);
    sh_buf_init(&flags);
    sh_buf_init(&conf);
    size_t count = 0;
    static const char *const bools[] = {"network", "exec"};
    const bool asked[] = {p->network, p->exec};
    const bool given[] = {g && g->network, g && g->exec};
    for (size_t i = 0; i < 2; i++) {
        if (!asked[i] || given[i])
            continue;
        sh_buf_printf(&summary, "%s%s", count ? ", " : "", bools[i]);
        sh_buf_printf(&flags, " --grant %s:%s", d->name, bools[i]);
        sh_buf_printf(&conf, "%s%s = true;", count ? " " : "", bools[i]);
        count++;
    }
    count += missing_list(d->name, "read", &p->read, read_granted, g, &summary, &flags, &conf, count);
    count += missing_list(d->name, "write", &p->write, write_granted, g, &summary, &flags, &conf, count);
    count += missing_list(d->name, "env", &p->env, env_granted, g, &summary, &flags, &conf, count);
    sh_status rc = SH_S_OK;
    if (count)
        rc = sh_error_set(err, SH_S_CONFIG,
                          "plugin '%s' asks for permissions it was not granted: %s (declared in %s). Grant them on "
                          "the command line with%s, or in the host configuration: plugins = ( { name = \"%s\"; "
                          "grants = { %s }; } );",
                          d->name, summary.failed ? "?" : (const char *)summary.data, d->path,
                          flags.failed ? " ?" : (const char *)flags.data, d->name,
                          conf.failed ? "?" : (const char *)conf.data);
    sh_buf_free(&summary);
    sh_buf_free(&flags);
    sh_buf_free(&conf);
    return rc;
}
