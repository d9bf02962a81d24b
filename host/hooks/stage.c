#include "hooks/stage.h"

#include <stdlib.h>

sh_status sh_hook_stage_run(const sh_hook_stage *hs, sh_runtime *rt, sh_hooks **table, const sh_values *input,
                            sh_values *output, sh_error *err)
{
    sh_status rc = sh_hooks_get(rt, table, err);
    if (rc != SH_S_OK)
        return rc;
    sh_hooks *h = *table;
    sh_hook *hk = sh_hooks_find(h, hs->hook);
    if (!hk)
        return sh_error_set(err, SH_S_CONFIG, "no hook '%s' is declared by any *.hooks file on the plugin search path; "
                                              "'stagehost hooks list' shows the hooks there are", hs->hook);
    const sh_value **args = calloc(hs->arg_count + 1, sizeof *args);
    if (!args)
        return sh_error_set(err, SH_S_NOMEM, "out of memory calling hook '%s'", hs->hook);
    /* A failure is prefixed with the item it happened on, unless it was made here and names the item already. */
    bool names_item = false;
    for (size_t i = 0; rc == SH_S_OK && i < input->len; i++) {
        const sh_value *item = input->items[i];
        for (size_t k = 0; rc == SH_S_OK && k < hs->arg_count; k++) {
            if ((args[k] = sh_value_map_get(item, hs->args[k])))
                continue;
            rc = sh_error_set(err, SH_S_STAGE, "item %zu has no field '%s' for argument %zu of hook '%s'", i + 1,
                              hs->args[k], k + 1, hs->hook);
            names_item = true;
        }
        sh_value *answer = NULL;
        if (rc == SH_S_OK)
            rc = sh_hooks_call(h, hk, args, hs->arg_count, (const char *const *)hs->tags, hs->tag_count, &answer,
                               err);
        if (rc != SH_S_OK) {
            if (!names_item)
                sh_error_prefix(err, "hook '%s' on item %zu", hs->hook, i + 1);
            break;
        }
        sh_value *out = sh_value_copy(item);
        if (out && answer && sh_value_type(out) == SH_TYPE_MAP) {
            if (sh_value_map_set(out, hs->into, answer) != SH_OK) /* which frees the answer either way */
                rc = sh_error_set(err, SH_S_NOMEM, "out of memory calling hook '%s'", hs->hook);
            answer = NULL;
        }
        sh_value_free(answer);
        if (rc != SH_S_OK)
            sh_value_free(out);
        else if (!out || sh_values_push(output, out) != SH_OK) /* which frees the item either way */
            rc = sh_error_set(err, SH_S_NOMEM, "out of memory calling hook '%s'", hs->hook);
    }
    free(args);
    return rc;
}
