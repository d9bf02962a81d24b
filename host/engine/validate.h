/* Pipeline validation: everything a run checks before anything runs, also what `stagehost pipeline validate`
 * reports. */
#ifndef SH_VALIDATE_H
#define SH_VALIDATE_H

#include "engine/pipeline.h"
#include "registry/registry.h"
#include "runtime/resolve.h"

/* Checks the whole pipeline before anything runs: the graph (duplicate names, unknown `depends_on`, cycles),
 * every stage type (with the factory's messages), gate configurations, and each stage's input contract against
 * every upstream stage's output contract. Reports every problem at once, one "PIPELINE:LINE: ..." line each:
 * SH_S_RESOLVE when only types failed to resolve, SH_S_CONFIG otherwise. `targets` (p->count entries, or NULL)
 * receives the resolutions. */
sh_status sh_engine_validate(sh_pipeline *p, const sh_registry *reg, const sh_value *pins, sh_target *targets,
                             sh_error *err);

#endif
