#include "hooks/hooks.h"
#include "util/buf.h"
#include "util/dirlist.h"
#include "plugin/inproc.h"
#include "util/log.h"
#include "hooks/middleware.h"
#include "runtime/acquire.h"
#include "runtime/policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char host_hookspec[] =
    "kind = \"stagehost\";\n"
    "api = \"1.0\";\n"
    "hooks = (\n"
    "  { name = \"run_finished\"; dispatch = \"broadcast-notify\"; args = ( \"string\", \"string\" );\n"
    "    description = \"A pipeline run ended: its name, and its status (succeeded or failed).\"; }\n"
    ");\n";

typedef struct impl {
    const sh_registry_entry *entry;
    const char *plugin; /* the descriptor's name (borrowed from the registry) */
    const sh_hook_decl *decl;
    sh_isolation isolation;
    bool denied;        /* by the governance policy, decided once */
    size_t quota_slot;  /* the plugin's call counter */
    sh_instance *pinned; /* in-process: held from the first call to sh_hooks_free, for direct calls */
    void (*fn)(void);
} impl;

struct sh_hook {
    const sh_hookspec *file;
    const sh_hookspec_hook *spec;
    sh_ffi_call fc; /* prepared once, used for every implementation and every call */
    impl *impls;    /* dispatch order */
    size_t count;
    impl *fallback; /* capability */
    /* A chain whose value is a C scalar (anything but u64, whose values above INT64_MAX a value cannot pass
     * back in): each link's output goes straight into the next link's first argument slot, and a value is
     * built only for the final answer. */
    bool chain_native;
};

struct sh_hooks {
    sh_runtime *rt;
    sh_hookspec **files;
    size_t file_count;
    sh_hook *hooks;
    size_t count;
    sh_middleware mw;
    char **slot_plugins; /* plugin name of each quota slot */
    sh_buf problems;
};

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

/* ---- calling ------------------------------------------------------------------------------------------------ */

/* What one dispatch shares between its implementation calls. */
typedef struct dispatch {
    sh_hooks *h;
    sh_hook *hk;
    const sh_value **args;       /* as given (read only), or for a chain a copy whose args[0] it replaces */
    size_t nargs;
    sh_ffi_args native;          /* the same arguments converted once, for direct calls */
    sh_invocation inv;
    sh_call call;
} dispatch;

/* Loads (or finds warm) the plugin of `im`. In-process instances stay held by the table, so later calls go
 * straight to the resolved function. */
static sh_status instance_of(dispatch *d, impl *im, sh_instance **in, sh_error *err)
{
    sh_status rc = sh_runtime_acquire(d->h->rt, im->entry, im->isolation, in, NULL, err);
    if (rc != SH_S_OK)
        return sh_error_prefix(err, "loading plugin '%s' for hook '%s'", im->plugin, d->hk->spec->full_name);
    if (im->isolation == SH_ISOLATION_NONE) {
        im->pinned = *in;
        im->fn = sh_inproc_symbol(sh_instance_inproc(*in), im->decl->symbol);
    }
    return SH_S_OK;
}

/* Calls one implementation: middleware first, then the function. *stopped when it stopped its chain.
 * With `keep_native`, a direct call's result is left in d->native (*native set, *result NULL) for the caller to
 * pass on without building a value; otherwise, and always for a call in a worker, it is *result. */
static sh_status run_impl(dispatch *d, impl *im, bool keep_native, sh_value **result, bool *native,
                            bool *stopped, sh_error *err);

/* A singleton or capability hook has to answer: an implementation that stops (SH_HOOK_STOP, meant for chains)
 * would leave the caller without the result the hookspec promises. Collect skips it, notify ignores it. */
static sh_status call_impl(dispatch *d, impl *im, bool keep_native, sh_value **result, bool *native, bool *stopped,
                           sh_error *err)
{
    sh_status rc = run_impl(d, im, keep_native, result, native, stopped, err);
    sh_dispatch k = d->hk->spec->dispatch;
    if (rc == SH_S_OK && *stopped && (k == SH_DISPATCH_SINGLETON || k == SH_DISPATCH_CAPABILITY)) {
        sh_value_free(*result);
        *result = NULL;
        *stopped = false;
        return sh_error_set(err, SH_S_STAGE,
                            "%s() returned SH_HOOK_STOP, which only a chain hook's implementation may return; '%s' "
                            "is a %s hook: return SH_OK with a result, or fail with sh_failf()",
                            im->decl->symbol, d->hk->spec->full_name, sh_dispatch_name(k));
    }
    return rc;
}

