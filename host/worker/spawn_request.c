#include "worker/spawn_request.h"

#include "registry/version.h"

#include <stdlib.h>
#include <string.h>

static int put_str(sh_value *m, const char *key, const char *s)
{
    return sh_value_map_set(m, key, s ? sh_value_cstring(s) : sh_value_null());
}

static int put_list(sh_value *m, const char *key, const sh_strlist *l)
{
    sh_value *a = sh_value_array();
    for (size_t i = 0; a && i < l->len; i++)
        if (sh_value_array_push(a, sh_value_cstring(l->items[i])) != SH_OK) {
            sh_value_free(a);
            a = NULL;
        }
    return a ? sh_value_map_set(m, key, a) : SH_ERR_NOMEM;
}

static sh_value *to_value(const sh_descriptor *d, bool with_deps);

static int put_value(sh_value *m, const char *key, sh_value *v) { return v ? sh_value_map_set(m, key, v) : SH_ERR_NOMEM; }

static sh_value *hooks_to_value(const sh_descriptor *d)
{
    sh_value *a = sh_value_array();
    for (size_t i = 0; a && i < d->hook_count; i++) {
        const sh_hook_decl *h = &d->hooks[i];
        sh_value *g = sh_value_map();
        sh_strlist tags = {.items = h->supports, .len = h->supports_count};
        int rc = g ? SH_OK : SH_ERR_NOMEM;
        if (rc == SH_OK) {
            rc |= put_str(g, "hook", h->hook);
            rc |= put_str(g, "symbol", h->symbol);
            rc |= put_value(g, "priority", sh_value_int(h->priority));
            rc |= put_list(g, "supports", &tags);
            rc |= put_value(g, "fallback", sh_value_bool(h->fallback));
            rc |= put_value(g, "line", sh_value_int(h->line));
        }
        if (rc != SH_OK || sh_value_array_push(a, g) != SH_OK) {
            if (rc != SH_OK)
                sh_value_free(g);
            sh_value_free(a);
            return NULL;
        }
    }
    return a;
}

sh_value *sh_descriptor_to_value(const sh_descriptor *d) { return to_value(d, true); }

static sh_value *to_value(const sh_descriptor *d, bool with_deps)
{
    sh_value *m = sh_value_map();
    sh_value *stages = sh_value_array();
    sh_value *limits = sh_value_map();
    sh_value *perms = sh_value_map();
    int rc = (m && stages && limits && perms) ? SH_OK : SH_ERR_NOMEM;
    for (size_t i = 0; rc == SH_OK && i < d->stage_count; i++) {
        sh_value *s = sh_value_map();
        rc = s ? SH_OK : SH_ERR_NOMEM;
        if (rc == SH_OK) {
            rc |= put_str(s, "type", d->stages[i].type);
            rc |= put_str(s, "input", d->stages[i].input);
            rc |= put_str(s, "output", d->stages[i].output);
            rc |= put_str(s, "description", d->stages[i].description);
            rc |= sh_value_map_set(s, "idempotent", sh_value_bool(d->stages[i].idempotent));
            rc |= sh_value_map_set(s, "line", sh_value_int(d->stages[i].line));
            if (d->stages[i].function)
                rc |= put_value(s, "function", sh_value_copy(d->stages[i].function));
            rc |= sh_value_array_push(stages, s);
        }
    }
    if (rc == SH_OK) {
        rc |= sh_value_map_set(limits, "memory_mb", sh_value_int(d->limits.memory_mb));
        rc |= sh_value_map_set(limits, "cpu_seconds", sh_value_int(d->limits.cpu_seconds));
        rc |= sh_value_map_set(limits, "timeout_ms", sh_value_int(d->limits.timeout_ms));
        rc |= sh_value_map_set(limits, "open_files", sh_value_int(d->limits.open_files));
        rc |= sh_value_map_set(limits, "processes", sh_value_int(d->limits.processes));
        rc |= sh_value_map_set(limits, "file_size_mb", sh_value_int(d->limits.file_size_mb));
        rc |= sh_value_map_set(limits, "output_mb", sh_value_int(d->limits.output_mb));
        rc |= sh_value_map_set(perms, "network", sh_value_bool(d->permissions.network));
        rc |= sh_value_map_set(perms, "exec", sh_value_bool(d->permissions.exec));
        rc |= put_list(perms, "read", &d->permissions.read);
        rc |= put_list(perms, "write", &d->permissions.write);
        rc |= put_list(perms, "env", &d->permissions.env);
        rc |= put_str(m, "path", d->path);
        rc |= put_str(m, "dir", d->dir);
        rc |= put_str(m, "name", d->name);
        rc |= put_str(m, "version", d->version);
        rc |= put_str(m, "library", d->library);
        rc |= put_str(m, "library_path", d->library_path);
        rc |= put_str(m, "entry", d->entry);
        rc |= put_str(m, "description", d->description);
        rc |= sh_value_map_set(m, "priority", sh_value_int(d->priority));
        rc |= put_list(m, "requires", &d->requires);
        /* Dependencies travel with the plugin to its worker, which loads them first; one level suffices, as
         * the list is already flattened, deepest first. */
        if (with_deps && d->dep_count) {
            sh_value *deps = sh_value_array();
            for (size_t i = 0; deps && i < d->dep_count; i++)
                if (sh_value_array_push(deps, to_value(d->deps[i], false)) != SH_OK) {
                    sh_value_free(deps);
                    deps = NULL;
                }
            rc |= deps ? sh_value_map_set(m, "dependencies", deps) : SH_ERR_NOMEM;
        }
        rc |= sh_value_map_set(m, "abi_major", sh_value_int(d->abi_major));
        rc |= sh_value_map_set(m, "abi_minor", sh_value_int(d->abi_minor));
        rc |= sh_value_map_set(m, "isolation", sh_value_int(d->isolation));
        rc |= sh_value_map_set(m, "name_line", sh_value_int(d->name_line));
        rc |= sh_value_map_set(m, "version_line", sh_value_int(d->version_line));
        rc |= sh_value_map_set(m, "stages_line", sh_value_int(d->stages_line));
        rc |= sh_value_map_set(m, "stages", stages);
        stages = NULL;
        rc |= put_value(m, "hooks", hooks_to_value(d));
        rc |= sh_value_map_set(m, "limits", limits);
        limits = NULL;
        rc |= sh_value_map_set(m, "permissions", perms);
        perms = NULL;
    }
    sh_value_free(stages);
    sh_value_free(limits);
    sh_value_free(perms);
    if (rc != SH_OK) {
        sh_value_free(m);
        return NULL;
    }
    return m;
}

