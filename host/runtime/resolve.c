#include "runtime/resolve.h"
#include "builtin/builtins.h"
#include "builtin/gate.h"
#include "builtin/hook.h"
#include "util/suggest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sh_status resolve_qualified(const sh_registry *reg, const char *type, sh_target *out, sh_error *err)
{
    const char *slash = strchr(type, '/');
    const char *dot = strchr(slash, '.');
    size_t nlen = dot ? (size_t)(dot - type) : strlen(type);
    char name[256];
    if (nlen >= sizeof name)
        return sh_error_set(err, SH_S_RESOLVE, "Plugin not found: %.*s", (int)nlen, type);
    memcpy(name, type, nlen);
    name[nlen] = '\0';
    const sh_registry_entry *e = sh_registry_find(reg, name);
    if (!e) {
        const sh_registry_entry *any = sh_registry_find_any(reg, name);
        if (any)
            return sh_error_set(err, SH_S_RESOLVE, "Plugin '%s' is %s: %s", name,
                                sh_plugin_status_name(any->status), any->reason);
        return sh_error_set(err, SH_S_RESOLVE, "Plugin not found: %s", name);
    }
    if (!dot || !dot[1])
        return sh_error_set(err, SH_S_RESOLVE,
                            "Stage type '%s' names plugin '%s' but no action: write '%s.ACTION', one of the types "
                            "its descriptor %s lists",
                            type, name, name, e->path);
    const sh_stage_decl *decl = sh_descriptor_find_stage(e->desc, dot + 1);
    if (!decl)
        return sh_error_set(err, SH_S_RESOLVE, "Action '%s' not found in plugin '%s'", dot + 1, name);
    out->plugin = e;
    out->action = decl->type;
    out->input = decl->input;
    out->output = decl->output;
    snprintf(out->how, sizeof out->how, "qualified type: plugin %s %s (%s)", e->desc->name, e->desc->version,
             e->path);
    return SH_S_OK;
}

/* Candidate names for "closest known types": every bare and qualified type the registry and built-ins know. */
typedef struct names {
    char **items;
    size_t len, cap;
} names;

static void names_add(names *n, const char *a, const char *b)
{
    if (n->len == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 32;
        char **p = realloc(n->items, cap * sizeof *p);
        if (!p)
            return;
        n->items = p;
        n->cap = cap;
    }
    size_t len = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
    char *s = malloc(len);
    if (!s)
        return;
    if (b)
        snprintf(s, len, "%s.%s", a, b);
    else
        snprintf(s, len, "%s", a);
    for (size_t i = 0; i < n->len; i++)
        if (strcmp(n->items[i], s) == 0) {
            free(s);
            return;
        }
    n->items[n->len++] = s;
}

/* Qualified names are compared by their action, so "chnk" finds "core/text.chunk" as close as "chunk". */
static size_t distance_to(const char *type, const char *name)
{
    const char *dot = strchr(name, '/') ? strrchr(name, '.') : NULL;
    return sh_edit_distance(type, dot ? dot + 1 : name);
}

static int by_distance(const void *a, const void *b, void *type)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t dx = distance_to(type, x), dy = distance_to(type, y);
    if (dx != dy)
        return dx < dy ? -1 : 1;
    /* At equal distance the bare name first: it is what the user was typing. */
    bool qx = strchr(x, '/') != NULL, qy = strchr(y, '/') != NULL;
    return qx != qy ? (qx ? 1 : -1) : strcmp(x, y);
}

static sh_status not_found(const sh_registry *reg, const char *type, sh_error *err)
{
    names n = {0};
    const sh_plugin *b = sh_builtin_plugin();
    for (uint32_t i = 0; i < b->stage_type_count; i++)
        names_add(&n, b->stage_types[i]->type, NULL);
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (!SH_PLUGIN_USABLE(e->status))
            continue;
        for (size_t k = 0; k < e->desc->stage_count; k++) {
            names_add(&n, e->desc->stages[k].type, NULL);
            names_add(&n, e->desc->name, e->desc->stages[k].type);
        }
    }
    qsort_r(n.items, n.len, sizeof *n.items, by_distance, (void *)type);
    char list[1024] = "";
    size_t shown = 0;
    size_t limit = strlen(type) / 2 + 2;
    for (size_t i = 0; i < n.len && shown < 5; i++) {
        if (distance_to(type, n.items[i]) > limit)
            continue;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", shown ? ", " : "", n.items[i]);
        shown++;
    }
    for (size_t i = 0; i < n.len; i++)
        free(n.items[i]);
    free(n.items);
    if (shown)
        return sh_error_set(err, SH_S_RESOLVE,
                            "Stage type '%s' not found: no plugin and no built-in provides it. Closest known types: "
                            "%s. Run 'stagehost plugins list' to see every plugin and its types",
                            type, list);
    return sh_error_set(err, SH_S_RESOLVE,
                        "Stage type '%s' not found: no plugin and no built-in provides it, and no known type is "
                        "close. Run 'stagehost plugins list' to see every plugin and its types",
                        type);
}

