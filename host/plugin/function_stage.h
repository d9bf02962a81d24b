/* Function stages: a descriptor stage implemented by an ordinary C function of the plugin's library (or of a
 * library it links, such as zlib or libm), called through libffi for each item, so an existing C library becomes a
 * stage with no glue code:
 *
 *   stages = ( { type = "crc"; function = "crc32_z";
 *                args = ( { type = "u64"; value = 0; }, { type = "bytes"; field = "content"; } );
 *                returns = { type = "u64"; field = "crc"; }; } );
 *
 * Each argument comes from a field of the item or is a constant; the result is stored in `returns.field` of a
 * copy of the item (a `returns = "void"` stage passes items through). */
#ifndef SH_FUNCSTAGE_H
#define SH_FUNCSTAGE_H

#include "plugin/ffi.h"
#include "registry/function_spec.h"

/* Builds a stage instance that calls `fn` as `spec` describes; freed by its destroy(). */
sh_status sh_funcstage_new(const sh_value *spec, void (*fn)(void), sh_stage **out, sh_error *err);

#endif
