/* The stagehost command line: shared option parsing and the subcommands. */
#ifndef SH_CLI_H
#define SH_CLI_H

#include "hooks/hooks.h"
#include "runtime/runtime.h"
#include "util/env.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sh_cli {
    const sh_env *env;         /* the environment main captured */
    const char *command;       /* e.g. "run", "plugins list" */
    const char *usage;         /* the subcommand's --help text */
    const char **plugin_dirs;  /* --plugins-dir, in order */
    size_t plugin_dir_count;
    int verbose;
    bool json;
    const char *config_path;   /* --config */
    const char *metrics_path;  /* --metrics */
    const char *socket_path;   /* --socket */
    const char **grants;       /* --grant PLUGIN:PERMISSION */
    size_t grant_count;
    bool allow_unconfined;     /* --allow-unconfined */
    bool watch;                /* --watch (run) */
    bool dev;                  /* --dev (serve) */
    bool deterministic;        /* --deterministic: fixed clock and seeded random source (rt->deterministic) */
    const char **tags;         /* --tag T (hooks call: capability tags) */
    const char *store_path;    /* --store PATH (run, runs): the run store */
    const char *resume_id;     /* --resume RUN_ID (run) */
    const char *older_than;    /* --older-than DURATION (runs prune) */
    const char *keep;          /* --keep N (runs prune) */
    size_t jobs;               /* --jobs N (run): isolated stages at once; 0: default */
    size_t tag_count;
    char **args;               /* positional arguments */
    int arg_count;
} sh_cli;

/* Parses options GNU style (options may follow arguments). Returns -1 to continue, or an exit code (0 after
 * --help, 2 after a usage error, printed to stderr). */
int sh_cli_parse(sh_cli *cli, int argc, char **argv);
void sh_cli_free(sh_cli *cli);

/* Prints "stagehost: error: ..." and returns `code`. */
__attribute__((format(printf, 2, 3))) int sh_cli_error(int code, const char *fmt, ...);

/* Starts a runtime from the CLI's options (--config, --plugins-dir) and cli->env: with a zygote when
 * `zygote` is set (commands that run plugins). Prints a warning per refused descriptor when `warn` is set.
 * Returns -1 on success or an exit code. */
int sh_cli_runtime(const sh_cli *cli, sh_runtime *rt, bool zygote, bool warn);

typedef struct sh_cli_run_options {
    const char *metrics_path; /* write Prometheus metrics there; NULL: no */
    const char *store_path;   /* NULL: beside the pipeline */
    const char *resume_id;
    size_t jobs;
    bool json;                /* print the machine-readable report on stdout */
    bool summary;             /* print the summary table on stderr */
    sh_hooks **hooks;         /* the command's hook table, kept across the runs of --watch */
} sh_cli_run_options;
/* Runs the pipeline file at `path` on `rt`; prints the summary table and metrics to stderr when asked, the
 * report as JSON on stdout with `json`, and writes Prometheus metrics to `metrics_path`. Returns the exit code. */
int sh_cli_run_pipeline(sh_runtime *rt, const char *path, const sh_cli_run_options *o);

/* The subcommands: `env` is the environment main captured, for everything below. */
int sh_cmd_run(const sh_env *env, int argc, char **argv);
int sh_cmd_plugins(const sh_env *env, int argc, char **argv);
int sh_cmd_resolve(const sh_env *env, int argc, char **argv);
int sh_cmd_serve(const sh_env *env, int argc, char **argv);
int sh_cmd_ctl(const sh_env *env, int argc, char **argv);
int sh_cmd_doctor(const sh_env *env, int argc, char **argv);
int sh_cmd_hooks(const sh_env *env, int argc, char **argv);
int sh_cmd_pipeline(const sh_env *env, int argc, char **argv);
int sh_cmd_runs(const sh_env *env, int argc, char **argv);
int sh_cmd_new_plugin(const sh_env *env, int argc, char **argv);

#endif
