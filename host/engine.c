#include "engine.h"
#include "builtins.h"
#include "instance.h"
#include "log.h"
#include "resolve.h"
#include "wire.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static bool contracts_match(const char *upstream_output, const char *input)
{
    return strcmp(upstream_output, "any") == 0 || strcmp(input, "any") == 0 || strcmp(upstream_output, input) == 0;
}

static void append_line(char *buf, size_t size, const char *line)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? "\n" : "", line);
}

/* Resolves all stages into `targets` (p->count entries), collecting every error. */
static sh_status resolve_all(const sh_pipeline *p, const sh_registry *reg, const sh_value *pins, sh_target *targets,
                             sh_error *err)
{
    char all[SH_ERROR_MESSAGE_MAX] = "";
    sh_status worst = SH_S_OK;
    for (size_t i = 0; i < p->count; i++) {
        const sh_pipeline_stage *st = &p->stages[i];
        sh_error e;
        char line[SH_ERROR_MESSAGE_MAX];
        if (sh_resolve_pinned(reg, pins, st->type, &targets[i], &e) != SH_S_OK) {
            snprintf(line, sizeof line, "%s:%d: stage '%s': %s", p->path, st->line, st->name, e.message);
            append_line(all, sizeof all, line);
            worst = SH_S_RESOLVE;
            targets[i].action = NULL;
            continue;
        }
        sh_log(SH_LOG_INFO, "stage '%s' (type '%s') resolved by %s", st->name, st->type, targets[i].how);
        if (targets[i].passed_over)
            sh_log(SH_LOG_WARN, "stage '%s': plugin '%s' provides '%s' but is %s (%s); using the built-in", st->name,
                   targets[i].passed_over->desc->name, st->type,
                   sh_plugin_status_name(targets[i].passed_over->status), targets[i].passed_over->reason);
    }
    for (size_t i = 1; i < p->count; i++) {
        const sh_target *up = &targets[i - 1], *t = &targets[i];
        if (!up->action || !t->action || contracts_match(up->output, t->input))
            continue;
        char line[SH_ERROR_MESSAGE_MAX];
        snprintf(line, sizeof line,
                 "%s:%d: stage '%s': contract mismatch: it takes '%s' but the stage before it, '%s', emits '%s'; "
                 "put a stage between them that turns '%s' into '%s'",
                 p->path, p->stages[i].line, p->stages[i].name, t->input, p->stages[i - 1].name, up->output,
                 up->output, t->input);
        append_line(all, sizeof all, line);
        worst = SH_S_CONFIG;
    }
    if (worst != SH_S_OK)
        return sh_error_set(err, worst, "%s", all);
    return SH_S_OK;
}

sh_status sh_engine_validate(const sh_pipeline *p, const sh_registry *reg, const sh_value *pins, sh_error *err)
{
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!targets)
        return sh_error_set(err, SH_S_NOMEM, "out of memory validating %s", p->path);
    sh_status rc = resolve_all(p, reg, pins, targets, err);
    free(targets);
    return rc;
}

static sh_outcome outcome_of(sh_status st)
{
    switch (st) {
    case SH_S_OK:
        return SH_OUTCOME_OK;
    case SH_S_TIMEOUT:
        return SH_OUTCOME_TIMEOUT;
    case SH_S_CRASH:
        return SH_OUTCOME_CRASH;
    case SH_S_PROTOCOL:
        return SH_OUTCOME_PROTOCOL;
    default:
        return SH_OUTCOME_FAILED;
    }
}

