#include "cli/cli.h"
#include "util/buf.h"
#include "util/dirlist.h"
#include "builtin/builtins.h"
#include "registry/descriptor.h"
#include "runtime/inspect.h"
#include "value/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "Usage: stagehost plugins list [--json] [options]\n"
    "       stagehost plugins inspect NAME [--json] [options]\n"
    "       stagehost plugins validate PATH... \n"
    "       stagehost plugins reset NAME [options]\n"
    "\n"
    "list      every descriptor on the search path, in search order: name, version, stage types, status\n"
    "          (available, unavailable, shadowed, quarantined, degraded) with the reason, and descriptor path.\n"
    "          Reads descriptors only: no plugin code runs.\n"
    "inspect   one plugin's descriptor, then a binary check in a throwaway worker: magic block, ABI\n"
    "          negotiation, metadata against the descriptor, init and health.\n"
    "validate  descriptor files (or directories of them) as a plugin author's CI would: every descriptor\n"
    "          error with file:line, then the binary check. Exit status 2 on any error.\n"
    "reset     clear a plugin's quarantine (its crash history).\n"
    "\n"
    "Options:\n"
    "  --plugins-dir DIR   search DIR for *.plugin descriptors (repeatable; searched first, in order)\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --json              JSON output (list, inspect)\n"
    "  -h, --help          show this help\n";

static void types_of(const sh_descriptor *d, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; d && i < d->stage_count; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? "," : "", d->stages[i].type);
    }
}

static void json_str(sh_buf *b, const char *s)
{
    if (s)
        sh_json_write_string(b, s, strlen(s));
    else
        sh_buf_puts(b, "null");
}

static void json_entry(sh_buf *b, const sh_registry_entry *e)
{
    const sh_descriptor *d = e->desc;
    sh_buf_puts(b, "{\"name\":");
    json_str(b, e->name);
    sh_buf_puts(b, ",\"version\":");
    json_str(b, d ? d->version : NULL);
    sh_buf_puts(b, ",\"types\":[");
    for (size_t k = 0; d && k < d->stage_count; k++) {
        if (k)
            sh_buf_putc(b, ',');
        json_str(b, d->stages[k].type);
    }
    sh_buf_printf(b, "],\"status\":\"%s\",\"reason\":", sh_plugin_status_name(e->status));
    json_str(b, e->reason);
    sh_buf_puts(b, ",\"descriptor\":");
    json_str(b, e->path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", e->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    sh_buf_puts(b, ",\"directory\":");
    json_str(b, slash ? dir : ".");
    sh_buf_putc(b, '}');
}

static void print_json(const sh_registry *reg)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_putc(&b, '[');
    for (size_t i = 0; i < reg->len; i++) {
        sh_buf_puts(&b, i ? ",\n " : "");
        json_entry(&b, &reg->entries[i]);
    }
    sh_buf_puts(&b, "]\n");
    fwrite(b.data, 1, b.len, stdout);
    sh_buf_free(&b);
}

/* A reason may hold several problems, one per line: indent each under its entry. */
static void print_reason(const char *r)
{
    while (r && *r) {
        const char *nl = strchr(r, '\n');
        int n = nl ? (int)(nl - r) : (int)strlen(r);
        printf("    %.*s\n", n, r);
        r = nl ? nl + 1 : NULL;
    }
}

static void print_table(const sh_registry *reg)
{
    printf("%-24s %-10s %-12s %-28s %s\n", "NAME", "VERSION", "STATUS", "TYPES", "DESCRIPTOR");
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        char types[1024];
        types_of(e->desc, types, sizeof types);
        printf("%-24s %-10s %-12s %-28s %s\n", e->name ? e->name : "-", e->desc ? e->desc->version : "-",
               sh_plugin_status_name(e->status), e->desc ? types : "-", e->path);
        print_reason(e->reason);
    }
    if (reg->len == 0)
        printf("(no plugin descriptors found; pass --plugins-dir DIR or set STAGEHOST_PLUGIN_PATH)\n");
}

