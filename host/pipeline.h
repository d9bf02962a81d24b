/* Pipeline files (libconfig): a `pipeline` group with `name` and a `stages` list, run in order. */
#ifndef SH_PIPELINE_H
#define SH_PIPELINE_H

#include "descriptor.h"
#include "value.h"

typedef struct sh_pipeline_stage {
    char *name;
    char *type;
    sh_value *config;       /* a map; empty when the stage has no `config` */
    sh_isolation isolation; /* SH_ISOLATION_DEFAULT: the plugin's own */
    int64_t timeout_ms;     /* 0: the plugin's own */
    int line;
} sh_pipeline_stage;

typedef struct sh_pipeline {
    char *path;
    char *dir; /* relative paths in stage configuration resolve against it */
    char *name;
    sh_pipeline_stage *stages;
    size_t count;
} sh_pipeline;

/* Parses and validates the pipeline at `path`: "PATH:LINE: ..." errors with SH_S_CONFIG. */
sh_status sh_pipeline_load(const char *path, sh_pipeline **out, sh_error *err);
void sh_pipeline_free(sh_pipeline *p);

#endif
