/* The run store's records: a stage's state and output, each attempt, in batches that commit together. */
#include "engine/engine_private.h"

void sh_engine_store_warn(const sh_error *err)
{
    /* The run goes on: losing the record of a stage is better than failing work that succeeded. What could not
     * be recorded is tried again at the end and, failing that, named in the report. */
    sh_log(SH_LOG_WARN, "%s", err->message);
}

void sh_engine_put_stage(engine *e, size_t i, const char *status, const call *c, bool with_output)
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
    sh_error err, ignored;
    /* The output's rows and the record that makes them the stage's output, in one transaction (or savepoint of
     * the caller's batch). The rows are written as the batch engine will write them, one batch at a time; here
     * the whole output is one batch. */
    sh_status rc = with_output ? sh_runstore_batch_begin(e->store, &err) : SH_S_OK;
    uint32_t seq = 0;
    if (rc == SH_S_OK && with_output)
        rc = sh_runstore_put_output_batch(e->store, e->run_id, st->name, &seq,
                                          (const sh_value *const *)sr->output.items, sr->output.len, &err);
    if (rc == SH_S_OK)
        rc = sh_runstore_put_stage(e->store, &r, with_output, c ? c->logs : NULL, c ? c->log_len : 0, &err);
    if (with_output && rc == SH_S_OK)
        rc = sh_runstore_batch_end(e->store, true, &err);
    else if (with_output)
        sh_runstore_batch_end(e->store, false, &ignored);
    if (rc != SH_S_OK) {
        sh_error_prefix(&err, "stage '%s' not recorded", st->name);
        sh_engine_store_warn(&err);
        sr->unrecorded = true;
        e->store_failures++;
    } else {
        sr->unrecorded = false;
    }
}

/* `running`: recorded before the call, so that should the host die during it, a resumed run still counts it. */
void sh_engine_put_attempt(engine *e, const call *c, bool running)
{
    sh_attempt_record a = {.run_id = e->run_id,
                           .stage = e->p->stages[c->stage].name,
                           .attempt = c->attempt,
                           .status = running ? "running" : sh_outcome_name(sh_outcome_of(c->status)),
                           .error = running || c->status == SH_S_OK ? NULL : c->err.message,
                           .started_ns = running ? sh_wall_ns() : c->wall_started_ns,
                           .finished_ns = running ? 0 : c->wall_started_ns + (c->ended_ns - c->started_ns),
                           .cpu_user_us = c->usage.user_us,
                           .cpu_sys_us = c->usage.sys_us,
                           .peak_rss_kb = c->usage.maxrss_kb};
    sh_error err;
    if (sh_runstore_put_attempt(e->store, &a, &err) != SH_S_OK) {
        sh_engine_store_warn(&err);
        e->store_failures++;
    }
}

/* Records written between these go in one transaction. A failed commit loses them all: the stage is marked to be
 * recorded again at the end. */
void sh_engine_batch_begin(engine *e)
{
    sh_error err;
    if (sh_runstore_batch_begin(e->store, &err) != SH_S_OK)
        sh_engine_store_warn(&err); /* each record then commits on its own */
}

void sh_engine_batch_end(engine *e, size_t i)
{
    sh_error err;
    if (sh_runstore_batch_end(e->store, true, &err) != SH_S_OK) {
        sh_error_prefix(&err, "stage '%s' not recorded", e->p->stages[i].name);
        sh_engine_store_warn(&err);
        e->s[i].unrecorded = true;
        e->store_failures++;
    }
}

sh_status sh_engine_open_store(engine *e, sh_error *err)
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
    sh_engine_new_run_id(e->run_id);
    sh_run_record r = {.id = e->run_id,
                       .pipeline_path = e->p->path,
                       .pipeline_name = e->p->name,
                       .pipeline_version = e->p->version};
    /* The run and every stage in it, pending, in one transaction: the store always shows the whole pipeline. */
    rc = sh_runstore_batch_begin(e->store, err);
    if (rc == SH_S_OK)
        rc = sh_runstore_begin_run(e->store, &r, err);
    for (size_t i = 0; rc == SH_S_OK && i < e->p->count; i++)
        sh_engine_put_stage(e, i, "pending", NULL, false);
    sh_error end;
    if (sh_runstore_batch_end(e->store, rc == SH_S_OK, &end) != SH_S_OK && rc == SH_S_OK) {
        *err = end;
        rc = end.status;
    }
    return rc;
}

void sh_engine_record_end(engine *e, const char *status)
{
    sh_error err;
    if (sh_runstore_finish_run(e->store, e->run_id, status, e->stop ? e->failure.message : NULL, &err) != SH_S_OK) {
        sh_engine_store_warn(&err);
        return;
    }
    if (strcmp(status, "succeeded") != 0 || e->p->keep_outputs == SH_KEEP_OUTPUTS_ALL)
        return;
    /* A run that succeeded is not resumed, and the output cache keeps its entries apart: no one reads these
     * outputs again, and a store that kept them would grow by all the data of every run. */
    const char **names = calloc(e->p->count, sizeof *names);
    if (!names)
        return; /* they stay: a later prune removes them with the run */
    for (size_t i = 0; i < e->p->count; i++)
        names[i] = e->p->stages[i].name;
    if (sh_runstore_drop_outputs(e->store, e->run_id, names, e->p->count, &err) != SH_S_OK) {
        sh_error_prefix(&err, "the outputs of run %s were not dropped (a prune removes them with the run)",
                        e->run_id);
        sh_engine_store_warn(&err);
    } else {
        sh_log(SH_LOG_DEBUG, "run %s succeeded: its stages' stored outputs are dropped (keep_outputs = \"all\" "
                             "keeps them)", e->run_id);
    }
    free(names);
}
