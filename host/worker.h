/* A worker process that runs one plugin, isolated from the host: the host side. A worker that crashes, exits,
 * hangs past its deadline or breaks the protocol fails the current request with a precise error; it is then
 * killed and reaped, and the worker is marked dead. */
#ifndef SH_WORKER_H
#define SH_WORKER_H

#include "call.h"
#include "descriptor.h"
#include "error.h"

typedef struct sh_worker sh_worker;

#define SH_DEFAULT_TIMEOUT_MS 30000

/* Forks a worker that loads `d` and calls init(config); waits until it reports ready, at most timeout_ms. */
sh_status sh_worker_start(const sh_descriptor *d, const sh_value *config, int64_t timeout_ms, sh_worker **out,
                          sh_error *err);

sh_status sh_worker_create_stage(sh_worker *w, const sh_invocation *inv, const char *type, const sh_value *config,
                                 int64_t timeout_ms, uint32_t *id, sh_error *err);

/* Sends `items` to stage `id` and collects what it emits into `out` (left empty on failure). */
sh_status sh_worker_process(sh_worker *w, uint32_t id, const sh_invocation *inv, const sh_value *const *items,
                            size_t count, int64_t timeout_ms, sh_values *out, sh_error *err);

sh_status sh_worker_destroy_stage(sh_worker *w, uint32_t id, int64_t timeout_ms, sh_error *err);

bool sh_worker_alive(const sh_worker *w);
int sh_worker_pid(const sh_worker *w);

/* Asks the worker to run fini() and exit, waits a short grace period, then kills it; always reaps. */
void sh_worker_stop(sh_worker *w);

/* The child side: serves requests on `fd` until told to stop. Never returns. */
_Noreturn void sh_worker_child_main(int fd, const sh_descriptor *d, const sh_value *config);

#endif
