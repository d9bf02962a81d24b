#include "engine.h"
#include "builtins.h"
#include "inproc.h"
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
static sh_status resolve_all(const sh_pipeline *p, const sh_registry *reg, sh_target *targets, sh_error *err)
{
    char all[SH_ERROR_MESSAGE_MAX] = "";
    sh_status worst = SH_S_OK;
    for (size_t i = 0; i < p->count; i++) {
        const sh_pipeline_stage *st = &p->stages[i];
        sh_error e;
        char line[SH_ERROR_MESSAGE_MAX];
        if (sh_resolve(reg, st->type, &targets[i], &e) != SH_S_OK) {
            snprintf(line, sizeof line, "%s:%d: stage '%s': %s", p->path, st->line, st->name, e.message);
            append_line(all, sizeof all, line);
            worst = SH_S_RESOLVE;
            targets[i].action = NULL;
            continue;
        }
        sh_log(SH_LOG_INFO, "stage '%s' (type '%s') resolved by %s", st->name, st->type, targets[i].how);
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

sh_status sh_engine_validate(const sh_pipeline *p, const sh_registry *reg, sh_error *err)
{
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!targets)
        return sh_error_set(err, SH_S_NOMEM, "out of memory validating %s", p->path);
    sh_status rc = resolve_all(p, reg, targets, err);
    free(targets);
    return rc;
}

/* A loaded plugin: in the host (built-ins, isolation "none") or in a worker. */
typedef struct instance {
    const sh_registry_entry *plugin; /* NULL: the built-ins */
    sh_isolation isolation;
    sh_inproc *ip;
    sh_worker *w;
} instance;

typedef struct run {
    const sh_pipeline *p;
    instance *instances;
    size_t count;
    sh_run_summary *summary;
} run;

static sh_isolation effective_isolation(const sh_pipeline_stage *st, const sh_target *t)
{
    if (!t->plugin)
        return SH_ISOLATION_NONE;
    if (st->isolation != SH_ISOLATION_DEFAULT)
        return st->isolation;
    return t->plugin->desc->isolation != SH_ISOLATION_DEFAULT ? t->plugin->desc->isolation : SH_ISOLATION_PROCESS;
}

static int64_t effective_timeout(const sh_pipeline_stage *st, const sh_target *t)
{
    if (st->timeout_ms > 0)
        return st->timeout_ms;
    if (t->plugin && t->plugin->desc->limits.timeout_ms > 0)
        return t->plugin->desc->limits.timeout_ms;
    return SH_DEFAULT_TIMEOUT_MS;
}

static void instance_close(instance *in)
{
    sh_inproc_close(in->ip);
    sh_worker_stop(in->w);
    in->ip = NULL;
    in->w = NULL;
}

/* The cached instance for (plugin, isolation), loading it on first use. "call" isolation is never cached. */
static sh_status get_instance(run *r, const sh_target *t, sh_isolation iso, int64_t timeout, instance **out,
                              sh_error *err)
{
    if (iso != SH_ISOLATION_CALL) {
        for (size_t i = 0; i < r->count; i++) {
            instance *in = &r->instances[i];
            if (in->plugin == t->plugin && in->isolation == iso && (in->ip || in->w)) {
                *out = in;
                return SH_S_OK;
            }
        }
    }
    instance *grown = realloc(r->instances, (r->count + 1) * sizeof *grown);
    if (!grown)
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    r->instances = grown;
    instance *in = &r->instances[r->count];
    *in = (instance){.plugin = t->plugin, .isolation = iso};
    sh_status rc;
    if (!t->plugin) {
        rc = sh_inproc_open_static(sh_builtin_plugin(), &in->ip, err);
    } else if (iso == SH_ISOLATION_NONE) {
        sh_log(SH_LOG_INFO, "loading plugin '%s' in the host process (isolation none)", t->plugin->desc->name);
        rc = sh_inproc_open(t->plugin->desc, NULL, &in->ip, err);
    } else {
        rc = sh_worker_start(t->plugin->desc, NULL, timeout, &in->w, err);
        if (rc == SH_S_OK) {
            r->summary->workers_started++;
            sh_log(SH_LOG_INFO, "plugin '%s' loaded in worker process %d (isolation %s)", t->plugin->desc->name,
                   sh_worker_pid(in->w), sh_isolation_name(iso));
        }
    }
    if (rc != SH_S_OK)
        return rc;
    r->count++;
    *out = in;
    return SH_S_OK;
}

static int collect_emit(void *sink, sh_value *item) { return sh_values_push(sink, item); }

/* Runs one stage on `input`, leaving its output in `output`. */
static sh_status run_stage(run *r, size_t index, const sh_target *t, const sh_values *input, sh_values *output,
                           sh_error *err)
{
    const sh_pipeline_stage *st = &r->p->stages[index];
    sh_isolation iso = effective_isolation(st, t);
    int64_t timeout = effective_timeout(st, t);
    char task_id[64];
    snprintf(task_id, sizeof task_id, "%s-%zu", r->summary->execution_id, index + 1);
    sh_invocation inv = {.execution_id = r->summary->execution_id,
                         .task_id = task_id,
                         .pipeline = r->p->name,
                         .stage = st->name,
                         .plugin = t->plugin ? t->plugin->desc->name : SH_BUILTIN_PLUGIN_NAME,
                         .base_dir = r->p->dir,
                         .attempt = 1};
    instance *in = NULL;
    sh_status rc = get_instance(r, t, iso, timeout, &in, err);
    if (rc != SH_S_OK)
        return rc == SH_S_LOAD ? SH_S_STAGE : rc;
    uint32_t id = 0;
    const sh_value *const *items = (const sh_value *const *)input->items;
    if (in->w) {
        rc = sh_worker_create_stage(in->w, &inv, t->action, st->config, timeout, &id, err);
        if (rc == SH_S_OK)
            rc = sh_worker_process(in->w, id, &inv, items, input->len, timeout, output, err);
        if (rc == SH_S_OK || rc == SH_S_STAGE) {
            sh_error ignored;
            sh_worker_destroy_stage(in->w, id, timeout, &ignored);
        }
    } else {
        rc = sh_inproc_create_stage(in->ip, &inv, t->action, st->config, &id, err);
        if (rc == SH_S_OK) {
            rc = sh_inproc_process(in->ip, id, &inv, items, input->len, collect_emit, output, NULL, NULL, err);
            sh_inproc_destroy_stage(in->ip, id);
        }
    }
    /* A worker that failed for good is not reused; "call" isolation never keeps its worker. */
    if (in->w && (iso == SH_ISOLATION_CALL || !sh_worker_alive(in->w)))
        instance_close(in);
    if (rc != SH_S_OK)
        sh_values_clear(output);
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

sh_status sh_engine_run(const sh_pipeline *p, const sh_registry *reg, sh_run_summary *summary, sh_error *err)
{
    memset(summary, 0, sizeof *summary);
    new_execution_id(summary->execution_id);
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!targets)
        return sh_error_set(err, SH_S_NOMEM, "out of memory running %s", p->path);
    sh_status rc = resolve_all(p, reg, targets, err);
    if (rc != SH_S_OK) {
        free(targets);
        return rc;
    }
    sh_log(SH_LOG_INFO, "running pipeline '%s' (%zu stages), execution %s", p->name, p->count,
           summary->execution_id);
    run r = {.p = p, .summary = summary};
    sh_values batch = {0}, next = {0};
    size_t i;
    for (i = 0; i < p->count && rc == SH_S_OK; i++) {
        rc = run_stage(&r, i, &targets[i], &batch, &next, err);
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
    for (size_t k = 0; k < r.count; k++)
        instance_close(&r.instances[k]);
    free(r.instances);
    free(targets);
    return rc;
}
