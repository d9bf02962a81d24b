/* The stage state machine, on the scheduler's thread: from waiting to done, failed or skipped, through resume,
 * the output cache, attempts and retries, and a gate's polls. */
#include "engine/engine_private.h"

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
        sh_engine_put_stage(e, i, word, c, true);
}

void sh_engine_fail_stage(engine *e, size_t i, sh_status status, const sh_error *cause, const call *c)
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
    sh_engine_put_stage(e, i, "failed", c, false);
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

void sh_engine_skip_stage(engine *e, size_t i, const char *why)
{
    stage_run *sr = &e->s[i];
    sr->state = S_SKIPPED;
    sr->status_word = "skipped";
    free(sr->error);
    sr->error = strdup(why);
    sh_engine_put_stage(e, i, "skipped", NULL, false);
}

/* A stage whose upstream stages are all done: reuse a finished result (resume) or a cached one, or make it
 * ready to run. */
void sh_engine_prepare(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    const sh_pipeline_stage *st = &e->p->stages[i];
    sh_values input = {0};
    sh_error err;
    if (!sh_engine_fingerprint(e, i) || !stage_input(e, i, &input)) {
        sh_values_clear(&input);
        sh_error_set(&err, SH_S_NOMEM, "out of memory preparing its input");
        sh_engine_fail_stage(e, i, SH_S_NOMEM, &err, NULL);
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
            sh_engine_store_warn(&err);
        if (found && !sh_values_take_array(&sr->output, items)) {
            sh_values_clear(&input);
            sh_error_set(&err, SH_S_NOMEM, "out of memory reading its stored output");
            sh_engine_fail_stage(e, i, SH_S_NOMEM, &err, NULL);
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
            sh_engine_store_warn(&err);
            sr->attempt_base = 1000;
        }
    }
    if (sr->use_cache) {
        sh_value *items = NULL;
        bool found = false;
        if (!sh_engine_cache_key(e, i, &input))
            sr->use_cache = false;
        else if (sh_runstore_cache_get(e->store, sr->cache_key, &items, &found, &err) != SH_S_OK)
            sh_engine_store_warn(&err);
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
            sh_engine_fail_stage(e, i, SH_S_NOMEM, &err, NULL);
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
        sh_engine_put_stage(e, i, "waiting", NULL, false);
        return;
    }
    sr->state = S_READY;
}

/* Builds the task that runs stage i now: its next attempt, or for a gate its upstream stages again. */
task *sh_engine_make_task(engine *e, size_t i)
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
        sh_engine_fail_stage(e, i, SH_S_TIMEOUT, &err, NULL);
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
    sh_engine_batch_begin(e);
    sh_engine_put_attempt(e, c, false);
    if (c->status == SH_S_OK) {
        sr->output = c->output;
        c->output = (sh_values){0};
        finish_done(e, i, "succeeded", c);
        if (sr->use_cache) {
            sh_error err;
            if (sh_runstore_cache_put(e->store, sr->cache_key, plugin_name(sr), plugin_version(sr), st->type,
                                      (const sh_value *const *)sr->output.items, sr->output.len, &err) != SH_S_OK)
                sh_engine_store_warn(&err);
        }
        sh_engine_batch_end(e, i);
        return;
    }
    sh_engine_batch_end(e, i);
    /* A plugin quarantined by this very failure would only crash again. */
    bool quarantined = !sh_runtime_retry_allowed(e->rt, sr->target.plugin);
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
        sh_engine_put_stage(e, i, "retrying", c, false);
        return;
    }
    sh_engine_fail_stage(e, i, c->status, &c->err, c);
}

void sh_engine_finish_task(engine *e, task *t)
{
    e->s[t->owner].running = NULL;
    if (t->gate_poll)
        finish_gate_poll(e, t);
    else
        finish_attempt(e, t);
    task_free(t);
}
