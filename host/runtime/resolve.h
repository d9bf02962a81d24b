/* The factory's resolution of a stage type: qualified `namespace/plugin.action`, or bare `action`, which plugins
 * answer first and the built-ins after. */
#ifndef SH_RESOLVE_H
#define SH_RESOLVE_H

#include "registry/registry.h"
#include "value/value.h"

/* What a resolved stage type is. The engine runs the gate and the hook stage itself (builtin/gate.h,
 * hooks/stage.h); every other target is called through its plugin. */
typedef enum sh_target_kind {
    SH_TARGET_PLUGIN = 0,
    SH_TARGET_BUILTIN,
    SH_TARGET_GATE,
    SH_TARGET_HOOK,
} sh_target_kind;

typedef struct sh_target {
    sh_target_kind kind;
    const sh_registry_entry *plugin; /* NULL for a built-in */
    const char *action;              /* the stage type within the plugin or the built-ins */
    const char *input, *output;      /* contracts */
    char how[512];                   /* the resolution path, for -v */
    const sh_registry_entry *passed_over; /* a provider of the type that is quarantined or unavailable */
} sh_target;

/* Resolves `type`. Errors (SH_S_RESOLVE) are exact:
 *   "Plugin not found: unknown/nonexistent"
 *   "Action 'nonexistent' not found in plugin 'core/text'"
 *   for a bare type nothing provides: the type, that no plugin and no built-in provides it, the closest types;
 *   for a bare type two plugins of equal priority provide: both names and how to choose. */
sh_status sh_resolve(const sh_registry *reg, const char *type, sh_target *out, sh_error *err);

/* The same, with the host configuration's pins (a map from bare type to plugin name; may be NULL): a pinned type
 * resolves to its pinned plugin, whatever the priorities. */
sh_status sh_resolve_pinned(const sh_registry *reg, const sh_value *pins, const char *type, sh_target *out,
                            sh_error *err);

#endif
