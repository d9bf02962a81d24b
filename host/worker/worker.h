/* A worker process that runs one plugin, isolated from the host: the host side. A worker that crashes, exits,
 * hangs past its deadline or breaks the protocol fails the current request with a precise error; it is then
 * killed and reaped, and the worker is marked dead. */
#ifndef SH_WORKER_H
#define SH_WORKER_H

#include "plugin/call.h"
#include "registry/descriptor.h"
#include "util/error.h"
#include "plugin/ffi.h"
#include "sandbox/sandbox.h"

typedef struct sh_worker sh_worker;
typedef struct sh_zygote sh_zygote;

#define SH_DEFAULT_TIMEOUT_MS 30000

/* The limits a worker runs under: the descriptor's, completed by host defaults and stage overrides. Zero means
 * no limit, except timeout_ms (SH_DEFAULT_TIMEOUT_MS) and output_mb (the wire's frame limit). */
typedef sh_limits sh_worker_limits;

/* Resource use reported by the worker for its last call. */
typedef struct sh_call_usage {
    int64_t user_us, sys_us; /* CPU time the call took */
    int64_t maxrss_kb;       /* the worker's peak resident size so far */
} sh_call_usage;

/* Starts a worker that loads `d` and calls init(config), forked by `zygote` (or by the host itself when NULL),
 * confined by `policy` (its tmp_root is ignored: each worker gets a private directory of its own, removed when
 * the worker is reaped), and waits until it reports ready, at most limits->timeout_ms. */
sh_status sh_worker_start(const sh_descriptor *d, const sh_worker_limits *limits, const sh_value *config,
                          const sh_sandbox_policy *policy, sh_zygote *zygote, sh_worker **out, sh_error *err);

/* One invocation in one round trip: creates stage `type` with `config`, runs it on `items` and destroys it. With
 * `fork_call`, the worker forks a process for this call alone, so nothing the call changes survives it. What it
 * emits goes to `out` (left empty on failure); the usage of the call is then sh_worker_last_usage. Large items
 * travel through a shared buffer rather than the socket. */
sh_status sh_worker_call(sh_worker *w, const sh_invocation *inv, const char *type, const sh_value *config,
                         const sh_value *const *items, size_t count, bool fork_call, sh_values *out, sh_error *err);

/* Calls the plugin's hook implementation `symbol` (signature `sig`, hook convention) in the worker with `args`.
 * *result receives the result (NULL for void, or when the implementation stopped a chain: *stopped is then set).
 * A failing implementation gives SH_S_STAGE with its message. With `fork_call`, it runs in a fork of the worker. */
sh_status sh_worker_hook(sh_worker *w, const sh_invocation *inv, const char *symbol, const sh_signature *sig,
                         const sh_value *const *args, size_t nargs, bool fork_call, sh_value **result, bool *stopped,
                         sh_error *err);

/* Asks the plugin in the worker for its health. */
sh_status sh_worker_health(sh_worker *w, sh_error *err);

/* The deadline of each following request (0: SH_DEFAULT_TIMEOUT_MS). */
void sh_worker_set_timeout(sh_worker *w, int64_t timeout_ms);

bool sh_worker_alive(const sh_worker *w);
int sh_worker_pid(const sh_worker *w);
/* The ABI version the plugin negotiated, as its worker reported when ready. */
uint32_t sh_worker_abi(const sh_worker *w);
const sh_call_usage *sh_worker_last_usage(const sh_worker *w);

/* Asks the worker to run fini() and exit, waits a short grace period, then kills it; always reaps. */
void sh_worker_stop(sh_worker *w);

#endif