/* Decoding: each getter records the first missing or mistyped field. */
typedef struct reader {
    const char *bad;
} reader;

static char *get_str(reader *r, const sh_value *m, const char *key, bool optional)
{
    const sh_value *v = sh_value_map_get(m, key);
    if (v && sh_value_type(v) == SH_TYPE_STRING)
        return strdup(sh_value_get_string(v, NULL));
    if (!(optional && v && sh_value_type(v) == SH_TYPE_NULL) && !r->bad)
        r->bad = key;
    return NULL;
}

static int64_t get_int(reader *r, const sh_value *m, const char *key)
{
    const sh_value *v = sh_value_map_get(m, key);
    if (!v || sh_value_type(v) != SH_TYPE_INT) {
        if (!r->bad)
            r->bad = key;
        return 0;
    }
    return sh_value_get_int(v);
}

static void get_list(reader *r, const sh_value *m, const char *key, sh_strlist *out)
{
    const sh_value *a = sh_value_map_get(m, key);
    size_t n = sh_value_count(a);
    if (!a || sh_value_type(a) != SH_TYPE_ARRAY || !(out->items = calloc(n + 1, sizeof(char *)))) {
        if (!r->bad)
            r->bad = key;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = sh_value_get_string(sh_value_array_get(a, i), NULL);
        if (!s || !(out->items[i] = strdup(s))) {
            if (!r->bad)
                r->bad = key;
            return;
        }
        out->len = i + 1;
    }
}

