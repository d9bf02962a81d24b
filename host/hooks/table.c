/* Building the hook table: the host's hookspec and every *.hooks file on the search path, linked with the
 * implementations plugins declare, sorted into dispatch order and checked for startup problems. */
#include "hooks/hooks_private.h"

static const char host_hookspec[] =
    "kind = \"stagehost\";\n"
    "api = \"1.0\";\n"
    "hooks = (\n"
    "  { name = \"run_finished\"; dispatch = \"broadcast-notify\"; args = ( \"string\", \"string\" );\n"
    "    description = \"A pipeline run ended: its name, and its status (succeeded or failed).\"; }\n"
    ");\n";


static void problem(sh_hooks *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(sh_hooks *h, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h->problems.len)
        sh_buf_putc(&h->problems, '\n');
    sh_buf_puts(&h->problems, msg);
    /* Kept NUL-terminated (not counted in len): sh_hooks_problems() hands the text out as a string. */
    if (sh_buf_reserve(&h->problems, 1) == 0)
        h->problems.data[h->problems.len] = '\0';
}

static sh_status add_file(sh_hooks *h, sh_hookspec *s, sh_error *err)
{
    for (size_t i = 0; i < h->file_count; i++)
        if (strcmp(h->files[i]->kind, s->kind) == 0) {
            /* Like a plugin of the same name: the first on the search path wins. */
            sh_log(SH_LOG_INFO, "hookspec %s is shadowed by %s, which declares kind '%s' earlier on the search path",
                   s->path, h->files[i]->path, s->kind);
            sh_hookspec_free(s);
            return SH_S_OK;
        }
    sh_hookspec **p = realloc(h->files, (h->file_count + 1) * sizeof *p);
    if (!p) {
        sh_hookspec_free(s);
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading hookspecs");
    }
    h->files = p;
    h->files[h->file_count++] = s;
    return SH_S_OK;
}

static sh_status read_specs(sh_hooks *h, sh_error *err)
{
    sh_hookspec *s = NULL;
    sh_status rc = sh_hookspec_parse_text(host_hookspec, "(host hookspec)", &s, err);
    if (rc == SH_S_OK)
        rc = add_file(h, s, err);
    const sh_registry *reg = &h->rt->registry;
    for (size_t d = 0; rc == SH_S_OK && d < reg->dir_count; d++) {
        sh_strlist names;
        sh_error derr;
        /* A directory that cannot be read holds no hookspecs; discovery already said why. */
        if (sh_dirlist(reg->dirs[d], ".hooks", &names, &derr) == SH_S_NOMEM)
            rc = sh_error_set(err, SH_S_NOMEM, "%s", derr.message);
        for (size_t i = 0; rc == SH_S_OK && i < names.len; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", reg->dirs[d], names.items[i]);
            rc = sh_hookspec_load(path, &s, err);
            if (rc == SH_S_OK)
                rc = add_file(h, s, err);
        }
        sh_strlist_clear(&names);
    }
    return rc;
}

/* Priority order, ties by plugin name: the same order on every machine and every run. */
static int by_priority(const void *a, const void *b)
{
    const impl *x = a, *y = b;
    if (x->decl->priority != y->decl->priority)
        return x->decl->priority > y->decl->priority ? -1 : 1;
    return strcmp(x->plugin, y->plugin);
}

static sh_hook *find(sh_hooks *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcmp(h->hooks[i].spec->full_name, name) == 0)
            return &h->hooks[i];
    return NULL;
}

static sh_status add_impl(sh_hooks *h, sh_hook *hk, const sh_registry_entry *e, const sh_hook_decl *decl,
                          sh_error *err)
{
    impl *p = realloc(hk->impls, (hk->count + 1) * sizeof *p);
    if (!p)
        return sh_error_set(err, SH_S_NOMEM, "out of memory linking hooks");
    hk->impls = p;
    impl *im = &hk->impls[hk->count++];
    memset(im, 0, sizeof *im);
    im->entry = e;
    im->plugin = e->desc->name;
    im->decl = decl;
    im->isolation = sh_runtime_isolation(h->rt, e->desc, SH_ISOLATION_DEFAULT);
    im->denied = sh_middleware_denies(&h->mw, im->plugin, hk->spec->full_name);
    /* One quota counter per plugin, shared by all its implementations. */
    for (size_t i = 0; i < h->mw.slots; i++)
        if (strcmp(h->slot_plugins[i], im->plugin) == 0) {
            im->quota_slot = i;
            return SH_S_OK;
        }
    char **names = realloc(h->slot_plugins, (h->mw.slots + 1) * sizeof *names);
    if (!names)
        return sh_error_set(err, SH_S_NOMEM, "out of memory linking hooks");
    h->slot_plugins = names;
    names[h->mw.slots] = (char *)im->plugin;
    return sh_middleware_add_slot(&h->mw, &im->quota_slot, err);
}

