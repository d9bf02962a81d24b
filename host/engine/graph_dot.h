/* A pipeline as a Graphviz DOT graph: stages with their type, contracts and resolved source; edges from each
 * upstream stage to the stages that read its output, labelled with the contract that flows. */
#ifndef SH_GRAPH_DOT_H
#define SH_GRAPH_DOT_H

#include "util/buf.h"
#include "engine/pipeline.h"
#include "runtime/resolve.h"

/* `targets` has p->count entries; one whose action is NULL did not resolve and is drawn as such. The graph must
 * have passed sh_pipeline_check(). */
void sh_graph_dot(const sh_pipeline *p, const sh_target *targets, sh_buf *out);

#endif
