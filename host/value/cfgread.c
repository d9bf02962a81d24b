#include "value/cfgread.h"
#include "util/suggest.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sh_status sh_cfg_read_file(config_t *cfg, const char *path, const char *what, size_t max_bytes, sh_error *err)
{
    config_init(cfg);
    /* Opened once and checked through the descriptor, so the file that is parsed is the file that was checked. */
    FILE *f = fopen(path, "r");
    if (!f)
        return sh_error_set(err, SH_S_CONFIG, "%s: cannot read %s: %s", path, what, strerror(errno));
    struct stat st;
    sh_status rc = SH_S_OK;
    if (fstat(fileno(f), &st) != 0)
        rc = sh_error_set(err, SH_S_CONFIG, "%s: cannot read %s: %s", path, what, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = sh_error_set(err, SH_S_CONFIG, "%s: is a directory, not a %s file", path, what);
    else if (!S_ISREG(st.st_mode))
        rc = sh_error_set(err, SH_S_CONFIG, "%s: is not a regular file; a %s is read from a file", path, what);
    else if ((uint64_t)st.st_size > max_bytes)
        rc = sh_error_set(err, SH_S_CONFIG,
                          "%s: the %s is %llu bytes, more than the %zu KiB a %s may be; check that this is the file "
                          "you meant", path, what, (unsigned long long)st.st_size, max_bytes / 1024, what);
    if (rc == SH_S_OK && !config_read(cfg, f) && config_error_type(cfg) == CONFIG_ERR_FILE_IO)
        rc = sh_error_set(err, SH_S_CONFIG, "%s: cannot read %s: %s", path, what, strerror(errno));
    fclose(f);
    if (rc != SH_S_OK || config_error_type(cfg) == CONFIG_ERR_NONE)
        return rc;
    return sh_error_set(err, SH_S_CONFIG,
                        "%s:%d: syntax error: %s (%ss use libconfig syntax: key = value; groups in { }, lists in ( ))",
                        config_error_file(cfg) ? config_error_file(cfg) : path, config_error_line(cfg),
                        config_error_text(cfg), what);
}


/* config_setting_get_member compares names through a path-aware routine that calls strchr twice per character;
 * with a descriptor's twenty-odd lookups that was a fifth of discovery's time. Setting names cannot hold the path
 * separators ('.', '/', ':'), and no key asked for here does, so a plain comparison finds the same member. The
 * list layout is public API (libconfig.h). */
config_setting_t *sh_cfg_member(const config_setting_t *group, const char *key)
{
    if (!group || group->type != CONFIG_TYPE_GROUP || !group->value.list)
        return NULL;
    const config_list_t *l = group->value.list;
    for (unsigned i = 0; i < l->length; i++) {
        const char *n = l->elements[i]->name;
        if (n && n[0] == key[0] && strcmp(n, key) == 0)
            return l->elements[i];
    }
    return NULL;
}

int sh_cfg_line(const config_setting_t *s)
{
    int line = s ? (int)config_setting_source_line(s) : 0;
    return line > 0 ? line : 1;
}

sh_status sh_cfg_fail(sh_cfg *p, const config_setting_t *at, const char *fmt, ...)
{
    char msg[SH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->errors++ == 0)
        return sh_error_set(p->err, SH_S_CONFIG, "%s:%d: %s", p->path, sh_cfg_line(at), msg);
    if (p->err) {
        size_t used = strlen(p->err->message);
        snprintf(p->err->message + used, sizeof p->err->message - used, "\n%s:%d: %s", p->path, sh_cfg_line(at),
                 msg);
    }
    return SH_S_CONFIG;
}

const char *sh_cfg_type_word(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "something else";
    }
}

/* Refuses keys in `group` that are not in `known`, suggesting the closest known key. */
sh_status sh_cfg_check_keys(sh_cfg *p, const config_setting_t *group, const char *where, const char *const *known,
                            size_t nknown)
{
    int before = p->errors;
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        bool ok = false;
        for (size_t k = 0; k < nknown && !ok; k++)
            ok = name[0] == known[k][0] && strcmp(name, known[k]) == 0;
        if (ok)
            continue;
        const char *hint = sh_suggest(name, known, nknown);
        if (hint) {
            sh_cfg_fail(p, s, "unknown key '%s' in %s (did you mean '%s'?)", name, where, hint);
            continue;
        }
        char list[512] = "";
        for (size_t k = 0; k < nknown; k++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
        }
        sh_cfg_fail(p, s, "unknown key '%s' in %s; the known keys are: %s", name, where, list);
    }
    return p->errors > before ? SH_S_CONFIG : SH_S_OK;
}

