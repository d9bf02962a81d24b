/* The registry: every descriptor discovery found, valid or not, in search order. */
#ifndef SH_REGISTRY_H
#define SH_REGISTRY_H

#include "descriptor.h"

typedef enum sh_plugin_status {
    SH_PLUGIN_AVAILABLE, /* valid; loaded on first use */
    SH_PLUGIN_INVALID,   /* the descriptor was refused: see reason */
    SH_PLUGIN_SHADOWED   /* a plugin of the same name earlier in the search path wins */
} sh_plugin_status;

const char *sh_plugin_status_name(sh_plugin_status s);

typedef struct sh_registry_entry {
    char *path;        /* the descriptor file */
    char *name;        /* the plugin's name; NULL when the descriptor was refused before a valid name */
    sh_descriptor *desc; /* NULL when invalid */
    sh_plugin_status status;
    char *reason;      /* why invalid or shadowed; NULL when available */
} sh_registry_entry;

typedef struct sh_registry {
    sh_registry_entry *entries;
    size_t len, cap;
    char **dirs; /* the search path that was scanned, in order */
    size_t dir_count;
} sh_registry;

void sh_registry_init(sh_registry *reg);
void sh_registry_free(sh_registry *reg);

/* Adds a descriptor (takes ownership) or, when desc is NULL, an invalid entry with `reason` and, if known, the
 * plugin's `name`. */
sh_status sh_registry_add(sh_registry *reg, const char *path, sh_descriptor *desc, const char *name,
                          const char *reason, sh_error *err);

/* The available plugin named `name`, or NULL. */
const sh_registry_entry *sh_registry_find(const sh_registry *reg, const char *name);
/* Any entry (available, shadowed or invalid) whose descriptor names `name`, preferring the available one. */
const sh_registry_entry *sh_registry_find_any(const sh_registry *reg, const char *name);

#endif
