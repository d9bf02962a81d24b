/* Plugin descriptor files (NAME.plugin, libconfig syntax): parsed and validated without running plugin code. */
#ifndef SH_DESCRIPTOR_H
#define SH_DESCRIPTOR_H

#include "util/error.h"
#include "util/names.h"
#include "util/strlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SH_DESCRIPTOR_FORMAT 1

typedef enum sh_isolation {
    SH_ISOLATION_DEFAULT = 0, /* not set: process for plugins */
    SH_ISOLATION_PROCESS,
    SH_ISOLATION_CALL,
    SH_ISOLATION_NONE
} sh_isolation;

const char *sh_isolation_name(sh_isolation iso);
/* Parses "process", "call" or "none"; returns false for anything else. */
bool sh_isolation_parse(const char *s, sh_isolation *out);

typedef struct sh_stage_decl {
    char *type;
    char *input;
    char *output;
    char *description; /* may be NULL */
    /* The stage's output depends only on its input items, its configuration and the plugin's version, so the
     * engine may reuse a stored output when all three match. */
    bool idempotent;
    /* A function stage: an ordinary C function called through libffi for each item (plugin/function_stage.h), as a map
     * { symbol, args = [ { type, field | value } ], returns = { type, field } }; NULL for a plugin's own stage. */
    struct sh_value *function;
    int line;
} sh_stage_decl;

/* One hook implementation: `hooks = ( { hook = "KIND.NAME"; symbol = "..."; priority = N; supports = ( ... );
 * fallback = true; } )`. The symbol is resolved when the plugin loads. */
typedef struct sh_hook_decl {
    char *hook;   /* "KIND.NAME" */
    char *symbol; /* the exported C function */
    int64_t priority; /* below SH_HOOK_PRIORITY_RESERVED */
    char **supports;  /* capability tags, supports_count of them */
    size_t supports_count;
    bool fallback;    /* capability dispatch: answers when no implementation supports the call's tags */
    int line;
} sh_hook_decl;

/* Priorities from this value up belong to the host's middleware (governance, quota). */
#define SH_HOOK_PRIORITY_RESERVED 1000

typedef struct sh_limits {
    int64_t memory_mb;   /* 0: host default */
    int64_t cpu_seconds; /* 0: host default */
    int64_t timeout_ms;  /* 0: host default */
    int64_t open_files;  /* 0: host default */
    int64_t processes;   /* 0: host default; RLIMIT_NPROC (not enforced for root) */
    int64_t file_size_mb; /* 0: host default; largest file the worker may write */
    int64_t output_mb;   /* 0: host default; most bytes one call may emit */
} sh_limits;

typedef struct sh_permissions {
    bool network;
    bool exec;
    sh_strlist read;
    sh_strlist write;
    sh_strlist env;
} sh_permissions;

typedef struct sh_descriptor {
    char *path;    /* the descriptor file */
    char *dir;     /* its directory */
    int format;
    char *name;    /* "namespace/name" */
    char *version; /* semantic version */
    char *library; /* as written */
    char *library_path; /* resolved against dir */
    char *entry;   /* exported symbol */
    char *description;
    uint16_t abi_major, abi_minor;
    sh_stage_decl *stages;
    size_t stage_count;
    sh_hook_decl *hooks; /* hook implementations */
    size_t hook_count;
    sh_strlist requires;            /* as written */
    struct sh_requirement *requirements; /* parsed, requires.len of them */
    /* The plugins this one requires, deepest first, loaded before it and finalised after it. Set by the registry
     * after its dependency check (borrowed from the registry), or decoded in a worker (owned). */
    struct sh_descriptor **deps;
    size_t dep_count;
    bool owns_deps;
    /* In a worker only: the library opened before dropping privileges, plus one (0: none); dlopen goes through
     * /proc/self/fd then. */
    int library_fd;
    int64_t priority;
    sh_isolation isolation;
    sh_limits limits;
    sh_permissions permissions;
    int name_line, version_line, stages_line;
    /* The struct, its strings and its arrays are one allocation (the registry cache's, registry/cache_record.c): a
     * cached discovery of 10,000 plugins makes 10,000 allocations instead of 200,000. Only stage functions and
     * dependencies are separate. Set by nothing else; sh_descriptor_free knows. */
    bool packed;
} sh_descriptor;

/* Parses and validates the descriptor at `path`. On failure returns SH_S_CONFIG with "PATH:LINE: ..." in err,
 * and *out is NULL. The library file is not opened: only its existence is checked. */
sh_status sh_descriptor_load(const char *path, sh_descriptor **out, sh_error *err);

/* What a discovery knows about the directory whose descriptors it loads, shared by those loads. */
typedef struct sh_descriptor_dir {
    const char *real; /* realpath() of the directory; NULL: each load works it out */
    /* The last library looked for, and what stat() said (0 or its errno; whether a regular file): descriptors
     * often share a library, and one look per scan is as good a snapshot as one per descriptor. */
    char *lib;
    int lib_errno;
    bool lib_regular;
} sh_descriptor_dir;

/* Frees what the loads kept in `dir` (not dir->real). */
void sh_descriptor_dir_release(sh_descriptor_dir *dir);

/* Whether `library_path` is a regular file, with stat()'s errno when it cannot be looked at, remembered in `dir`
 * (may be NULL). */
bool sh_descriptor_library_regular(sh_descriptor_dir *dir, const char *library_path, int *err_no);

/* As sh_descriptor_load_named, for discovery, which loads a whole directory at once (dir may be NULL). */
sh_status sh_descriptor_load_in(const char *path, sh_descriptor_dir *dir, sh_descriptor **out, char **name,
                                sh_error *err);

void sh_descriptor_free(sh_descriptor *d);

/* Parses a `limits` group (descriptor or host configuration) into `out`, leaving absent keys untouched. */
typedef struct sh_cfg sh_cfg;
typedef struct config_setting_t config_setting_t;
sh_status sh_descriptor_parse_limits(sh_cfg *p, const config_setting_t *group, sh_limits *out);

const sh_stage_decl *sh_descriptor_find_stage(const sh_descriptor *d, const char *type);

#endif
