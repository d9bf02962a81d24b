/* The child side of a worker: the process the host (or the zygote) forks to run one plugin. */
#ifndef SH_WORKER_CHILD_H
#define SH_WORKER_CHILD_H

#include "registry/descriptor.h"
#include "sandbox/sandbox.h"
#include "value/value.h"

/* Confines the process, loads `d` with `config`, then serves the host's requests on `fd` until told to stop.
 * Never returns. */
_Noreturn void sh_worker_child_main(int fd, sh_descriptor *d, const sh_value *config,
                                    const sh_sandbox_policy *policy);

#endif
