#include "cli.h"
#include "buf.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: stagehost plugins list [options]\n"
    "\n"
    "List every plugin descriptor on the search path, in search order, with its name, version, stage types,\n"
    "status (available, invalid, shadowed) and descriptor path. Reads descriptors only: no plugin code runs.\n"
    "\n"
    "Options:\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable; searched first, in order)\n"
    "  --json              print a JSON array instead of a table\n"
    "  -h, --help          show this help\n";

static void types_of(const sh_descriptor *d, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; d && i < d->stage_count; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? "," : "", d->stages[i].type);
    }
}

static void print_json(const sh_registry *reg)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_putc(&b, '[');
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        const sh_descriptor *d = e->desc;
        sh_buf_puts(&b, i ? ",\n {" : "{");
        sh_buf_puts(&b, "\"name\":");
        if (e->name)
            sh_json_write_string(&b, e->name, strlen(e->name));
        else
            sh_buf_puts(&b, "null");
        sh_buf_puts(&b, ",\"version\":");
        if (d)
            sh_json_write_string(&b, d->version, strlen(d->version));
        else
            sh_buf_puts(&b, "null");
        sh_buf_puts(&b, ",\"types\":[");
        for (size_t k = 0; d && k < d->stage_count; k++) {
            if (k)
                sh_buf_putc(&b, ',');
            sh_json_write_string(&b, d->stages[k].type, strlen(d->stages[k].type));
        }
        sh_buf_printf(&b, "],\"status\":\"%s\",\"reason\":", sh_plugin_status_name(e->status));
        if (e->reason)
            sh_json_write_string(&b, e->reason, strlen(e->reason));
        else
            sh_buf_puts(&b, "null");
        sh_buf_puts(&b, ",\"descriptor\":");
        sh_json_write_string(&b, e->path, strlen(e->path));
        sh_buf_putc(&b, '}');
    }
    sh_buf_puts(&b, "]\n");
    fwrite(b.data, 1, b.len, stdout);
    sh_buf_free(&b);
}

static void print_table(const sh_registry *reg)
{
    printf("%-24s %-10s %-11s %-28s %s\n", "NAME", "VERSION", "STATUS", "TYPES", "DESCRIPTOR");
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        char types[1024];
        types_of(e->desc, types, sizeof types);
        printf("%-24s %-10s %-11s %-28s %s\n", e->name ? e->name : "-", e->desc ? e->desc->version : "-",
               sh_plugin_status_name(e->status), e->desc ? types : "-", e->path);
        /* A refused descriptor may list several problems, one per line: indent each under its entry. */
        for (const char *r = e->reason; r && *r;) {
            const char *nl = strchr(r, '\n');
            int n = nl ? (int)(nl - r) : (int)strlen(r);
            printf("    %.*s\n", n, r);
            r = nl ? nl + 1 : NULL;
        }
    }
    if (reg->len == 0)
        printf("(no plugin descriptors found; pass --plugins-dir DIR or set STAGEHOST_PLUGIN_PATH)\n");
}

int sh_cmd_plugins(int argc, char **argv)
{
    sh_cli cli = {.command = "plugins", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    if (cli.arg_count != 1 || strcmp(cli.args[0], "list") != 0) {
        rc = sh_cli_error(2, "plugins: expected the subcommand 'list'\n%s", usage);
        goto out;
    }
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, false, false);
    if (rc < 0) {
        const sh_registry *reg = &rt.registry;
        if (cli.json)
            print_json(reg);
        else
            print_table(reg);
        rc = 0;
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}
