/* The binary check of a plugin, in a throwaway worker: load it (magic block, ABI negotiation, metadata against
 * the descriptor, init), then ask for its health. For `plugins inspect` and `plugins validate`. */
#ifndef SH_INSPECT_H
#define SH_INSPECT_H

#include "registry/descriptor.h"
#include "sandbox/sandbox.h"

typedef enum sh_inspect_step {
    SH_STEP_LOAD = 0,    /* the library could not be opened, or the entry symbol is missing */
    SH_STEP_MAGIC,       /* the magic block */
    SH_STEP_NEGOTIATION, /* the ABI version negotiation */
    SH_STEP_METADATA,    /* name, version and stage types against the descriptor */
    SH_STEP_INIT,        /* the plugin's init() */
    SH_STEP_HEALTH,      /* the plugin's health() */
    SH_STEP_DONE         /* every step passed */
} sh_inspect_step;

typedef struct sh_inspect_report {
    sh_inspect_step reached;   /* the first step that failed, or SH_STEP_DONE */
    uint32_t abi;              /* negotiated, once past negotiation */
    char message[2048];        /* why the failing step failed */
} sh_inspect_report;

const char *sh_inspect_step_name(sh_inspect_step step);

/* Runs the check. The plugin's code runs confined as far as `support` allows, with no permission beyond the
 * defaults whatever its descriptor asks (the check grants nothing); without seccomp and Landlock it is refused
 * unless `allow_unconfined`. Never fails itself: the outcome is in `report`. */
void sh_inspect_binary(const sh_descriptor *d, const sh_sandbox_support *support, bool allow_unconfined,
                       sh_inspect_report *report);

#endif
