/* Validation of a whole pipeline before anything runs: every problem, at once, with file:line. */
#include "engine/validate.h"
#include "builtin/builtins.h"
#include "builtin/gate.h"
#include "builtin/hook.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One more problem: counted, and appended to the others. The status is settled at the end. */
#define append(err, counter, ...) (sh_error_append((err), SH_S_CONFIG, __VA_ARGS__), (*(counter))++)

static bool contracts_match(const char *upstream_output, const char *input)
{
    return strcmp(upstream_output, "any") == 0 || strcmp(input, "any") == 0 || strcmp(upstream_output, input) == 0;
}

sh_status sh_engine_validate(sh_pipeline *p, const sh_registry *reg, const sh_value *pins, sh_target *targets_out,
                             sh_error *err)
{
    sh_error_clear(err);
    size_t graph_errors = sh_pipeline_check(p, err);
    if (err->status == SH_S_NOMEM)
        return SH_S_NOMEM;
    sh_target *targets = targets_out ? targets_out : calloc(p->count, sizeof *targets);
    if (!targets)
        return sh_error_set(err, SH_S_NOMEM, "out of memory validating %s", p->path);
    size_t resolve_errors = 0, other_errors = 0;
    for (size_t i = 0; i < p->count; i++) {
        const sh_pipeline_stage *st = &p->stages[i];
        sh_error e;
        if (sh_resolve_pinned(reg, pins, st->type, &targets[i], &e) != SH_S_OK) {
            append(err, &resolve_errors, "%s:%d: stage '%s': %s", p->path, st->line, st->name, e.message);
            targets[i].action = NULL;
            continue;
        }
        sh_log(SH_LOG_INFO, "stage '%s' (type '%s') resolved by %s", st->name, st->type, targets[i].how);
        if (targets[i].passed_over)
            sh_log(SH_LOG_WARN, "stage '%s': plugin '%s' provides '%s' but is %s (%s); using the built-in", st->name,
                   targets[i].passed_over->desc->name, st->type,
                   sh_plugin_status_name(targets[i].passed_over->status), targets[i].passed_over->reason);
        if (targets[i].kind == SH_TARGET_BUILTIN) {
            char why[512];
            if (!sh_builtin_check_config(targets[i].action, st->config, why, sizeof why))
                append(err, &other_errors, "%s:%d: stage '%s': %s", p->path, st->line, st->name, why);
        }
        if (targets[i].kind == SH_TARGET_HOOK) {
            sh_hook_stage hs;
            char why[512];
            if (!sh_hook_stage_parse(st->config, &hs, why, sizeof why))
                append(err, &other_errors, "%s:%d: stage '%s': %s", p->path, st->line, st->name, why);
            else
                sh_hook_stage_free(&hs);
        }
        if (targets[i].kind == SH_TARGET_GATE) {
            sh_gate g;
            char why[512];
            if (!sh_gate_parse(st->config, &g, why, sizeof why))
                append(err, &other_errors, "%s:%d: stage '%s': %s", p->path, st->line, st->name, why);
            else
                sh_gate_free(&g);
            if (st->dep_count == 0)
                append(err, &other_errors,
                       "%s:%d: stage '%s': a gate needs at least one stage in 'depends_on': it checks their output, "
                       "and runs them again while it waits", p->path, st->line, st->name);
            for (size_t k = 0; graph_errors == 0 && k < st->dep_count; k++) {
                const sh_target *up = &targets[p->deps[i][k]];
                if (up->action && (up->kind == SH_TARGET_GATE || up->kind == SH_TARGET_HOOK))
                    append(err, &other_errors,
                           "%s:%d: stage '%s': a gate runs the stages it depends on again while it waits, which it "
                           "cannot do for the %s stage '%s'; make the gate depend on the stage before that one",
                           p->path, st->depends_line[k], st->name, up->action, p->stages[p->deps[i][k]].name);
            }
        }
    }
    /* Contracts need a sound graph: with unknown names the edges are not known. */
    for (size_t i = 0; graph_errors == 0 && i < p->count; i++) {
        const sh_target *t = &targets[i];
        for (size_t k = 0; t->action && k < p->stages[i].dep_count; k++) {
            size_t up = p->deps[i][k];
            const sh_target *u = &targets[up];
            if (!u->action || contracts_match(u->output, t->input))
                continue;
            append(err, &other_errors,
                   "%s:%d: stage '%s': contract mismatch: it takes '%s' but upstream stage '%s' emits '%s'; put a "
                   "stage between them that turns '%s' into '%s'",
                   p->path, p->stages[i].depends_line[k], p->stages[i].name, t->input, p->stages[up].name,
                   u->output, u->output, t->input);
        }
    }
    if (!targets_out)
        free(targets);
    if (graph_errors + other_errors)
        err->status = SH_S_CONFIG;
    else if (resolve_errors)
        err->status = SH_S_RESOLVE;
    return err->status;
}
