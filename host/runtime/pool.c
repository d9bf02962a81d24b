#include "runtime/pool.h"
#include "builtin/builtins.h"
#include "util/log.h"
#include "util/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *plugin;      /* descriptor name, or the built-ins' */
    char *library;     /* the library path: a different library under the same name is another entry */
    sh_isolation iso;
    sh_instance *in;
    int64_t last_used; /* monotonic ns */
    bool busy;
    /* Whether it runs in a worker. A busy instance belongs to the thread calling it (its worker may be reaped
     * meanwhile), so the pool reads this instead of the instance while it is out. */
    bool worker;
} entry;

struct sh_pool {
    sh_pool_config cfg;
    /* The pool's own lock (the lock lives with the data): every public function takes it, the static ones run
     * under it, and sh_pool_acquire lets go of it while an instance loads. */
    pthread_mutex_t lock;
    sh_zygote *zygote;
    sh_metrics *metrics;
    entry *entries;
    size_t len, cap;
};

static void event(sh_pool *p, sh_cache_event ev)
{
    if (p->metrics)
        sh_metrics_cache_event(p->metrics, ev);
}

sh_pool *sh_pool_new(const sh_pool_config *cfg, sh_zygote *zygote, sh_metrics *metrics)
{
    sh_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = *cfg;
    if (p->cfg.ttl_ms <= 0)
        p->cfg.ttl_ms = SH_DEFAULT_WORKER_TTL_MS;
    if (p->cfg.max_workers == 0)
        p->cfg.max_workers = SH_DEFAULT_MAX_WORKERS;
    p->zygote = zygote;
    p->metrics = metrics;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void drop(sh_pool *p, size_t i, const char *why)
{
    entry *e = &p->entries[i];
    if (sh_instance_pid(e->in))
        sh_log(SH_LOG_INFO, "unloading plugin '%s' (worker %d): %s", e->plugin, sh_instance_pid(e->in), why);
    else
        sh_log(SH_LOG_DEBUG, "unloading plugin '%s': %s", e->plugin, why);
    sh_instance_close(e->in);
    free(e->plugin);
    free(e->library);
    p->entries[i] = p->entries[--p->len];
    event(p, SH_CACHE_UNLOAD);
}

static void lock(const sh_pool *p) { pthread_mutex_lock((pthread_mutex_t *)&p->lock); }
static void unlock(const sh_pool *p) { pthread_mutex_unlock((pthread_mutex_t *)&p->lock); }

void sh_pool_each_instance(sh_pool *p, void (*fn)(void *ctx, const char *plugin, sh_instance *in), void *ctx)
{
    lock(p);
    for (size_t i = 0; i < p->len; i++)
        if (!p->entries[i].busy && strcmp(p->entries[i].plugin, SH_BUILTIN_PLUGIN_NAME) != 0)
            fn(ctx, p->entries[i].plugin, p->entries[i].in);
    unlock(p);
}

static size_t live_workers(const sh_pool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->len; i++)
        n += p->entries[i].busy ? p->entries[i].worker : sh_instance_pid(p->entries[i].in) != 0;
    return n;
}

size_t sh_pool_live_workers(const sh_pool *p)
{
    lock(p);
    size_t n = live_workers(p);
    unlock(p);
    return n;
}

static size_t expire(sh_pool *p)
{
    int64_t now = sh_monotonic_ns();
    size_t n = 0;
    for (size_t i = p->len; i-- > 0;) {
        if (!p->entries[i].busy && now - p->entries[i].last_used > p->cfg.ttl_ms * 1000000) {
            drop(p, i, "idle longer than its time to live");
            event(p, SH_CACHE_EVICTION);
            n++;
        }
    }
    return n;
}

/* Makes room for one more worker by unloading the least recently used idle one. */
static void make_room(sh_pool *p)
{
    while (live_workers(p) >= p->cfg.max_workers) {
        size_t victim = p->len;
        for (size_t i = 0; i < p->len; i++) {
            const entry *e = &p->entries[i];
            if (!e->busy && sh_instance_pid(e->in) &&
                (victim == p->len || e->last_used < p->entries[victim].last_used))
                victim = i;
        }
        if (victim == p->len)
            return; /* all busy: the limit is exceeded briefly rather than deadlocking */
        drop(p, victim, "least recently used, and the worker limit was reached");
        event(p, SH_CACHE_EVICTION);
    }
}

size_t sh_pool_expire(sh_pool *p)
{
    lock(p);
    size_t n = expire(p);
    unlock(p);
    return n;
}

static sh_instance *take_warm(sh_pool *p, const sh_descriptor *d, sh_isolation iso)
{
    expire(p);
    const char *name = d ? d->name : SH_BUILTIN_PLUGIN_NAME;
    const char *library = d ? d->library_path : "";
    if (!d)
        iso = SH_ISOLATION_NONE;
    for (size_t i = 0; i < p->len; i++) {
        entry *e = &p->entries[i];
        if (e->busy || e->iso != iso || strcmp(e->plugin, name) != 0 || strcmp(e->library, library) != 0)
            continue;
        if (!sh_instance_alive(e->in)) {
            drop(p, i, "its worker is gone");
            return NULL;
        }
        e->busy = true;
        event(p, SH_CACHE_HIT);
        return e->in;
    }
    return NULL;
}

