#include "engine/engine_private.h"

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
        sr->is_gate = sr->target.kind == SH_TARGET_GATE;
        sr->is_hook = sr->target.kind == SH_TARGET_HOOK;
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
        sh_engine_describe_source(sr, sr->source, sizeof sr->source);
    }
    free(targets);
    if (rc == SH_S_OK)
        rc = sh_engine_open_store(&e, err);
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
    sh_engine_make_execution_id(&e);
    sh_hooks_run_started(*e.hooks);
    sh_pipeline_order(p, e.order);
    pthread_mutex_init(&e.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (opts->progress)
        e.progress = sh_progress_new(stderr);
    sh_log(SH_LOG_INFO, "running pipeline '%s' (%zu stages), run %s, at most %zu isolated stages at once", p->name,
           p->count, e.run_id, e.jobs);

    sh_engine_schedule(&e);

    /* Whatever did not get to run because the run failed is reported as such; a stage that was waiting to try
     * again keeps its own failure. */
    for (size_t i = 0; i < p->count; i++) {
        stage_run *sr = &e.s[i];
        const char *first = e.failed_stage < p->count ? p->stages[e.failed_stage].name : "?";
        if (sr->state == S_RETRY_WAIT || sr->state == S_GATE_WAIT) {
            sh_error why;
            sh_error_set(&why, SH_S_STAGE, "%s (no further attempt: the run stopped when stage '%s' failed)",
                         sr->error ? sr->error : sr->gate_detail, first);
            sh_engine_fail_stage(&e, i, SH_S_STAGE, &why, NULL);
        } else if (sr->state < S_DONE) {
            char why[400];
            snprintf(why, sizeof why, "not run: the run stopped when stage '%s' failed", first);
            sh_engine_skip_stage(&e, i, why);
            sr->status_word = "not run";
        }
    }
    /* Records the run store refused during the run get one more chance. */
    char lost[512] = "";
    for (size_t i = 0; e.store_failures && i < p->count; i++) {
        stage_run *sr = &e.s[i];
        if (!sr->unrecorded)
            continue;
        sh_engine_put_stage(&e, i, sr->status_word ? sr->status_word : "not run", NULL, sr->state == S_DONE);
        if (sr->unrecorded) {
            size_t used = strlen(lost);
            snprintf(lost + used, sizeof lost - used, "%s'%s'", used ? ", " : "", p->stages[i].name);
        }
    }
    bool partial = false;
    for (size_t i = 0; i < p->count; i++)
        partial |= e.s[i].state == S_FAILED || e.s[i].state == S_SKIPPED;
    report->status = e.stop ? "failed" : partial ? "partial" : "succeeded";
    sh_engine_record_end(&e, report->status);
    fill_report(&e, report, started);
    if (lost[0])
        report->store_problem = dupf("run store %s could not record stage(s) %s (see the warnings above); their "
                                     "results are not in it, and a resume of run %s would run them again",
                                     sh_runstore_path(e.store), lost, e.run_id);
    else if (e.store_failures)
        report->store_problem = dupf("run store %s refused %zu record(s) during the run (see the warnings above); "
                                     "the stages' final records were written", sh_runstore_path(e.store),
                                     e.store_failures);
    /* No task is running any more. */
    sh_hooks_run_finished(rt, e.hooks, p->name, report->status);
    sh_hooks_free(e.own_hooks); /* gives its in-process instances back to the pool */

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
    pthread_cond_destroy(&e.cond);
    pthread_mutex_destroy(&e.lock);
    sh_runstore_close(e.store);
    free(e.s);
    free(e.order);
    return rc;
}
