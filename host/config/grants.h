/* Grants: what the host allows a plugin (host configuration `grants` and --grant PLUGIN:PERMISSION), checked
 * against what its descriptor's `permissions` ask for before the plugin is loaded. */
#ifndef SH_GRANTS_H
#define SH_GRANTS_H

#include "registry/descriptor.h"

typedef struct sh_grants {
    bool network;
    bool exec;
    sh_strlist read;
    sh_strlist write;
    sh_strlist env;
} sh_grants;

/* Adds one --grant PERMISSION (network, exec, read=PATH, write=PATH, env=NAME) to g. */
sh_status sh_grants_add(sh_grants *g, const char *permission, sh_error *err);
void sh_grants_free(sh_grants *g);

/* SH_S_OK when every permission `d` asks for is granted by `g` (which may be NULL: nothing granted). Otherwise
 * SH_S_CONFIG with a message listing exactly what is missing and how to grant it. */
sh_status sh_grants_check(const sh_descriptor *d, const sh_grants *g, sh_error *err);

#endif
