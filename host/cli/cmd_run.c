#include "cli.h"
#include "engine.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: stagehost run PIPELINE [options]\n"
    "\n"
    "Run the pipeline file PIPELINE. Stages run in order; plugins load on first use, each in its own worker\n"
    "process unless its isolation says otherwise. A summary of per-stage metrics is printed at the end.\n"
    "\n"
    "Options:\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable; searched first, in order)\n"
    "  --grant PLUGIN:PERM allow a plugin network, exec, read=PATH, write=PATH or env=NAME (repeatable)\n"
    "  --allow-unconfined  run isolated plugins even where seccomp or Landlock is missing\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --metrics FILE      write metrics in Prometheus text format to FILE\n"
    "  -v, --verbose       log resolution and progress (-vv: debug)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success, 1 a stage failed, 2 usage, configuration or validation error.\n";

/* Writes the run's metrics in Prometheus text format; returns an exit code or -1. */
static int write_metrics(const sh_metrics *m, const char *path)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_metrics_render_prometheus(m, &b);
    FILE *f = fopen(path, "w");
    bool ok = f && !b.failed && fwrite(b.data, 1, b.len, f) == b.len;
    int e = errno;
    if (f && fclose(f) != 0)
        ok = false;
    sh_buf_free(&b);
    if (!ok)
        return sh_cli_error(2, "--metrics %s: cannot write: %s", path, strerror(e));
    return -1;
}

/* Runs one pipeline file against a runtime; shared with serve mode. Returns the exit code. */
int sh_cli_run_pipeline(sh_runtime *rt, const char *path, const char *metrics_path, bool print_summary)
{
    sh_error err;
    sh_pipeline *p = NULL;
    sh_status st = sh_pipeline_load(path, &p, &err);
    sh_run_summary sum;
    if (st == SH_S_OK)
        st = sh_engine_run(p, rt, &sum, &err);
    int rc;
    if (st != SH_S_OK) {
        rc = sh_cli_error(sh_status_exit_code(st), "%s", err.message);
    } else {
        sh_log(SH_LOG_INFO, "pipeline '%s' finished: %zu stages, %zu items out, %zu worker(s) started, execution %s",
               p->name, sum.stages_run, sum.items_out, sum.workers_started, sum.execution_id);
        rc = 0;
    }
    if (print_summary && p) {
        sh_buf b;
        sh_buf_init(&b);
        sh_metrics_render_text(rt->metrics, &b);
        fwrite(b.data, 1, b.len, stderr);
        sh_buf_free(&b);
    }
    if (metrics_path) {
        int mrc = write_metrics(rt->metrics, metrics_path);
        if (mrc >= 0 && rc == 0)
            rc = mrc;
    }
    sh_pipeline_free(p);
    return rc;
}

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
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, true, true);
    if (rc < 0) {
        rc = sh_cli_run_pipeline(&rt, cli.args[0], cli.metrics_path, true);
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}
