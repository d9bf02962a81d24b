#include "cli/cli.h"
#include "util/log.h"
#include "serve/reload.h"
#include "serve/ctl.h"
#include "serve/serve.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "Usage: stagehost serve --socket PATH [options]\n"
    "\n"
    "Keep plugins and their workers warm between pipeline runs, driven by 'stagehost ctl'. The socket is\n"
    "created owner-only. SIGTERM or SIGINT shut the server down gracefully: the run in progress finishes (each\n"
    "call bounded by its timeout), every plugin's fini runs, and every worker is reaped.\n"
    "\n"
    "Options:\n"
    "  --socket PATH       the Unix socket to listen on (required)\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable)\n"
    "  --grant PLUGIN:PERM allow a plugin network, exec, read=PATH, write=PATH or env=NAME (repeatable)\n"
    "  --allow-unconfined  run isolated plugins even where seccomp or Landlock is missing\n"
    "  --config FILE       host configuration (workers.ttl_s and workers.max control the cache)\n"
    "  --dev               development mode: watch descriptors and libraries; between requests, check each\n"
    "                      changed plugin in a throwaway worker and swap it in, or keep the old one if refused\n"
    "  -v, --verbose       log loads, evictions and requests (-vv: debug)\n"
    "  -h, --help          show this help\n";

static const char ctl_usage[] =
    "Usage: stagehost ctl --socket PATH REQUEST [ARGUMENT]\n"
    "\n"
    "Send one request to a running 'stagehost serve':\n"
    "  run PIPELINE        run a pipeline file on the server's warm workers\n"
    "  plugins             list loaded plugins, their isolation, worker and idle time\n"
    "  unload PLUGIN       unload a plugin: its worker runs fini and exits\n"
    "  stats               metrics and cache counters as JSON\n"
    "  shutdown            stop the server gracefully\n"
    "\n"
    "The exit status is the request's: for run, 0, 1 (a stage failed) or 2.\n";

int sh_cmd_serve(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "serve", .usage = serve_usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (!cli.socket_path || cli.arg_count != 0) {
        rc = sh_cli_error(2, "serve: needs --socket PATH and no arguments\n%s", serve_usage);
        goto out;
    }
    if (cli.watch) {
        rc = sh_cli_error(2, "serve: --watch is an option of run; to reload plugins while serving, use --dev");
        goto out;
    }
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, true, true);
    if (rc < 0) {
        sh_error err;
        sh_reload *reload = NULL;
        if (cli.dev && sh_reload_new(&rt, NULL, &reload, &err) != SH_S_OK)
            rc = sh_cli_error(2, "serve --dev: %s", err.message);
        else
            rc = sh_serve_dev(&rt, cli.socket_path, reload, &err) == SH_S_OK ? 0 : sh_cli_error(2, "%s", err.message);
        sh_reload_free(reload);
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}

int sh_cmd_ctl(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "ctl", .usage = ctl_usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (!cli.socket_path || cli.arg_count < 1 || cli.arg_count > 2) {
        rc = sh_cli_error(2, "ctl: needs --socket PATH and a REQUEST\n%s", ctl_usage);
        goto out;
    }
    const char *args[2] = {cli.args[0], cli.arg_count > 1 ? cli.args[1] : NULL};
    char resolved[PATH_MAX];
    /* The server's working directory is not ours: send the pipeline's absolute path. */
    if (strcmp(args[0], "run") == 0 && args[1]) {
        if (!realpath(args[1], resolved)) {
            rc = sh_cli_error(2, "ctl run: cannot find pipeline %s", args[1]);
            goto out;
        }
        args[1] = resolved;
    }
    sh_buf output;
    sh_buf_init(&output);
    sh_error err;
    int code = 2;
    if (sh_ctl(cli.socket_path, args, (size_t)cli.arg_count, &code, &output, &err) != SH_S_OK) {
        rc = sh_cli_error(2, "%s", err.message);
    } else {
        fwrite(output.data, 1, output.len, code == 0 ? stdout : stderr);
        rc = code;
    }
    sh_buf_free(&output);
out:
    sh_cli_free(&cli);
    return rc;
}
