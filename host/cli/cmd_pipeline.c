#include "cli/cli.h"
#include "engine/engine.h"
#include "engine/graph_dot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: stagehost pipeline validate FILE [options]\n"
    "       stagehost pipeline graph FILE [options]\n"
    "\n"
    "validate  check FILE without running anything: its keys, the stage graph (unknown depends_on, cycles), every\n"
    "          stage type and each stage's input contract against its upstream stages' output; every problem is\n"
    "          reported at once with FILE:LINE\n"
    "graph     print the stage graph in Graphviz DOT (stages, edges, contracts, each stage's resolved source);\n"
    "          render it with: stagehost pipeline graph FILE | dot -Tsvg > pipeline.svg\n"
    "\n"
    "Options:\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable)\n"
    "  -v, --verbose       log how each stage resolved\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 the pipeline is valid, 2 it is not (graph still prints the graph when its shape is sound).\n";

int sh_cmd_pipeline(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "pipeline", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    bool graph = cli.arg_count >= 1 && strcmp(cli.args[0], "graph") == 0;
    if (cli.arg_count != 2 || (!graph && strcmp(cli.args[0], "validate") != 0)) {
        rc = sh_cli_error(2, "pipeline: expected 'validate FILE' or 'graph FILE'\n%s", usage);
        goto out;
    }
    const char *path = cli.args[1];
    sh_error err;
    sh_pipeline *p = NULL;
    if (sh_pipeline_load(path, &p, &err) != SH_S_OK) {
        rc = sh_cli_error(2, "%s", err.message);
        goto out;
    }
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, false, false);
    if (rc >= 0) {
        sh_pipeline_free(p);
        goto out;
    }
    sh_target *targets = calloc(p->count, sizeof *targets);
    if (!targets) {
        rc = sh_cli_error(2, "out of memory");
    } else {
        sh_status st = sh_engine_validate(p, &rt.registry, rt.config ? rt.config->pins : NULL, targets, &err);
        /* The graph can be drawn whenever its edges are known, even with types that did not resolve. */
        sh_error graph_err;
        sh_error_clear(&graph_err);
        bool shape_ok = sh_pipeline_check(p, &graph_err) == 0;
        if (graph && shape_ok) {
            sh_buf b;
            sh_buf_init(&b);
            sh_graph_dot(p, targets, &b);
            fwrite(b.data, 1, b.len, stdout);
            sh_buf_free(&b);
        }
        if (st != SH_S_OK) {
            rc = sh_cli_error(sh_status_exit_code(st) == 1 ? 2 : sh_status_exit_code(st), "%s", err.message);
        } else {
            if (!graph) {
                size_t edges = 0;
                for (size_t i = 0; i < p->count; i++)
                    edges += p->stages[i].dep_count;
                printf("%s: pipeline '%s' is valid: %zu stages, %zu dependencies\n", path, p->name, p->count, edges);
            }
            rc = 0;
        }
    }
    free(targets);
    sh_pipeline_free(p);
    sh_runtime_stop(&rt);
out:
    sh_cli_free(&cli);
    return rc;
}
