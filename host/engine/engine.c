#include "engine/engine.h"
#include "builtin/builtins.h"
#include "value/digest.h"
#include "builtin/gate.h"
#include "hooks/hooks.h"
#include "builtin/hook.h"
#include "hooks/stage.h"
#include "runtime/instance.h"
#include "util/log.h"
#include "engine/progress.h"
#include "engine/store.h"
#include "sh_config.h"
#include "util/clock.h"
#include "worker/worker.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef enum stage_state {
    S_WAITING,    /* upstream stages not finished */
    S_READY,      /* may start */
    S_RUNNING,    /* a task of it is under way */
    S_RETRY_WAIT, /* failed; the next attempt starts at ready_at */
    S_GATE_WAIT,  /* a gate whose condition does not hold yet; it polls again at ready_at */
    S_DONE,
    S_FAILED,
    S_SKIPPED
} stage_state;

/* One plugin call: a stage's attempt, or one upstream stage run again for a gate. */
typedef struct call {
    size_t stage; /* whose configuration and plugin */
    uint32_t attempt;
    sh_values input, output;
    sh_status status;
    sh_error err;
    sh_call_usage usage;
    int64_t started_ns, ended_ns; /* CLOCK_MONOTONIC */
    int64_t wall_started_ns;
    bool started_worker;
    sh_log_record *logs;
    size_t log_len, log_cap;
} call;

/* What runs at once: one call, or for a gate poll one call per upstream stage, in order. */
typedef struct task {
    struct engine *e;
    size_t owner;
    bool gate_poll;
    call *calls;
    size_t count;
    bool threaded;
    bool done; /* under e->lock */
    pthread_t thread;
} task;

typedef struct stage_run {
    stage_state state;
    sh_target target;
    const sh_descriptor *d; /* NULL: built-in */
    sh_isolation iso;
    const char *status_word; /* for the report: succeeded, failed, skipped, cached, reused */
    sh_values output;
    size_t items_in;
    uint32_t attempts;     /* in this process */
    uint32_t attempt_base; /* attempts recorded by earlier runs of a resumed run */
    int64_t first_start_ns, end_ns, wall_started_ns;
    int64_t ready_at_ns;   /* S_RETRY_WAIT, S_GATE_WAIT */
    int64_t gate_deadline_ns;
    char gate_detail[512];
    sh_gate gate;
    bool is_gate;
    sh_hook_stage hook;
    bool is_hook;
    bool use_cache;
    char fingerprint[SH_DIGEST_HEX];
    char cache_key[SH_DIGEST_HEX];
    char source[300];
    char *error;
    task *running;
    bool unrecorded; /* the run store refused its last record: tried again at the end */
} stage_run;

typedef struct engine {
    sh_pipeline *p;
    sh_runtime *rt;
    sh_runstore *store;
    const sh_run_options *opts;
    sh_hooks **hooks;  /* the caller's table (opts->hooks) or own_hooks */
    sh_hooks *own_hooks;
    char run_id[65];
    char execution_id[65]; /* what plugins see: the run id, or a fixed one under --deterministic */
    stage_run *s;
    size_t *order;
    /* Guards the runtime (pool, zygote requests, metrics, plugin records) and every task's `done`. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t threads, jobs;
    bool stop;                /* a stage failed the run: start nothing new */
    size_t failed_stage;      /* the first stage that failed the run; p->count: none */
    sh_error failure;         /* its error */
    size_t workers_started;
    sh_progress *progress;
    size_t store_failures;
} engine;

/* ---- small helpers ------------------------------------------------------------------------------------------ */

static const char *plugin_name(const stage_run *sr) { return sr->d ? sr->d->name : SH_BUILTIN_PLUGIN_NAME; }
static const char *plugin_version(const stage_run *sr) { return sr->d ? sr->d->version : SH_VERSION; }

static int64_t now_ns(void) { return sh_monotonic_ns(); }

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

static void new_run_id(char out[65])
{
    uint8_t raw[16] = {0};
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        /* Without kernel randomness, time and pid still make the id unique enough for a store. */
        int64_t t = sh_wall_ns();
        memcpy(raw, &t, sizeof t);
        pid_t pid = getpid();
        memcpy(raw + 8, &pid, sizeof pid);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
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

static const char *attempt_word(sh_status st)
{
    switch (st) {
    case SH_S_OK:
        return "succeeded";
    case SH_S_TIMEOUT:
        return "timeout";
    case SH_S_CRASH:
        return "crashed";
    case SH_S_PROTOCOL:
        return "protocol";
    default:
        return "failed";
    }
}

/* Failures worth another attempt: the stage itself failed, its worker died, timed out or broke the protocol.
 * A plugin that cannot be loaded or is refused will be refused again. */
static bool transient(sh_status st)
{
    return st == SH_S_STAGE || st == SH_S_CRASH || st == SH_S_TIMEOUT || st == SH_S_PROTOCOL || st == SH_S_IO;
}

static bool values_append_copies(sh_values *to, const sh_values *from)
{
    for (size_t i = 0; i < from->len; i++) {
        sh_value *c = sh_value_copy(from->items[i]);
        if (!c || sh_values_push(to, c) != SH_OK)
            return false;
    }
    return true;
}

/* The concatenated output of the stages `index` depends on, in declared order. */
static bool stage_input(const engine *e, size_t index, sh_values *out)
{
    const sh_pipeline_stage *st = &e->p->stages[index];
    for (size_t k = 0; k < st->dep_count; k++)
        if (!values_append_copies(out, &e->s[e->p->deps[index][k]].output))
            return false;
    return true;
}

static void log_tap(void *ctx, sh_log_level level, const char *message)
{
    call *c = ctx;
    if (c->log_len == c->log_cap) {
        size_t cap = c->log_cap ? c->log_cap * 2 : 8;
        sh_log_record *grown = realloc(c->logs, cap * sizeof *grown);
        if (!grown)
            return; /* the line still went to stderr */
        c->logs = grown;
        c->log_cap = cap;
    }
    char *copy = strdup(message);
    if (!copy)
        return;
    c->logs[c->log_len++] = (sh_log_record){.ts_ns = sh_wall_ns(), .level = (int)level, .message = copy};
}

static void call_clear(call *c)
{
    sh_values_clear(&c->input);
    sh_values_clear(&c->output);
    for (size_t i = 0; i < c->log_len; i++)
        free(c->logs[i].message);
    free(c->logs);
    c->logs = NULL;
    c->log_len = c->log_cap = 0;
}

static void task_free(task *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->count; i++)
        call_clear(&t->calls[i]);
    free(t->calls);
    free(t);
}

