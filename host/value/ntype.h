/* The native types a hookspec or a function stage may declare, and the signatures made of them: a grammar that
 * descriptors, hookspecs and the libffi calls of plugin/ffi.h share, kept here so the registry can parse it
 * without depending on the code that calls plugins. */
#ifndef SH_NTYPE_H
#define SH_NTYPE_H

#include "util/error.h"
#include "value/value.h"

#include <stdbool.h>
#include <stddef.h>

/* Declared argument and return types. bytes is two C arguments (const void *, size_t); value is an sh_value. */
typedef enum sh_ntype {
    SH_NT_VOID = 0, /* returns only */
    SH_NT_I32,
    SH_NT_U32,
    SH_NT_I64,
    SH_NT_U64,
    SH_NT_DOUBLE,
    SH_NT_BOOL,   /* an int (0 or 1) in C: _Bool's calling convention varies more than int's */
    SH_NT_STRING, /* const char *, NUL-terminated UTF-8 */
    SH_NT_BYTES,  /* const void *, size_t */
    SH_NT_VALUE   /* const sh_value * */
} sh_ntype;

#define SH_SIG_MAX_ARGS 16

typedef struct sh_signature {
    sh_ntype ret;
    sh_ntype args[SH_SIG_MAX_ARGS];
    size_t nargs;
} sh_signature;

/* "i32", "u32", "i64", "u64", "double", "bool", "string", "bytes", "value" (and "void" when `allow_void`). */
bool sh_ntype_parse(const char *s, bool allow_void, sh_ntype *out);
const char *sh_ntype_name(sh_ntype t);
/* The list of type names, for error messages. */
#define SH_NTYPE_NAMES "i32, u32, i64, u64, double, bool, string, bytes, value"

/* Parses a command-line word as a value of type `t` ("42", "true", text). */
sh_status sh_ntype_value_from_text(sh_ntype t, const char *text, sh_value **out, sh_error *err);

/* Whether `v` may be passed as an argument of type `t`: integers must fit, double takes integers, bytes takes
 * strings too, value takes anything but nothing. SH_S_CONFIG naming `what`, both types and the reason. */
sh_status sh_ntype_check(sh_ntype t, const sh_value *v, const char *what, sh_error *err);

#endif
