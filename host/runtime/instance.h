/* An instance: one loaded plugin, either in the host process (built-ins, isolation "none") or in a worker
 * process ("process", "call"). The engine calls stages through it without caring which. */
#ifndef SH_INSTANCE_H
#define SH_INSTANCE_H

#include "plugin/call.h"
#include "worker/worker.h"

typedef struct sh_instance sh_instance;

/* Loads `d` (NULL: the built-ins) with isolation `iso`. */
sh_status sh_instance_open(const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                           const sh_value *config, const sh_sandbox_policy *policy, sh_zygote *zygote,
                           sh_instance **out, sh_error *err);

/* One invocation: create the stage `action` with `stage_config`, run process() on `input`, destroy the stage.
 * `timeout_ms` (> 0) bounds each step in a worker. `usage` receives the call's resource use. */
sh_status sh_instance_call(sh_instance *in, const sh_invocation *inv, const char *action,
                           const sh_value *stage_config, int64_t timeout_ms, const sh_values *input,
                           sh_values *output, sh_call_usage *usage, sh_error *err);

/* Calls hook implementation `symbol` (prepared as `fc`, hook convention) with `args`: directly in-process, in
 * the worker otherwise (forked for "call" isolation). *result is NULL for void or a stopped chain (*stopped). */
sh_status sh_instance_hook(sh_instance *in, const sh_invocation *inv, const char *symbol, const sh_ffi_call *fc,
                           const sh_value *const *args, size_t nargs, sh_value **result, bool *stopped,
                           sh_error *err);

/* The in-process plugin behind `in`, or NULL when it runs in a worker. */
struct sh_inproc *sh_instance_inproc(sh_instance *in);

/* Calls the plugin's health(). SH_S_OK when healthy; otherwise the plugin's reason (or the worker's death). */
sh_status sh_instance_health(sh_instance *in, sh_error *err);

/* False once its worker died: the instance must be closed and replaced. */
bool sh_instance_alive(const sh_instance *in);
/* The worker's process id; 0 in-process. */
int sh_instance_pid(const sh_instance *in);

void sh_instance_close(sh_instance *in);

#endif
