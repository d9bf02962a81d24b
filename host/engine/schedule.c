/* The scheduler: starts what may start, runs isolated calls on their own threads (up to --jobs) and
 * in-process ones on this thread, and sleeps until a call ends or a retry or poll falls due. */
#include "engine/engine_private.h"

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
    sh_instance *in = NULL;
    c->status = sh_runtime_acquire(rt, d ? sr->target.plugin : NULL, sr->iso, &in, &c->started_worker, &c->err);
    c->started_ns = now_ns();
    c->wall_started_ns = sh_wall_ns();
    if (c->status != SH_S_OK) {
        c->ended_ns = c->started_ns;
        return;
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
                               .outcome = sh_outcome_of(c->status)};
    sh_runtime_release(rt, d ? sr->target.plugin : NULL, in,
                       &(sh_call_outcome){.status = c->status, .message = c->err.message, .metrics = &m});
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

/* Starts stage i's task: on a thread when it may run off this one and a slot is free, else here (e->lock is
 * held on entry and on return). Returns false when it has to wait for a slot. */
static bool launch(engine *e, size_t i)
{
    stage_run *sr = &e->s[i];
    bool here = sr->is_hook || needs_main_thread(e, i);
    if (!here && e->threads >= e->jobs)
        return false;
    task *t = sh_engine_make_task(e, i);
    if (!t) {
        sh_error err;
        sh_error_set(&err, SH_S_NOMEM, "out of memory preparing its input");
        sh_engine_fail_stage(e, i, SH_S_NOMEM, &err, NULL);
        return true;
    }
    if (!sr->first_start_ns) {
        sr->first_start_ns = now_ns();
        sr->wall_started_ns = sh_wall_ns();
    }
    sr->state = S_RUNNING;
    sr->running = t;
    if (!sr->is_gate) {
        sh_engine_batch_begin(e);
        sh_engine_put_attempt(e, &t->calls[0], true);
        sr->attempts++; /* so the record says which attempt is running */
        sh_engine_put_stage(e, i, "running", NULL, false);
        sr->attempts--;
        sh_engine_batch_end(e, i);
    }
    if (e->progress)
        sh_progress_set(e->progress, e->p->stages[i].name, sr->is_gate ? "polling" : "running",
                        sr->attempt_base + sr->attempts + 1, sr->items_in, SIZE_MAX, sr->first_start_ns, 0);
    if (sr->is_hook) {
        /* On this thread, like an in-process stage: the hook table is the main thread's. The pool and the
         * runtime guard themselves, so running tasks go on meanwhile. */
        call *c = &t->calls[0];
        pthread_mutex_unlock(&e->lock);
        c->started_ns = now_ns();
        c->wall_started_ns = sh_wall_ns();
        c->status = sh_hook_stage_run(&sr->hook, e->rt, e->hooks, &c->input, &c->output, &c->err);
        c->ended_ns = now_ns();
        pthread_mutex_lock(&e->lock);
        sh_engine_finish_task(e, t);
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
    sh_engine_finish_task(e, t);
    return true;
}

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
            sh_engine_finish_task(e, sr->running);
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
                sh_engine_skip_stage(e, i, why);
                *moved = true;
                continue;
            }
            if (upstream_done(e, i)) {
                sh_engine_prepare(e, i);
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

void sh_engine_schedule(engine *e)
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