/* STAGEHOST_ACTIVE_<KIND>: the kind upper-cased, anything but letters and digits as '_'. */
static void active_var(const char *kind, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "STAGEHOST_ACTIVE_");
    for (const char *k = kind; *k && n + 1 < size; k++)
        out[n++] = isalnum((unsigned char)*k) ? (char)toupper((unsigned char)*k) : '_';
    out[n] = '\0';
}

/* The plugin chosen for the singleton hooks of `kind`, by the environment or the host configuration. */
static const char *active_choice(const sh_hooks *h, const char *kind, const char **source)
{
    char var[128];
    active_var(kind, var, sizeof var);
    const char *env = sh_env_get(h->rt->env, var);
    if (env && *env) {
        *source = "environment";
        return env;
    }
    const sh_hostconfig *c = h->rt->config;
    const char *cfg = c ? sh_value_get_string(sh_value_map_get(c->hooks.active, kind), NULL) : NULL;
    *source = "host configuration";
    return cfg;
}

static void check_hook(sh_hooks *h, sh_hook *hk)
{
    const sh_hookspec_hook *s = hk->spec;
    if (s->dispatch == SH_DISPATCH_SINGLETON && hk->count) {
        const char *source = NULL;
        const char *choice = active_choice(h, hk->file->kind, &source);
        size_t chosen = hk->count;
        for (size_t i = 0; choice && i < hk->count; i++)
            if (strcmp(hk->impls[i].plugin, choice) == 0)
                chosen = i;
        if (chosen < hk->count) {
            /* The chosen plugin answers: moved to the front, the rest keep their order. */
            impl keep = hk->impls[chosen];
            memmove(&hk->impls[1], &hk->impls[0], chosen * sizeof keep);
            hk->impls[0] = keep;
            sh_log(SH_LOG_DEBUG, "hook %s: plugin '%s' chosen by the %s", s->full_name, keep.plugin, source);
        } else if (choice) {
            sh_log(SH_LOG_WARN, "hook %s: the %s chooses plugin '%s' for kind '%s', which does not implement it",
                   s->full_name, source, choice, hk->file->kind);
        }
        if (chosen == hk->count && hk->count > 1 && hk->impls[0].decl->priority == hk->impls[1].decl->priority) {
            char var[128];
            active_var(hk->file->kind, var, sizeof var);
            problem(h,
                    "singleton hook '%s' has two implementations of equal top priority %lld: plugin '%s' (%s:%d) and "
                    "plugin '%s' (%s:%d); choose one with %s=%s or, in the host configuration, "
                    "hooks = { active = { %s = \"%s\"; }; }; or give them different priorities",
                    s->full_name, (long long)hk->impls[0].decl->priority, hk->impls[0].plugin,
                    hk->impls[0].entry->desc->path, hk->impls[0].decl->line, hk->impls[1].plugin,
                    hk->impls[1].entry->desc->path, hk->impls[1].decl->line, var, hk->impls[0].plugin,
                    hk->file->kind, hk->impls[0].plugin);
        }
    }
    for (size_t i = 0; i < hk->count; i++) {
        impl *im = &hk->impls[i];
        if (!im->decl->fallback)
            continue;
        if (s->dispatch != SH_DISPATCH_CAPABILITY) {
            problem(h, "plugin '%s' (%s:%d) marks its implementation of '%s' as fallback, but '%s' is a %s hook: "
                       "fallback applies to capability hooks only",
                    im->plugin, im->entry->desc->path, im->decl->line, s->full_name, s->full_name,
                    sh_dispatch_name(s->dispatch));
        } else if (hk->fallback) {
            problem(h,
                    "capability hook '%s' has two fallback implementations: plugin '%s' (%s:%d) and plugin '%s' "
                    "(%s:%d); keep fallback = true in one of them",
                    s->full_name, hk->fallback->plugin, hk->fallback->entry->desc->path, hk->fallback->decl->line,
                    im->plugin, im->entry->desc->path, im->decl->line);
        } else {
            hk->fallback = im;
        }
    }
}

static bool configured(const sh_middleware_config *c)
{
    return c->deny_plugins.len || c->deny_hooks.len || c->audit_log || c->calls_per_plugin;
}

