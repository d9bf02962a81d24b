#include "plugin/function_stage.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the stage ---------------------------------------------------------------------------------------------- */

typedef struct funcstage {
    sh_stage stage;
    void (*fn)(void);
    sh_ffi_call call; /* prepared once for the stage's life */
    const char *symbol;
    const sh_value *args; /* borrowed from the spec, which outlives the stage (it is the descriptor's) */
    const char *field;    /* NULL for a void function */
} funcstage;

static int process(sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count)
{
    funcstage *fs = (funcstage *)stage;
    const sh_host *host = sh_host_table();
    sh_ffi_args a;
    sh_ffi_args_init(&a, &fs->call);
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < fs->call.sig.nargs; k++) {
            const sh_value *spec = sh_value_array_get(fs->args, k);
            const char *field = sh_value_get_string(sh_value_map_get(spec, "field"), NULL);
            const sh_value *v = field ? sh_value_map_get(items[i], field) : sh_value_map_get(spec, "value");
            if (!v)
                return sh_call_failf(call, SH_ERR_FAILED, "item %zu has no field '%s' for argument %zu of %s()", i + 1, field, k + 1,
                            fs->symbol);
            char what[256];
            snprintf(what, sizeof what, "item %zu, field '%s' (argument %zu of %s())", i + 1, field ? field : "-",
                     k + 1, fs->symbol);
            sh_error err;
            if (sh_ffi_arg_set(&a, &fs->call, k, v, what, &err) != SH_S_OK)
                return sh_call_failf(call, SH_ERR_FAILED, "%s", err.message);
        }
        sh_value *result = NULL;
        sh_error err;
        if (sh_ffi_call_plain(&fs->call, fs->fn, &a, &result, &err) != SH_S_OK)
            return sh_call_failf(call, SH_ERR_FAILED, "%s() on item %zu: %s", fs->symbol, i + 1, err.message);
        sh_value *out = sh_value_copy(items[i]);
        if (!out || (fs->field && sh_value_type(out) != SH_TYPE_MAP)) {
            sh_value_free(out);
            sh_value_free(result);
            return sh_call_failf(call, SH_ERR_FAILED, "item %zu is not a map: the result of %s() cannot be stored in it", i + 1, fs->symbol);
        }
        if (fs->field && sh_value_map_set(out, fs->field, result) != SH_OK) {
            sh_value_free(out);
            return sh_call_failf(call, SH_ERR_FAILED, "out of memory");
        } else if (!fs->field) {
            sh_value_free(result);
        }
        int rc = host->emit(call, out);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

static void destroy(sh_stage *stage) { free(stage); }

sh_status sh_funcstage_new(const sh_value *spec, void (*fn)(void), sh_stage **out, sh_error *err)
{
    *out = NULL;
    funcstage *fs = calloc(1, sizeof *fs);
    if (!fs)
        return sh_error_set(err, SH_S_NOMEM, "out of memory creating a function stage");
    fs->fn = fn;
    fs->symbol = sh_funcstage_symbol(spec);
    fs->args = sh_value_map_get(spec, "args");
    const sh_value *ret = sh_value_map_get(spec, "returns");
    fs->field = sh_value_get_string(sh_value_map_get(ret, "field"), NULL);
    sh_signature sig = {.nargs = sh_value_count(fs->args)};
    sh_ntype_parse(sh_value_get_string(sh_value_map_get(ret, "type"), NULL), true, &sig.ret);
    for (size_t i = 0; i < sig.nargs && i < SH_SIG_MAX_ARGS; i++)
        sh_ntype_parse(sh_value_get_string(sh_value_map_get(sh_value_array_get(fs->args, i), "type"), NULL), false,
                       &sig.args[i]);
    if (sh_ffi_prepare(&fs->call, &sig, SH_CONV_PLAIN, err) != SH_S_OK) {
        const char *symbol = fs->symbol;
        free(fs);
        return sh_error_prefix(err, "function stage %s()", symbol);
    }
    fs->stage.size = sizeof(sh_stage);
    fs->stage.user = fs;
    fs->stage.process = process;
    fs->stage.destroy = destroy;
    *out = &fs->stage;
    return SH_S_OK;
}
