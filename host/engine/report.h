/* A finished run's report: the summary table every run prints, and the machine-readable form of --json. */
#ifndef SH_RUNREPORT_H
#define SH_RUNREPORT_H

#include "util/buf.h"
#include "engine/engine.h"

/* One row per stage: status, items in and out, attempts, time, source (plugin and version, or built-in). */
void sh_run_report_render(const sh_run_report *r, const char *pipeline, sh_buf *out);

/* {run_id, pipeline, status, store, wall_ms, workers_started, stages: [{name, status, items_in, items_out,
 * attempts, wall_ms, source, error}]}; NULL when out of memory. */
sh_value *sh_run_report_to_value(const sh_run_report *r, const char *pipeline);

/* "850 ms", "12.3 s", "4 min 03 s". */
void sh_format_duration(int64_t ns, char *out, size_t len);

#endif