/* ---- running one call (on any thread) ----------------------------------------------------------------------- */

static void run_call(engine *e, call *c)
{
    const sh_pipeline *p = e->p;
    const sh_pipeline_stage *st = &p->stages[c->stage];
    stage_run *sr = &e->s[c->stage];
    const sh_descriptor *d = sr->d;
    sh_runtime *rt = e->rt;
    char task_id[160];
    snprintf(task_id, sizeof task_id, "%s-%zu.%u", e->execution_id, c->stage + 1, c->attempt);
    sh_invocation inv = {.execution_id = e->execution_id,
                         .task_id = task_id,
                         .pipeline = p->name,
                         .stage = st->name,
                         .plugin = plugin_name(sr),
                         .base_dir = p->dir,
                         .attempt = c->attempt,
                         .deterministic = rt->deterministic,
                         .seed = SH_DETERMINISTIC_SEED,
                         .log_tap = log_tap,
                         .log_tap_ctx = c};
    sh_limits limits = {0};
    bool reused = true;
    sh_instance *in = NULL;
    pthread_mutex_lock(&e->lock);
    if (d)
        sh_runtime_limits(rt, d, &limits);
    /* A warm instance was checked (grants, confinement) when it was loaded: calls on it need no new decision. */
    in = sh_pool_take_warm(rt->pool, d, sr->iso);
    c->status = SH_S_OK;
    if (!in) {
        sh_sandbox_policy policy = {0};
        c->status = d ? sh_runtime_policy(rt, d, sr->iso, &policy, &c->err) : SH_S_OK;
        if (c->status == SH_S_OK)
            c->status = sh_pool_acquire(rt->pool, d, sr->iso, &limits, d ? sh_runtime_plugin_config(rt, d->name) : NULL,
                                        &policy, &in, &reused, &c->err);
    }
    if (c->status == SH_S_OK && !reused && sh_instance_pid(in))
        c->started_worker = true;
    pthread_mutex_unlock(&e->lock);
    c->started_ns = now_ns();
    c->wall_started_ns = sh_wall_ns();
    if (c->status != SH_S_OK) {
        c->ended_ns = c->started_ns;
        return;
    }
    if (!reused && d) {
        /* health() right after load: a plugin that cannot do its work is flagged before it is used. */
        sh_error herr;
        sh_status hs = sh_instance_health(in, &herr);
        pthread_mutex_lock(&e->lock);
        sh_runtime_record_health(rt, sr->target.plugin, hs == SH_S_OK, hs == SH_S_OK ? NULL : herr.message);
        pthread_mutex_unlock(&e->lock);
    }
    c->status = sh_instance_call(in, &inv, sr->target.action, st->config, st->timeout_ms, &c->input, &c->output,
                                 &c->usage, &c->err);
    c->ended_ns = now_ns();
    sh_invocation_metrics m = {.plugin = inv.plugin,
                               .stage = st->name,
                               .wall_ns = c->ended_ns - c->started_ns,
                               .cpu_user_us = c->usage.user_us,
                               .cpu_sys_us = c->usage.sys_us,
                               .peak_rss_kb = c->usage.maxrss_kb,
                               .outcome = outcome_of(c->status)};
    pthread_mutex_lock(&e->lock);
    sh_metrics_record(rt->metrics, &m);
    sh_pool_release(rt->pool, in);
    sh_runtime_record_call(rt, sr->target.plugin, c->status, c->status == SH_S_OK ? NULL : c->err.message);
    pthread_mutex_unlock(&e->lock);
}

static void run_task(task *t)
{
    for (size_t i = 0; i < t->count; i++)
        run_call(t->e, &t->calls[i]);
}

static void *task_thread(void *arg)
{
    task *t = arg;
    run_task(t);
    pthread_mutex_lock(&t->e->lock);
    t->done = true;
    pthread_cond_signal(&t->e->cond);
    pthread_mutex_unlock(&t->e->lock);
    return NULL;
}

/* ---- the store ---------------------------------------------------------------------------------------------- */

static void store_warn(const sh_error *err)
{
    /* The run goes on: losing the record of a stage is better than failing work that succeeded. What could not
     * be recorded is tried again at the end and, failing that, named in the report. */
    sh_log(SH_LOG_WARN, "%s", err->message);
}

static void put_stage(engine *e, size_t i, const char *status, const call *c, bool with_output)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_stage_record r = {.run_id = e->run_id,
                         .name = st->name,
                         .position = (int)i,
                         .type = st->type,
                         .source = sr->source,
                         .fingerprint = sr->fingerprint,
                         .status = status,
                         .attempts = sr->attempt_base + sr->attempts,
                         .items_in = (int64_t)sr->items_in,
                         .items_out = with_output ? (int64_t)sr->output.len : -1,
                         .started_ns = sr->wall_started_ns,
                         .finished_ns = sr->state >= S_DONE ? sh_wall_ns() : 0,
                         .error = sr->error};
    sh_error err;
    if (sh_runstore_put_stage(e->store, &r, with_output, (const sh_value *const *)sr->output.items, sr->output.len,
                              c ? c->logs : NULL, c ? c->log_len : 0, &err) != SH_S_OK) {
        sh_error_prefix(&err, "stage '%s' not recorded", st->name);
        store_warn(&err);
        sr->unrecorded = true;
        e->store_failures++;
    } else {
        sr->unrecorded = false;
    }
}

