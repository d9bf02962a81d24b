#include "cli/cli.h"
#include "engine/engine.h"
#include "value/json.h"
#include "util/log.h"
#include "serve/reload.h"
#include "engine/report.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static const char usage[] =
    "Usage: stagehost run PIPELINE [options]\n"
    "\n"
    "Run the pipeline file PIPELINE. Everything is validated first; then stages run as soon as the stages they\n"
    "depend on are done, independent branches at once. Plugins load on first use, each in its own worker process\n"
    "unless its isolation says otherwise. The run is recorded in a run store (by default .stagehost/runs.db\n"
    "beside the pipeline), so a run that stopped can be resumed. A summary table is printed at the end.\n"
    "\n"
    "Options:\n"
    "  --resume RUN_ID     resume that run: stages that finished are not run again (a unique prefix will do)\n"
    "  --store PATH        the run store to record in (default: .stagehost/runs.db beside PIPELINE)\n"
    "  --jobs N            run at most N isolated stages at once (default: twice the CPUs)\n"
    "  --json              print a machine-readable report of the run on stdout\n"
    "  --deterministic     a fixed clock and a seeded random source in every stage's context\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable; searched first, in order)\n"
    "  --grant PLUGIN:PERM allow a plugin network, exec, read=PATH, write=PATH or env=NAME (repeatable)\n"
    "  --allow-unconfined  run isolated plugins even where seccomp or Landlock is missing\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --metrics FILE      write metrics in Prometheus text format to FILE\n"
    "  --watch             after the run, watch the pipeline, descriptors and libraries; run again on a change,\n"
    "                      keeping warm workers of unchanged plugins (development mode; ^C stops, exit 0)\n"
    "  -v, --verbose       log resolution, cache decisions and progress (-vv: debug)\n"
    "  -h, --help          show this help\n"
    "\n"
    "On a terminal, a live line per stage shows its state, attempt, items in and out, and time.\n"
    "Exit status: 0 success (also when only stages with on_failure = \"continue\" failed), 1 a stage failed,\n"
    "2 usage, configuration or validation error.\n";

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

int sh_cli_run_pipeline(sh_runtime *rt, const char *path, const sh_cli_run_options *o)
{
    sh_error err;
    sh_pipeline *p = NULL;
    sh_run_report report = {0};
    sh_status st = sh_pipeline_load(path, &p, &err);
    if (st == SH_S_OK) {
        /* Live lines only for a person watching: not into a pipe or a file, and not between -v log lines. */
        sh_run_options opts = {.store_path = o->store_path,
                               .resume_id = o->resume_id,
                               .jobs = o->jobs,
                               .progress = isatty(STDERR_FILENO) && sh_log_verbosity() == 0,
                               .hooks = o->hooks};
        st = sh_engine_run(p, rt, &opts, &report, &err);
    }
    int rc = st == SH_S_OK ? 0 : sh_cli_error(sh_status_exit_code(st), "%s", err.message);
    if (o->summary && report.stages) {
        sh_buf b;
        sh_buf_init(&b);
        sh_run_report_render(&report, p->name, &b);
        sh_metrics_render_text(rt->metrics, &b);
        fwrite(b.data, 1, b.len, stderr);
        sh_buf_free(&b);
    }
    if (o->json) {
        sh_value *v = report.stages ? sh_run_report_to_value(&report, p->name) : NULL;
        if (!v && st != SH_S_OK) {
            /* Nothing ran (invalid pipeline): the report is the error. */
            v = sh_value_map();
            sh_value_map_set(v, "status", sh_value_cstring("invalid"));
            sh_value_map_set(v, "error", sh_value_cstring(err.message));
        }
        sh_buf b;
        sh_buf_init(&b);
        sh_json_write(&b, v);
        sh_buf_putc(&b, '\n');
        fwrite(b.data, 1, b.len, stdout);
        fflush(stdout);
        sh_buf_free(&b);
        sh_value_free(v);
    }
    if (o->metrics_path) {
        int mrc = write_metrics(rt->metrics, o->metrics_path);
        if (mrc >= 0 && rc == 0)
            rc = mrc;
    }
    sh_run_report_free(&report);
    sh_pipeline_free(p);
    return rc;
}

