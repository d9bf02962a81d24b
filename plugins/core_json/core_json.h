/* core/json: the stage functions of each file, gathered into the plugin table by core_json.c. */
#ifndef STAGEHOST_CORE_JSON_H
#define STAGEHOST_CORE_JSON_H

#include <stagehost/sdk.h>

/* json_parse.c */
int parse_create(sh_call *call, const sh_stage_def *def, void **user);
int parse_process(void *user, sh_call *call, const sh_value *const *items, size_t count);

/* json_serialize.c */
int serialize_create(sh_call *call, const sh_stage_def *def, void **user);
int serialize_process(void *user, sh_call *call, const sh_value *const *items, size_t count);

/* json_fields.c */
int select_create(sh_call *call, const sh_stage_def *def, void **user);
int select_process(void *user, sh_call *call, const sh_value *const *items, size_t count);
int rename_create(sh_call *call, const sh_stage_def *def, void **user);
int rename_process(void *user, sh_call *call, const sh_value *const *items, size_t count);

#endif
