/* The hook table's records, shared by its two halves: table.c builds, links and checks the table; dispatch.c
 * calls through it. */
#ifndef SH_HOOKS_PRIVATE_H
#define SH_HOOKS_PRIVATE_H

#include "hooks/hooks.h"
#include "util/buf.h"
#include "util/dirlist.h"
#include "plugin/inproc.h"
#include "util/log.h"
#include "hooks/middleware.h"
#include "runtime/acquire.h"
#include "runtime/policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct impl {
    const sh_registry_entry *entry;
    const char *plugin; /* the descriptor's name (borrowed from the registry) */
    const sh_hook_decl *decl;
    sh_isolation isolation;
    bool denied;        /* by the governance policy, decided once */
    size_t quota_slot;  /* the plugin's call counter */
    sh_instance *pinned; /* in-process: held from the first call to sh_hooks_free, for direct calls */
    void (*fn)(void);
} impl;

struct sh_hook {
    const sh_hookspec *file;
    const sh_hookspec_hook *spec;
    sh_ffi_call fc; /* prepared once, used for every implementation and every call */
    impl *impls;    /* dispatch order */
    size_t count;
    impl *fallback; /* capability */
    /* A chain whose value is a C scalar (anything but u64, whose values above INT64_MAX a value cannot pass
     * back in): each link's output goes straight into the next link's first argument slot, and a value is
     * built only for the final answer. */
    bool chain_native;
};

struct sh_hooks {
    sh_runtime *rt;
    sh_hookspec **files;
    size_t file_count;
    sh_hook *hooks;
    size_t count;
    sh_middleware mw;
    char **slot_plugins; /* plugin name of each quota slot */
    sh_buf problems;
};


#endif