/* `running`: recorded before the call, so that should the host die during it, a resumed run still counts it. */
static void put_attempt(engine *e, const call *c, bool running)
{
    sh_attempt_record a = {.run_id = e->run_id,
                           .stage = e->p->stages[c->stage].name,
                           .attempt = c->attempt,
                           .status = running ? "running" : attempt_word(c->status),
                           .error = running || c->status == SH_S_OK ? NULL : c->err.message,
                           .started_ns = running ? sh_wall_ns() : c->wall_started_ns,
                           .finished_ns = running ? 0 : c->wall_started_ns + (c->ended_ns - c->started_ns),
                           .cpu_user_us = c->usage.user_us,
                           .cpu_sys_us = c->usage.sys_us,
                           .peak_rss_kb = c->usage.maxrss_kb};
    sh_error err;
    if (sh_runstore_put_attempt(e->store, &a, &err) != SH_S_OK) {
        store_warn(&err);
        e->store_failures++;
    }
}

/* Records written between these go in one transaction. A failed commit loses them all: the stage is marked to be
 * recorded again at the end. */
static void batch_begin(engine *e)
{
    sh_error err;
    if (sh_runstore_batch_begin(e->store, &err) != SH_S_OK)
        store_warn(&err); /* each record then commits on its own */
}

static void batch_end(engine *e, size_t i)
{
    sh_error err;
    if (sh_runstore_batch_end(e->store, true, &err) != SH_S_OK) {
        sh_error_prefix(&err, "stage '%s' not recorded", e->p->stages[i].name);
        store_warn(&err);
        e->s[i].unrecorded = true;
        e->store_failures++;
    }
}

/* ---- stage transitions (main thread) ------------------------------------------------------------------------ */

static void describe_source(const stage_run *sr, char *out, size_t len)
{
    if (sr->d)
        snprintf(out, len, "%s %s", sr->d->name, sr->d->version);
    else
        snprintf(out, len, "built-in");
}

/* What identifies a stage's result: its type, source, configuration and the identities of its upstream
 * stages, so that a change anywhere upstream changes it too. */
static bool fingerprint(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_digest *d = sh_digest_new();
    if (!d)
        return false;
    sh_digest_string(d, "stagehost-stage-v1");
    sh_digest_string(d, st->type);
    sh_digest_string(d, sr->source);
    sh_digest_value(d, st->config);
    for (size_t k = 0; k < st->dep_count; k++)
        sh_digest_string(d, e->s[e->p->deps[i][k]].fingerprint);
    bool ok = sh_digest_hex(d, sr->fingerprint);
    sh_digest_free(d);
    return ok;
}

static bool cache_key(engine *e, size_t i, const sh_values *input)
{
    stage_run *sr = &e->s[i];
    sh_digest *d = sh_digest_new();
    if (!d)
        return false;
    sh_digest_string(d, "stagehost-cache-v1");
    sh_digest_string(d, plugin_name(sr));
    sh_digest_string(d, plugin_version(sr));
    sh_digest_string(d, sr->target.action);
    /* Relative paths in the configuration mean other files in another directory. */
    sh_digest_string(d, e->p->dir);
    sh_digest_value(d, e->p->stages[i].config);
    for (size_t k = 0; k < input->len; k++)
        sh_digest_value(d, input->items[k]);
    bool ok = sh_digest_hex(d, sr->cache_key);
    sh_digest_free(d);
    return ok;
}

static void finish_done(engine *e, size_t i, const char *word, const call *c)
{
    stage_run *sr = &e->s[i];
    sr->state = S_DONE;
    sr->status_word = word;
    /* When the call ended, not when the scheduler got to it: it may have been busy with an in-process stage. */
    sr->end_ns = c ? c->ended_ns : now_ns();
    if (!sr->first_start_ns)
        sr->first_start_ns = sr->end_ns;
    if (e->progress)
        sh_progress_set(e->progress, e->p->stages[i].name, word, sr->attempt_base + sr->attempts, sr->items_in,
                        sr->output.len, sr->first_start_ns, sr->end_ns);
    sh_log(SH_LOG_INFO, "stage '%s' %s: %zu items in, %zu out", e->p->stages[i].name, word, sr->items_in,
           sr->output.len);
    if (strcmp(word, "reused") != 0)
        put_stage(e, i, word, c, true);
}

static void fail_stage(engine *e, size_t i, sh_status status, const sh_error *cause, const call *c)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sr->state = S_FAILED;
    sr->status_word = "failed";
    sr->end_ns = c ? c->ended_ns : now_ns();
    if (e->progress)
        sh_progress_set(e->progress, st->name, "failed", sr->attempt_base + sr->attempts, sr->items_in, SIZE_MAX,
                        sr->first_start_ns ? sr->first_start_ns : sr->end_ns, sr->end_ns);
    char plugin[300];
    if (sr->d)
        snprintf(plugin, sizeof plugin, "plugin '%s' %s, action '%s'", sr->d->name, sr->d->version,
                 sr->target.action);
    else
        snprintf(plugin, sizeof plugin, "built-in '%s'", sr->target.action);
    free(sr->error);
    if (sr->is_gate)
        sr->error = dupf("%s:%d: stage '%s' (%s) failed after %u polls: %s", e->p->path, st->line, st->name, plugin,
                         sr->attempts, cause->message);
    else
        sr->error = dupf("%s:%d: stage '%s' (%s) failed on attempt %u: %s%s", e->p->path, st->line, st->name, plugin,
                         sr->attempt_base + sr->attempts, cause->message,
                         st->retry.max && sr->attempts > (uint32_t)st->retry.max ? " (no retries left)" : "");
    put_stage(e, i, "failed", c, false);
    if (st->on_failure == SH_ON_FAILURE_CONTINUE) {
        sh_log(SH_LOG_WARN, "%s; on_failure = \"continue\": only the stages downstream of it are skipped",
               sr->error ? sr->error : cause->message);
        return;
    }
    if (!e->stop) {
        e->stop = true;
        e->failed_stage = i;
        sh_status s = status;
        /* A refusal by policy (SH_S_CONFIG: permissions not granted, confinement missing) stays a configuration
         * error, exit 2: the pipeline ran into it but the fix is in the configuration. */
        if (s == SH_S_LOAD || s == SH_S_NOMEM || s == SH_S_IO || s == SH_S_RESOLVE)
            s = SH_S_STAGE;
        sh_error_set(&e->failure, s, "%s", sr->error ? sr->error : cause->message);
    }
}