static sh_status acquire_locked(sh_pool *p, const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                                const sh_value *config, const sh_sandbox_policy *policy, sh_instance **out,
                                bool *reused, sh_error *err);

sh_instance *sh_pool_take_warm(sh_pool *p, const sh_descriptor *d, sh_isolation iso)
{
    lock(p);
    sh_instance *in = take_warm(p, d, iso);
    unlock(p);
    return in;
}

sh_status sh_pool_acquire(sh_pool *p, const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                          const sh_value *config, const sh_sandbox_policy *policy, sh_instance **out, bool *reused,
                          sh_error *err)
{
    lock(p);
    sh_status rc = acquire_locked(p, d, iso, limits, config, policy, out, reused, err);
    unlock(p);
    return rc;
}

static sh_status acquire_locked(sh_pool *p, const sh_descriptor *d, sh_isolation iso, const sh_worker_limits *limits,
                                const sh_value *config, const sh_sandbox_policy *policy, sh_instance **out,
                                bool *reused, sh_error *err)
{
    const char *name = d ? d->name : SH_BUILTIN_PLUGIN_NAME;
    const char *library = d ? d->library_path : "";
    if (!d)
        iso = SH_ISOLATION_NONE;
    if ((*out = take_warm(p, d, iso))) {
        *reused = true;
        return SH_S_OK;
    }
    event(p, SH_CACHE_MISS);
    if (d && iso != SH_ISOLATION_NONE)
        make_room(p);
    entry e = {.plugin = strdup(name), .library = strdup(library), .iso = iso, .busy = true};
    if (!e.plugin || !e.library) {
        free(e.plugin);
        free(e.library);
        return sh_error_set(err, SH_S_NOMEM, "out of memory caching plugin '%s'", name);
    }
    /* Loading takes a fork, a dlopen and the plugin's init(), up to its timeout: other threads using the pool
     * go on meanwhile. The new entry is not in the table yet, and the table may change under us. */
    unlock(p);
    sh_status rc = sh_instance_open(d, iso, limits, config, policy, p->zygote, &e.in, err);
    lock(p);
    if (rc == SH_S_OK && p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        entry *grown = realloc(p->entries, cap * sizeof *grown);
        if (grown) {
            p->entries = grown;
            p->cap = cap;
        } else {
            sh_instance_close(e.in);
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory caching plugin '%s'", name);
        }
    }
    if (rc != SH_S_OK) {
        free(e.plugin);
        free(e.library);
        return rc;
    }
    event(p, SH_CACHE_LOAD);
    e.worker = sh_instance_pid(e.in) != 0;
    if (sh_instance_pid(e.in))
        sh_log(SH_LOG_INFO, "plugin '%s' loaded in worker process %d (isolation %s)", name, sh_instance_pid(e.in),
               sh_isolation_name(iso));
    else if (d)
        sh_log(SH_LOG_INFO, "plugin '%s' loaded in the host process (isolation none)", name);
    e.last_used = sh_monotonic_ns();
    p->entries[p->len++] = e;
    *out = e.in;
    *reused = false;
    return SH_S_OK;
}

void sh_pool_release(sh_pool *p, sh_instance *in)
{
    lock(p);
    for (size_t i = 0; i < p->len; i++) {
        entry *e = &p->entries[i];
        if (e->in != in)
            continue;
        e->busy = false;
        e->last_used = sh_monotonic_ns();
        if (!sh_instance_alive(in))
            drop(p, i, "its worker is gone");
        break;
    }
    unlock(p);
}

size_t sh_pool_unload(sh_pool *p, const char *name)
{
    size_t n = 0;
    lock(p);
    for (size_t i = p->len; i-- > 0;)
        if (strcmp(p->entries[i].plugin, name) == 0 && !p->entries[i].busy) {
            drop(p, i, "unloaded on request");
            n++;
        }
    unlock(p);
    return n;
}

void sh_pool_clear(sh_pool *p)
{
    lock(p);
    while (p->len)
        drop(p, p->len - 1, "shutting down");
    unlock(p);
}

void sh_pool_free(sh_pool *p)
{
    if (!p)
        return;
    sh_pool_clear(p);
    pthread_mutex_destroy(&p->lock);
    free(p->entries);
    free(p);
}

void sh_pool_each(const sh_pool *p, void (*fn)(void *ctx, const char *plugin, sh_isolation iso, int pid,
                                                int64_t idle_ms),
                  void *ctx)
{
    int64_t now = sh_monotonic_ns();
    lock(p);
    for (size_t i = 0; i < p->len; i++)
        fn(ctx, p->entries[i].plugin, p->entries[i].iso, sh_instance_pid(p->entries[i].in),
           (now - p->entries[i].last_used) / 1000000);
    unlock(p);
}
