#include "runtime/runtime.h"
#include "registry/discovery.h"
#include "plugin/call.h"
#include "util/log.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sh_runtime_quarantine_reason(const sh_runtime *rt, const sh_registry_entry *e, const char *last, char *out,
                                  size_t len)
{
    snprintf(out, len,
             "quarantined: its worker crashed %d times in a row (last: %s); this clears when the library changes, or "
             "run 'stagehost plugins reset %s'",
             sh_quarantine_threshold(rt->quarantine), last && *last ? last : "unknown", e->desc->name);
}

/* Plugins that crashed too often in earlier runs stay out until their library changes or they are reset. */
static void mark_quarantined(sh_runtime *rt)
{
    for (size_t i = 0; rt->quarantine && i < rt->registry.len; i++) {
        sh_registry_entry *e = &rt->registry.entries[i];
        const char *last = NULL;
        if (e->status != SH_PLUGIN_AVAILABLE || !sh_quarantine_is_quarantined(rt->quarantine, e->desc->library_path,
                                                                                &last))
            continue;
        char why[2048];
        sh_runtime_quarantine_reason(rt, e, last, why, sizeof why);
        sh_registry_set_status(e, SH_PLUGIN_QUARANTINED, why);
    }
}

sh_status sh_runtime_start(sh_runtime *rt, const sh_env *env, bool zygote, const char *config_path,
                           const char *const *plugin_dirs, size_t plugin_dir_count, sh_error *err)
{
    memset(rt, 0, sizeof *rt);
    pthread_mutex_init(&rt->lock, NULL);
    rt->env = env;
    sh_registry_init(&rt->registry);
    sh_call_set_tmp_base(env->tmpdir);
    sh_status rc = SH_S_OK;
    if (zygote)
        rc = sh_zygote_start(&rt->zygote, err);
    if (!config_path)
        config_path = env->config;
    if (rc == SH_S_OK && config_path)
        rc = sh_hostconfig_load(config_path, &rt->config, err);
    if (rc == SH_S_OK)
        rc = sh_discover(&rt->registry, env, plugin_dirs, plugin_dir_count,
                         rt->config ? &rt->config->plugin_path : NULL, err);
    if (rc == SH_S_OK) {
        sh_sandbox_probe(rt->config ? rt->config->sandbox_user : NULL, env->pretend_missing, &rt->sandbox);
        rt->quarantine = sh_quarantine_open(env->state_dir, rt->config ? rt->config->quarantine_after : 0);
        mark_quarantined(rt);
        sh_registry_check_dependencies(&rt->registry);
    }
    if (rc == SH_S_OK && !(rt->metrics = sh_metrics_new()))
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory");
    sh_pool_config pc = rt->config ? rt->config->workers : (sh_pool_config){0};
    if (rc == SH_S_OK && !(rt->pool = sh_pool_new(&pc, rt->zygote, rt->metrics)))
        rc = sh_error_set(err, SH_S_NOMEM, "out of memory");
    if (rc != SH_S_OK)
        sh_runtime_stop(rt);
    return rc;
}

void sh_runtime_stop(sh_runtime *rt)
{
    /* Workers first, so each runs fini() and is reaped through the zygote before the zygote goes. */
    sh_pool_free(rt->pool);
    sh_zygote_stop(rt->zygote);
    sh_metrics_free(rt->metrics);
    sh_quarantine_free(rt->quarantine);
    sh_hostconfig_free(rt->config);
    sh_registry_free(&rt->registry);
    for (size_t i = 0; i < rt->grant_count; i++) {
        free(rt->grant_plugins[i]);
        sh_grants_free(&rt->grants[i]);
    }
    free(rt->grant_plugins);
    free(rt->grants);
    pthread_mutex_destroy(&rt->lock);
    memset(rt, 0, sizeof *rt);
}

sh_status sh_runtime_grant(sh_runtime *rt, const char *spec, sh_error *err)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec)
        return sh_error_set(err, SH_S_CONFIG, "--grant %s: expected PLUGIN:PERMISSION, e.g. core/http:network", spec);
    size_t n = (size_t)(colon - spec);
    size_t i = 0;
    while (i < rt->grant_count && (strlen(rt->grant_plugins[i]) != n || strncmp(rt->grant_plugins[i], spec, n)))
        i++;
    if (i == rt->grant_count) {
        char **names = realloc(rt->grant_plugins, (i + 1) * sizeof *names);
        if (names)
            rt->grant_plugins = names;
        sh_permissions *g = names ? realloc(rt->grants, (i + 1) * sizeof *g) : NULL;
        if (!g || !(rt->grant_plugins[i] = strndup(spec, n)))
            return sh_error_set(err, SH_S_NOMEM, "out of memory");
        rt->grants = g;
        memset(&rt->grants[i], 0, sizeof rt->grants[i]);
        rt->grant_count++;
    }
    sh_status rc = sh_grants_add(&rt->grants[i], colon + 1, err);
    return rc == SH_S_OK ? rc : sh_error_prefix(err, "--grant %s", spec);
}