sh_status sh_hooks_build(sh_runtime *rt, sh_hooks **out, sh_error *err)
{
    *out = NULL;
    sh_hooks *h = calloc(1, sizeof *h);
    if (!h)
        return sh_error_set(err, SH_S_NOMEM, "out of memory building the hook table");
    h->rt = rt;
    const sh_middleware_config *mc = rt->config && configured(&rt->config->hooks) ? &rt->config->hooks : NULL;
    sh_status rc = sh_middleware_start(&h->mw, mc, rt->config ? rt->config->path : NULL, err);
    if (rc == SH_S_OK)
        rc = read_specs(h, err);
    size_t total = 0;
    for (size_t i = 0; rc == SH_S_OK && i < h->file_count; i++)
        total += h->files[i]->count;
    if (rc == SH_S_OK && total && !(h->hooks = calloc(total, sizeof *h->hooks)))
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory building the hook table");
    for (size_t i = 0; rc == SH_S_OK && i < h->file_count; i++)
        for (size_t k = 0; rc == SH_S_OK && k < h->files[i]->count; k++) {
            sh_hook *hk = &h->hooks[h->count++];
            hk->file = h->files[i];
            hk->spec = &h->files[i]->hooks[k];
            rc = sh_ffi_prepare(&hk->fc, &hk->spec->sig, SH_CONV_HOOK, err);
            if (rc != SH_S_OK)
                sh_error_prefix(err, "%s:%d: hook '%s'", hk->file->path, hk->spec->line, hk->spec->full_name);
            sh_ntype t = hk->spec->sig.ret;
            hk->chain_native = hk->spec->dispatch == SH_DISPATCH_CHAIN && hk->spec->sig.nargs &&
                               hk->spec->sig.args[0] == t && !hk->fc.boxed && t != SH_NT_VOID && t != SH_NT_U64;
        }
    const sh_registry *reg = &rt->registry;
    for (size_t i = 0; rc == SH_S_OK && i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (!e->desc || !SH_PLUGIN_USABLE(e->status))
            continue;
        for (size_t k = 0; rc == SH_S_OK && k < e->desc->hook_count; k++) {
            const sh_hook_decl *decl = &e->desc->hooks[k];
            sh_hook *hk = find(h, decl->hook);
            if (!hk)
                problem(h,
                        "plugin '%s' (%s:%d) implements hook '%s', which no hookspec on the plugin search path "
                        "declares; install the hookspec (a KIND.hooks file) beside the plugins or fix 'hook'",
                        e->desc->name, e->desc->path, decl->line, decl->hook);
            else
                rc = add_impl(h, hk, e, decl, err);
        }
    }
    for (size_t i = 0; rc == SH_S_OK && i < h->count; i++) {
        if (h->hooks[i].count > 1) /* impls is NULL for a hook nobody implements */
            qsort(h->hooks[i].impls, h->hooks[i].count, sizeof *h->hooks[i].impls, by_priority);
        check_hook(h, &h->hooks[i]);
    }
    if (rc == SH_S_OK && h->problems.failed)
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory building the hook table");
    if (rc != SH_S_OK) {
        sh_hooks_free(h);
        return rc;
    }
    *out = h;
    return SH_S_OK;
}

const char *sh_hooks_problems(const sh_hooks *h)
{
    return h->problems.len ? (const char *)h->problems.data : NULL;
}

sh_status sh_hooks_get(sh_runtime *rt, sh_hooks **table, sh_error *err)
{
    if (!*table) {
        sh_status rc = sh_hooks_build(rt, table, err);
        if (rc != SH_S_OK)
            return rc;
    }
    const char *p = sh_hooks_problems(*table);
    if (p)
        return sh_error_set(err, SH_S_CONFIG, "the hook system cannot start:\n%s", p);
    return SH_S_OK;
}

void sh_hooks_free(sh_hooks *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        for (size_t k = 0; k < h->hooks[i].count; k++)
            if (h->hooks[i].impls[k].pinned)
                sh_runtime_release(h->rt, h->hooks[i].impls[k].entry, h->hooks[i].impls[k].pinned, NULL);
        free(h->hooks[i].impls);
    }
    free(h->hooks);
    for (size_t i = 0; i < h->file_count; i++)
        sh_hookspec_free(h->files[i]);
    free(h->files);
    free(h->slot_plugins);
    sh_middleware_stop(&h->mw);
    sh_buf_free(&h->problems);
    free(h);
}

sh_hook *sh_hooks_find(sh_hooks *h, const char *name) { return find(h, name); }
const sh_hookspec_hook *sh_hook_spec(const sh_hook *hk) { return hk->spec; }
size_t sh_hooks_count(const sh_hooks *h) { return h->count; }
sh_hook *sh_hooks_at(sh_hooks *h, size_t i) { return i < h->count ? &h->hooks[i] : NULL; }
const char *sh_hook_spec_path(const sh_hook *hk) { return hk->file->path; }
size_t sh_hook_impl_count(const sh_hook *hk) { return hk->count; }

void sh_hook_impl_at(const sh_hook *hk, size_t i, sh_hook_impl_info *out)
{
    const impl *im = &hk->impls[i];
    *out = (sh_hook_impl_info){.plugin = im->plugin, .decl = im->decl, .isolation = im->isolation,
                               .denied = im->denied};
}
