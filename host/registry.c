#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sh_plugin_status_name(sh_plugin_status s)
{
    switch (s) {
    case SH_PLUGIN_AVAILABLE:
        return "available";
    case SH_PLUGIN_INVALID:
        return "invalid";
    case SH_PLUGIN_SHADOWED:
        return "shadowed";
    }
    return "unknown";
}

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
    sh_registry_init(reg);
}

const sh_registry_entry *sh_registry_find(const sh_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (e->status == SH_PLUGIN_AVAILABLE && strcmp(e->desc->name, name) == 0)
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
        e.status = SH_PLUGIN_INVALID;
        e.reason = strdup(reason ? reason : "invalid descriptor");
    } else {
        const sh_registry_entry *first = sh_registry_find(reg, desc->name);
        if (first) {
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
    return SH_S_OK;
}
