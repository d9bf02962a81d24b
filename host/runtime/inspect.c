#include "runtime/inspect.h"
#include "runtime/policy.h"
#include "worker/worker.h"

#include <stdio.h>
#include <string.h>

const char *sh_inspect_step_name(sh_inspect_step step)
{
    static const char *const names[] = {"load", "magic block", "ABI negotiation", "metadata", "init", "health",
                                        "done"};
    return (unsigned)step <= SH_STEP_DONE ? names[step] : "?";
}

/* Which step a load failure belongs to: the loader says so in the error's kind. */
static sh_inspect_step step_of(const sh_error *err)
{
    switch (err->kind) {
    case SH_EK_LOAD_MAGIC:
        return SH_STEP_MAGIC;
    case SH_EK_LOAD_NEGOTIATION:
        return SH_STEP_NEGOTIATION;
    case SH_EK_LOAD_METADATA:
        return SH_STEP_METADATA;
    case SH_EK_LOAD_INIT:
        return SH_STEP_INIT;
    default:
        return SH_STEP_LOAD;
    }
}

void sh_inspect_binary(const sh_descriptor *d, const sh_sandbox_support *support, bool allow_unconfined,
                       sh_inspect_report *report)
{
    memset(report, 0, sizeof *report);
    /* Plugin code is untrusted here above all (a CI checking someone's plugin): confine it like any worker,
     * granting nothing. */
    sh_sandbox_policy policy = {0};
    sh_error err;
    if (sh_policy_confine(support, allow_unconfined, d->name, &policy, &err) != SH_S_OK) {
        report->reached = SH_STEP_LOAD;
        snprintf(report->message, sizeof report->message, "not run: %s", err.message);
        return;
    }
    sh_descriptor granted_nothing = *d;
    memset(&granted_nothing.permissions, 0, sizeof granted_nothing.permissions);
    d = &granted_nothing;
    const sh_sandbox_policy *p = &policy;
    sh_worker_limits limits = d->limits;
    if (limits.timeout_ms <= 0)
        limits.timeout_ms = SH_DEFAULT_TIMEOUT_MS;
    sh_worker *w = NULL;
    if (sh_worker_start(d, &limits, NULL, p, NULL, &w, &err) != SH_S_OK) {
        report->reached = step_of(&err);
        snprintf(report->message, sizeof report->message, "%s", err.message);
        return;
    }
    report->abi = sh_worker_abi(w);
    if (sh_worker_health(w, &err) != SH_S_OK) {
        report->reached = SH_STEP_HEALTH;
        snprintf(report->message, sizeof report->message, "%s", err.message);
    } else {
        report->reached = SH_STEP_DONE;
    }
    sh_worker_stop(w);
}
