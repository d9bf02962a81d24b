#include "builtin/hook.h"
#include "plugin/call.h"
#include "builtin/builtins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool string_list(const sh_value *config, const char *key, char ***out, size_t *count, char *why,
                        size_t why_len)
{
    const sh_value *v = sh_value_map_get(config, key);
    *out = NULL;
    *count = 0;
    if (!v)
        return true;
    if (sh_value_type(v) != SH_TYPE_ARRAY) {
        snprintf(why, why_len, "hook stage key '%s' must be a list of strings like ( \"a\", \"b\" )", key);
        return false;
    }
    size_t n = sh_value_count(v);
    *out = calloc(n + 1, sizeof **out);
    if (!*out) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = sh_value_get_string(sh_value_array_get(v, i), NULL);
        if (!s || !((*out)[i] = strdup(s))) {
            snprintf(why, why_len, "element %zu of hook stage key '%s' must be a string", i + 1, key);
            return false;
        }
        *count = i + 1;
    }
    return true;
}

bool sh_hook_stage_parse(const sh_value *config, sh_hook_stage *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    static const char *const known[] = {"hook", "args", "tags", "into"};
    const char *unknown = sh_value_unknown_key(config, known, sizeof known / sizeof known[0]);
    if (unknown) {
        snprintf(why, why_len, "unknown hook stage key '%s'; the keys are hook, args, tags and into", unknown);
        return false;
    }
    const char *hook = sh_value_get_string(sh_value_map_get(config, "hook"), NULL);
    if (!hook || !strchr(hook, '.')) {
        snprintf(why, why_len, "a hook stage needs config key 'hook', the hook to call as \"KIND.NAME\" "
                               "('stagehost hooks list' shows them)");
        return false;
    }
    const char *into = sh_value_get_string(sh_value_map_get(config, "into"), NULL);
    if (sh_value_map_get(config, "into") && (!into || !*into)) {
        snprintf(why, why_len, "hook stage key 'into' must be a field name");
        return false;
    }
    out->hook = strdup(hook);
    out->into = strdup(into ? into : "result");
    bool ok = out->hook && out->into && string_list(config, "args", &out->args, &out->arg_count, why, why_len) &&
              string_list(config, "tags", &out->tags, &out->tag_count, why, why_len);
    if (!ok) {
        if (!out->hook || !out->into)
            snprintf(why, why_len, "out of memory");
        sh_hook_stage_free(out);
    }
    return ok;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

void sh_hook_stage_free(sh_hook_stage *hs)
{
    free(hs->hook);
    free(hs->into);
    free_list(hs->args, hs->arg_count);
    free_list(hs->tags, hs->tag_count);
    memset(hs, 0, sizeof *hs);
}

/* The hook stage needs a hook table, which only the engine has: it runs the stage itself (hooks/stage.h), and
 * this entry exists so that the type resolves and lists like every built-in. */
int sh_builtin_hook(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)items, (void)count;
    return sh_call_failf(call, SH_ERR_UNSUPPORTED, "stage '%s': the hook stage runs only in a pipeline run",
                            def->name);
}