/* Runs one stage on `input`, leaving its output in `output`. */
static sh_status run_stage(sh_runtime *rt, const sh_pipeline *p, size_t index, const sh_target *t,
                           const char *execution_id, const sh_values *input, sh_values *output,
                           sh_run_summary *summary, sh_error *err)
{
    const sh_pipeline_stage *st = &p->stages[index];
    const sh_descriptor *d = t->plugin ? t->plugin->desc : NULL;
    sh_isolation iso = d ? sh_runtime_isolation(rt, d, st->isolation) : SH_ISOLATION_NONE;
    sh_limits limits = {0};
    if (d)
        sh_runtime_limits(rt, d, &limits);
    char task_id[64];
    snprintf(task_id, sizeof task_id, "%s-%zu", execution_id, index + 1);
    sh_invocation inv = {.execution_id = execution_id,
                         .task_id = task_id,
                         .pipeline = p->name,
                         .stage = st->name,
                         .plugin = d ? d->name : SH_BUILTIN_PLUGIN_NAME,
                         .base_dir = p->dir,
                         .attempt = 1};
    /* A warm instance was checked (grants, confinement) when it was loaded: calls on it need no new decision. */
    sh_status rc = SH_S_OK;
    bool reused = true;
    sh_instance *in = sh_pool_take_warm(rt->pool, d, iso);
    if (!in) {
        sh_sandbox_policy policy = {0};
        rc = d ? sh_runtime_policy(rt, d, iso, &policy, err) : SH_S_OK;
        if (rc == SH_S_OK)
            rc = sh_pool_acquire(rt->pool, d, iso, &limits, d ? sh_runtime_plugin_config(rt, d->name) : NULL, &policy,
                                 &in, &reused, err);
        if (rc != SH_S_OK)
            return rc;
    }
    if (!reused && sh_instance_pid(in))
        summary->workers_started++;
    if (!reused && d) {
        /* health() right after load: a plugin that cannot do its work is flagged before it is used. */
        sh_error herr;
        sh_status hs = sh_instance_health(in, &herr);
        sh_runtime_record_health(rt, t->plugin, hs == SH_S_OK, hs == SH_S_OK ? NULL : herr.message);
    }
    int64_t start = sh_monotonic_ns();
    sh_call_usage usage;
    rc = sh_instance_call(in, &inv, t->action, st->config, st->timeout_ms, input, output, &usage, err);
    sh_invocation_metrics m = {.plugin = inv.plugin,
                               .stage = st->name,
                               .wall_ns = sh_monotonic_ns() - start,
                               .cpu_user_us = usage.user_us,
                               .cpu_sys_us = usage.sys_us,
                               .peak_rss_kb = usage.maxrss_kb,
                               .outcome = outcome_of(rc)};
    sh_metrics_record(rt->metrics, &m);
    sh_pool_release(rt->pool, in);
    sh_runtime_record_call(rt, t->plugin, rc, rc == SH_S_OK ? NULL : err->message);
    return rc;
}

static void new_execution_id(char out[33])
{
    uint8_t raw[16] = {0};
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* Without kernel randomness, time and pid still make the id unique enough for a log. */
        int64_t t = sh_monotonic_ns();
        memcpy(raw, &t, sizeof t);
        pid_t pid = getpid();
        memcpy(raw + 8, &pid, sizeof pid);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

sh_status sh_engine_run(const sh_pipeline *p, sh_runtime *rt, sh_run_summary *summary, sh_error *err)
{
    memset(summary, 0, sizeof *summary);
    new_execution_id(summary->execution_id);
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!targets)
        return sh_error_set(err, SH_S_NOMEM, "out of memory running %s", p->path);
    sh_status rc = resolve_all(p, &rt->registry, rt->config ? rt->config->pins : NULL, targets, err);
    if (rc != SH_S_OK) {
        free(targets);
        return rc;
    }
    sh_log(SH_LOG_INFO, "running pipeline '%s' (%zu stages), execution %s", p->name, p->count,
           summary->execution_id);
    sh_values batch = {0}, next = {0};
    size_t i;
    for (i = 0; i < p->count && rc == SH_S_OK; i++) {
        rc = run_stage(rt, p, i, &targets[i], summary->execution_id, &batch, &next, summary, err);
        if (rc != SH_S_OK)
            break;
        sh_log(SH_LOG_INFO, "stage '%s' done: %zu items in, %zu out", p->stages[i].name, batch.len, next.len);
        sh_values_clear(&batch);
        batch = next;
        next = (sh_values){0};
        summary->stages_run++;
    }
    if (rc != SH_S_OK) {
        const sh_pipeline_stage *st = &p->stages[i];
        char skipped[512] = "";
        for (size_t k = i + 1; k < p->count; k++) {
            size_t used = strlen(skipped);
            snprintf(skipped + used, sizeof skipped - used, "%s'%s'", used ? ", " : "", p->stages[k].name);
        }
        char plugin[300];
        if (targets[i].plugin)
            snprintf(plugin, sizeof plugin, "plugin '%s' %s, action '%s'", targets[i].plugin->desc->name,
                     targets[i].plugin->desc->version, targets[i].action);
        else
            snprintf(plugin, sizeof plugin, "built-in '%s'", targets[i].action);
        sh_error_prefix(err, "%s:%d: stage '%s' (%s) failed on attempt 1", p->path, st->line, st->name, plugin);
        if (skipped[0]) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used, "\nstages not run: %s", skipped);
        }
        if (rc == SH_S_LOAD || rc == SH_S_NOMEM || rc == SH_S_IO)
            err->status = rc = SH_S_STAGE;
    }
    summary->items_out = rc == SH_S_OK ? batch.len : 0;
    sh_values_clear(&batch);
    sh_values_clear(&next);
    free(targets);
    return rc;
}
