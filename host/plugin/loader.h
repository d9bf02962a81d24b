/* Loading a plugin library: dlopen, the magic-block check, version negotiation, the metadata check against the
 * descriptor, init and fini. Runs in a worker process, or in the host for isolation "none". */
#ifndef SH_LOADER_H
#define SH_LOADER_H

#include "plugin/call.h"
#include "registry/descriptor.h"
#include "util/error.h"

/* The size a struct needs to reach through `member`: what a plugin's `size` must cover before the host reads it. */
#define SH_THROUGH(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

typedef struct sh_loaded {
    void *dl;                 /* NULL for a plugin compiled into the host (the built-ins) */
    const sh_plugin *plugin;
    uint32_t abi;             /* the negotiated version */
    void *state;              /* from init() */
    bool inited;
} sh_loaded;

/* Checks a magic block against this host. `lib` names the library in messages. */
sh_status sh_loader_check_magic(const sh_magic *m, const char *lib, sh_error *err);

/* Negotiates with the plugin, offering `offer` (normally SH_ABI_CURRENT). */
sh_status sh_loader_negotiate(const sh_entry *e, uint32_t offer, const char *lib, const sh_plugin **out,
                              uint32_t *abi, sh_error *err);

/* Compares the binary's metadata with the descriptor; names the first field that differs. */
sh_status sh_loader_check_metadata(const sh_plugin *p, const sh_descriptor *d, sh_error *err);

/* dlopen + magic + negotiate + metadata. Does not call init(). */
sh_status sh_loader_open(const sh_descriptor *d, uint32_t offer, sh_loaded *out, sh_error *err);

/* The same, for a dependency: its symbols are made global, so the plugins that require it can use them. */
sh_status sh_loader_open_global(const sh_descriptor *d, uint32_t offer, sh_loaded *out, sh_error *err);

/* Calls init() with `config` (a map). */
sh_status sh_loader_init(sh_loaded *l, const char *plugin_name, const sh_value *config, sh_error *err);

/* fini() if init() succeeded, then dlclose. */
void sh_loader_close(sh_loaded *l);

#endif
