/* The `hook` built-in stage: calls a hook once per input item, taking the hook's arguments from item fields,
 * and passes each item on with the hook's answer in a field. It is how a pipeline uses hooks (validate this
 * document, choose a parser for this type). The engine runs it on its main thread, with the runtime's lock held,
 * since hook implementations share the runtime's instance cache. */
#ifndef SH_HOOKSTAGE_H
#define SH_HOOKSTAGE_H

#include "runtime.h"
#include "value.h"

#define SH_HOOK_STAGE_TYPE "hook"

typedef struct sh_hook_stage {
    char *hook;      /* "KIND.NAME" */
    char **args;     /* item fields, one per hook argument */
    size_t arg_count;
    char **tags;     /* capability tags */
    size_t tag_count;
    char *into;      /* the field the answer goes into; default "result" */
} sh_hook_stage;

/* Reads the stage configuration { hook; args = ( "field", ... ); tags = ( ... ); into; }. On error returns false
 * with what is wrong and what is expected in `why`. */
bool sh_hook_stage_parse(const sh_value *config, sh_hook_stage *out, char *why, size_t why_len);
void sh_hook_stage_free(sh_hook_stage *hs);

/* Calls the hook for each item of `input`, appending to `output`. Stops at the first failure (SH_S_STAGE, or the
 * hook system's own status) with a message naming the item. */
sh_status sh_hook_stage_run(const sh_hook_stage *hs, sh_runtime *rt, const sh_values *input, sh_values *output,
                            sh_error *err);

#endif
