#include "runtime/instance.h"
#include "builtin/builtins.h"
#include "plugin/inproc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct sh_instance {
    sh_isolation isolation;
    sh_inproc *ip; /* in-process */
    sh_worker *w;  /* in a worker */
    sh_worker_limits limits;
};

sh_status sh_instance_open(const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                           const sh_value *config, const sh_sandbox_policy *policy, sh_zygote *zygote,
                           sh_instance **out, sh_error *err)
{
    *out = NULL;
    sh_instance *in = calloc(1, sizeof *in);
    if (!in)
        return sh_error_set(err, SH_S_NOMEM, "out of memory loading a plugin");
    in->isolation = d ? iso : SH_ISOLATION_NONE;
    in->limits = *limits;
    sh_status rc;
    if (!d)
        rc = sh_inproc_open_static(sh_builtin_plugin(), &in->ip, err);
    else if (iso == SH_ISOLATION_NONE)
        rc = sh_inproc_open(d, config, &in->ip, err);
    else
        rc = sh_worker_start(d, limits, config, policy, zygote, &in->w, err);
    if (rc != SH_S_OK) {
        free(in);
        return rc;
    }
    *out = in;
    return SH_S_OK;
}

static int collect(void *sink, sh_value *item) { return sh_values_push(sink, item); }

static int64_t tv_us(struct timeval tv) { return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec; }

static sh_status call_inproc(sh_instance *in, const sh_invocation *inv, const char *action,
                             const sh_value *stage_config, const sh_values *input, sh_values *output,
                             sh_call_usage *usage, sh_error *err)
{
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    uint32_t id = 0;
    sh_status rc = sh_inproc_create_stage(in->ip, inv, action, stage_config, &id, err);
    if (rc == SH_S_OK) {
        rc = sh_inproc_process(in->ip, id, inv, (const sh_value *const *)input->items, input->len, collect, output,
                               NULL, NULL, err);
        /* The whole input came in one batch: the stage's input ends here. */
        if (rc == SH_S_OK)
            rc = sh_inproc_finish(in->ip, id, inv, collect, output, NULL, NULL, err);
        sh_inproc_destroy_stage(in->ip, id);
    }
    getrusage(RUSAGE_THREAD, &after);
    usage->user_us = tv_us(after.ru_utime) - tv_us(before.ru_utime);
    usage->sys_us = tv_us(after.ru_stime) - tv_us(before.ru_stime);
    getrusage(RUSAGE_SELF, &after);
    usage->maxrss_kb = after.ru_maxrss;
    return rc;
}

sh_status sh_instance_call(sh_instance *in, const sh_invocation *inv, const char *action,
                           const sh_value *stage_config, int64_t timeout_ms, const sh_values *input,
                           sh_values *output, sh_call_usage *usage, sh_error *err)
{
    memset(usage, 0, sizeof *usage);
    sh_status rc;
    if (in->ip) {
        rc = call_inproc(in, inv, action, stage_config, input, output, usage, err);
    } else {
        sh_worker_set_timeout(in->w, timeout_ms > 0 ? timeout_ms : in->limits.timeout_ms);
        /* create + process + destroy in one request and one answer */
        rc = sh_worker_call(in->w, inv, action, stage_config, (const sh_value *const *)input->items, input->len,
                            in->isolation == SH_ISOLATION_CALL, output, err);
        *usage = *sh_worker_last_usage(in->w);
        sh_worker_set_timeout(in->w, in->limits.timeout_ms);
    }
    if (rc != SH_S_OK)
        sh_values_clear(output);
    return rc;
}

sh_status sh_instance_hook(sh_instance *in, const sh_invocation *inv, const char *symbol, const sh_ffi_call *fc,
                           const sh_value *const *args, size_t nargs, sh_value **result, bool *stopped,
                           sh_error *err)
{
    *result = NULL;
    *stopped = false;
    if (!in->ip) {
        sh_worker_set_timeout(in->w, in->limits.timeout_ms);
        return sh_worker_hook(in->w, inv, symbol, &fc->sig, args, nargs, in->isolation == SH_ISOLATION_CALL, result,
                              stopped, err);
    }
    void (*fn)(void) = sh_inproc_symbol(in->ip, symbol);
    if (!fn)
        return sh_error_set(err, SH_S_STAGE, "plugin '%s' declares no hook implemented by '%s'", inv->plugin, symbol);
    if (nargs != fc->sig.nargs)
        return sh_error_set(err, SH_S_CONFIG, "%zu arguments for a hook taking %zu", nargs, fc->sig.nargs);
    sh_ffi_args a;
    sh_ffi_args_init(&a, fc);
    for (size_t i = 0; i < nargs; i++) {
        char what[64];
        snprintf(what, sizeof what, "argument %zu", i + 1);
        if (sh_ffi_arg_set(&a, fc, i, args[i], what, err) != SH_S_OK)
            return SH_S_CONFIG;
    }
    sh_call call;
    sh_call_init(&call, inv, NULL, NULL, NULL, NULL);
    int rc = sh_ffi_call_hook(fc, fn, &call, &a, result);
    sh_status st = SH_S_OK;
    if (rc == SH_HOOK_STOP)
        *stopped = true;
    else if (rc != SH_OK)
        st = sh_error_set(err, SH_S_STAGE, "%s", sh_call_error(&call, rc));
    sh_call_finish(&call);
    return st;
}

struct sh_inproc *sh_instance_inproc(sh_instance *in) { return in->ip; }

sh_status sh_instance_health(sh_instance *in, sh_error *err)
{
    return in->ip ? sh_inproc_health(in->ip, err) : sh_worker_health(in->w, err);
}

bool sh_instance_alive(const sh_instance *in) { return in->ip || sh_worker_alive(in->w); }
int sh_instance_pid(const sh_instance *in) { return in->w ? sh_worker_pid(in->w) : 0; }

void sh_instance_close(sh_instance *in)
{
    if (!in)
        return;
    sh_inproc_close(in->ip);
    sh_worker_stop(in->w);
    free(in);
}