static void skip_stage(engine *e, size_t i, const char *why)
{
    stage_run *sr = &e->s[i];
    sr->state = S_SKIPPED;
    sr->status_word = "skipped";
    free(sr->error);
    sr->error = strdup(why);
    put_stage(e, i, "skipped", NULL, false);
}

/* A stage whose upstream stages are all done: reuse a finished result (resume) or a cached one, or make it
 * ready to run. */
static void prepare(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_values input = {0};
    sh_error err;
    if (!fingerprint(e, i) || !stage_input(e, i, &input)) {
        sh_values_clear(&input);
        sh_error_set(&err, SH_S_NOMEM, "out of memory preparing its input");
        fail_stage(e, i, SH_S_NOMEM, &err, NULL);
        return;
    }
    sr->items_in = input.len;
    /* A finished result is reused only if its input is the one it was computed from: every upstream stage was
     * reused too. One that ran again may have produced something else. */
    bool upstream_reused = true;
    for (size_t k = 0; k < st->dep_count; k++)
        upstream_reused &= e->s[e->p->deps[i][k]].status_word && strcmp(e->s[e->p->deps[i][k]].status_word, "reused") == 0;
    if (e->opts->resume_id && upstream_reused) {
        sh_value *items = NULL;
        bool found = false;
        uint32_t attempts = 0;
        if (sh_runstore_finished_output(e->store, e->run_id, st->name, sr->fingerprint, &items, &attempts, &found,
                                        &err) != SH_S_OK)
            store_warn(&err);
        if (found && !sh_values_take_array(&sr->output, items)) {
            sh_values_clear(&input);
            sh_error_set(&err, SH_S_NOMEM, "out of memory reading its stored output");
            fail_stage(e, i, SH_S_NOMEM, &err, NULL);
            return;
        }
        if (found) {
            sr->attempt_base = attempts;
            sh_log(SH_LOG_INFO, "stage '%s': finished in the run being resumed; its stored output (%zu items) is used",
                   st->name, sr->output.len);
            sh_values_clear(&input);
            finish_done(e, i, "reused", NULL);
            return;
        }
    }
    if (e->opts->resume_id) {
        uint32_t earlier = 0;
        if (sh_runstore_attempt_count(e->store, e->run_id, st->name, &earlier, &err) == SH_S_OK) {
            sr->attempt_base = earlier;
        } else {
            /* Numbering from 1 again would overwrite the earlier attempts' records. */
            store_warn(&err);
            sr->attempt_base = 1000;
        }
    }
    if (sr->use_cache) {
        sh_value *items = NULL;
        bool found = false;
        if (!cache_key(e, i, &input))
            sr->use_cache = false;
        else if (sh_runstore_cache_get(e->store, sr->cache_key, &items, &found, &err) != SH_S_OK)
            store_warn(&err);
        if (found && !sh_values_take_array(&sr->output, items)) {
            found = false; /* out of memory: compute it instead */
            sh_log(SH_LOG_WARN, "stage '%s': out of memory reading its cached output; running it", st->name);
        }
        if (found) {
            sh_log(SH_LOG_INFO, "stage '%s': output reused from the cache (key %.16s: same input, config and %s)",
                   st->name, sr->cache_key, sr->source);
            sh_values_clear(&input);
            finish_done(e, i, "cached", NULL);
            return;
        }
        sh_log(SH_LOG_INFO, "stage '%s': not in the cache (key %.16s); running it", st->name, sr->cache_key);
    }
    sh_values_clear(&input);
    if (sr->is_gate) {
        sh_values now = {0};
        /* The gate checks what its upstream stages emitted; only if that does not satisfy it does it poll. */
        if (!stage_input(e, i, &now)) {
            sh_values_clear(&now);
            sh_error_set(&err, SH_S_NOMEM, "out of memory preparing its input");
            fail_stage(e, i, SH_S_NOMEM, &err, NULL);
            return;
        }
        sr->first_start_ns = now_ns();
        sr->wall_started_ns = sh_wall_ns();
        sr->gate_deadline_ns = sr->first_start_ns + sr->gate.timeout_ms * 1000000;
        if (sh_gate_holds(&sr->gate, (const sh_value *const *)now.items, now.len, sr->gate_detail,
                          sizeof sr->gate_detail)) {
            sr->output = now;
            finish_done(e, i, "succeeded", NULL);
            return;
        }
        sh_values_clear(&now);
        sr->state = S_GATE_WAIT;
        sr->ready_at_ns = now_ns() + sr->gate.poll_interval_ms * 1000000;
        if (sr->ready_at_ns > sr->gate_deadline_ns)
            sr->ready_at_ns = sr->gate_deadline_ns;
        sh_log(SH_LOG_INFO, "gate '%s': waiting (%s); polling every %lld ms", st->name, sr->gate_detail,
               (long long)sr->gate.poll_interval_ms);
        put_stage(e, i, "waiting", NULL, false);
        return;
    }
    sr->state = S_READY;
}

/* Builds the task that runs stage i now: its next attempt, or for a gate its upstream stages again. */
static task *make_task(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->e = e;
    t->owner = i;
    t->gate_poll = sr->is_gate;
    t->count = sr->is_gate ? st->dep_count : 1;
    t->calls = calloc(t->count, sizeof *t->calls);
    if (!t->calls) {
        free(t);
        return NULL;
    }
    for (size_t k = 0; k < t->count; k++) {
        call *c = &t->calls[k];
        c->stage = sr->is_gate ? e->p->deps[i][k] : i;
        c->attempt = sr->is_gate ? 1 : sr->attempt_base + sr->attempts + 1;
        if (!stage_input(e, c->stage, &c->input)) {
            task_free(t);
            return NULL;
        }
    }
    return t;
}

