/* The runtime: what outlives one pipeline run. The zygote, the host configuration, the registry, the instance
 * cache and the metrics. `stagehost run` makes one per run; `stagehost serve` keeps one warm across runs. */
#ifndef SH_RUNTIME_H
#define SH_RUNTIME_H

#include "config/hostconfig.h"
#include "util/env.h"
#include "runtime/metrics.h"
#include "config/grants.h"
#include "runtime/pool.h"
#include "registry/quarantine.h"
#include "sandbox/sandbox.h"
#include "registry/registry.h"
#include "worker/zygote.h"

#include <pthread.h>

typedef struct sh_runtime {
    /* Guards what calls on any thread record: the registry entries' status and health counts, and the
     * quarantine. The pool and the metrics have locks of their own, taken after this one. */
    pthread_mutex_t lock;
    const sh_env *env;      /* the environment the host started with (borrowed: it outlives the runtime) */
    sh_zygote *zygote;      /* NULL: workers are forked by the host itself */
    sh_hostconfig *config;  /* NULL: no host configuration */
    sh_registry registry;
    sh_pool *pool;
    sh_metrics *metrics;
    sh_sandbox_support sandbox; /* what this kernel offers, probed at start */
    sh_quarantine *quarantine;  /* crash history across runs; NULL when it cannot be kept */
    bool allow_unconfined;      /* run isolated plugins even when seccomp or Landlock is missing */
    bool deterministic;         /* --deterministic: the engine copies it into each sh_invocation */
    char **grant_plugins;       /* --grant PLUGIN:PERMISSION, by plugin */
    sh_permissions *grants;
    size_t grant_count;
} sh_runtime;

/* Starts the zygote first (when `zygote` is set: do it before anything grows the host), then reads the host
 * configuration at `config_path` (NULL: $STAGEHOST_CONFIG, if set), discovers plugins, and creates the cache.
 * Everything the environment says comes from `env` (captured once by the caller, see util/env.h), which must
 * outlive the runtime; it also sets where calls make their temporary directories (sh_call_set_tmp_base). */
sh_status sh_runtime_start(sh_runtime *rt, const sh_env *env, bool zygote, const char *config_path,
                           const char *const *plugin_dirs, size_t plugin_dir_count, sh_error *err);

/* Why `e` is quarantined, with how to clear it; `last` is the last crash's message. */
void sh_runtime_quarantine_reason(const sh_runtime *rt, const sh_registry_entry *e, const char *last, char *out,
                                  size_t len);

/* Records how a call of plugin `e` ended, for the quarantine (consecutive crashes, across runs) and the
 * degraded status (error rate). Logs, and marks the registry entry, when the plugin changes status. */
void sh_runtime_record_call(sh_runtime *rt, const sh_registry_entry *e, sh_status outcome, const char *message);

/* Records a health check of plugin `e`: one failure makes it degraded, SH_HEALTH_FAILURES in a row unavailable
 * (its instances are unloaded); a success makes a plugin degraded by its health available again. */
#define SH_HEALTH_FAILURES 3
void sh_runtime_record_health(sh_runtime *rt, const sh_registry_entry *e, bool ok, const char *message);

/* Checks the health of every loaded plugin (serve mode calls it periodically). */
void sh_runtime_check_health(sh_runtime *rt);

/* Adds a command-line grant "PLUGIN:PERMISSION" (see config/grants.h). SH_S_CONFIG when malformed. */
sh_status sh_runtime_grant(sh_runtime *rt, const char *spec, sh_error *err);

/* Unloads every plugin (fini, workers reaped), stops the zygote, frees everything. */
void sh_runtime_stop(sh_runtime *rt);

#endif
