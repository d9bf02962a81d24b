#include "cli.h"
#include "engine.h"
#include "log.h"

#include <stdio.h>

static const char usage[] =
    "Usage: stagehost run PIPELINE [options]\n"
    "\n"
    "Run the pipeline file PIPELINE. Stages run in order; plugins load on first use, each in its own worker\n"
    "process unless its isolation says otherwise.\n"
    "\n"
    "Options:\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable; searched first, in order)\n"
    "  -v, --verbose       log resolution and progress (-vv: debug)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success, 1 a stage failed, 2 usage, configuration or validation error.\n";

int sh_cmd_run(int argc, char **argv)
{
    sh_cli cli = {.command = "run", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (cli.arg_count != 1) {
        rc = sh_cli_error(2, "run: expected one PIPELINE file, got %d arguments\n%s", cli.arg_count, usage);
        goto out;
    }
    sh_registry reg;
    sh_registry_init(&reg);
    rc = sh_cli_discover(&cli, &reg, true);
    if (rc < 0) {
        sh_error err;
        sh_pipeline *p = NULL;
        sh_status st = sh_pipeline_load(cli.args[0], &p, &err);
        sh_run_summary sum;
        if (st == SH_S_OK)
            st = sh_engine_run(p, &reg, &sum, &err);
        if (st != SH_S_OK) {
            rc = sh_cli_error(sh_status_exit_code(st), "%s", err.message);
        } else {
            sh_log(SH_LOG_INFO, "pipeline '%s' finished: %zu stages, %zu items out, %zu worker(s), execution %s",
                   p->name, sum.stages_run, sum.items_out, sum.workers_started, sum.execution_id);
            rc = 0;
        }
        sh_pipeline_free(p);
    }
    sh_registry_free(&reg);
out:
    sh_cli_free(&cli);
    return rc;
}