static bool in_process_plugin(const stage_run *sr) { return sr->d && sr->iso == SH_ISOLATION_NONE; }

/* In-process plugins are called only from this thread: the ABI promises each plugin one plugin thread. The
 * built-ins are ours and thread-safe. A gate's task calls the stages it depends on. */
static bool needs_main_thread(const engine *e, size_t i)
{
    const stage_run *sr = &e->s[i];
    if (!sr->is_gate)
        return in_process_plugin(sr);
    for (size_t k = 0; k < e->p->stages[i].dep_count; k++)
        if (in_process_plugin(&e->s[e->p->deps[i][k]]))
            return true;
    return false;
}

static void finish_gate_poll(engine *e, task *t)
{
    size_t i = t->owner;
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_values now = {0};
    bool complete = true;
    for (size_t k = 0; k < t->count; k++) {
        call *c = &t->calls[k];
        if (c->started_worker)
            e->workers_started++;
        if (c->status != SH_S_OK) {
            /* A probe that fails is a condition that does not hold yet, not a failed gate. */
            complete = false;
            snprintf(sr->gate_detail, sizeof sr->gate_detail, "upstream stage '%s' failed: %s",
                     e->p->stages[c->stage].name, c->err.message);
            sh_log(SH_LOG_WARN, "gate '%s': %s", st->name, sr->gate_detail);
            continue;
        }
        for (size_t j = 0; j < c->output.len; j++) {
            if (sh_values_push(&now, c->output.items[j]) != SH_OK)
                complete = false; /* out of memory: this poll does not count */
            c->output.items[j] = NULL;
        }
        c->output.len = 0;
    }
    sr->attempts++;
    if (complete && sh_gate_holds(&sr->gate, (const sh_value *const *)now.items, now.len, sr->gate_detail,
                                  sizeof sr->gate_detail)) {
        sr->items_in = now.len;
        sr->output = now;
        finish_done(e, i, "succeeded", NULL);
        return;
    }
    sh_values_clear(&now);
    int64_t next = now_ns() + sr->gate.poll_interval_ms * 1000000;
    if (now_ns() >= sr->gate_deadline_ns) {
        char cond[400];
        sh_gate_describe(&sr->gate, cond, sizeof cond);
        sh_error err;
        sh_error_set(&err, SH_S_TIMEOUT,
                     "gate timed out after %lld ms (%u polls): condition %s did not hold; last check: %s. Raise the "
                     "gate's timeout_ms, or check the stages it depends on",
                     (long long)sr->gate.timeout_ms, sr->attempts, cond, sr->gate_detail);
        fail_stage(e, i, SH_S_TIMEOUT, &err, NULL);
        return;
    }
    sr->state = S_GATE_WAIT;
    /* The last poll happens at the deadline, not after it. */
    sr->ready_at_ns = next < sr->gate_deadline_ns ? next : sr->gate_deadline_ns;
    if (e->progress)
        sh_progress_set(e->progress, st->name, "waiting", sr->attempts, sr->items_in, SIZE_MAX, sr->first_start_ns, 0);
}

static void finish_attempt(engine *e, task *t)
{
    size_t i = t->owner;
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    call *c = &t->calls[0];
    sr->attempts++;
    if (c->started_worker)
        e->workers_started++;
    /* The attempt, the stage's record and its output (and the cache entry) land together. */
    batch_begin(e);
    put_attempt(e, c, false);
    if (c->status == SH_S_OK) {
        sr->output = c->output;
        c->output = (sh_values){0};
        finish_done(e, i, "succeeded", c);
        if (sr->use_cache) {
            sh_error err;
            if (sh_runstore_cache_put(e->store, sr->cache_key, plugin_name(sr), plugin_version(sr), st->type,
                                      (const sh_value *const *)sr->output.items, sr->output.len, &err) != SH_S_OK)
                store_warn(&err);
        }
        batch_end(e, i);
        return;
    }
    batch_end(e, i);
    /* A plugin quarantined by this very failure would only crash again. */
    bool quarantined = sr->target.plugin && sr->target.plugin->status == SH_PLUGIN_QUARANTINED;
    if (quarantined && st->retry.max)
        sh_error_prefix(&c->err, "no more retries: plugin '%s' is now quarantined ('stagehost plugins reset %s' "
                                 "clears it)", sr->d->name, sr->d->name);
    if (transient(c->status) && sr->attempts <= (uint32_t)st->retry.max && !e->stop && !quarantined) {
        double wait = (double)st->retry.backoff_ms * pow(st->retry.multiplier, (double)(sr->attempts - 1));
        if (wait > 3600e3)
            wait = 3600e3;
        sr->state = S_RETRY_WAIT;
        sr->ready_at_ns = now_ns() + (int64_t)(wait * 1e6);
        sh_log(SH_LOG_WARN, "stage '%s' attempt %u failed: %s; retrying in %.0f ms (%u of %lld retries left)",
               st->name, c->attempt, c->err.message, wait, (unsigned)(st->retry.max - sr->attempts + 1),
               (long long)st->retry.max);
        free(sr->error);
        sr->error = strdup(c->err.message); /* kept should the run stop before the next attempt */
        if (e->progress)
            sh_progress_set(e->progress, st->name, "waiting", sr->attempt_base + sr->attempts, sr->items_in, SIZE_MAX,
                            sr->first_start_ns, 0);
        put_stage(e, i, "retrying", c, false);
        return;
    }
    fail_stage(e, i, c->status, &c->err, c);
}

static void finish_task(engine *e, task *t)
{
    e->s[t->owner].running = NULL;
    if (t->gate_poll)
        finish_gate_poll(e, t);
    else
        finish_attempt(e, t);
    task_free(t);
}

/* Starts stage i's task: on a thread when it may run off this one and a slot is free, else here (e->lock is
 * held on entry and on return). Returns false when it has to wait for a slot. */
