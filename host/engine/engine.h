/* The pipeline engine: validate everything, then run the stage graph. Independent branches run at once (each
 * isolated stage's call waits on its own thread while its worker process works); in-process stages run on the
 * calling thread, which is every in-process plugin's one plugin thread. Retries, gates, the output cache and the
 * run store live here; what a stage does lives in its plugin. */
#ifndef SH_ENGINE_H
#define SH_ENGINE_H

#include "engine/pipeline.h"
#include "engine/validate.h"
#include "hooks/hooks.h"
#include "registry/registry.h"
#include "runtime/resolve.h"
#include "runtime/runtime.h"

typedef struct sh_run_options {
    const char *store_path; /* NULL: .stagehost/runs.db beside the pipeline */
    const char *resume_id;  /* NULL: a new run; else a run id (or unique prefix) to resume */
    size_t jobs;            /* isolated stages running at once at most; 0: the number of CPUs */
    bool progress;          /* draw live progress lines on stderr (the caller checks for a terminal) */
    /* The caller's hook table slot (hooks/hooks.h: sh_hooks_get), kept across runs and freed by the caller; NULL:
     * the run builds a table only if it needs one, and frees it at its end. */
    sh_hooks **hooks;
} sh_run_options;

typedef struct sh_stage_report {
    char *name;
    char *status;  /* succeeded, failed, skipped, cached, reused, not run */
    char *source;  /* "core/text 1.2.0" or "built-in" */
    char *error;   /* NULL unless failed or skipped */
    size_t items_in, items_out;
    uint32_t attempts;
    int64_t wall_ns;
} sh_stage_report;

typedef struct sh_run_report {
    char run_id[65];
    const char *status; /* succeeded, failed, partial (a stage with on_failure = "continue" failed) */
    char *store_path;
    sh_stage_report *stages; /* in pipeline order */
    size_t count;
    size_t workers_started;
    int64_t wall_ns;
    char *store_problem; /* NULL, or what the run store failed to record */
} sh_run_report;

/* Validates, then runs (or resumes) the pipeline, recording it in the run store. A failing stage ends the run
 * with SH_S_STAGE/CRASH/TIMEOUT/PROTOCOL and a message naming the stage, its plugin, the attempt and the cause,
 * and the stages that did not run; with on_failure = "continue" only its downstream branch is skipped and the
 * run returns SH_S_OK with status "partial". The report is filled whenever the run started. */
sh_status sh_engine_run(sh_pipeline *p, sh_runtime *rt, const sh_run_options *opts, sh_run_report *report,
                        sh_error *err);
void sh_run_report_free(sh_run_report *r);

#endif
