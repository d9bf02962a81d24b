#include "engine/report.h"

#include <stdio.h>
#include <string.h>

void sh_format_duration(int64_t ns, char *out, size_t len)
{
    if (ns < 0)
        ns = 0;
    if (ns < 10000000LL)
        snprintf(out, len, "%.1f ms", (double)ns / 1e6);
    else if (ns < 1000000000LL)
        snprintf(out, len, "%.0f ms", (double)ns / 1e6);
    else if (ns < 60000000000LL)
        snprintf(out, len, "%.1f s", (double)ns / 1e9);
    else
        snprintf(out, len, "%lld min %02lld s", (long long)(ns / 60000000000LL),
                 (long long)((ns / 1000000000LL) % 60));
}

void sh_run_report_render(const sh_run_report *r, const char *pipeline, sh_buf *out)
{
    char total[32];
    sh_format_duration(r->wall_ns, total, sizeof total);
    sh_buf_printf(out, "run %s of pipeline '%s': %s in %s\n", r->run_id, pipeline, r->status ? r->status : "?",
                  total);
    size_t w = strlen("stage");
    for (size_t i = 0; i < r->count; i++)
        if (r->stages[i].name && strlen(r->stages[i].name) > w)
            w = strlen(r->stages[i].name);
    sh_buf_printf(out, "  %-*s  %-10s %9s %9s %8s %10s  %s\n", (int)w, "stage", "status", "items in", "items out",
                  "attempts", "time", "source");
    for (size_t i = 0; i < r->count; i++) {
        const sh_stage_report *s = &r->stages[i];
        char t[32] = "-";
        if (s->wall_ns)
            sh_format_duration(s->wall_ns, t, sizeof t);
        bool ran = s->status && strcmp(s->status, "not run") != 0 && strcmp(s->status, "skipped") != 0;
        char in[24] = "-", outn[24] = "-";
        if (ran) {
            snprintf(in, sizeof in, "%zu", s->items_in);
            if (strcmp(s->status, "failed") != 0)
                snprintf(outn, sizeof outn, "%zu", s->items_out);
        }
        sh_buf_printf(out, "  %-*s  %-10s %9s %9s %8u %10s  %s\n", (int)w, s->name ? s->name : "?",
                      s->status ? s->status : "?", in, outn, s->attempts, t, s->source ? s->source : "?");
    }
    if (r->store_problem)
        sh_buf_printf(out, "warning: %s\n", r->store_problem);
    else if (r->store_path)
        sh_buf_printf(out, "recorded in %s; 'stagehost runs show %.12s' has the details\n", r->store_path, r->run_id);
}

static int put(sh_value *m, const char *key, sh_value *v) { return sh_value_map_set(m, key, v); }

sh_value *sh_run_report_to_value(const sh_run_report *r, const char *pipeline)
{
    sh_value *m = sh_value_map(), *stages = sh_value_array();
    int rc = m && stages ? SH_OK : SH_ERR_NOMEM;
    rc |= put(m, "run_id", sh_value_cstring(r->run_id));
    rc |= put(m, "pipeline", sh_value_cstring(pipeline));
    rc |= put(m, "status", sh_value_cstring(r->status ? r->status : "?"));
    rc |= put(m, "store", r->store_path ? sh_value_cstring(r->store_path) : sh_value_null());
    rc |= put(m, "wall_ms", sh_value_double((double)r->wall_ns / 1e6));
    rc |= put(m, "workers_started", sh_value_int((int64_t)r->workers_started));
    rc |= put(m, "store_problem", r->store_problem ? sh_value_cstring(r->store_problem) : sh_value_null());
    for (size_t i = 0; rc == SH_OK && i < r->count; i++) {
        const sh_stage_report *s = &r->stages[i];
        sh_value *st = sh_value_map();
        rc |= st ? SH_OK : SH_ERR_NOMEM;
        rc |= put(st, "name", sh_value_cstring(s->name ? s->name : ""));
        rc |= put(st, "status", sh_value_cstring(s->status ? s->status : ""));
        rc |= put(st, "items_in", sh_value_int((int64_t)s->items_in));
        rc |= put(st, "items_out", sh_value_int((int64_t)s->items_out));
        rc |= put(st, "attempts", sh_value_int(s->attempts));
        rc |= put(st, "wall_ms", sh_value_double((double)s->wall_ns / 1e6));
        rc |= put(st, "source", sh_value_cstring(s->source ? s->source : ""));
        rc |= put(st, "error", s->error ? sh_value_cstring(s->error) : sh_value_null());
        rc |= sh_value_array_push(stages, st);
    }
    if (rc != SH_OK) {
        sh_value_free(m);
        sh_value_free(stages);
        return NULL;
    }
    if (put(m, "stages", stages) != SH_OK) {
        sh_value_free(m);
        return NULL;
    }
    return m;
}
