/* The host configuration file (libconfig; --config FILE or STAGEHOST_CONFIG): extra plugin directories, worker
 * cache settings, default limits, and per-plugin settings (isolation, limits, the section passed to init). */
#ifndef SH_HOSTCONFIG_H
#define SH_HOSTCONFIG_H

#include "registry/descriptor.h"
#include "config/grants.h"
#include "config/hooks_config.h"
#include "value/value.h"

/* The `workers` group: the worker cache (runtime/pool.h). */
#define SH_DEFAULT_WORKER_TTL_MS (5 * 60 * 1000)
#define SH_DEFAULT_MAX_WORKERS 16

typedef struct sh_pool_config {
    int64_t ttl_ms;     /* idle time after which an instance is unloaded; 0: SH_DEFAULT_WORKER_TTL_MS */
    size_t max_workers; /* live worker processes at most; 0: SH_DEFAULT_MAX_WORKERS */
} sh_pool_config;

typedef struct sh_plugin_settings {
    char *name;
    sh_isolation isolation; /* SH_ISOLATION_DEFAULT: the descriptor's */
    sh_limits limits;       /* zeros: the descriptor's */
    sh_value *config;       /* passed to the plugin's init(); an empty map when absent */
    sh_permissions grants;       /* what the plugin may do beyond the defaults */
    int line;
} sh_plugin_settings;

typedef struct sh_hostconfig {
    char *path;
    sh_strlist plugin_path;
    sh_pool_config workers;
    sh_limits limits; /* defaults for what neither descriptor nor plugin settings say */
    char *sandbox_user; /* the account workers run as when the host runs as root; NULL: "nobody" */
    int quarantine_after; /* consecutive crashes that quarantine a plugin; 0: the default */
    int64_t health_interval_ms; /* how often serve checks loaded plugins' health; 0: the default */
    sh_plugin_settings *plugins;
    size_t plugin_count;
    sh_value *pins; /* stage type -> the plugin that provides it, when several could; a map, or NULL */
    sh_middleware_config hooks; /* the `hooks` group: singleton choices, governance, quota (hooks/middleware.h) */
} sh_hostconfig;

/* Errors name PATH:LINE (SH_S_CONFIG). */
sh_status sh_hostconfig_load(const char *path, sh_hostconfig **out, sh_error *err);
void sh_hostconfig_free(sh_hostconfig *c);

/* The settings for plugin `name`, or NULL. `c` may be NULL. */
const sh_plugin_settings *sh_hostconfig_plugin(const sh_hostconfig *c, const char *name);

#endif
