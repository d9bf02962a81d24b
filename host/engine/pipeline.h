/* Pipeline files (libconfig): a `pipeline` group with `name`, optional `version` and `metadata`, and a `stages`
 * list. Stages form a graph through `depends_on`; a stage without `depends_on` depends on the stage listed
 * before it, so a plain list is a linear pipeline. */
#ifndef SH_PIPELINE_H
#define SH_PIPELINE_H

#include "registry/descriptor.h"
#include "value/value.h"

typedef enum sh_on_failure {
    SH_ON_FAILURE_FAIL = 0, /* the run fails; every stage not yet finished is skipped */
    SH_ON_FAILURE_CONTINUE  /* only the stages downstream of this one are skipped */
} sh_on_failure;

/* What the run store keeps of a run's stage outputs once the run succeeded. */
typedef enum sh_keep_outputs {
    SH_KEEP_OUTPUTS_RESUME = 0, /* "resume": only what a resume needs, so nothing after a success */
    SH_KEEP_OUTPUTS_ALL         /* "all": every stage's output */
} sh_keep_outputs;

typedef struct sh_retry {
    int64_t max;        /* retries after the first attempt; 0: none */
    int64_t backoff_ms; /* the wait before the first retry */
    double multiplier;  /* each further wait is this many times the one before */
} sh_retry;

typedef struct sh_pipeline_stage {
    char *name;
    char *type;
    sh_value *config;       /* a map; empty when the stage has no `config` */
    sh_isolation isolation; /* SH_ISOLATION_DEFAULT: the plugin's own */
    int64_t timeout_ms;     /* 0: the plugin's own */
    char **depends_on;      /* names, in declared order; the order in which upstream outputs are concatenated */
    int *depends_line;      /* the line of each name, for errors */
    size_t dep_count;
    bool explicit_deps;     /* `depends_on` was written (possibly empty) */
    sh_retry retry;
    int cache;              /* -1: not set (the descriptor's `idempotent` decides), 0 or 1 */
    sh_on_failure on_failure;
    int line;
} sh_pipeline_stage;

typedef struct sh_pipeline {
    char *path;
    char *dir; /* relative paths in stage configuration resolve against it */
    char *name;
    char *version;      /* NULL when not given */
    sh_value *metadata; /* a map; empty when not given */
    sh_keep_outputs keep_outputs;
    sh_pipeline_stage *stages;
    size_t count;
    /* Set by sh_pipeline_check(): each stage's upstream stages by index, in declared order. */
    size_t **deps;
} sh_pipeline;

/* Parses the pipeline at `path`. Every malformed key is reported at once, one "PATH:LINE: ..." line each, with
 * SH_S_CONFIG. The graph is not checked: see sh_pipeline_check(). */
sh_status sh_pipeline_load(const char *path, sh_pipeline **out, sh_error *err);

/* Checks the graph: duplicate names, `depends_on` naming no stage, a stage depending on itself or twice on one
 * stage, and cycles (printed as a path). Appends every problem to `err` (which may already hold errors; its
 * status becomes SH_S_CONFIG) and returns how many it found. On success p->deps is filled. */
size_t sh_pipeline_check(sh_pipeline *p, sh_error *err);

/* A topological order of the stages (valid only after a clean sh_pipeline_check): stages appear after all their
 * upstream stages, ties broken by declared order. `order` has p->count entries. */
void sh_pipeline_order(const sh_pipeline *p, size_t *order);

void sh_pipeline_free(sh_pipeline *p);

#endif
