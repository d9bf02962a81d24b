#include "registry/registry.h"
#include "registry/version.h"
#include "util/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    [SH_PLUGIN_AVAILABLE] = "available",
    [SH_PLUGIN_UNAVAILABLE] = "unavailable",
    [SH_PLUGIN_SHADOWED] = "shadowed",
    [SH_PLUGIN_QUARANTINED] = "quarantined",
    [SH_PLUGIN_DEGRADED] = "degraded",
};
SH_DEFINE_STRING_TABLE(sh_plugin_status, sh_plugin_status, status_names, "unknown")

void sh_registry_init(sh_registry *reg) { memset(reg, 0, sizeof *reg); }

void sh_registry_free(sh_registry *reg)
{
    for (size_t i = 0; i < reg->len; i++) {
        free(reg->entries[i].path);
        free(reg->entries[i].name);
        free(reg->entries[i].reason);
        sh_descriptor_free(reg->entries[i].desc);
    }
    free(reg->entries);
    for (size_t i = 0; i < reg->dir_count; i++)
        free(reg->dirs[i]);
    free(reg->dirs);
    free(reg->index);
    sh_registry_init(reg);
}

const sh_registry_entry *sh_registry_find(const sh_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (SH_PLUGIN_USABLE(e->status) && strcmp(e->desc->name, name) == 0)
            return e;
    }
    return NULL;
}

