#include "runtime.h"
#include "discovery.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

sh_status sh_runtime_start(sh_runtime *rt, bool zygote, const char *config_path, const char *const *plugin_dirs,
                           size_t plugin_dir_count, sh_error *err)
{
    memset(rt, 0, sizeof *rt);
    sh_registry_init(&rt->registry);
    sh_status rc = SH_S_OK;
    if (zygote)
        rc = sh_zygote_start(&rt->zygote, err);
    if (!config_path) {
        const char *env = getenv("STAGEHOST_CONFIG");
        config_path = env && *env ? env : NULL;
    }
    if (rc == SH_S_OK && config_path)
        rc = sh_hostconfig_load(config_path, &rt->config, err);
    if (rc == SH_S_OK)
        rc = sh_discover(&rt->registry, plugin_dirs, plugin_dir_count, rt->config ? &rt->config->plugin_path : NULL,
                         err);
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
    sh_hostconfig_free(rt->config);
    sh_registry_free(&rt->registry);
    memset(rt, 0, sizeof *rt);
}

sh_isolation sh_runtime_isolation(const sh_runtime *rt, const sh_descriptor *d, sh_isolation stage_iso)
{
    if (stage_iso != SH_ISOLATION_DEFAULT)
        return stage_iso;
    const sh_plugin_settings *ps = sh_hostconfig_plugin(rt->config, d->name);
    if (ps && ps->isolation != SH_ISOLATION_DEFAULT)
        return ps->isolation;
    return d->isolation != SH_ISOLATION_DEFAULT ? d->isolation : SH_ISOLATION_PROCESS;
}

static int64_t pick(int64_t a, int64_t b, int64_t c) { return a ? a : b ? b : c; }

void sh_runtime_limits(const sh_runtime *rt, const sh_descriptor *d, sh_limits *out)
{
    const sh_plugin_settings *ps = sh_hostconfig_plugin(rt->config, d->name);
    sh_limits none = {0};
    const sh_limits *p = ps ? &ps->limits : &none, *h = rt->config ? &rt->config->limits : &none,
                    *l = &d->limits;
    out->memory_mb = pick(p->memory_mb, l->memory_mb, h->memory_mb);
    out->cpu_seconds = pick(p->cpu_seconds, l->cpu_seconds, h->cpu_seconds);
    out->timeout_ms = pick(p->timeout_ms, l->timeout_ms, pick(h->timeout_ms, SH_DEFAULT_TIMEOUT_MS, 0));
    out->open_files = pick(p->open_files, l->open_files, h->open_files);
    out->processes = pick(p->processes, l->processes, h->processes);
    out->file_size_mb = pick(p->file_size_mb, l->file_size_mb, h->file_size_mb);
    out->output_mb = pick(p->output_mb, l->output_mb, h->output_mb);
}

const sh_value *sh_runtime_plugin_config(const sh_runtime *rt, const char *name)
{
    const sh_plugin_settings *ps = sh_hostconfig_plugin(rt->config, name);
    return ps ? ps->config : NULL;
}
