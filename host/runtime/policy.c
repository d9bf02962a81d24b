#include "runtime/policy.h"
#include "config/grants.h"

#include <string.h>

sh_status sh_policy_confine(const sh_sandbox_support *support, bool allow_unconfined, const char *plugin,
                            sh_sandbox_policy *policy, sh_error *err)
{
    policy->landlock = support->landlock_abi > 0;
    policy->seccomp = support->seccomp;
    if ((!policy->landlock || !policy->seccomp) && !allow_unconfined)
        return sh_error_set(err, SH_S_CONFIG,
                            "plugin '%s' must run confined, but %s%s%s %s not available on this system; run "
                            "'stagehost doctor' for details, or pass --allow-unconfined to run it with the "
                            "protections that are",
                            plugin, policy->seccomp ? "" : "seccomp",
                            !policy->seccomp && !policy->landlock ? " and " : "", policy->landlock ? "" : "Landlock",
                            !policy->seccomp && !policy->landlock ? "are" : "is");
    if (support->user_switch) {
        policy->uid = support->uid;
        policy->gid = support->gid;
    }
    /* The worker user's process limit is shared by every worker: a default keeps a fork bomb in one from
     * starving the rest (for the host's own user it would count the user's other processes too). */
    policy->default_processes = support->user_switch ? SH_DEFAULT_WORKER_PROCESSES : 0;
    return SH_S_OK;
}

sh_status sh_runtime_policy(const sh_runtime *rt, const sh_descriptor *d, sh_isolation iso, bool allow_unconfined,
                            sh_sandbox_policy *policy, sh_error *err)
{
    memset(policy, 0, sizeof *policy);
    policy->tmp_base = rt->env->tmpdir;
    /* What the plugin may do is the union of the host configuration's grants and the command line's. */
    sh_permissions all = {0};
    const sh_plugin_settings *ps = sh_hostconfig_plugin(rt->config, d->name);
    sh_status rc = ps ? sh_grants_merge(&all, &ps->grants, err) : SH_S_OK;
    for (size_t i = 0; rc == SH_S_OK && i < rt->grant_count; i++)
        if (strcmp(rt->grant_plugins[i], d->name) == 0)
            rc = sh_grants_merge(&all, &rt->grants[i], err);
    if (rc == SH_S_OK)
        rc = sh_grants_check(d, &all, err);
    sh_grants_free(&all);
    if (rc != SH_S_OK || iso == SH_ISOLATION_NONE)
        return rc;
    return sh_policy_confine(&rt->sandbox, allow_unconfined, d->name, policy, err);
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