/* run --watch: runs, then runs again after each change until SIGINT or SIGTERM. The runtime (zygote, warm
 * workers) lives across runs; a run's failure is reported and watching goes on. Returns the exit code. */
static int run_watching(sh_runtime *rt, const sh_cli *cli, const sh_cli_run_options *run_opts)
{
    /* Each run after a change is a new run: resuming the same one again would only reuse its results. */
    sh_cli_run_options o = *run_opts;
    sh_error err;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    /* Blocked before the first run, so a ^C during a run ends the watch once the run is done, as in serve. */
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    sh_reload *r = NULL;
    int rc = -1;
    if (sfd < 0)
        rc = sh_cli_error(2, "run --watch: signalfd: %s", strerror(errno));
    else if (sh_reload_new(rt, cli->args[0], &r, &err) != SH_S_OK)
        rc = sh_cli_error(2, "run --watch: %s", err.message);
    if (rc < 0) {
        sh_cli_run_pipeline(rt, cli->args[0], &o);
        fprintf(stderr, "stagehost: watching %s and the plugin search path for changes (^C to stop)\n",
                cli->args[0]);
    }
    sh_buf what;
    sh_buf_init(&what);
    while (rc < 0) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = sh_reload_fd(r), .events = POLLIN}};
        int pr = poll(pfd, 2, sh_reload_wait_ms(r));
        if (pr < 0 && errno != EINTR) {
            rc = sh_cli_error(2, "run --watch: poll: %s", strerror(errno));
        } else if (pr > 0 && (pfd[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                sh_log(SH_LOG_INFO, "received %s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            rc = 0;
        } else if (pr > 0 && (pfd[1].revents & POLLIN) && sh_reload_read(r, &err) != SH_S_OK) {
            rc = sh_cli_error(2, "run --watch: %s", err.message);
        } else if (sh_reload_wait_ms(r) == 0) {
            sh_reload_result res;
            sh_buf_reset(&what);
            if (sh_reload_apply(r, false, o.hooks, &res, &what, &err) != SH_S_OK) {
                rc = sh_cli_error(2, "run --watch: %s", err.message);
            } else if (res.pipeline_changed || res.plugin_changes) {
                fprintf(stderr, "stagehost: change detected (%.*s): running %s again\n", (int)what.len,
                        (const char *)what.data, cli->args[0]);
                sh_cli_run_pipeline(rt, cli->args[0], &o);
            }
        }
    }
    sh_buf_free(&what);
    sh_reload_free(r);
    if (sfd >= 0)
        close(sfd);
    /* SIGINT and SIGTERM stay blocked: a second ^C must not cut short the reaping of workers that follows, and
     * the process exits right after it. */
    return rc;
}

int sh_cmd_run(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "run", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (cli.arg_count != 1) {
        rc = sh_cli_error(2, "run: expected one PIPELINE file, got %d arguments\n%s", cli.arg_count, usage);
        goto out;
    }
    if (cli.dev) {
        rc = sh_cli_error(2, "run: --dev is an option of serve; to run again on every change, use --watch");
        goto out;
    }
    if (cli.watch && cli.resume_id) {
        rc = sh_cli_error(2, "run: --resume and --watch do not go together: --watch starts a new run on each change");
        goto out;
    }
    sh_cli_run_options o = {.metrics_path = cli.metrics_path,
                            .store_path = cli.store_path,
                            .resume_id = cli.resume_id,
                            .jobs = cli.jobs,
                            .json = cli.json,
                            .summary = true};
    sh_hooks *hooks = NULL;
    o.hooks = &hooks;
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, true, true);
    if (rc < 0) {
        rc = cli.watch ? run_watching(&rt, &cli, &o) : sh_cli_run_pipeline(&rt, cli.args[0], &o);
        sh_hooks_free(hooks);
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}