static void print_check(const sh_inspect_report *r)
{
    for (sh_inspect_step s = SH_STEP_LOAD; s < SH_STEP_DONE; s++) {
        if (s < r->reached)
            printf("  %-16s ok\n", sh_inspect_step_name(s));
        else if (s == r->reached) {
            printf("  %-16s FAILED: %s\n", sh_inspect_step_name(s), r->message);
            return;
        }
        if (s == SH_STEP_NEGOTIATION && s < r->reached && r->abi)
            printf("  %-16s the plugin uses ABI %u.%u (this host offers %d.%d)\n", "", SH_ABI_VERSION_MAJOR(r->abi),
                   SH_ABI_VERSION_MINOR(r->abi), SH_ABI_MAJOR, SH_ABI_MINOR);
    }
}

static int inspect(sh_runtime *rt, const char *name, bool json)
{
    const sh_registry_entry *e = sh_registry_find_any(&rt->registry, name);
    if (!e)
        return sh_cli_error(2, "Plugin not found: %s; 'stagehost plugins list' shows what is on the search path", name);
    sh_inspect_report r = {.reached = SH_STEP_LOAD};
    const sh_descriptor *d = e->desc;
    bool checked = false;
    if (d) {
        sh_inspect_binary(d, &rt->sandbox, rt->allow_unconfined, &r);
        checked = true;
    }
    if (json) {
        sh_buf b;
        sh_buf_init(&b);
        sh_buf_puts(&b, "{\"plugin\":");
        json_entry(&b, e);
        if (checked) {
            sh_buf_printf(&b, ",\"check\":{\"passed\":%s,\"failed_step\":", r.reached == SH_STEP_DONE ? "true" : "false");
            json_str(&b, r.reached == SH_STEP_DONE ? NULL : sh_inspect_step_name(r.reached));
            sh_buf_puts(&b, ",\"message\":");
            json_str(&b, r.reached == SH_STEP_DONE ? NULL : r.message);
            sh_buf_printf(&b, ",\"abi\":\"%u.%u\"}", SH_ABI_VERSION_MAJOR(r.abi), SH_ABI_VERSION_MINOR(r.abi));
        }
        sh_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        sh_buf_free(&b);
    } else {
        printf("plugin      %s %s\n", e->name ? e->name : "-", d ? d->version : "-");
        printf("descriptor  %s\n", e->path);
        printf("status      %s\n", sh_plugin_status_name(e->status));
        print_reason(e->reason);
        if (d) {
            printf("library     %s (entry %s, built for ABI %u.%u)\n", d->library_path, d->entry, d->abi_major,
                   d->abi_minor);
            printf("isolation   %s\n", sh_isolation_name(d->isolation));
            for (size_t i = 0; i < d->stage_count; i++)
                printf("%s %s (%s -> %s)%s%s\n", i ? "           " : "stages     ", d->stages[i].type,
                       d->stages[i].input, d->stages[i].output, d->stages[i].description ? ": " : "",
                       d->stages[i].description ? d->stages[i].description : "");
            for (size_t i = 0; i < d->requires.len; i++)
                printf("%s %s\n", i ? "           " : "requires   ", d->requires.items[i]);
            printf("binary check (in a throwaway worker):\n");
            print_check(&r);
        }
    }
    return d && r.reached == SH_STEP_DONE ? 0 : 2;
}

/* Validates one descriptor file: every descriptor error, then the binary check. Returns true when clean. */
static bool validate_file(const char *path, const sh_sandbox_support *support, bool allow_unconfined)
{
    sh_descriptor *d = NULL;
    sh_error err;
    if (sh_descriptor_load(path, &d, &err) != SH_S_OK) {
        fprintf(stderr, "%s\n", err.message);
        return false;
    }
    sh_inspect_report r;
    sh_inspect_binary(d, support, allow_unconfined, &r);
    bool ok = r.reached == SH_STEP_DONE;
    if (ok)
        printf("%s: ok: %s %s, %zu stage type%s, ABI %u.%u\n", path, d->name, d->version, d->stage_count,
               d->stage_count == 1 ? "" : "s", SH_ABI_VERSION_MAJOR(r.abi), SH_ABI_VERSION_MINOR(r.abi));
    else
        fprintf(stderr, "%s: %s check failed: %s\n", path, sh_inspect_step_name(r.reached), r.message);
    sh_descriptor_free(d);
    return ok;
}