static sh_status run_impl(dispatch *d, impl *im, bool keep_native, sh_value **result, bool *native,
                            bool *stopped, sh_error *err)
{
    *result = NULL;
    *native = false;
    *stopped = false;
    sh_status rc;
    /* Nothing configured (the usual case) costs one test, not a call. */
    if (sh_middleware_on(&d->h->mw) &&
        (rc = sh_middleware_admit(&d->h->mw, im->denied, im->quota_slot, im->plugin, d->hk->spec->full_name,
                                  err)) != SH_S_OK)
        return rc;
    d->inv.plugin = im->plugin;
    if (!im->fn) {
        sh_instance *in = NULL;
        if ((rc = instance_of(d, im, &in, err)) != SH_S_OK)
            return rc;
        if (!im->fn) {
            /* In a worker: the arguments cross the wire as values. */
            rc = sh_instance_hook(in, &d->inv, im->decl->symbol, &d->hk->fc, d->args, d->nargs, result, stopped, err);
            sh_runtime_release(d->h->rt, im->entry, in, &(sh_call_outcome){.status = rc, .message = err->message});
            return rc;
        }
    }
    /* Direct: the prepared cif, the arguments converted once per dispatch, one call per dispatch reset field by
     * field (it carries a 1 KiB message buffer that needs no clearing). */
    sh_call *call = &d->call;
    call->failed = false;
    call->error[0] = '\0';
    call->rng = 0;
    call->clock_reads = 0;
    int status = sh_ffi_call_hook_raw(&d->hk->fc, im->fn, call, &d->native);
    if (call->tmp_dir)
        sh_call_finish(call);
    if (status == SH_HOOK_STATUS_STOP) {
        *stopped = true;
        return SH_S_OK;
    }
    if (status != SH_OK)
        return sh_error_set(err, SH_S_STAGE, "%s", sh_call_error(call, status));
    if (keep_native) {
        *native = true;
        return SH_S_OK;
    }
    if (d->hk->spec->sig.ret != SH_NT_VOID && !(*result = sh_ffi_result_value(&d->hk->fc, &d->native)))
        return sh_error_set(err, SH_S_STAGE, "out of memory");
    return SH_S_OK;
}

static sh_status impl_failed(dispatch *d, impl *im, sh_error *err)
{
    return sh_error_prefix(err, "hook '%s': plugin '%s'", d->hk->spec->full_name, im->plugin);
}

static bool supports(const impl *im, const char *const *tags, size_t ntags)
{
    for (size_t i = 0; i < im->decl->supports_count; i++)
        for (size_t k = 0; k < ntags; k++)
            if (strcmp(im->decl->supports[i], tags[k]) == 0)
                return true;
    return false;
}

/* A chain: each output is the next link's first argument. With hk->chain_native a direct link's scalar output
 * is copied from the result slot into the first argument slot as C data; a value is built only when a worker
 * link needs the value or for the final answer. The answers are the same as boxing every link's output. */
static sh_status dispatch_chain(dispatch *d, sh_value **result, sh_error *err)
{
    sh_hook *hk = d->hk;
    sh_ffi_args *a = &d->native;
    sh_ffi_slot *first = &a->slots[hk->fc.first_slot[0]];
    sh_value *cur = NULL;     /* owned once an implementation produced it as a value; NULL before */
    bool native_in = false;   /* the current input is C data in *first (not yet a value) */
    for (size_t i = 0; i < hk->count; i++) {
        impl *im = &hk->impls[i];
        if (native_in && !im->fn) {
            /* A worker (or a plugin not loaded yet, which may turn out to be one) takes values. */
            if (!(cur = sh_ffi_slot_value(hk->spec->sig.ret, first)))
                return sh_error_set(err, SH_S_NOMEM, "out of memory");
            native_in = false;
        }
        if (!native_in)
            d->args[0] = cur ? cur : d->args[0];
        sh_value *r = NULL;
        bool native = false, stopped = false;
        sh_status rc = call_impl(d, im, hk->chain_native, &r, &native, &stopped, err);
        if (rc != SH_S_OK) {
            sh_value_free(cur);
            return impl_failed(d, im, err);
        }
        if (stopped)
            break;
        sh_value_free(cur);
        cur = NULL;
        if (native) {
            sh_ntype t = hk->spec->sig.ret;
            /* A bool argument built from a value is 0 or 1, whatever non-zero int the link returned. */
            if (t == SH_NT_BOOL)
                first->b = a->out.b != 0;
            else
                *first = a->out;
            native_in = true;
            continue;
        }
        cur = r;
        if (i + 1 < hk->count &&
            (rc = sh_ffi_arg_set(a, &hk->fc, 0, cur, "the chain's value", err)) != SH_S_OK) {
            sh_value_free(cur);
            return impl_failed(d, im, err);
        }
    }
    if (native_in)
        *result = sh_ffi_slot_value(hk->spec->sig.ret, first);
    else
        *result = cur ? cur : sh_value_copy(d->args[0]);
    return *result ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory");
}

