/* Built-in stages: the fallbacks when no plugin provides a type. They are an in-process plugin written against
 * the same ABI as any other, so the engine runs them through the same path. */
#ifndef SH_BUILTINS_H
#define SH_BUILTINS_H

#include <stagehost/abi.h>

#define SH_BUILTIN_PLUGIN_NAME "stagehost/builtin"

const sh_plugin *sh_builtin_plugin(void);

/* The stage type entry of built-in `type`, or NULL. */
const sh_stage_type *sh_builtin_find(const char *type);

/* The individual stages, one file each. */
int sh_builtin_read(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_chunk(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_write(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_gate(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);
int sh_builtin_hook(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);

/* Shared by the built-ins: `path` joined to the stage's base directory unless absolute (caller frees). */
char *sh_builtin_resolve_path(sh_call *call, const char *path);
/* Sets a formatted failure message on `call` and returns `code`. */
__attribute__((format(printf, 3, 4))) int sh_builtin_failf(sh_call *call, int code, const char *fmt, ...);
/* Emits a copy of each item; returns the first failing status. */
int sh_builtin_forward(sh_call *call, const sh_value *const *items, size_t count);

#endif