sh_status sh_resolve(const sh_registry *reg, const char *type, sh_target *out, sh_error *err)
{
    return sh_resolve_pinned(reg, NULL, type, out, err);
}

sh_status sh_resolve_pinned(const sh_registry *reg, const sh_value *pins, const char *type, sh_target *out,
                            sh_error *err)
{
    memset(out, 0, sizeof *out);
    if (strchr(type, '/'))
        return resolve_qualified(reg, type, out, err);
    const char *pinned = sh_value_get_string(sh_value_map_get(pins, type), NULL);
    if (pinned) {
        char qualified[512];
        snprintf(qualified, sizeof qualified, "%s.%s", pinned, type);
        sh_status rc = resolve_qualified(reg, qualified, out, err);
        if (rc != SH_S_OK)
            return sh_error_prefix(err, "the host configuration pins '%s' to '%s'", type, pinned);
        snprintf(out->how, sizeof out->how, "bare type pinned by the host configuration: plugin %s %s (%s)",
                 out->plugin->desc->name, out->plugin->desc->version, out->plugin->path);
        return SH_S_OK;
    }

    const sh_registry_entry *best = NULL, *tie = NULL, *unusable = NULL;
    const sh_stage_decl *best_decl = NULL;
    size_t providers = 0;
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (e->desc && !unusable && (e->status == SH_PLUGIN_QUARANTINED || e->status == SH_PLUGIN_UNAVAILABLE) &&
            sh_descriptor_find_stage(e->desc, type))
            unusable = e;
        if (!SH_PLUGIN_USABLE(e->status))
            continue;
        const sh_stage_decl *decl = sh_descriptor_find_stage(e->desc, type);
        if (!decl)
            continue;
        providers++;
        if (!best || e->desc->priority > best->desc->priority) {
            best = e;
            best_decl = decl;
            tie = NULL;
        } else if (e->desc->priority == best->desc->priority && !tie) {
            tie = e;
        }
    }
    if (tie)
        return sh_error_set(err, SH_S_RESOLVE,
                            "Stage type '%s' is provided by two plugins of priority %lld: '%s' (%s) and '%s' (%s). "
                            "Name one explicitly, as '%s.%s', give one a higher 'priority' in its descriptor, or pin "
                            "one in the host configuration: pins = { %s = \"%s\"; };",
                            type, (long long)best->desc->priority, best->desc->name, best->path, tie->desc->name,
                            tie->path, best->desc->name, type, type, best->desc->name);
    if (best) {
        out->plugin = best;
        out->action = best_decl->type;
        out->input = best_decl->input;
        out->output = best_decl->output;
        snprintf(out->how, sizeof out->how, "bare type: plugin %s %s (%s)%s", best->desc->name,
                 best->desc->version, best->path,
                 providers > 1                ? ", highest priority among its providers"
                 : sh_builtin_find(type) ? ", ahead of the built-in of the same name"
                                         : "");
        return SH_S_OK;
    }
    const sh_stage_type *b = sh_builtin_find(type);
    if (b) {
        out->kind = strcmp(b->type, SH_GATE_TYPE) == 0        ? SH_TARGET_GATE
                    : strcmp(b->type, SH_HOOK_STAGE_TYPE) == 0 ? SH_TARGET_HOOK
                                                               : SH_TARGET_BUILTIN;
        out->action = b->type;
        out->input = b->input;
        out->output = b->output;
        out->passed_over = unusable;
        if (unusable)
            snprintf(out->how, sizeof out->how, "bare type: built-in, because plugin %s provides '%s' but is %s",
                     unusable->desc->name, type, sh_plugin_status_name(unusable->status));
        else
            snprintf(out->how, sizeof out->how, "bare type: built-in (no plugin provides '%s')", type);
        return SH_S_OK;
    }
    /* Nothing else provides it: say why the plugin that does cannot, rather than that nothing does. */
    if (unusable)
        return sh_error_set(err, SH_S_RESOLVE, "Stage type '%s' is provided only by plugin '%s', which is %s: %s", type,
                            unusable->desc->name, sh_plugin_status_name(unusable->status), unusable->reason);
    return not_found(reg, type, err);
}