static sh_status dispatch_call(dispatch *d, const char *const *tags, size_t ntags, sh_value **result, sh_error *err)
{
    sh_hook *hk = d->hk;
    sh_value *r = NULL;
    bool native = false, stopped = false;
    sh_status rc = SH_S_OK;
    switch (hk->spec->dispatch) {
    case SH_DISPATCH_SINGLETON:
        if (!hk->count)
            return sh_error_set(err, SH_S_STAGE,
                                "singleton hook '%s' has no implementation: no usable plugin on the search path "
                                "declares it (stagehost hooks list shows what is there)",
                                hk->spec->full_name);
        rc = call_impl(d, &hk->impls[0], false, result, &native, &stopped, err);
        return rc == SH_S_OK ? rc : impl_failed(d, &hk->impls[0], err);
    case SH_DISPATCH_CAPABILITY: {
        impl *pick = NULL;
        for (size_t i = 0; i < hk->count && !pick; i++)
            if (supports(&hk->impls[i], tags, ntags))
                pick = &hk->impls[i];
        if (!pick)
            pick = hk->fallback;
        if (!pick) {
            char list[512] = "";
            for (size_t k = 0; k < ntags; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", tags[k]);
            return sh_error_set(err, SH_S_STAGE,
                                "capability hook '%s': no implementation supports %s%s%s and none is the fallback; "
                                "install a plugin that supports one of them, or mark one implementation "
                                "fallback = true",
                                hk->spec->full_name, ntags ? "the tags [" : "a call without tags", list,
                                ntags ? "]" : "");
        }
        rc = call_impl(d, pick, false, result, &native, &stopped, err);
        return rc == SH_S_OK ? rc : impl_failed(d, pick, err);
    }
    case SH_DISPATCH_COLLECT: {
        sh_value *list = sh_value_array();
        if (!list)
            return sh_error_set(err, SH_S_NOMEM, "out of memory");
        for (size_t i = 0; i < hk->count; i++) {
            rc = call_impl(d, &hk->impls[i], false, &r, &native, &stopped, err);
            if (rc != SH_S_OK && !hk->spec->best_effort) {
                sh_value_free(list);
                return impl_failed(d, &hk->impls[i], err);
            }
            if (rc != SH_S_OK) {
                sh_log(SH_LOG_WARN, "hook %s: plugin=%s error=%s (best effort: skipped)", hk->spec->full_name,
                       hk->impls[i].plugin, err->message);
                continue;
            }
            if (stopped)
                continue; /* a collect implementation that stops contributes nothing */
            if (sh_value_array_push(list, r ? r : sh_value_null()) != SH_OK) {
                sh_value_free(list);
                return sh_error_set(err, SH_S_NOMEM, "out of memory");
            }
        }
        *result = list;
        return SH_S_OK;
    }
    case SH_DISPATCH_NOTIFY:
        for (size_t i = 0; i < hk->count; i++) {
            sh_error e;
            /* keep_native: a notify hook returns nothing, and whatever it did is dropped unbuilt. */
            if (call_impl(d, &hk->impls[i], true, &r, &native, &stopped, &e) != SH_S_OK)
                sh_log(SH_LOG_WARN, "hook %s: plugin=%s error=%s", hk->spec->full_name, hk->impls[i].plugin,
                       e.message);
            sh_value_free(r);
            if (native && hk->fc.boxed)
                sh_value_free(sh_ffi_result_value(&hk->fc, &d->native));
        }
        return SH_S_OK;
    case SH_DISPATCH_CHAIN:
        return dispatch_chain(d, result, err);
    }
    return sh_error_set(err, SH_S_CONFIG, "unknown dispatch class");
}

sh_status sh_hooks_call(sh_hooks *h, sh_hook *hk, const sh_value *const *args, size_t nargs,
                        const char *const *tags, size_t ntags, sh_value **result, sh_error *err)
{
    *result = NULL;
    const sh_signature *sig = &hk->spec->sig;
    if (nargs != sig->nargs)
        return sh_error_set(err, SH_S_CONFIG, "hook '%s' takes %zu argument%s (%s:%d), got %zu", hk->spec->full_name,
                            sig->nargs, sig->nargs == 1 ? "" : "s", hk->file->path, hk->spec->line, nargs);
    /* Not zero-initialised: the call and the argument block are large, and every field used is set below (a
     * hook call's fixed cost is measured by test/bench/bench_hooks.c). */
    dispatch d;
    d.h = h;
    d.hk = hk;
    d.nargs = nargs;
    /* The chain replaces args[0] as it goes: a private copy of the pointer array. The other classes only read
     * the caller's, and skip the copy. */
    const sh_value *argv[SH_SIG_MAX_ARGS + 1];
    if (hk->spec->dispatch == SH_DISPATCH_CHAIN) {
        for (size_t i = 0; i < nargs; i++)
            argv[i] = args[i];
        d.args = argv;
    } else {
        d.args = (const sh_value **)args;
    }
    sh_ffi_args_init(&d.native, &hk->fc);
    for (size_t i = 0; i < nargs; i++) {
        sh_status rc = sh_ffi_arg_set(&d.native, &hk->fc, i, args[i], hk->spec->full_name, err);
        if (rc != SH_S_OK)
            return sh_error_prefix(err, "argument %zu", i + 1);
    }
    d.inv = (sh_invocation){.execution_id = "hooks", .task_id = hk->spec->full_name, .stage = hk->spec->full_name,
                            .attempt = 1, .deterministic = h->rt->deterministic, .seed = SH_DETERMINISTIC_SEED};
    /* sh_call_init without clearing the 1 KiB message buffer, which only a failure writes (and terminates). */
    d.call.inv = &d.inv;
    d.call.emit = NULL;
    d.call.emit_sink = NULL;
    d.call.log = sh_call_log_stderr;
    d.call.log_sink = NULL;
    d.call.tmp_dir = NULL;
    d.call.failed = false;
    d.call.error[0] = '\0';
    sh_status rc = dispatch_call(&d, tags, ntags, result, err);
    if (d.call.tmp_dir)
        sh_call_finish(&d.call);
    return rc;
}

void sh_hooks_run_started(sh_hooks *table)
{
    if (table)
        sh_middleware_new_run(&table->mw);
}

/* Whether any registered plugin declares an implementation of `hook`: read from the descriptors, so a run that
 * used no hook does not scan the search path for hookspecs just to learn that nobody listens. */
static bool declared(const sh_registry *reg, const char *hook)
{
    for (size_t i = 0; i < reg->len; i++) {
        const sh_descriptor *d = reg->entries[i].desc;
        for (size_t k = 0; d && k < d->hook_count; k++)
            if (d->hooks[k].hook && strcmp(d->hooks[k].hook, hook) == 0)
                return true;
    }
    return false;
}

void sh_hooks_run_finished(sh_runtime *rt, sh_hooks **table, const char *pipeline, const char *status)
{
    if (!*table && !declared(&rt->registry, SH_HOOK_RUN_FINISHED))
        return;
    sh_error err;
    if (sh_hooks_get(rt, table, &err) != SH_S_OK) {
        sh_log(SH_LOG_WARN, "hook %s not called: %s", SH_HOOK_RUN_FINISHED, err.message);
        return;
    }
    sh_hooks *h = *table;
    sh_hook *hk = find(h, SH_HOOK_RUN_FINISHED);
    if (!hk || !hk->count)
        return;
    sh_value *p = sh_value_cstring(pipeline ? pipeline : "");
    sh_value *s = sh_value_cstring(status ? status : "");
    const sh_value *args[2] = {p, s};
    sh_value *result = NULL;
    if (p && s && sh_hooks_call(h, hk, args, 2, NULL, 0, &result, &err) != SH_S_OK)
        sh_log(SH_LOG_WARN, "hook %s: %s", SH_HOOK_RUN_FINISHED, err.message);
    sh_value_free(result);
    sh_value_free(p);
    sh_value_free(s);
}