static bool launch(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    bool here = sr->is_hook || needs_main_thread(e, i);
    if (!here && e->threads >= e->jobs)
        return false;
    task *t = make_task(e, i);
    if (!t) {
        sh_error err;
        sh_error_set(&err, SH_S_NOMEM, "out of memory preparing its input");
        fail_stage(e, i, SH_S_NOMEM, &err, NULL);
        return true;
    }
    if (!sr->first_start_ns) {
        sr->first_start_ns = now_ns();
        sr->wall_started_ns = sh_wall_ns();
    }
    sr->state = S_RUNNING;
    sr->running = t;
    if (!sr->is_gate) {
        batch_begin(e);
        put_attempt(e, &t->calls[0], true);
        sr->attempts++; /* so the record says which attempt is running */
        put_stage(e, i, "running", NULL, false);
        sr->attempts--;
        batch_end(e, i);
    }
    if (e->progress)
        sh_progress_set(e->progress, e->p->stages[i].name, sr->is_gate ? "polling" : "running",
                        sr->attempt_base + sr->attempts + 1, sr->items_in, SIZE_MAX, sr->first_start_ns, 0);
    if (sr->is_hook) {
        /* Hook implementations share the runtime's instances with the running tasks: the lock stays held. */
        call *c = &t->calls[0];
        c->started_ns = now_ns();
        c->wall_started_ns = sh_wall_ns();
        c->status = sh_hook_stage_run(&sr->hook, e->rt, e->hooks, &c->input, &c->output, &c->err);
        c->ended_ns = now_ns();
        finish_task(e, t);
        return true;
    }
    if (!here && pthread_create(&t->thread, NULL, task_thread, t) == 0) {
        t->threaded = true;
        e->threads++;
        return true;
    }
    pthread_mutex_unlock(&e->lock);
    run_task(t);
    pthread_mutex_lock(&e->lock);
    finish_task(e, t);
    return true;
}

static void unlock_engine(void *lock) { pthread_mutex_unlock(lock); }
static void lock_engine(void *lock) { pthread_mutex_lock(lock); }

/* ---- the scheduler ------------------------------------------------------------------------------------------ */

static const char *upstream_problem(const engine *e, size_t i)
{
    const sh_pipeline_stage *st = &e->p->stages[i];
    for (size_t k = 0; k < st->dep_count; k++) {
        stage_state s = e->s[e->p->deps[i][k]].state;
        if (s == S_FAILED || s == S_SKIPPED)
            return e->p->stages[e->p->deps[i][k]].name;
    }
    return NULL;
}

static bool upstream_done(const engine *e, size_t i)
{
    const sh_pipeline_stage *st = &e->p->stages[i];
    for (size_t k = 0; k < st->dep_count; k++)
        if (e->s[e->p->deps[i][k]].state != S_DONE)
            return false;
    return true;
}

/* One pass over the stages in order: collects finished tasks, moves stages along, starts what may start.
 * Returns the earliest time something waits for (0: nothing), and sets *busy when tasks are under way. */
static int64_t step(engine *e, bool *busy, bool *moved)
{
    int64_t wake = 0;
    *busy = false;
    for (size_t n = 0; n < e->p->count; n++) {
        size_t i = e->order[n];
        stage_run *sr = &e->s[i];
        if (sr->running && sr->running->threaded && sr->running->done) {
            pthread_join(sr->running->thread, NULL);
            e->threads--;
            finish_task(e, sr->running);
            *moved = true;
        }
    }
    for (size_t n = 0; n < e->p->count; n++) {
        size_t i = e->order[n];
        stage_run *sr = &e->s[i];
        if (sr->state == S_WAITING && !e->stop) {
            const char *bad = upstream_problem(e, i);
            if (bad) {
                char why[400];
                snprintf(why, sizeof why, "not run: upstream stage '%s' did not finish", bad);
                skip_stage(e, i, why);
                *moved = true;
                continue;
            }
            if (upstream_done(e, i)) {
                prepare(e, i);
                *moved = true;
            }
        }
        if (e->stop)
            continue;
        bool due = sr->state == S_READY ||
                   ((sr->state == S_RETRY_WAIT || sr->state == S_GATE_WAIT) && now_ns() >= sr->ready_at_ns);
        if (due && launch(e, i))
            *moved = true;
        if ((sr->state == S_RETRY_WAIT || sr->state == S_GATE_WAIT) && (!wake || sr->ready_at_ns < wake))
            wake = sr->ready_at_ns;
        if (sr->state == S_READY && (!wake || now_ns() < wake))
            wake = now_ns(); /* waiting for a free slot: a finishing thread signals */
    }
    for (size_t i = 0; i < e->p->count; i++)
        if (e->s[i].running)
            *busy = true;
    return wake;
}

static void schedule(engine *e)
{
    pthread_mutex_lock(&e->lock);
    for (;;) {
        bool busy = false, moved = false;
        int64_t wake = step(e, &busy, &moved);
        if (moved)
            continue;
        if (!busy && (e->stop || !wake))
            break;
        if (e->progress)
            sh_progress_draw(e->progress, now_ns());
        /* Sleep until a task finishes or the next retry or poll is due; redraw progress meanwhile. */
        int64_t until = wake && wake > now_ns() ? wake : now_ns() + 1000000000LL;
        if (e->progress && until > now_ns() + 200000000LL)
            until = now_ns() + 200000000LL;
        if (wake && wake <= now_ns() && !busy)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t delta = until - now_ns();
        if (delta < 1000000)
            delta = 1000000;
        ts.tv_sec += delta / 1000000000LL;
        ts.tv_nsec += delta % 1000000000LL;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cond, &e->lock, &ts);
    }
    pthread_mutex_unlock(&e->lock);
    if (e->progress)
        sh_progress_clear(e->progress);
}

/* ---- setting up and reporting ------------------------------------------------------------------------------- */

