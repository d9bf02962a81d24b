#include "cli/cli.h"
#include "registry/discovery.h"
#include "util/log.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sh_cli_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stagehost: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int sh_cli_parse(sh_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"plugins-dir", required_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"metrics", required_argument, NULL, 'm'},
        {"socket", required_argument, NULL, 's'},
        {"grant", required_argument, NULL, 'g'},
        {"allow-unconfined", no_argument, NULL, 'u'},
        {"watch", no_argument, NULL, 'W'},
        {"dev", no_argument, NULL, 'D'},
        {"deterministic", no_argument, NULL, 'R'},
        {"tag", required_argument, NULL, 't'},
        {"store", required_argument, NULL, 'S'},
        {"resume", required_argument, NULL, 'r'},
        {"jobs", required_argument, NULL, 'J'},
        {"older-than", required_argument, NULL, 'O'},
        {"keep", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli->plugin_dirs = calloc((size_t)argc + 1, sizeof *cli->plugin_dirs);
    cli->args = calloc((size_t)argc + 1, sizeof *cli->args);
    cli->grants = calloc((size_t)argc + 1, sizeof *cli->grants);
    cli->tags = calloc((size_t)argc + 1, sizeof *cli->tags);
    if (!cli->plugin_dirs || !cli->args || !cli->grants || !cli->tags)
        return sh_cli_error(2, "out of memory");
    optind = 0; /* 0, not 1: also resets getopt's internal state between subcommands */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            cli->plugin_dirs[cli->plugin_dir_count++] = optarg;
            break;
        case 'v':
            cli->verbose++;
            break;
        case 'j':
            cli->json = true;
            break;
        case 'c':
            cli->config_path = optarg;
            break;
        case 'm':
            cli->metrics_path = optarg;
            break;
        case 's':
            cli->socket_path = optarg;
            break;
        case 'g':
            cli->grants[cli->grant_count++] = optarg;
            break;
        case 'u':
            cli->allow_unconfined = true;
            break;
        case 'W':
            cli->watch = true;
            break;
        case 'D':
            cli->dev = true;
            break;
        case 'R':
            cli->deterministic = true;
            break;
        case 't':
            cli->tags[cli->tag_count++] = optarg;
            break;
        case 'S':
            cli->store_path = optarg;
            break;
        case 'r':
            cli->resume_id = optarg;
            break;
        case 'O':
            cli->older_than = optarg;
            break;
        case 'K':
            cli->keep = optarg;
            break;
        case 'J': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 1024)
                return sh_cli_error(2, "%s: --jobs takes a number from 1 to 1024, got '%s'", cli->command, optarg);
            cli->jobs = (size_t)n;
            break;
        }
        case 'h':
            fputs(cli->usage, stdout);
            return 0;
        case ':':
            return sh_cli_error(2, "%s: option '%s' needs a value\n%s", cli->command, argv[optind - 1], cli->usage);
        default:
            return sh_cli_error(2, "%s: unknown option '%s'\n%s", cli->command, argv[optind - 1], cli->usage);
        }
    }
    for (int i = optind; i < argc; i++)
        cli->args[cli->arg_count++] = argv[i];
    return -1;
}

void sh_cli_free(sh_cli *cli)
{
    free(cli->plugin_dirs);
    free(cli->args);
    free(cli->grants);
    free(cli->tags);
}

int sh_cli_runtime(const sh_cli *cli, sh_runtime *rt, bool zygote, bool warn)
{
    sh_error err;
    sh_log_set_verbosity(cli->verbose);
    if (sh_runtime_start(rt, cli->env, zygote, cli->config_path, cli->plugin_dirs, cli->plugin_dir_count, &err) !=
        SH_S_OK)
        return sh_cli_error(2, "%s", err.message);
    rt->allow_unconfined = cli->allow_unconfined;
    rt->deterministic = cli->deterministic;
    for (size_t i = 0; i < cli->grant_count; i++) {
        if (sh_runtime_grant(rt, cli->grants[i], &err) != SH_S_OK) {
            sh_runtime_stop(rt);
            return sh_cli_error(2, "%s", err.message);
        }
    }
    const sh_registry *reg = &rt->registry;
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (warn && e->status == SH_PLUGIN_UNAVAILABLE)
            sh_log(SH_LOG_WARN, "ignoring plugin: %s", e->reason);
        else if (e->status == SH_PLUGIN_SHADOWED)
            sh_log(SH_LOG_INFO, "plugin '%s' at %s is %s", e->desc->name, e->path, e->reason);
    }
    for (size_t i = 0; i < reg->dir_count; i++)
        sh_log(SH_LOG_DEBUG, "plugin search path %zu: %s", i + 1, reg->dirs[i]);
    return -1;
}
