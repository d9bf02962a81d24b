#include "cli/cli.h"
#include "runtime/resolve.h"

#include <stdio.h>

static const char usage[] =
    "Usage: stagehost resolve TYPE [options]\n"
    "\n"
    "Print what the stage type TYPE (bare, such as \"chunk\", or qualified, such as \"core/text.chunk\")\n"
    "resolves to: a plugin's name, version and action, or \"built-in\".\n"
    "\n"
    "Options:\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable)\n"
    "  -v, --verbose       also print the resolution path\n"
    "  -h, --help          show this help\n";

int sh_cmd_resolve(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "resolve", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (cli.arg_count != 1) {
        rc = sh_cli_error(2, "resolve: expected one TYPE, got %d arguments\n%s", cli.arg_count, usage);
        goto out;
    }
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, false, false);
    if (rc < 0) {
        const sh_registry *reg = &rt.registry;
        sh_target t;
        sh_error err;
        if (sh_resolve_pinned(reg, rt.config ? rt.config->pins : NULL, cli.args[0], &t, &err) != SH_S_OK) {
            rc = sh_cli_error(2, "%s", err.message);
        } else {
            if (t.plugin)
                printf("%s: plugin %s %s, action %s (%s)\n", cli.args[0], t.plugin->desc->name,
                       t.plugin->desc->version, t.action, t.plugin->path);
            else
                printf("%s: built-in %s\n", cli.args[0], t.action);
            if (cli.verbose)
                printf("  resolved by %s\n", t.how);
            rc = 0;
        }
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}
