/* The `hook` built-in stage: calls a hook once per input item, taking the hook's arguments from item fields,
 * and passes each item on with the hook's answer in a field. It is how a pipeline uses hooks (validate this
 * document, choose a parser for this type). This file reads its configuration; hooks/stage.h runs it. */
#ifndef SH_HOOKSTAGE_H
#define SH_HOOKSTAGE_H

#include "value/value.h"

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

#endif
