/* The descriptor keys of a function stage (plugin/function_stage.h): read when the descriptor is read, so a
 * mistake is reported with its file:line before anything runs, and kept as a value spec the worker's stage reads. */
#ifndef SH_FUNCTION_SPEC_H
#define SH_FUNCTION_SPEC_H

#include "value/cfgread.h"
#include "value/ntype.h"

/* Parses the function keys of a stage group into *out (NULL when the stage has no `function`). Errors name
 * file:line; `args` or `returns` without `function` is an error too. */
sh_status sh_funcstage_parse(sh_cfg *p, const config_setting_t *stage, sh_value **out);

/* The C symbol a function stage calls. */
const char *sh_funcstage_symbol(const sh_value *spec);

#endif
