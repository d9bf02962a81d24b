/* The pipeline engine: validate everything, then run the stages in order, loading each plugin on first use. */
#ifndef SH_ENGINE_H
#define SH_ENGINE_H

#include "pipeline.h"
#include "registry.h"
#include "runtime.h"

typedef struct sh_run_summary {
    char execution_id[33];
    size_t stages_run;
    size_t items_out; /* items the last stage emitted */
    size_t workers_started;
} sh_run_summary;

/* Resolves every stage and checks contracts between neighbours; reports every problem at once (SH_S_RESOLVE or
 * SH_S_CONFIG, one "PIPELINE:LINE: stage 'NAME': ..." line each). */
sh_status sh_engine_validate(const sh_pipeline *p, const sh_registry *reg, const sh_value *pins, sh_error *err);

/* Validates, then runs. A failing stage stops the run with SH_S_STAGE/CRASH/TIMEOUT/PROTOCOL and a message
 * naming the stage, its plugin, the attempt and the cause, and the stages that did not run. */
sh_status sh_engine_run(const sh_pipeline *p, sh_runtime *rt, sh_run_summary *summary, sh_error *err);

#endif