/* The registry's own entry for `e`, which the runtime may change. */
static sh_registry_entry *mutable_entry(sh_runtime *rt, const sh_registry_entry *e)
{
    for (size_t i = 0; i < rt->registry.len; i++)
        if (&rt->registry.entries[i] == e)
            return &rt->registry.entries[i];
    return NULL;
}

/* A plugin is degraded once at least this many calls were made and more than half failed. */
#define DEGRADED_MIN_CALLS 10

static void record_call_locked(sh_runtime *rt, const sh_registry_entry *ce, sh_status outcome, const char *message)
{
    sh_registry_entry *e = ce ? mutable_entry(rt, ce) : NULL;
    if (!e)
        return;
    if (outcome == SH_S_CRASH || outcome == SH_S_OK) {
        bool now = sh_quarantine_record(rt->quarantine, e->desc->library_path, outcome == SH_S_CRASH, message);
        if (now) {
            char why[2048];
            sh_runtime_quarantine_reason(rt, e, message, why, sizeof why);
            sh_log(SH_LOG_WARN, "plugin '%s' is %s", e->desc->name, why);
            sh_registry_set_status(e, SH_PLUGIN_QUARANTINED, why);
            sh_pool_unload(rt->pool, e->desc->name);
            return;
        }
    }
    uint64_t calls = 0, failures = 0;
    if (e->status == SH_PLUGIN_AVAILABLE && sh_metrics_plugin_counts(rt->metrics, e->desc->name, &calls, &failures) &&
        calls >= DEGRADED_MIN_CALLS && failures * 2 > calls) {
        char why[256];
        snprintf(why, sizeof why, "%llu of its %llu calls failed", (unsigned long long)failures,
                 (unsigned long long)calls);
        sh_log(SH_LOG_WARN, "plugin '%s' is degraded: %s", e->desc->name, why);
        sh_registry_set_status(e, SH_PLUGIN_DEGRADED, why);
    }
}

void sh_runtime_record_call(sh_runtime *rt, const sh_registry_entry *ce, sh_status outcome, const char *message)
{
    pthread_mutex_lock(&rt->lock);
    record_call_locked(rt, ce, outcome, message);
    pthread_mutex_unlock(&rt->lock);
}

static void record_health_locked(sh_runtime *rt, const sh_registry_entry *ce, bool ok, const char *message)
{
    sh_registry_entry *e = ce ? mutable_entry(rt, ce) : NULL;
    if (!e)
        return;
    if (ok) {
        if (e->health_failures && e->status == SH_PLUGIN_DEGRADED) {
            sh_log(SH_LOG_INFO, "plugin '%s' is healthy again", e->desc->name);
            sh_registry_set_status(e, SH_PLUGIN_AVAILABLE, NULL);
        }
        e->health_failures = 0;
        return;
    }
    e->health_failures++;
    char why[2048];
    if (e->health_failures >= SH_HEALTH_FAILURES) {
        snprintf(why, sizeof why, "its health check failed %d times in a row: %s", e->health_failures,
                 message ? message : "");
        sh_log(SH_LOG_WARN, "plugin '%s' is unavailable: %s", e->desc->name, why);
        sh_registry_set_status(e, SH_PLUGIN_UNAVAILABLE, why);
        sh_pool_unload(rt->pool, e->desc->name);
    } else {
        snprintf(why, sizeof why, "its health check failed: %s", message ? message : "");
        sh_log(SH_LOG_WARN, "plugin '%s' is degraded: %s", e->desc->name, why);
        sh_registry_set_status(e, SH_PLUGIN_DEGRADED, why);
    }
}

void sh_runtime_record_health(sh_runtime *rt, const sh_registry_entry *ce, bool ok, const char *message)
{
    pthread_mutex_lock(&rt->lock);
    record_health_locked(rt, ce, ok, message);
    pthread_mutex_unlock(&rt->lock);
}

/* Results are gathered first and applied after the walk: applying one may unload instances, which would
 * reorder the pool under the walk. */
typedef struct health_result {
    const sh_registry_entry *entry;
    bool ok;
    char message[512];
} health_result;

typedef struct health_ctx {
    sh_runtime *rt;
    health_result *results;
    size_t len, cap;
} health_ctx;

static void check_one(void *ctx, const char *plugin, sh_instance *in)
{
    health_ctx *h = ctx;
    const sh_registry_entry *e = sh_registry_find_any(&h->rt->registry, plugin);
    if (!e || !e->desc || h->len == h->cap)
        return;
    sh_error err;
    health_result *r = &h->results[h->len++];
    r->entry = e;
    r->ok = sh_instance_health(in, &err) == SH_S_OK;
    snprintf(r->message, sizeof r->message, "%s", r->ok ? "" : err.message);
}

void sh_runtime_check_health(sh_runtime *rt)
{
    health_ctx h = {.rt = rt, .cap = 64};
    h.results = calloc(h.cap, sizeof *h.results);
    if (!h.results)
        return;
    sh_pool_each_instance(rt->pool, check_one, &h);
    for (size_t i = 0; i < h.len; i++)
        sh_runtime_record_health(rt, h.results[i].entry, h.results[i].ok,
                                 h.results[i].ok ? NULL : h.results[i].message);
    free(h.results);
}
