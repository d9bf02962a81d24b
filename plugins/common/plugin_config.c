/* Checked reads of stage configuration; see plugin_config.h. */
#include "plugin_config.h"

#include <ctype.h>
#include <stdbool.h>

static const char *type_word(const sh_value *v)
{
    switch (sh_sdk_host->value_type(v)) {
    case SH_TYPE_NULL: return "null";
    case SH_TYPE_BOOL: return "a bool";
    case SH_TYPE_INT: return "an integer";
    case SH_TYPE_DOUBLE: return "a number";
    case SH_TYPE_STRING: return "a string";
    case SH_TYPE_BYTES: return "bytes";
    case SH_TYPE_ARRAY: return "a list";
    case SH_TYPE_MAP: return "a group";
    }
    return "a value";
}

int pc_check_keys(sh_call *call, const sh_value *cfg, const char *const *known, size_t n)
{
    size_t entries = sh_sdk_host->value_count(cfg);
    for (size_t i = 0; i < entries; i++) {
        const sh_value *v;
        const char *key = sh_sdk_host->map_entry(cfg, i, &v);
        size_t k = 0;
        while (k < n && strcmp(key, known[k]) != 0)
            k++;
        if (k < n)
            continue;
        char list[512] = "";
        size_t used = 0;
        for (k = 0; k < n && used < sizeof list; k++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
        return sh_failf(call, "config: unknown key '%s'; this stage type knows: %s", key, list);
    }
    return SH_OK;
}

int pc_string(sh_call *call, const sh_value *cfg, const char *key, const char *fallback, const char **out)
{
    const sh_value *v = sh_get(cfg, key);
    *out = fallback;
    if (!v)
        return SH_OK;
    const char *s = sh_sdk_host->value_string(v, NULL);
    if (!s)
        return sh_failf(call, "config: '%s' must be a string, got %s", key, type_word(v));
    *out = s;
    return SH_OK;
}

int pc_int(sh_call *call, const sh_value *cfg, const char *key, int64_t fallback, int64_t min, int64_t max,
           int64_t *out)
{
    const sh_value *v = sh_get(cfg, key);
    *out = fallback;
    if (!v)
        return SH_OK;
    if (sh_sdk_host->value_type(v) != SH_TYPE_INT)
        return sh_failf(call, "config: '%s' must be an integer from %lld to %lld, got %s", key, (long long)min,
                        (long long)max, type_word(v));
    int64_t i = sh_sdk_host->value_int(v);
    if (i < min || i > max)
        return sh_failf(call, "config: '%s' must be from %lld to %lld, got %lld", key, (long long)min,
                        (long long)max, (long long)i);
    *out = i;
    return SH_OK;
}

int pc_bool(sh_call *call, const sh_value *cfg, const char *key, int fallback, int *out)
{
    const sh_value *v = sh_get(cfg, key);
    *out = fallback;
    if (!v)
        return SH_OK;
    if (sh_sdk_host->value_type(v) != SH_TYPE_BOOL)
        return sh_failf(call, "config: '%s' must be true or false, got %s", key, type_word(v));
    *out = sh_sdk_host->value_bool(v);
    return SH_OK;
}

int pc_choice(sh_call *call, const sh_value *cfg, const char *key, const char *const *choices, size_t fallback,
              size_t *index)
{
    const char *s;
    int rc = pc_string(call, cfg, key, NULL, &s);
    *index = fallback;
    if (rc != SH_OK || !s)
        return rc;
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *index = i;
            return SH_OK;
        }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; choices[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", choices[i]);
    return sh_failf(call, "config: '%s' must be one of %s, got \"%s\"", key, list, s);
}

int pc_string_list(sh_call *call, const sh_value *cfg, const char *key, const sh_value **list, size_t *count)
{
    const sh_value *v = sh_get(cfg, key);
    *list = NULL;
    *count = 0;
    if (!v)
        return SH_OK;
    if (sh_sdk_host->value_type(v) != SH_TYPE_ARRAY)
        return sh_failf(call, "config: '%s' must be a list of strings, e.g. %s = ( \"a\", \"b\" ), got %s", key, key,
                        type_word(v));
    size_t n = sh_sdk_host->value_count(v);
    for (size_t i = 0; i < n; i++) {
        const char *s = sh_sdk_host->value_string(sh_sdk_host->array_get(v, i), NULL);
        if (!s || !*s)
            return sh_failf(call, "config: '%s' element %zu must be a non-empty string", key, i + 1);
    }
    *list = v;
    *count = n;
    return SH_OK;
}

int pc_identifier(sh_call *call, const sh_value *cfg, const char *key, const char *fallback, const char **out)
{
    int rc = pc_string(call, cfg, key, fallback, out);
    if (rc != SH_OK)
        return rc;
    const char *s = *out;
    bool ok = s && (isalpha((unsigned char)s[0]) || s[0] == '_');
    for (size_t i = 1; ok && s[i]; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_';
    if (!ok)
        return sh_failf(call, "config: '%s' must be a name of letters, digits and '_' not starting with a digit, got "
                        "\"%s\"", key, s ? s : "");
    /* The name goes several times into fixed-size SQL statements: a longer one would be cut short there. */
    if (strlen(s) > 64)
        return sh_failf(call, "config: '%s' must be at most 64 characters, got %zu", key, strlen(s));
    return SH_OK;
}