static int validate(const sh_env *env, char **paths, int count, bool allow_unconfined)
{
    sh_sandbox_support support;
    sh_sandbox_probe(NULL, env->pretend_missing, &support);
    bool ok = true;
    size_t checked = 0;
    for (int i = 0; i < count; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            fprintf(stderr, "%s: no such file or directory\n", paths[i]);
            ok = false;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            ok = validate_file(paths[i], &support, allow_unconfined) && ok;
            checked++;
            continue;
        }
        sh_strlist names;
        sh_error err;
        if (sh_dirlist(paths[i], ".plugin", &names, &err) != SH_S_OK) {
            fprintf(stderr, "%s\n", err.message);
            ok = false;
            continue;
        }
        for (size_t k = 0; k < names.len; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", paths[i], names.items[k]);
            ok = validate_file(path, &support, allow_unconfined) && ok;
            checked++;
        }
        sh_strlist_clear(&names);
    }
    if (checked == 0 && ok) {
        fprintf(stderr, "stagehost: error: plugins validate: no *.plugin descriptor in the given paths\n");
        return 2;
    }
    return ok ? 0 : 2;
}

/* Hidden modes for shell completion, one word per line: `plugins names` (every plugin name on the search path)
 * and `plugins types` (every stage type a pipeline may name: bare and qualified types of usable plugins, then
 * the built-ins). Plain words, so a completion script needs no JSON parser. */
static void print_words(const sh_registry *reg, bool types)
{
    for (size_t i = 0; i < reg->len; i++) {
        const sh_registry_entry *e = &reg->entries[i];
        if (!types) {
            if (e->name && e->status != SH_PLUGIN_SHADOWED)
                printf("%s\n", e->name);
            continue;
        }
        if (!e->desc || !SH_PLUGIN_USABLE(e->status))
            continue;
        for (size_t k = 0; k < e->desc->stage_count; k++)
            printf("%s\n%s.%s\n", e->desc->stages[k].type, e->desc->name, e->desc->stages[k].type);
    }
    const sh_plugin *b = types ? sh_builtin_plugin() : NULL;
    for (uint32_t k = 0; b && k < b->stage_type_count; k++)
        printf("%s\n", b->stage_types[k]->type);
}

static int reset(sh_runtime *rt, const char *name)
{
    const sh_registry_entry *e = sh_registry_find_any(&rt->registry, name);
    if (!e || !e->desc)
        return sh_cli_error(2, "Plugin not found: %s; 'stagehost plugins list' shows what is on the search path", name);
    const char *last = NULL;
    int crashes = sh_quarantine_crashes(rt->quarantine, e->desc->library_path, &last);
    if (!rt->quarantine || !sh_quarantine_reset(rt->quarantine, e->desc->library_path)) {
        printf("plugin '%s' has no crash history to clear\n", name);
        return 0;
    }
    printf("plugin '%s': cleared %d recorded crash%s (last: %s)\n", name, crashes, crashes == 1 ? "" : "es",
           last && *last ? last : "unknown");
    return 0;
}

int sh_cmd_plugins(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "plugins", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    const char *sub = cli.arg_count ? cli.args[0] : "";
    bool list = strcmp(sub, "list") == 0 && cli.arg_count == 1;
    bool words = (strcmp(sub, "names") == 0 || strcmp(sub, "types") == 0) && cli.arg_count == 1;
    bool named = (strcmp(sub, "inspect") == 0 || strcmp(sub, "reset") == 0) && cli.arg_count == 2;
    if (strcmp(sub, "validate") == 0 && cli.arg_count >= 2) {
        rc = validate(env, cli.args + 1, cli.arg_count - 1, cli.allow_unconfined);
        goto out;
    }
    if (!list && !named && !words) {
        rc = sh_cli_error(2, "plugins: expected list, inspect NAME, validate PATH... or reset NAME\n%s", usage);
        goto out;
    }
    sh_runtime rt;
    rc = sh_cli_runtime(&cli, &rt, false, false);
    if (rc < 0) {
        if (words) {
            print_words(&rt.registry, strcmp(sub, "types") == 0);
            rc = 0;
        } else if (list) {
            if (cli.json)
                print_json(&rt.registry);
            else
                print_table(&rt.registry);
            rc = 0;
        } else if (strcmp(sub, "inspect") == 0) {
            rc = inspect(&rt, cli.args[1], cli.json);
        } else {
            rc = reset(&rt, cli.args[1]);
        }
        sh_runtime_stop(&rt);
    }
out:
    sh_cli_free(&cli);
    return rc;
}
