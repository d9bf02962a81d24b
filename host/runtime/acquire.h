/* The one way to a plugin instance for a call, and back, for every caller that runs plugin code (stages, hooks):
 * the effective limits, a warm instance or a new one loaded under the runtime's policy (grants, confinement),
 * health() right after a load; and on the way back the metrics, the worker cache and the plugin's status
 * (quarantine after repeated crashes, degraded after many failures). Callers decide nothing of this themselves.
 * Any thread: the pool, the metrics and the runtime's records each have their own lock. */
#ifndef SH_ACQUIRE_H
#define SH_ACQUIRE_H

#include "runtime/instance.h"
#include "runtime/metrics.h"
#include "runtime/runtime.h"

/* An instance of plugin `e` (NULL: the built-ins) with isolation `iso`. *started_worker (may be NULL) says
 * whether this started a worker process. A new instance's health() is asked at once and recorded: a plugin that
 * cannot do its work is flagged before it is used. Errors: quarantined (SH_S_LOAD, with the reason and how to
 * clear it), refused by policy (SH_S_CONFIG), or the load's. */
sh_status sh_runtime_acquire(sh_runtime *rt, const sh_registry_entry *e, sh_isolation iso, sh_instance **out,
                             bool *started_worker, sh_error *err);

/* How a call on an acquired instance ended. */
typedef struct sh_call_outcome {
    sh_status status;
    const char *message;                  /* why it failed; NULL when it succeeded */
    const sh_invocation_metrics *metrics; /* NULL: not counted in the metrics (hook calls) */
} sh_call_outcome;

/* Hands `in` back after a call of plugin `e`, recording `outcome`; NULL: no call to record (a hook table letting
 * go of an instance it kept for direct calls). */
void sh_runtime_release(sh_runtime *rt, const sh_registry_entry *e, sh_instance *in, const sh_call_outcome *outcome);

/* Whether plugin `e` may be called again after a failure: not when the failure got it quarantined. */
bool sh_runtime_retry_allowed(sh_runtime *rt, const sh_registry_entry *e);

#endif