const sh_registry_entry *sh_registry_find_any(const sh_registry *reg, const char *name)
{
    const sh_registry_entry *found = sh_registry_find(reg, name);
    for (size_t i = 0; !found && i < reg->len; i++)
        if (reg->entries[i].name && strcmp(reg->entries[i].name, name) == 0)
            found = &reg->entries[i];
    return found;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static const char *indexed_name(const sh_registry_entry *e)
{
    return e->desc && e->status != SH_PLUGIN_SHADOWED ? e->desc->name : NULL;
}

/* Slot of `name` (holding its entry, or empty where it would go). Sets *stale when a slot on the way refers to
 * an entry that no longer fits: the entries were edited behind the index's back. */
static size_t slot_of(const sh_registry *reg, const char *name, bool *found, bool *stale)
{
    size_t mask = reg->index_cap - 1;
    uint32_t tag = (uint32_t)hash(name);
    *stale = false;
    for (size_t i = tag & mask;; i = (i + 1) & mask) {
        uint64_t v = reg->index[i];
        if (!v) {
            *found = false;
            return i;
        }
        if ((uint32_t)v != tag)
            continue;
        size_t e = (size_t)(v >> 32);
        const char *n = e <= reg->len ? indexed_name(&reg->entries[e - 1]) : NULL;
        if (!n) {
            *stale = true;
            *found = false;
            return i;
        }
        if (strcmp(n, name) == 0) {
            *found = true;
            return i;
        }
    }
}

/* Doubles the table, moving slots by their hash bits: no entry's name is read again. */
static bool index_grow(sh_registry *reg)
{
    size_t cap = reg->index_cap ? reg->index_cap * 2 : 64;
    if (cap > ((size_t)1 << 31))
        return false;
    uint64_t *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return false;
    for (size_t i = 0; i < reg->index_cap; i++) {
        uint64_t v = reg->index[i];
        if (!v)
            continue;
        size_t k = (uint32_t)v & (cap - 1);
        while (fresh[k])
            k = (k + 1) & (cap - 1);
        fresh[k] = v;
    }
    free(reg->index);
    reg->index = fresh;
    reg->index_cap = cap;
    return true;
}

static bool index_put(sh_registry *reg, size_t entry)
{
    const char *name = indexed_name(&reg->entries[entry]);
    if (!name)
        return true;
    if (entry + 1 > UINT32_MAX)
        return false;
    if ((reg->indexed + 1) * 2 > reg->index_cap && !index_grow(reg))
        return false;
    bool found, stale;
    size_t s = slot_of(reg, name, &found, &stale);
    if (!found && !stale)
        reg->index[s] = (uint64_t)(entry + 1) << 32 | (uint32_t)hash(name);
    return !stale;
}

/* Rebuilds the index over every entry. */
static bool index_rebuild(sh_registry *reg)
{
    if (reg->index)
        memset(reg->index, 0, reg->index_cap * sizeof *reg->index);
    reg->indexed = 0;
    for (size_t i = 0; i < reg->len; i++) {
        if (!index_put(reg, i))
            return false;
        reg->indexed = i + 1;
    }
    return true;
}

/* The first not-shadowed entry named `name`, through the index when it can be had. */
static const sh_registry_entry *first_named(sh_registry *reg, const char *name)
{
    bool ready = reg->indexed == reg->len || index_rebuild(reg);
    for (int attempt = 0; ready && reg->index_cap && attempt < 2; attempt++) {
        bool found, stale;
        size_t s = slot_of(reg, name, &found, &stale);
        if (!stale)
            return found ? &reg->entries[(reg->index[s] >> 32) - 1] : NULL;
        ready = index_rebuild(reg);
    }
    for (size_t i = 0; i < reg->len; i++)
        if (reg->entries[i].desc && reg->entries[i].status != SH_PLUGIN_SHADOWED &&
            strcmp(reg->entries[i].desc->name, name) == 0)
            return &reg->entries[i];
    return NULL;
}

sh_status sh_registry_add(sh_registry *reg, const char *path, sh_descriptor *desc, const char *name,
                          const char *reason, sh_error *err)
{
    if (reg->len == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        sh_registry_entry *p = realloc(reg->entries, cap * sizeof *p);
        if (!p) {
            sh_descriptor_free(desc);
            return sh_error_set(err, SH_S_NOMEM, "out of memory adding %s to the registry", path);
        }
        reg->entries = p;
        reg->cap = cap;
    }
    const char *known = desc ? desc->name : name;
    sh_registry_entry e = {.path = strdup(path), .desc = desc, .name = known ? strdup(known) : NULL};
    if (!desc) {
        e.status = SH_PLUGIN_UNAVAILABLE;
        e.reason = strdup(reason ? reason : "invalid descriptor");
    } else {
        const sh_registry_entry *first = first_named(reg, desc->name);
        if (first && strcmp(first->desc->dir, desc->dir) == 0) {
            /* Within one directory there is no search order to decide: it is a mistake to fix. */
            char why[4096];
            snprintf(why, sizeof why,
                     "%s: plugin '%s' is already defined by %s in the same directory; rename one, or remove it",
                     path, desc->name, first->path);
            e.status = SH_PLUGIN_UNAVAILABLE;
            e.reason = strdup(why);
        } else if (first) {
            /* Earlier in the search path wins, so a user's directory overrides the installed plugins. */
            char why[4096];
            snprintf(why, sizeof why, "shadowed by %s, which comes earlier in the search path", first->path);
            e.status = SH_PLUGIN_SHADOWED;
            e.reason = strdup(why);
        }
    }
    if (!e.path || (known && !e.name) || (e.status != SH_PLUGIN_AVAILABLE && !e.reason)) {
        free(e.path);
        free(e.name);
        free(e.reason);
        sh_descriptor_free(desc);
        return sh_error_set(err, SH_S_NOMEM, "out of memory adding %s to the registry", path);
    }
    reg->entries[reg->len++] = e;
    /* An index that cannot grow is rebuilt (or bypassed) on the next lookup. */
    if (reg->indexed == reg->len - 1 && index_put(reg, reg->len - 1))
        reg->indexed = reg->len;
    return SH_S_OK;
}

void sh_registry_set_status(sh_registry_entry *e, sh_plugin_status status, const char *reason)
{
    char *copy = reason ? strdup(reason) : NULL;
    free(e->reason);
    e->reason = copy;
    e->status = status;
}

/* The entry a requirement names among the plugins that are not shadowed, or NULL. */
static sh_registry_entry *provider(sh_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->len; i++) {
        sh_registry_entry *e = &reg->entries[i];
        if (e->desc && e->status != SH_PLUGIN_SHADOWED && strcmp(e->desc->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Depth-first search for a cycle through `e`; on finding one, writes "a → b → a" to `path`. */
static bool find_cycle(sh_registry *reg, sh_registry_entry *e, sh_registry_entry **stack, size_t depth,
                       char *path, size_t len)
{
    for (size_t i = 0; i < depth; i++) {
        if (stack[i] != e)
            continue;
        path[0] = '\0';
        for (size_t k = i; k < depth; k++) {
            size_t used = strlen(path);
            snprintf(path + used, len - used, "%s \u2192 ", stack[k]->desc->name);
        }
        size_t used = strlen(path);
        snprintf(path + used, len - used, "%s", e->desc->name);
        return true;
    }
    if (depth >= 64)
        return false;
    stack[depth] = e;
    for (size_t r = 0; r < e->desc->requires.len; r++) {
        sh_registry_entry *dep = provider(reg, e->desc->requirements[r].name);
        if (dep && find_cycle(reg, dep, stack, depth + 1, path, len))
            return true;
    }
    return false;
}

static void attach_dependencies(sh_registry *reg);

void sh_registry_check_dependencies(sh_registry *reg)
{
    char why[4096];
    /* Cycles first: every member of one gets the same, printed, reason. */
    for (size_t i = 0; i < reg->len; i++) {
        sh_registry_entry *e = &reg->entries[i];
        sh_registry_entry *stack[64];
        if (e->status != SH_PLUGIN_AVAILABLE || !e->desc->requires.len)
            continue;
        char cycle[2048];
        if (find_cycle(reg, e, stack, 0, cycle, sizeof cycle) && strstr(cycle, e->desc->name) == cycle) {
            snprintf(why, sizeof why, "dependency cycle: %s; break it by removing one of these requirements",
                     cycle);
            sh_registry_set_status(e, SH_PLUGIN_UNAVAILABLE, why);
        }
    }
    /* Then missing and unsatisfied requirements, repeated until nothing changes, so that unavailability flows to
     * every plugin that depends on an unavailable one, however indirectly. */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < reg->len; i++) {
            sh_registry_entry *e = &reg->entries[i];
            if (!SH_PLUGIN_USABLE(e->status))
                continue;
            for (size_t r = 0; r < e->desc->requires.len; r++) {
                const char *text = e->desc->requires.items[r];
                const sh_requirement *req = &e->desc->requirements[r];
                sh_registry_entry *dep = provider(reg, req->name);
                if (!dep)
                    snprintf(why, sizeof why, "requires \"%s\", but no plugin '%s' is on the search path", text,
                             req->name);
                else if (!SH_PLUGIN_USABLE(dep->status))
                    snprintf(why, sizeof why, "requires \"%s\", but '%s' is %s: %s", text, req->name,
                             sh_plugin_status_name(dep->status), dep->reason ? dep->reason : "");
                else if (!sh_requirement_satisfied(req, dep->desc->version))
                    snprintf(why, sizeof why, "requires \"%s\", but '%s' is version %s (%s)", text, req->name,
                             dep->desc->version, dep->path);
                else
                    continue;
                sh_registry_set_status(e, SH_PLUGIN_UNAVAILABLE, why);
                changed = true;
                break;
            }
        }
    }
    attach_dependencies(reg);
}

static void add_deps(const sh_registry *reg, const sh_registry_entry *e, const sh_registry_entry **out, size_t cap,
                     size_t *n, int depth);

/* Gives every usable plugin the list of its dependencies' descriptors, for loading them before it. */
static void attach_dependencies(sh_registry *reg)
{
    for (size_t i = 0; i < reg->len; i++) {
        sh_registry_entry *e = &reg->entries[i];
        if (!SH_PLUGIN_USABLE(e->status) || !e->desc->requires.len || e->desc->deps)
            continue;
        const sh_registry_entry *deps[64];
        size_t n = sh_registry_dependencies(reg, e, deps, 64);
        e->desc->deps = calloc(n + 1, sizeof *e->desc->deps);
        if (!e->desc->deps)
            continue;
        for (size_t k = 0; k < n; k++)
            e->desc->deps[k] = deps[k]->desc;
        e->desc->dep_count = n;
        e->desc->owns_deps = false;
    }
}

static void add_deps(const sh_registry *reg, const sh_registry_entry *e, const sh_registry_entry **out, size_t cap,
                     size_t *n, int depth)
{
    if (depth > 64)
        return;
    for (size_t r = 0; r < e->desc->requires.len; r++) {
        const sh_registry_entry *dep = provider((sh_registry *)reg, e->desc->requirements[r].name);
        if (!dep)
            continue;
        add_deps(reg, dep, out, cap, n, depth + 1);
        bool seen = false;
        for (size_t k = 0; k < *n && !seen; k++)
            seen = out[k] == dep;
        if (!seen && *n < cap)
            out[(*n)++] = dep;
    }
}

size_t sh_registry_dependencies(const sh_registry *reg, const sh_registry_entry *e, const sh_registry_entry **out,
                                size_t cap)
{
    size_t n = 0;
    add_deps(reg, e, out, cap, &n, 0);
    return n;
}
