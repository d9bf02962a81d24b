/* The instance cache: loaded plugins kept warm across tasks (and, in serve mode, across runs), keyed by plugin
 * and isolation; idle ones expire after a TTL, and the least recently used worker goes when too many live.
 * A plugin never used is never loaded. */
#ifndef SH_POOL_H
#define SH_POOL_H

#include "runtime/instance.h"
#include "runtime/metrics.h"
#include "config/hostconfig.h"

typedef struct sh_pool sh_pool;

/* `zygote` and `metrics` may be NULL and are borrowed for the pool's life. */
sh_pool *sh_pool_new(const sh_pool_config *cfg, sh_zygote *zygote, sh_metrics *metrics);
void sh_pool_free(sh_pool *p); /* unloads everything */

/* The warm instance of `d` (NULL: the built-ins) with isolation `iso`, or a new one. Expired instances are
 * unloaded first. */
sh_status sh_pool_acquire(sh_pool *p, const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                          const sh_value *config, const sh_sandbox_policy *policy, sh_instance **out, bool *reused,
                          sh_error *err);

/* The warm instance of `d` with isolation `iso`, marked in use, or NULL (nothing is loaded). */
sh_instance *sh_pool_take_warm(sh_pool *p, const sh_descriptor *d, sh_isolation iso);

/* Hands an instance back after a call; a dead one is unloaded at once, so the next call gets a fresh worker. */
void sh_pool_release(sh_pool *p, sh_instance *in);

/* Unloads instances idle for longer than the TTL; returns how many. */
size_t sh_pool_expire(sh_pool *p);

/* Unloads every instance of plugin `name`; returns how many. */
size_t sh_pool_unload(sh_pool *p, const char *name);

/* Unloads everything. */
void sh_pool_clear(sh_pool *p);

size_t sh_pool_live_workers(const sh_pool *p);

/* Every function is safe to call from any thread: the pool has its own lock. The walks below call `fn` with it
 * held, so `fn` must not call the pool. */

/* Calls fn for each cached instance that is not in use, with its plugin's name. */
void sh_pool_each_instance(sh_pool *p, void (*fn)(void *ctx, const char *plugin, sh_instance *in), void *ctx);

/* Calls fn for each cached instance: plugin name ("stagehost/builtin" for the built-ins), isolation, pid. */
void sh_pool_each(const sh_pool *p, void (*fn)(void *ctx, const char *plugin, sh_isolation iso, int pid,
                                                int64_t idle_ms),
                  void *ctx);

#endif
