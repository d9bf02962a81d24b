/* Built-in stages: the fallbacks when no plugin provides a type. They are an in-process plugin written against
 * the same ABI as any other, so the engine runs them through the same path. */
#ifndef SH_BUILTINS_H
#define SH_BUILTINS_H

#include <stagehost/abi.h>
#include <stdbool.h>

#define SH_BUILTIN_PLUGIN_NAME "stagehost/builtin"

const sh_plugin *sh_builtin_plugin(void);

/* The stage type entry of built-in `type`, or NULL. */
const sh_stage_type *sh_builtin_find(const char *type);

/* The individual stages, one file each. These see each batch on its own. */
int sh_builtin_chunk(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_gate(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_hook(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);

/* A built-in whose work spans batches keeps its state explicitly: check() reads its configuration without
 * touching any file (what sh_builtin_check_config() runs), open() makes the state before the first batch, batch() handles one batch, finish() ends the stream after the last
 * batch, and close() releases the state whether or not finish() ran (a failed run must leave nothing behind).
 * ABI 1.0 has no end-of-stream call and today's engine hands a stage all its input in one process() call, so the
 * built-in plugin runs batch() then finish() in every call; with ABI 1.1's finish() they become separate. */
typedef struct sh_builtin_stream {
    bool (*check)(const sh_value *config, char *why, size_t why_len);
    int (*open)(const sh_stage_def *def, sh_call *call, void **state);
    int (*batch)(void *state, sh_call *call, const sh_value *const *items, size_t count);
    int (*finish)(void *state, sh_call *call);
    void (*close)(void *state);
} sh_builtin_stream;

extern const sh_builtin_stream sh_builtin_read;
extern const sh_builtin_stream sh_builtin_write;

/* Shared by the built-ins: `path` joined to the stage's base directory unless absolute (caller frees). */
char *sh_builtin_resolve_path(sh_call *call, const char *path);
/* Whether `config` suits built-in `type`, without running it: false with the reason in `why`. For validating a
 * pipeline before anything runs; a type without such a check passes. */
bool sh_builtin_check_config(const char *type, const sh_value *config, char *why, size_t why_len);
/* Whether every key of `config` is in `known` (a typo must not fall back to a default); if not, `why` names the
 * key, the closest known one or else all of them, and the built-in `type`. */
bool sh_builtin_known_keys(const sh_value *config, const char *type, const char *const *known, size_t count,
                           char *why, size_t why_len);
/* Emits a copy of each item; returns the first failing status. */
int sh_builtin_forward(sh_call *call, const sh_value *const *items, size_t count);

#endif
