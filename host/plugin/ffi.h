/* Native calls built with libffi for the signatures of value/ntype.h: the conversion of
 * values to C arguments and of C results back to values, and calls prepared once (ffi_prep_cif) and reused. */
#ifndef SH_FFISIG_H
#define SH_FFISIG_H

#include "plugin/call.h"
#include "util/error.h"
#include "value/ntype.h"

#include <ffi.h>
#include <stagehost/hooks.h>
#include <stdbool.h>

/* The two conventions of stagehost/hooks.h share the machinery: SH_CONV_HOOK, int fn(sh_call *call, ARGS...,
 * RET *out), for hook implementations, and SH_CONV_PLAIN, RET fn(ARGS...), for function stages. */
typedef enum sh_convention { SH_CONV_HOOK, SH_CONV_PLAIN } sh_convention;

#define SH_FFI_MAX_SLOTS (2 * SH_SIG_MAX_ARGS + 2)

/* A call prepared once and reused for every invocation of any function with this signature. */
typedef struct sh_ffi_call {
    ffi_cif cif;
    ffi_type *types[SH_FFI_MAX_SLOTS];
    size_t nslots;
    sh_signature sig;
    sh_convention conv;
    /* Worked out once so that a call does no per-argument bookkeeping: the first slot of each argument (bytes
     * take two), and whether the hook convention hands its result back as an sh_value * (string, bytes, value)
     * rather than as a C scalar in sh_ffi_args.out. */
    unsigned char first_slot[SH_SIG_MAX_ARGS];
    bool boxed;
} sh_ffi_call;

sh_status sh_ffi_prepare(sh_ffi_call *c, const sh_signature *sig, sh_convention conv, sh_error *err);

/* Native argument storage for one call. Pointers borrow from the values passed to sh_ffi_args_set. */
typedef union sh_ffi_slot {
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    double d;
    int b;
    const void *p;
    size_t n;
} sh_ffi_slot;

typedef struct sh_ffi_args {
    sh_ffi_slot slots[SH_FFI_MAX_SLOTS];
    void *ptrs[SH_FFI_MAX_SLOTS];
    sh_ffi_slot out;     /* the hook convention's result out-parameter */
    sh_value *out_value; /* ... when it is an sh_value * */
    void *out_ptr;
} sh_ffi_args;

/* Points every argument slot at its storage; call once per sh_ffi_args (after a copy too). */
void sh_ffi_args_init(sh_ffi_args *a, const sh_ffi_call *c);

/* Converts argument `i` from a value, checked with sh_ntype_check; `what` names the argument in errors. */
sh_status sh_ffi_arg_set(sh_ffi_args *a, const sh_ffi_call *c, size_t i, const sh_value *v, const char *what,
                         sh_error *err);

/* Calls `fn` with the hook convention. Returns the implementation's int status; on SH_OK, *result is the
 * result as a value (NULL for void), owned by the caller. A result of the wrong value type (a string hook
 * returning an integer value) is a failure recorded in `call`. */
int sh_ffi_call_hook(const sh_ffi_call *c, void (*fn)(void), sh_call *call, sh_ffi_args *a, sh_value **result);

/* sh_ffi_call_hook without building the result: on SH_OK a scalar result stays in a->out as C data and a boxed
 * one in a->out_value (checked, owned by the caller). A caller that passes a scalar straight on (a chain's next
 * link) thus allocates nothing; sh_ffi_result_value turns it into a value when one is needed. */
int sh_ffi_call_hook_raw(const sh_ffi_call *c, void (*fn)(void), sh_call *call, sh_ffi_args *a);

/* The result of a successful sh_ffi_call_hook_raw as a value (moved out of `a` when boxed): NULL for void, or
 * when out of memory. */
sh_value *sh_ffi_result_value(const sh_ffi_call *c, sh_ffi_args *a);

/* A scalar of type `t` (i32, u32, i64, u64, double, bool) held in a slot, as a value; NULL when out of memory or
 * for another type. */
sh_value *sh_ffi_slot_value(sh_ntype t, const sh_ffi_slot *s);

/* Whether `v` is what an implementation of a hook returning `t` may hand back: nothing for void; for the others a
 * value of the matching type (an integer within i32 or u32 for those, a bool, a double, a string, bytes; anything
 * for value). A worker's answer comes from another process and is checked with this before anything uses it.
 * On false, `why` says what came instead ("an integer", "no result", "the integer 4294967296 outside ..."). */
bool sh_ffi_result_ok(sh_ntype t, const sh_value *v, char *why, size_t why_len);

/* Calls `fn` with the plain convention; *result is the return value as a value (NULL for void, or when out of
 * memory or a string result is not UTF-8: then SH_S_STAGE with the reason). */
sh_status sh_ffi_call_plain(const sh_ffi_call *c, void (*fn)(void), sh_ffi_args *a, sh_value **result, sh_error *err);

#endif
