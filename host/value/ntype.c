#include "value/ntype.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"void", "i32", "u32", "i64", "u64", "double", "bool", "string", "bytes", "value"};

bool sh_ntype_parse(const char *s, bool allow_void, sh_ntype *out)
{
    for (size_t i = allow_void ? 0 : 1; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (sh_ntype)i;
            return true;
        }
    return false;
}

const char *sh_ntype_name(sh_ntype t) { return (size_t)t < sizeof names / sizeof names[0] ? names[t] : "?"; }

sh_status sh_ntype_value_from_text(sh_ntype t, const char *text, sh_value **out, sh_error *err)
{
    *out = NULL;
    char *end = NULL;
    errno = 0;
    switch (t) {
    case SH_NT_I32:
    case SH_NT_U32:
    case SH_NT_I64:
    case SH_NT_U64: {
        long long x = strtoll(text, &end, 0);
        if (!*text || *end || errno)
            return sh_error_set(err, SH_S_CONFIG, "'%s' is not an integer (%s)", text, sh_ntype_name(t));
        *out = sh_value_int(x);
        break;
    }
    case SH_NT_DOUBLE: {
        double d = strtod(text, &end);
        if (!*text || *end || errno)
            return sh_error_set(err, SH_S_CONFIG, "'%s' is not a number (double)", text);
        *out = sh_value_double(d);
        break;
    }
    case SH_NT_BOOL:
        if (strcmp(text, "true") && strcmp(text, "false") && strcmp(text, "1") && strcmp(text, "0"))
            return sh_error_set(err, SH_S_CONFIG, "'%s' is not a bool: use true or false", text);
        *out = sh_value_bool(strcmp(text, "true") == 0 || strcmp(text, "1") == 0);
        break;
    case SH_NT_BYTES:
        *out = sh_value_bytes(text, strlen(text));
        break;
    default:
        *out = sh_value_string(text, strlen(text));
        if (!*out)
            return sh_error_set(err, SH_S_CONFIG, "argument is not valid UTF-8");
        break;
    }
    return *out ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory");
}

static sh_status mistyped(sh_error *err, const char *what, sh_ntype want, const sh_value *v, const char *why)
{
    return sh_error_set(err, SH_S_CONFIG, "%s: expected %s, got %s%s%s", what, sh_ntype_name(want),
                        v ? sh_type_name(sh_value_type(v)) : "nothing", why ? " " : "", why ? why : "");
}

sh_status sh_ntype_check(sh_ntype t, const sh_value *v, const char *what, sh_error *err)
{
    sh_type vt = v ? sh_value_type(v) : SH_TYPE_NULL;
    switch (t) {
    case SH_NT_I32:
    case SH_NT_U32:
    case SH_NT_I64:
    case SH_NT_U64: {
        if (vt != SH_TYPE_INT)
            return mistyped(err, what, t, v, NULL);
        int64_t x = sh_value_get_int(v);
        if ((t == SH_NT_I32 && (x < INT32_MIN || x > INT32_MAX)) || (t == SH_NT_U32 && (x < 0 || x > UINT32_MAX)) ||
            (t == SH_NT_U64 && x < 0))
            return mistyped(err, what, t, v, "out of range");
        return SH_S_OK;
    }
    case SH_NT_DOUBLE:
        return vt == SH_TYPE_INT || vt == SH_TYPE_DOUBLE ? SH_S_OK : mistyped(err, what, t, v, NULL);
    case SH_NT_BOOL:
        return vt == SH_TYPE_BOOL ? SH_S_OK : mistyped(err, what, t, v, NULL);
    case SH_NT_STRING:
        return vt == SH_TYPE_STRING ? SH_S_OK : mistyped(err, what, t, v, NULL);
    case SH_NT_BYTES:
        return vt == SH_TYPE_BYTES || vt == SH_TYPE_STRING ? SH_S_OK : mistyped(err, what, t, v, NULL);
    case SH_NT_VALUE:
        return v ? SH_S_OK : mistyped(err, what, t, v, NULL);
    default:
        return mistyped(err, what, t, v, NULL);
    }
}