static sh_status open_store(engine *e, sh_error *err)
{
    char *path = e->opts->store_path ? strdup(e->opts->store_path) : sh_runstore_default_path(e->p->path);
    if (!path)
        return sh_error_set(err, SH_S_NOMEM, "out of memory opening the run store");
    sh_status rc = sh_runstore_open(path, true, &e->store, err);
    free(path);
    if (rc != SH_S_OK)
        return rc;
    if (e->opts->resume_id) {
        char *pipeline = NULL;
        rc = sh_runstore_find_run(e->store, e->opts->resume_id, e->run_id, &pipeline, err);
        if (rc == SH_S_OK && strcmp(pipeline, e->p->name) != 0)
            rc = sh_error_set(err, SH_S_CONFIG,
                              "--resume %s: that run is of pipeline '%s', not '%s' (%s); resume it with its own "
                              "pipeline file",
                              e->opts->resume_id, pipeline, e->p->name, e->p->path);
        free(pipeline);
        int64_t pid = 0;
        bool active = false;
        if (rc == SH_S_OK)
            rc = sh_runstore_run_active(e->store, e->run_id, &pid, &active, err);
        if (rc == SH_S_OK && active)
            rc = sh_error_set(err, SH_S_CONFIG,
                              "--resume %s: run %s is still running in process %lld; wait for it to end, or stop "
                              "that process, then resume", e->opts->resume_id, e->run_id, (long long)pid);
        if (rc == SH_S_OK)
            rc = sh_runstore_resume_run(e->store, e->run_id, err);
        if (rc == SH_S_OK)
            sh_log(SH_LOG_INFO, "resuming run %s of pipeline '%s' from %s", e->run_id, e->p->name,
                   sh_runstore_path(e->store));
        return rc;
    }
    new_run_id(e->run_id);
    sh_run_record r = {.id = e->run_id,
                       .pipeline_path = e->p->path,
                       .pipeline_name = e->p->name,
                       .pipeline_version = e->p->version};
    /* The run and every stage in it, pending, in one transaction: the store always shows the whole pipeline. */
    rc = sh_runstore_batch_begin(e->store, err);
    if (rc == SH_S_OK)
        rc = sh_runstore_begin_run(e->store, &r, err);
    for (size_t i = 0; rc == SH_S_OK && i < e->p->count; i++)
        put_stage(e, i, "pending", NULL, false);
    sh_error end;
    if (sh_runstore_batch_end(e->store, rc == SH_S_OK, &end) != SH_S_OK && rc == SH_S_OK) {
        *err = end;
        rc = end.status;
    }
    return rc;
}

static void make_execution_id(engine *e)
{
    if (!e->rt->deterministic) {
        snprintf(e->execution_id, sizeof e->execution_id, "%s", e->run_id);
        return;
    }
    /* Plugins may write their execution id into their output: under --deterministic it must not vary. */
    sh_digest *d = sh_digest_new();
    char hex[SH_DIGEST_HEX] = "00000000000000000000000000000000";
    if (d) {
        sh_digest_string(d, "stagehost-deterministic-execution");
        sh_digest_string(d, e->p->name);
        sh_digest_hex(d, hex);
        sh_digest_free(d);
    }
    snprintf(e->execution_id, sizeof e->execution_id, "%s", hex);
}

static void fill_report(engine *e, sh_run_report *r, int64_t started)
{
    r->count = e->p->count;
    r->stages = calloc(e->p->count, sizeof *r->stages);
    r->workers_started = e->workers_started;
    r->wall_ns = now_ns() - started;
    snprintf(r->run_id, sizeof r->run_id, "%s", e->run_id);
    r->store_path = e->store ? strdup(sh_runstore_path(e->store)) : NULL;
    for (size_t i = 0; r->stages && i < e->p->count; i++) {
        stage_run *sr = &e->s[i];
        sh_stage_report *s = &r->stages[i];
        s->name = strdup(e->p->stages[i].name);
        s->status = strdup(sr->status_word ? sr->status_word : "not run");
        s->source = strdup(sr->source);
        s->error = sr->error ? strdup(sr->error) : NULL;
        s->items_in = sr->items_in;
        s->items_out = sr->state == S_DONE ? sr->output.len : 0;
        s->attempts = sr->attempt_base + sr->attempts;
        s->wall_ns = sr->first_start_ns && sr->end_ns ? sr->end_ns - sr->first_start_ns : 0;
    }
}

void sh_run_report_free(sh_run_report *r)
{
    for (size_t i = 0; r->stages && i < r->count; i++) {
        free(r->stages[i].name);
        free(r->stages[i].status);
        free(r->stages[i].source);
        free(r->stages[i].error);
    }
    free(r->stages);
    free(r->store_path);
    free(r->store_problem);
    memset(r, 0, sizeof *r);
}

static size_t default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    /* Isolated stages often wait (on I/O, on a network): twice the CPUs keeps the CPUs busy. */
    return n > 0 ? (size_t)n * 2 : 4;
}

