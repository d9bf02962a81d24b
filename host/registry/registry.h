/* The registry: every descriptor discovery found, valid or not, in search order. */
#ifndef SH_REGISTRY_H
#define SH_REGISTRY_H

#include "registry/descriptor.h"

typedef enum sh_plugin_status {
    SH_PLUGIN_AVAILABLE,   /* valid; loaded on first use */
    SH_PLUGIN_UNAVAILABLE, /* refused: its descriptor, a dependency, or its health; see reason */
    SH_PLUGIN_SHADOWED,    /* a plugin of the same name earlier in the search path wins */
    SH_PLUGIN_QUARANTINED, /* crashed too often in a row; cleared when its library changes or on reset */
    SH_PLUGIN_DEGRADED     /* usable, but failing its health check or too many of its calls */
} sh_plugin_status;

/* Whether stages may run on a plugin with this status. */
#define SH_PLUGIN_USABLE(s) ((s) == SH_PLUGIN_AVAILABLE || (s) == SH_PLUGIN_DEGRADED)

const char *sh_plugin_status_name(sh_plugin_status s);
bool sh_plugin_status_parse(const char *s, sh_plugin_status *out);

typedef struct sh_registry_entry {
    char *path;        /* the descriptor file */
    char *name;        /* the plugin's name; NULL when the descriptor was refused before a valid name */
    sh_descriptor *desc; /* NULL when invalid */
    sh_plugin_status status;
    char *reason;      /* why it is not available; NULL when available */
    int health_failures; /* consecutive failed health checks */
} sh_registry_entry;

typedef struct sh_registry {
    sh_registry_entry *entries;
    size_t len, cap;
    char **dirs; /* the search path that was scanned, in order */
    size_t dir_count;
    /* Name -> first entry of that name, so adding stays linear in the number of plugins: each slot holds the
     * entry's index + 1 in its high 32 bits and the low 32 bits of the name's hash in its low 32 (0 is empty),
     * so a probe reads another entry's name only when the hashes agree. Rebuilt from the entries whenever it does
     * not cover them all or disagrees with them. */
    uint64_t *index;
    size_t index_cap;
    size_t indexed; /* entries[0..indexed) are in the index */
} sh_registry;

void sh_registry_init(sh_registry *reg);
void sh_registry_free(sh_registry *reg);

/* Adds a descriptor (takes ownership) or, when desc is NULL, an invalid entry with `reason` and, if known, the
 * plugin's `name`. */
sh_status sh_registry_add(sh_registry *reg, const char *path, sh_descriptor *desc, const char *name,
                          const char *reason, sh_error *err);

/* Marks an entry with a status and reason (copied). */
void sh_registry_set_status(sh_registry_entry *e, sh_plugin_status status, const char *reason);

/* After discovery: checks every plugin's requirements against the others. A plugin whose dependency is missing,
 * of an unsatisfying version, or itself unavailable becomes unavailable, transitively; plugins in a dependency
 * cycle become unavailable with the cycle printed (a → b → a). */
void sh_registry_check_dependencies(sh_registry *reg);

/* The dependencies of `e`, deepest first (each once), for loading before it; NULL entries never appear. Returns
 * the count written to `out` (at most `cap`). */
size_t sh_registry_dependencies(const sh_registry *reg, const sh_registry_entry *e, const sh_registry_entry **out,
                                size_t cap);

/* The usable (available or degraded) plugin named `name`, or NULL. */
const sh_registry_entry *sh_registry_find(const sh_registry *reg, const char *name);
/* Any entry (available, shadowed or invalid) whose descriptor names `name`, preferring the available one. */
const sh_registry_entry *sh_registry_find_any(const sh_registry *reg, const char *name);

#endif
