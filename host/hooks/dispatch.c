/* Calling through the hook table: the five dispatch classes, the middleware before each implementation, direct
 * calls into in-process implementations and calls into workers, and the host's own run notifications. */
#include "hooks/hooks_private.h"

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
    if (status == SH_HOOK_STOP) {
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

/* Whether the implementation's declared capabilities cover every tag the call requires (an empty requirement
 * is covered by every implementation): a parser for `pdf` alone does not answer a call for `pdf` and `ocr`. */
static bool covers(const impl *im, const char *const *tags, size_t ntags)
{
    for (size_t k = 0; k < ntags; k++) {
        bool found = false;
        for (size_t i = 0; i < im->decl->supports_count && !found; i++)
            found = strcmp(im->decl->supports[i], tags[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* A singleton's answer that lets the next implementation answer instead: no result, or a null value. */
static bool empty(const sh_value *v) { return !v || sh_value_type(v) == SH_TYPE_NULL; }

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
        /* The first non-empty result answers, in dispatch order: an implementation that has nothing to say for
         * these arguments lets the next one answer. A void singleton has one answerer. */
        for (size_t i = 0; i < hk->count; i++) {
            sh_value_free(r);
            rc = call_impl(d, &hk->impls[i], false, &r, &native, &stopped, err);
            if (rc != SH_S_OK)
                return impl_failed(d, &hk->impls[i], err);
            if (hk->spec->sig.ret == SH_NT_VOID || !empty(r))
                break;
        }
        *result = r;
        return SH_S_OK;
    case SH_DISPATCH_CAPABILITY: {
        impl *pick = NULL;
        for (size_t i = 0; i < hk->count && !pick; i++)
            if (covers(&hk->impls[i], tags, ntags))
                pick = &hk->impls[i];
        if (!pick)
            pick = hk->fallback;
        if (!pick) {
            char list[512] = "";
            for (size_t k = 0; k < ntags; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", tags[k]);
            return sh_error_set(err, SH_S_STAGE,
                                "capability hook '%s': no implementation supports %s%s%s and none is the fallback; "
                                "install a plugin that supports all of them, or mark one implementation "
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
        /* A chain with no link has no result to give: passing the input back would pass for an answer. */
        if (!hk->count)
            return sh_error_set(err, SH_S_STAGE,
                                "chain hook '%s' has no implementation: no usable plugin on the search path "
                                "declares it (stagehost hooks list shows what is there)",
                                hk->spec->full_name);
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
    sh_hook *hk = sh_hooks_find(h, SH_HOOK_RUN_FINISHED);
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
