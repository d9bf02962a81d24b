#include "plugin/ffi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ffi_type *size_type(void) { return sizeof(size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32; }

static ffi_type *scalar(sh_ntype t)
{
    switch (t) {
    case SH_NT_I32:
        return &ffi_type_sint32;
    case SH_NT_U32:
        return &ffi_type_uint32;
    case SH_NT_I64:
        return &ffi_type_sint64;
    case SH_NT_U64:
        return &ffi_type_uint64;
    case SH_NT_DOUBLE:
        return &ffi_type_double;
    case SH_NT_BOOL:
        return &ffi_type_sint;
    case SH_NT_VOID:
        return &ffi_type_void;
    default:
        return &ffi_type_pointer;
    }
}

sh_status sh_ffi_prepare(sh_ffi_call *c, const sh_signature *sig, sh_convention conv, sh_error *err)
{
    memset(c, 0, sizeof *c);
    c->sig = *sig;
    c->conv = conv;
    if (sig->nargs > SH_SIG_MAX_ARGS)
        return sh_error_set(err, SH_S_CONFIG, "%zu arguments: at most %d are supported", sig->nargs, SH_SIG_MAX_ARGS);
    size_t n = 0;
    if (conv == SH_CONV_HOOK)
        c->types[n++] = &ffi_type_pointer; /* sh_call * */
    for (size_t i = 0; i < sig->nargs; i++) {
        c->first_slot[i] = (unsigned char)n;
        c->types[n++] = scalar(sig->args[i]);
        if (sig->args[i] == SH_NT_BYTES)
            c->types[n++] = size_type();
    }
    ffi_type *ret;
    c->boxed = conv == SH_CONV_HOOK &&
               (sig->ret == SH_NT_STRING || sig->ret == SH_NT_BYTES || sig->ret == SH_NT_VALUE);
    if (conv == SH_CONV_HOOK) {
        if (sig->ret != SH_NT_VOID)
            c->types[n++] = &ffi_type_pointer; /* the result out-parameter */
        ret = &ffi_type_sint;
    } else {
        if (sig->ret == SH_NT_BYTES || sig->ret == SH_NT_VALUE)
            return sh_error_set(err, SH_S_CONFIG,
                                "a plain C function cannot return %s (a function stage returns a number, bool, "
                                "string or void)",
                                sh_ntype_name(sig->ret));
        ret = scalar(sig->ret);
    }
    c->nslots = n;
    /* Prepared once: the cif holds the classification of every argument, which each call then reuses. */
    if (ffi_prep_cif(&c->cif, FFI_DEFAULT_ABI, (unsigned)n, ret, c->types) != FFI_OK)
        return sh_error_set(err, SH_S_CONFIG, "libffi cannot prepare a call with this signature");
    return SH_S_OK;
}

void sh_ffi_args_init(sh_ffi_args *a, const sh_ffi_call *c)
{
    for (size_t i = 0; i < c->nslots; i++)
        a->ptrs[i] = &a->slots[i];
    a->out_value = NULL;
    if (c->conv == SH_CONV_HOOK && c->sig.ret != SH_NT_VOID) {
        a->out_ptr = c->boxed ? (void *)&a->out_value : (void *)&a->out;
        a->ptrs[c->nslots - 1] = &a->out_ptr;
    }
}

sh_status sh_ffi_arg_set(sh_ffi_args *a, const sh_ffi_call *c, size_t i, const sh_value *v, const char *what,
                         sh_error *err)
{
    sh_ntype t = c->sig.args[i];
    sh_status rc = sh_ntype_check(t, v, what, err);
    if (rc != SH_S_OK)
        return rc;
    sh_ffi_slot *s = &a->slots[c->first_slot[i]];
    switch (t) {
    case SH_NT_I32:
        s->i32 = (int32_t)sh_value_get_int(v);
        break;
    case SH_NT_U32:
        s->u32 = (uint32_t)sh_value_get_int(v);
        break;
    case SH_NT_I64:
        s->i64 = sh_value_get_int(v);
        break;
    case SH_NT_U64:
        s->u64 = (uint64_t)sh_value_get_int(v);
        break;
    case SH_NT_DOUBLE:
        s->d = sh_value_get_double(v);
        break;
    case SH_NT_BOOL:
        s->b = sh_value_get_bool(v);
        break;
    case SH_NT_STRING:
        s->p = sh_value_get_string(v, NULL);
        break;
    case SH_NT_BYTES: {
        size_t len = 0;
        s->p = sh_value_type(v) == SH_TYPE_BYTES ? sh_value_get_bytes(v, &len) : sh_value_get_string(v, &len);
        s[1].n = len;
        break;
    }
    default: /* SH_NT_VALUE; sh_ntype_check refused the rest */
        s->p = v;
        break;
    }
    return SH_S_OK;
}

/* A scalar result as a value. `raw` is what libffi wrote (widened to ffi_arg for small integers). */
static sh_value *scalar_value(sh_ntype t, const void *raw, bool widened)
{
    const sh_ffi_slot *s = raw;
    switch (t) {
    case SH_NT_I32:
        return sh_value_int(widened ? (int32_t)(*(const ffi_sarg *)raw) : s->i32);
    case SH_NT_U32:
        return sh_value_int(widened ? (uint32_t)(*(const ffi_arg *)raw) : s->u32);
    case SH_NT_I64:
        return sh_value_int(s->i64);
    case SH_NT_U64:
        /* Values hold signed 64-bit integers: the bit pattern is kept, so 2^64-1 reads back as -1. */
        return sh_value_int((int64_t)s->u64);
    case SH_NT_DOUBLE:
        return sh_value_double(s->d);
    case SH_NT_BOOL:
        return sh_value_bool((widened ? (int)(*(const ffi_sarg *)raw) : s->b) != 0);
    default:
        return NULL;
    }
}

