/*
 * stagehost/hooks.h - the frozen calling conventions of the plugin functions the host calls by symbol: hook
 * implementations and function stages. Part of the binary contract, like stagehost/abi.h, and under the same
 * rules; it includes nothing but that header, <stdint.h> and <stddef.h>.
 *
 * Both kinds of function are exported C functions named in the plugin's descriptor, resolved when the plugin
 * loads (a missing symbol refuses the plugin), and called through libffi with a signature the host prepares once
 * from declared types: a hookspec's `args` and `returns` for a hook, a descriptor stage's `args` and `returns`
 * for a function stage. They run where the plugin runs: in its worker, or in the host for isolation "none".
 *
 * Declared types and the C types they are passed as:
 *
 *   i32     int32_t            u32     uint32_t           i64     int64_t            u64     uint64_t
 *   double  double             bool    int (0 or 1)       string  const char * (NUL-terminated UTF-8)
 *   bytes   two arguments: const void *data, size_t len   value   const sh_value *
 *
 * Arguments are [borrowed] for the call. A u64 travels through values as its 64-bit pattern.
 */
#ifndef STAGEHOST_HOOKS_H
#define STAGEHOST_HOOKS_H

#include <stagehost/abi.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------------------
 * Hook implementations
 *
 * A hook (declared in a KIND.hooks hookspec) is implemented by a function the descriptor names:
 *     hooks = ( { hook = "doc.validate"; symbol = "my_validate"; priority = 10; } );
 * with this shape:
 *
 *     int my_validate(sh_call *call, ARG1, ..., ARGn, RESULT *out);
 *
 * RESULT *out is absent for a hook returning void. For numbers and bool it points at the C type above; for
 * string, bytes and value it is an sh_value ** that receives an [owned] value the implementation built with the
 * host's new_* functions (new_string for string, new_bytes for bytes), which the host then owns.
 *
 * The int is SH_OK after setting *out; or a failure status after host->fail(call, why) (the host names the
 * plugin); or, in a chain hook only, SH_HOOK_STOP to stop the chain: *out is then ignored, and the value passed
 * into this implementation is the chain's result. After a failure or a stop the host frees a value left in *out.
 * `call` gives the usual context, log, clock and random source; emit() is refused.
 * [plugin-thread] [in-call]
 *
 * Priorities of 1000 and above are reserved for the host's middleware; a descriptor declaring one is refused.
 * ------------------------------------------------------------------------------------------------------------- */

/* The status with which a chain hook's implementation stops the chain. */
#define SH_HOOK_STOP 100

/* ---------------------------------------------------------------------------------------------------------------
 * Function stages
 *
 * A descriptor stage with a `function` is a plain C function, of the plugin's library or of a library it links,
 * that the host calls once per input item:
 *
 *     RET fn(ARG1, ..., ARGn);
 *
 * with no sh_call: it knows nothing of stagehost, so an existing C library (libm, zlib) becomes a stage with no
 * glue code. Each argument comes from a field of the item or is a constant of the descriptor, with the types
 * above (a bytes argument also takes a string field). RET is one of the number types, bool, string, or void;
 * the host stores it in `returns.field` of a copy of the item (a void stage passes items through). A string
 * result is [borrowed], as strerror()'s is: the host copies it and never frees it; NULL becomes null, and text
 * that is not valid UTF-8 fails the stage. A function stage cannot report a failure of its own.
 * [plugin-thread] [init..fini]
 * ------------------------------------------------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* STAGEHOST_HOOKS_H */
