/* Running the `hook` built-in stage (builtin/hook.h) against a hook table. The engine runs it on its main thread,
 * since hook implementations share the runtime's instance cache with the stages. */
#ifndef SH_HOOK_STAGE_H
#define SH_HOOK_STAGE_H

#include "builtin/hook.h"
#include "hooks/hooks.h"

/* Calls the hook of table `*table` (built on first use: sh_hooks_get) for each item of `input`, appending to
 * `output`. Stops at the first failure (SH_S_STAGE, or the hook system's own status) with a message naming the
 * item. */
sh_status sh_hook_stage_run(const sh_hook_stage *hs, sh_runtime *rt, sh_hooks **table, const sh_values *input,
                            sh_values *output, sh_error *err);

#endif
