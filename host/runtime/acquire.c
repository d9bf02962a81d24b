#include "runtime/acquire.h"
#include "runtime/policy.h"

#include <pthread.h>

sh_status sh_runtime_acquire(sh_runtime *rt, const sh_registry_entry *e, sh_isolation iso, sh_instance **out,
                             bool *started_worker, sh_error *err)
{
    const sh_descriptor *d = e ? e->desc : NULL;
    *out = NULL;
    if (started_worker)
        *started_worker = false;
    /* A plugin quarantined during this run (or this server's life) starts no new worker: without this, every
     * later stage of a run would start one more worker to crash. */
    if (e) {
        pthread_mutex_lock(&rt->lock);
        sh_status q = SH_S_OK;
        if (e->status == SH_PLUGIN_QUARANTINED)
            q = sh_error_set(err, SH_S_LOAD, "plugin '%s' is %s", d->name, e->reason ? e->reason : "quarantined");
        pthread_mutex_unlock(&rt->lock);
        if (q != SH_S_OK)
            return q;
    }
    /* A warm instance was checked (grants, confinement) when it was loaded: calls on it need no new decision. */
    if ((*out = sh_pool_take_warm(rt->pool, d, iso)))
        return SH_S_OK;
    sh_limits limits = {0};
    sh_sandbox_policy policy = {0};
    if (d) {
        sh_runtime_limits(rt, d, &limits);
        sh_status rc = sh_runtime_policy(rt, d, iso, rt->allow_unconfined, &policy, err);
        if (rc != SH_S_OK)
            return rc;
    }
    bool reused = false;
    sh_status rc = sh_pool_acquire(rt->pool, d, iso, &limits, d ? sh_runtime_plugin_config(rt, d->name) : NULL,
                                   &policy, out, &reused, err);
    if (rc != SH_S_OK || reused || !d)
        return rc;
    if (started_worker)
        *started_worker = sh_instance_pid(*out) != 0;
    sh_error herr;
    sh_status hs = sh_instance_health(*out, &herr);
    sh_runtime_record_health(rt, e, hs == SH_S_OK, hs == SH_S_OK ? NULL : herr.message);
    return SH_S_OK;
}

void sh_runtime_release(sh_runtime *rt, const sh_registry_entry *e, sh_instance *in, const sh_call_outcome *outcome)
{
    if (outcome && outcome->metrics)
        sh_metrics_record(rt->metrics, outcome->metrics);
    sh_pool_release(rt->pool, in);
    if (outcome)
        sh_runtime_record_call(rt, e, outcome->status, outcome->status == SH_S_OK ? NULL : outcome->message);
}

bool sh_runtime_retry_allowed(sh_runtime *rt, const sh_registry_entry *e)
{
    if (!e)
        return true;
    pthread_mutex_lock(&rt->lock);
    bool ok = e->status != SH_PLUGIN_QUARANTINED;
    pthread_mutex_unlock(&rt->lock);
    return ok;
}