sh_status sh_descriptor_from_value(const sh_value *m, sh_descriptor **out, sh_error *err)
{
    *out = NULL;
    sh_descriptor *d = calloc(1, sizeof *d);
    if (!d)
        return sh_error_set(err, SH_S_NOMEM, "out of memory decoding a descriptor");
    reader r = {0};
    d->path = get_str(&r, m, "path", false);
    d->dir = get_str(&r, m, "dir", false);
    d->name = get_str(&r, m, "name", false);
    d->version = get_str(&r, m, "version", false);
    d->library = get_str(&r, m, "library", false);
    d->library_path = get_str(&r, m, "library_path", false);
    d->entry = get_str(&r, m, "entry", false);
    d->description = get_str(&r, m, "description", true);
    d->priority = get_int(&r, m, "priority");
    get_list(&r, m, "requires", &d->requires);
    if (!r.bad && d->requires.len) {
        d->requirements = calloc(d->requires.len, sizeof *d->requirements);
        char why[512];
        for (size_t i = 0; d->requirements && i < d->requires.len; i++)
            if (!sh_requirement_parse(d->requires.items[i], &d->requirements[i], why, sizeof why) && !r.bad)
                r.bad = "requires";
        if (!d->requirements)
            r.bad = "requires";
    }
    const sh_value *deps = sh_value_map_get(m, "dependencies");
    if (deps && !r.bad) {
        size_t n = sh_value_count(deps);
        d->owns_deps = true;
        d->deps = calloc(n + 1, sizeof *d->deps);
        for (size_t i = 0; d->deps && i < n && !r.bad; i++) {
            sh_error derr;
            if (sh_descriptor_from_value(sh_value_array_get(deps, i), &d->deps[i], &derr) != SH_S_OK)
                r.bad = "dependencies";
            else
                d->dep_count = i + 1;
        }
        if (!d->deps)
            r.bad = "dependencies";
    }
    d->format = SH_DESCRIPTOR_FORMAT;
    d->abi_major = (uint16_t)get_int(&r, m, "abi_major");
    d->abi_minor = (uint16_t)get_int(&r, m, "abi_minor");
    d->isolation = (sh_isolation)get_int(&r, m, "isolation");
    d->name_line = (int)get_int(&r, m, "name_line");
    d->version_line = (int)get_int(&r, m, "version_line");
    d->stages_line = (int)get_int(&r, m, "stages_line");
    const sh_value *limits = sh_value_map_get(m, "limits");
    d->limits.memory_mb = get_int(&r, limits, "memory_mb");
    d->limits.cpu_seconds = get_int(&r, limits, "cpu_seconds");
    d->limits.timeout_ms = get_int(&r, limits, "timeout_ms");
    d->limits.open_files = get_int(&r, limits, "open_files");
    d->limits.processes = get_int(&r, limits, "processes");
    d->limits.file_size_mb = get_int(&r, limits, "file_size_mb");
    d->limits.output_mb = get_int(&r, limits, "output_mb");
    const sh_value *perms = sh_value_map_get(m, "permissions");
    const sh_value *net = sh_value_map_get(perms, "network"), *ex = sh_value_map_get(perms, "exec");
    d->permissions.network = sh_value_get_bool(net);
    d->permissions.exec = sh_value_get_bool(ex);
    get_list(&r, perms, "read", &d->permissions.read);
    get_list(&r, perms, "write", &d->permissions.write);
    get_list(&r, perms, "env", &d->permissions.env);
    const sh_value *stages = sh_value_map_get(m, "stages");
    size_t n = sh_value_count(stages);
    if (sh_value_type(stages) != SH_TYPE_ARRAY || n == 0 || !(d->stages = calloc(n, sizeof *d->stages))) {
        if (!r.bad)
            r.bad = "stages";
    } else {
        for (size_t i = 0; i < n; i++) {
            const sh_value *s = sh_value_array_get(stages, i);
            d->stage_count = i + 1;
            d->stages[i].type = get_str(&r, s, "type", false);
            d->stages[i].input = get_str(&r, s, "input", false);
            d->stages[i].output = get_str(&r, s, "output", false);
            d->stages[i].description = get_str(&r, s, "description", true);
            d->stages[i].idempotent = sh_value_get_bool(sh_value_map_get(s, "idempotent"));
            d->stages[i].line = (int)get_int(&r, s, "line");
            const sh_value *fn = sh_value_map_get(s, "function");
            if (fn && !(d->stages[i].function = sh_value_copy(fn)) && !r.bad)
                r.bad = "function";
        }
    }
    const sh_value *hooks = sh_value_map_get(m, "hooks");
    size_t nh = sh_value_count(hooks);
    if (sh_value_type(hooks) != SH_TYPE_ARRAY || (nh && !(d->hooks = calloc(nh, sizeof *d->hooks)))) {
        if (!r.bad)
            r.bad = "hooks";
    } else {
        for (size_t i = 0; i < nh; i++) {
            const sh_value *g = sh_value_array_get(hooks, i);
            sh_hook_decl *h = &d->hooks[i];
            d->hook_count = i + 1;
            h->hook = get_str(&r, g, "hook", false);
            h->symbol = get_str(&r, g, "symbol", false);
            h->priority = get_int(&r, g, "priority");
            h->line = (int)get_int(&r, g, "line");
            h->fallback = sh_value_get_bool(sh_value_map_get(g, "fallback"));
            sh_strlist tags = {0};
            get_list(&r, g, "supports", &tags);
            h->supports = tags.items;
            h->supports_count = tags.len;
        }
    }
    if (r.bad) {
        sh_descriptor_free(d);
        return sh_error_set(err, SH_S_PROTOCOL, "descriptor field '%s' is missing or mistyped", r.bad);
    }
    *out = d;
    return SH_S_OK;
}
