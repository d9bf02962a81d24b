#include "cli/cli.h"
#include "sh_config.h"

#include <stagehost/abi.h>
#include <stdio.h>
#include <string.h>


static const char usage[] =
    "Usage: stagehost COMMAND [options] [arguments]\n"
    "\n"
    "A plugin host for data pipelines: plugins are found from descriptor files, loaded on first use, and run\n"
    "isolated in worker processes.\n"
    "\n"
    "Commands:\n"
    "  run PIPELINE        run a pipeline file (--resume RUN_ID to finish a run that stopped)\n"
    "  pipeline validate|graph FILE  check a pipeline without running it; print its graph (DOT)\n"
    "  runs list|show      the runs recorded in the run store, and one run in detail\n"
    "  plugins list        list discovered plugins and their status\n"
    "  resolve TYPE        show what a stage type resolves to\n"
    "  serve --socket PATH keep workers warm between runs, driven by 'stagehost ctl'\n"
    "  ctl --socket PATH REQUEST [ARG]  send run, plugins, unload, stats or shutdown to a server\n"
    "  doctor              report which protections this system gives plugin workers\n"
    "  hooks list|call     list hookspecs and their implementations; call a hook\n"
    "  new-plugin NAMESPACE/NAME [DIR]  create a plugin project to build against the installed SDK\n"
    "\n"
    "Options:\n"
    "  --version           print the version\n"
    "  -h, --help          show this help; 'stagehost COMMAND --help' shows a command's\n"
    "\n"
    "Plugin search path: every --plugins-dir DIR, then STAGEHOST_PLUGIN_PATH (colon-separated), then the\n"
    "installed default " SH_DEFAULT_PLUGIN_DIR " (STAGEHOST_SYSTEM_PLUGIN_PATH replaces it).\n";

/* Runs the command named `cmd`. */
static int dispatch(const sh_env *env, const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "run") == 0)
        return sh_cmd_run(env, argc, argv);
    if (strcmp(cmd, "plugins") == 0)
        return sh_cmd_plugins(env, argc, argv);
    if (strcmp(cmd, "resolve") == 0)
        return sh_cmd_resolve(env, argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return sh_cmd_serve(env, argc, argv);
    if (strcmp(cmd, "ctl") == 0)
        return sh_cmd_ctl(env, argc, argv);
    if (strcmp(cmd, "pipeline") == 0)
        return sh_cmd_pipeline(env, argc, argv);
    if (strcmp(cmd, "runs") == 0)
        return sh_cmd_runs(env, argc, argv);
    if (strcmp(cmd, "hooks") == 0)
        return sh_cmd_hooks(env, argc, argv);
    if (strcmp(cmd, "doctor") == 0)
        return sh_cmd_doctor(env, argc, argv);
    if (strcmp(cmd, "new-plugin") == 0)
        return sh_cmd_new_plugin(env, argc, argv);
    return sh_cli_error(2, "unknown command '%s'\n%s", cmd, usage);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return sh_cli_error(2, "no command given\n%s", usage);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("stagehost %s (plugin ABI %d.%d)\n", SH_VERSION, SH_ABI_MAJOR, SH_ABI_MINOR);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    /* The one place the environment is read: everything below gets it from here. */
    sh_env env;
    sh_error err;
    if (sh_env_capture(&env, &err) != SH_S_OK) {
        sh_env_free(&env);
        return sh_cli_error(2, "%s", err.message);
    }
    int rc = dispatch(&env, cmd, argc - 1, argv + 1);
    sh_env_free(&env);
    return rc;
}
