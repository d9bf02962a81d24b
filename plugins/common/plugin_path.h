/*
 * Paths in stage configuration, resolved as the built-in read and write stages resolve theirs: relative to the
 * pipeline file's directory (the context's base_dir), so a pipeline means the same wherever it is run from.
 */
#ifndef STAGEHOST_PLUGIN_PATH_H
#define STAGEHOST_PLUGIN_PATH_H

#include <stagehost/sdk.h>

/* A malloc'd absolute-or-base-relative path for `path`; NULL (after sh_failf) when out of memory. */
char *pp_resolve(sh_call *call, const char *path);

/* Creates the directories leading to the file `path` (like mkdir -p of its dirname). Returns 0, or -1 with
 * errno set and the directory that could not be made copied into `failed`. */
int pp_make_parents(const char *path, char *failed, size_t len);

/* A short hint for an errno from opening or creating a file in a worker: EACCES/EPERM there usually means the
 * sandbox, and the user needs to know which grant or setting helps. */
const char *pp_access_hint(int err);

#endif