int sh_ffi_call_hook_raw(const sh_ffi_call *c, void (*fn)(void), sh_call *call, sh_ffi_args *a)
{
    a->slots[0].p = call;
    ffi_arg rc = 0;
    ffi_call((ffi_cif *)&c->cif, fn, &rc, a->ptrs);
    int status = (int)(ffi_sarg)rc;
    if (!c->boxed)
        return status; /* a scalar stays in a->out for the caller to use or box */
    sh_value *v = a->out_value;
    if (status != SH_OK) {
        /* A failing or stopping implementation's result, if it built one, is not used. */
        sh_value_free(v);
        a->out_value = NULL;
        return status;
    }
    sh_ntype t = c->sig.ret;
    sh_type want = t == SH_NT_STRING ? SH_TYPE_STRING : SH_TYPE_BYTES;
    if (!v || (t != SH_NT_VALUE && sh_value_type(v) != want)) {
        call->failed = true;
        snprintf(call->error, sizeof call->error,
                 "the implementation returned success but %s; its hookspec declares a %s result", v ? "a value "
                 "of another type" : "no result", sh_ntype_name(t));
        sh_value_free(v);
        a->out_value = NULL;
        return SH_ERR_FAILED;
    }
    return SH_OK;
}

bool sh_ffi_result_ok(sh_ntype t, const sh_value *v, char *why, size_t why_len)
{
    if (!v || t == SH_NT_VOID) {
        snprintf(why, why_len, v ? "a result" : "no result");
        return !v == (t == SH_NT_VOID);
    }
    sh_type vt = sh_value_type(v);
    sh_type want = SH_TYPE_NULL;
    switch (t) {
    case SH_NT_I32:
    case SH_NT_U32:
    case SH_NT_I64:
    case SH_NT_U64:
        want = SH_TYPE_INT;
        break;
    case SH_NT_DOUBLE:
        want = SH_TYPE_DOUBLE;
        break;
    case SH_NT_BOOL:
        want = SH_TYPE_BOOL;
        break;
    case SH_NT_STRING:
        want = SH_TYPE_STRING;
        break;
    case SH_NT_BYTES:
        want = SH_TYPE_BYTES;
        break;
    default:
        return true; /* value: any value */
    }
    if (vt != want) {
        snprintf(why, why_len, "%s %s", vt == SH_TYPE_INT || vt == SH_TYPE_ARRAY ? "an" : "a", sh_type_name(vt));
        return false;
    }
    int64_t x = vt == SH_TYPE_INT ? sh_value_get_int(v) : 0;
    /* i64 and u64 take any integer: a u64 travels as its bit pattern (sh_ffi_slot_value). */
    if ((t == SH_NT_I32 && (x < INT32_MIN || x > INT32_MAX)) || (t == SH_NT_U32 && (x < 0 || x > UINT32_MAX))) {
        snprintf(why, why_len, "the integer %lld, outside the range of %s", (long long)x, sh_ntype_name(t));
        return false;
    }
    return true;
}

sh_value *sh_ffi_slot_value(sh_ntype t, const sh_ffi_slot *s) { return scalar_value(t, s, false); }

sh_value *sh_ffi_result_value(const sh_ffi_call *c, sh_ffi_args *a)
{
    if (c->boxed) {
        sh_value *v = a->out_value;
        a->out_value = NULL;
        return v;
    }
    return c->sig.ret == SH_NT_VOID ? NULL : scalar_value(c->sig.ret, &a->out, false);
}

int sh_ffi_call_hook(const sh_ffi_call *c, void (*fn)(void), sh_call *call, sh_ffi_args *a, sh_value **result)
{
    *result = NULL;
    int status = sh_ffi_call_hook_raw(c, fn, call, a);
    if (status != SH_OK || c->sig.ret == SH_NT_VOID)
        return status;
    if (!(*result = sh_ffi_result_value(c, a))) {
        /* Only a scalar can come back NULL here: a boxed result was checked by sh_ffi_call_hook_raw. */
        call->failed = true;
        snprintf(call->error, sizeof call->error, "out of memory");
        return SH_ERR_NOMEM;
    }
    return SH_OK;
}

sh_status sh_ffi_call_plain(const sh_ffi_call *c, void (*fn)(void), sh_ffi_args *a, sh_value **result, sh_error *err)
{
    *result = NULL;
    union {
        ffi_arg a;
        ffi_sarg s;
        double d;
        int64_t i64;
        uint64_t u64;
        const char *p;
    } rv = {0};
    ffi_call((ffi_cif *)&c->cif, fn, &rv, a->ptrs);
    sh_ntype t = c->sig.ret;
    if (t == SH_NT_VOID)
        return SH_S_OK;
    if (t == SH_NT_STRING) {
        /* The function's string is borrowed (as strerror's or getenv's would be): copied, never freed. */
        if (!rv.p)
            *result = sh_value_null();
        else if (!(*result = sh_value_string(rv.p, strlen(rv.p))))
            return sh_error_set(err, SH_S_STAGE, "the function returned a string that is not valid UTF-8");
    } else {
        *result = scalar_value(t, &rv, t == SH_NT_I32 || t == SH_NT_U32 || t == SH_NT_BOOL);
    }
    return *result ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory");
}