sh_status sh_cfg_string(sh_cfg *p, const config_setting_t *group, const char *key, const char *what,
                            bool required, char **out)
{
    config_setting_t *s = sh_cfg_member(group, key);
    if (!s) {
        if (required)
            return sh_cfg_fail(p, group, "missing required key '%s' (%s)", key, what);
        return SH_S_OK;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return sh_cfg_fail(p, s, "key '%s' must be %s, got %s", key, what, sh_cfg_type_word(s));
    const char *v = config_setting_get_string(s);
    free(*out);
    *out = strdup(v);
    if (!*out)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    return SH_S_OK;
}

sh_status sh_cfg_int(sh_cfg *p, const config_setting_t *group, const char *key, const char *what, bool required,
                         int64_t min, int64_t *out)
{
    config_setting_t *s = sh_cfg_member(group, key);
    if (!s) {
        if (required)
            return sh_cfg_fail(p, group, "missing required key '%s' (%s)", key, what);
        return SH_S_OK;
    }
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return sh_cfg_fail(p, s, "key '%s' must be %s, got %s", key, what, sh_cfg_type_word(s));
    int64_t v = config_setting_get_int64(s);
    if (v < min)
        return sh_cfg_fail(p, s, "key '%s' must be at least %lld, got %lld", key, (long long)min, (long long)v);
    *out = v;
    return SH_S_OK;
}

sh_status sh_cfg_bool(sh_cfg *p, const config_setting_t *group, const char *key, bool *out)
{
    config_setting_t *s = sh_cfg_member(group, key);
    if (!s)
        return SH_S_OK;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return sh_cfg_fail(p, s, "key '%s' must be true or false, got %s", key, sh_cfg_type_word(s));
    *out = config_setting_get_bool(s) != 0;
    return SH_S_OK;
}

sh_status sh_cfg_strlist(sh_cfg *p, const config_setting_t *group, const char *key, sh_strlist *out)
{
    config_setting_t *s = sh_cfg_member(group, key);
    if (!s)
        return SH_S_OK;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return sh_cfg_fail(p, s, "key '%s' must be a list of strings like ( \"a\", \"b\" ), got %s", key, sh_cfg_type_word(s));
    int n = config_setting_length(s);
    out->items = calloc((size_t)n + 1, sizeof(char *));
    if (!out->items)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return sh_cfg_fail(p, e, "element %d of '%s' must be a string, got %s", i + 1, key, sh_cfg_type_word(e));
        out->items[i] = strdup(config_setting_get_string(e));
        if (!out->items[i])
            return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
        out->len = (size_t)i + 1;
    }
    return SH_S_OK;
}


static sh_value *to_value(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return sh_value_int(config_setting_get_int64(s));
    case CONFIG_TYPE_FLOAT:
        return sh_value_double(config_setting_get_float(s));
    case CONFIG_TYPE_BOOL:
        return sh_value_bool(config_setting_get_bool(s));
    case CONFIG_TYPE_STRING:
        return sh_value_cstring(config_setting_get_string(s));
    case CONFIG_TYPE_GROUP: {
        sh_value *m = sh_value_map();
        int n = config_setting_length(s);
        for (int i = 0; m && i < n; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            sh_value *v = to_value(e);
            if (!v || sh_value_map_set(m, config_setting_name(e), v) != SH_OK) {
                sh_value_free(m);
                return NULL;
            }
        }
        return m;
    }
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        sh_value *a = sh_value_array();
        int n = config_setting_length(s);
        for (int i = 0; a && i < n; i++) {
            sh_value *v = to_value(config_setting_get_elem(s, (unsigned)i));
            if (!v || sh_value_array_push(a, v) != SH_OK) {
                sh_value_free(a);
                return NULL;
            }
        }
        return a;
    }
    default:
        return sh_value_null();
    }
}

/* The first string setting under `s` that is not UTF-8, or NULL. */
static const config_setting_t *first_bad_string(const config_setting_t *s)
{
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        const char *t = config_setting_get_string(s);
        return sh_utf8_valid(t, strlen(t)) ? NULL : s;
    }
    if (!config_setting_is_aggregate(s))
        return NULL;
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *bad = first_bad_string(config_setting_get_elem(s, (unsigned)i));
        if (bad)
            return bad;
    }
    return NULL;
}

sh_status sh_cfg_value(sh_cfg *p, const config_setting_t *s, const char *what, sh_value **out)
{
    *out = NULL;
    const config_setting_t *bad = first_bad_string(s);
    if (bad)
        return sh_cfg_fail(p, bad, "%s: the string '%s' is not valid UTF-8 text; configuration files must be UTF-8",
                           what, config_setting_name(bad) ? config_setting_name(bad) : "(list element)");
    if (!(*out = to_value(s)))
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    return SH_S_OK;
}

sh_status sh_cfg_first_duplicates(sh_cfg *p, const config_setting_t *list, const char *key, size_t **out)
{
    size_t n = (size_t)config_setting_length(list);
    const char **names = calloc(n ? n : 1, sizeof *names);
    *out = malloc((n ? n : 1) * sizeof **out);
    sh_status rc = names && *out ? SH_S_OK : sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    for (size_t i = 0; rc == SH_S_OK && i < n; i++) {
        const config_setting_t *v = sh_cfg_member(config_setting_get_elem(list, (unsigned)i), key);
        names[i] = v && config_setting_type(v) == CONFIG_TYPE_STRING ? config_setting_get_string(v) : NULL;
    }
    if (rc == SH_S_OK)
        rc = sh_find_duplicates(names, n, *out, p->err);
    free(names);
    if (rc != SH_S_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
