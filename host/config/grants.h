/* Grants: what the host allows a plugin (host configuration `grants` and --grant PLUGIN:PERMISSION), checked
 * against what its descriptor's `permissions` ask for before the plugin is loaded. A grant is the same record as
 * a request (sh_permissions, registry/descriptor.h): one type for both sides of the check. */
#ifndef SH_GRANTS_H
#define SH_GRANTS_H

#include "registry/descriptor.h"

/* Adds one --grant PERMISSION (network, exec, read=PATH, write=PATH, env=NAME) to g. */
sh_status sh_grants_add(sh_permissions *g, const char *permission, sh_error *err);
/* Adds everything `from` grants to `to`. */
sh_status sh_grants_merge(sh_permissions *to, const sh_permissions *from, sh_error *err);
void sh_grants_free(sh_permissions *g);

/* SH_S_OK when every permission `d` asks for is granted by `g` (which may be NULL: nothing granted). Otherwise
 * SH_S_CONFIG with a message listing exactly what is missing and how to grant it. */
sh_status sh_grants_check(const sh_descriptor *d, const sh_permissions *g, sh_error *err);

#endif
