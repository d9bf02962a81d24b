/* A plugin running in the current process: the host itself for isolation "none" and the built-ins, or a worker
 * process serving the host. Holds the loaded library and its stage instances. */
#ifndef SH_INPROC_H
#define SH_INPROC_H

#include "plugin/call.h"
#include "plugin/loader.h"

typedef struct sh_inproc sh_inproc;

/* Loads the descriptor's library (magic, negotiation, metadata) and calls init() with `config`. */
sh_status sh_inproc_open(const sh_descriptor *d, const sh_value *config, sh_inproc **out, sh_error *err);
/* Wraps a plugin compiled into the host (the built-ins); init() is called with an empty configuration. */
sh_status sh_inproc_open_static(const sh_plugin *plugin, sh_inproc **out, sh_error *err);

const sh_plugin *sh_inproc_plugin(const sh_inproc *ip);
/* The ABI version negotiated with the plugin. */
uint32_t sh_inproc_abi(const sh_inproc *ip);

/* Builds a stage of `type`; its id identifies it in later calls. `config` is copied. */
sh_status sh_inproc_create_stage(sh_inproc *ip, const sh_invocation *inv, const char *type,
                                 const sh_value *config, uint32_t *id, sh_error *err);

/* Runs process() of stage `id` on `items`, sending emitted items to `emit`. */
sh_status sh_inproc_process(sh_inproc *ip, uint32_t id, const sh_invocation *inv, const sh_value *const *items,
                            size_t count, sh_emit_fn emit, void *emit_sink, sh_log_fn log, void *log_sink,
                            sh_error *err);

/* Runs finish() of stage `id` (ABI 1.1), once, after its last successful process() or in place of any, sending
 * what it emits to `emit`; nothing for a stage without one. The stage then takes no more batches. */
sh_status sh_inproc_finish(sh_inproc *ip, uint32_t id, const sh_invocation *inv, sh_emit_fn emit, void *emit_sink,
                           sh_log_fn log, void *log_sink, sh_error *err);

/* The hook implementation `symbol` the descriptor declares, resolved when the plugin loaded; NULL when the
 * descriptor declares no such hook symbol. */
void (*sh_inproc_symbol(const sh_inproc *ip, const char *symbol))(void);

void sh_inproc_destroy_stage(sh_inproc *ip, uint32_t id);

/* Calls health() (a plugin without one is healthy). SH_S_STAGE with the plugin's reason when it is not. */
sh_status sh_inproc_health(sh_inproc *ip, sh_error *err);

/* Destroys remaining stages, calls fini() and unloads the library. NULL is allowed. */
void sh_inproc_close(sh_inproc *ip);

#endif