sh_status sh_engine_run(sh_pipeline *p, sh_runtime *rt, const sh_run_options *opts, sh_run_report *report,
                        sh_error *err)
{
    memset(report, 0, sizeof *report);
    int64_t started = now_ns();
    engine e = {.p = p, .rt = rt, .opts = opts, .failed_stage = p->count};
    e.jobs = opts->jobs ? opts->jobs : default_jobs();
    e.hooks = opts->hooks ? opts->hooks : &e.own_hooks;
    e.s = calloc(p->count, sizeof *e.s);
    e.order = calloc(p->count, sizeof *e.order);
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!e.s || !e.order || !targets) {
        free(e.s);
        free(e.order);
        free(targets);
        return sh_error_set(err, SH_S_NOMEM, "out of memory running %s", p->path);
    }
    sh_status rc = sh_engine_validate(p, &rt->registry, rt->config ? rt->config->pins : NULL, targets, err);
    for (size_t i = 0; rc == SH_S_OK && i < p->count; i++) {
        stage_run *sr = &e.s[i];
        const sh_pipeline_stage *st = &p->stages[i];
        sr->target = targets[i];
        sr->d = sr->target.plugin ? sr->target.plugin->desc : NULL;
        sr->iso = sr->d ? sh_runtime_isolation(rt, sr->d, st->isolation) : SH_ISOLATION_NONE;
        sr->is_gate = sh_target_is_gate(&sr->target);
        sr->is_hook = sh_target_is_hook(&sr->target);
        if (sr->is_hook) {
            char why[512];
            if (!sh_hook_stage_parse(st->config, &sr->hook, why, sizeof why))
                rc = sh_error_set(err, SH_S_CONFIG, "%s:%d: stage '%s': %s", p->path, st->line, st->name, why);
        }
        if (sr->is_gate) {
            char why[512];
            if (!sh_gate_parse(st->config, &sr->gate, why, sizeof why))
                rc = sh_error_set(err, SH_S_CONFIG, "%s:%d: stage '%s': %s", p->path, st->line, st->name, why);
        }
        const sh_stage_decl *decl = sr->d ? sh_descriptor_find_stage(sr->d, sr->target.action) : NULL;
        sr->use_cache = !sr->is_gate && (st->cache == 1 || (st->cache == -1 && decl && decl->idempotent));
        describe_source(sr, sr->source, sizeof sr->source);
    }
    free(targets);
    if (rc == SH_S_OK)
        rc = open_store(&e, err);
    if (rc != SH_S_OK) {
        for (size_t i = 0; i < p->count; i++) {
            sh_gate_free(&e.s[i].gate);
            sh_hook_stage_free(&e.s[i].hook);
        }
        free(e.s);
        free(e.order);
        sh_runstore_close(e.store);
        return rc;
    }
    make_execution_id(&e);
    sh_hooks_run_started(*e.hooks);
    sh_pipeline_order(p, e.order);
    pthread_mutex_init(&e.lock, NULL);
    sh_pool_set_guard(rt->pool, unlock_engine, lock_engine, &e.lock);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (opts->progress)
        e.progress = sh_progress_new(stderr);
    sh_log(SH_LOG_INFO, "running pipeline '%s' (%zu stages), run %s, at most %zu isolated stages at once", p->name,
           p->count, e.run_id, e.jobs);

    schedule(&e);

    /* Whatever did not get to run because the run failed is reported as such; a stage that was waiting to try
     * again keeps its own failure. */
    for (size_t i = 0; i < p->count; i++) {
        stage_run *sr = &e.s[i];
        const char *first = e.failed_stage < p->count ? p->stages[e.failed_stage].name : "?";
        if (sr->state == S_RETRY_WAIT || sr->state == S_GATE_WAIT) {
            sh_error why;
            sh_error_set(&why, SH_S_STAGE, "%s (no further attempt: the run stopped when stage '%s' failed)",
                         sr->error ? sr->error : sr->gate_detail, first);
            fail_stage(&e, i, SH_S_STAGE, &why, NULL);
        } else if (sr->state < S_DONE) {
            char why[400];
            snprintf(why, sizeof why, "not run: the run stopped when stage '%s' failed", first);
            skip_stage(&e, i, why);
            sr->status_word = "not run";
        }
    }
    /* Records the run store refused during the run get one more chance. */
    char lost[512] = "";
    for (size_t i = 0; e.store_failures && i < p->count; i++) {
        stage_run *sr = &e.s[i];
        if (!sr->unrecorded)
            continue;
        put_stage(&e, i, sr->status_word ? sr->status_word : "not run", NULL, sr->state == S_DONE);
        if (sr->unrecorded) {
            size_t used = strlen(lost);
            snprintf(lost + used, sizeof lost - used, "%s'%s'", used ? ", " : "", p->stages[i].name);
        }
    }
    bool partial = false;
    for (size_t i = 0; i < p->count; i++)
        partial |= e.s[i].state == S_FAILED || e.s[i].state == S_SKIPPED;
    report->status = e.stop ? "failed" : partial ? "partial" : "succeeded";
    sh_error serr;
    if (sh_runstore_finish_run(e.store, e.run_id, report->status, e.stop ? e.failure.message : NULL, &serr) !=
        SH_S_OK)
        store_warn(&serr);
    fill_report(&e, report, started);
    if (lost[0])
        report->store_problem = dupf("run store %s could not record stage(s) %s (see the warnings above); their "
                                     "results are not in it, and a resume of run %s would run them again",
                                     sh_runstore_path(e.store), lost, e.run_id);
    else if (e.store_failures)
        report->store_problem = dupf("run store %s refused %zu record(s) during the run (see the warnings above); "
                                     "the stages' final records were written", sh_runstore_path(e.store),
                                     e.store_failures);
    /* No task is running any more. The lock is the pool's guard (sh_pool_set_guard): held, as around every pool
     * use, while the implementations are called. */
    pthread_mutex_lock(&e.lock);
    sh_hooks_run_finished(rt, e.hooks, p->name, report->status);
    sh_hooks_free(e.own_hooks); /* gives its in-process instances back to the pool */
    pthread_mutex_unlock(&e.lock);

    rc = SH_S_OK;
    if (e.stop) {
        *err = e.failure;
        rc = err->status;
        char skipped[512] = "";
        for (size_t n = 0; n < p->count; n++) {
            size_t i = e.order[n];
            if (e.s[i].state != S_SKIPPED)
                continue;
            size_t used = strlen(skipped);
            snprintf(skipped + used, sizeof skipped - used, "%s'%s'", used ? ", " : "", p->stages[i].name);
        }
        if (skipped[0]) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used, "\nstages not run: %s", skipped);
        }
        if (!report->store_problem) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof err->message - used,
                     "\nonce fixed, finish the run without redoing what succeeded: stagehost run %s --resume %.12s",
                     p->path, e.run_id);
        }
    }
    for (size_t i = 0; i < p->count; i++) {
        sh_values_clear(&e.s[i].output);
        free(e.s[i].error);
        sh_gate_free(&e.s[i].gate);
        sh_hook_stage_free(&e.s[i].hook);
    }
    sh_progress_free(e.progress);
    sh_pool_set_guard(rt->pool, NULL, NULL, NULL);
    pthread_cond_destroy(&e.cond);
    pthread_mutex_destroy(&e.lock);
    sh_runstore_close(e.store);
    free(e.s);
    free(e.order);
    return rc;
}
