#include "cli/cli.h"
#include "util/buf.h"
#include "hooks/hooks.h"
#include "value/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: stagehost hooks list [--json] [options]\n"
    "       stagehost hooks call KIND.NAME [ARG...] [--tag TAG]... [options]\n"
    "\n"
    "list   every hook the hookspecs (*.hooks) on the plugin search path declare, with its dispatch class and\n"
    "       signature, and its implementations in dispatch order. Reads files only: no plugin code runs.\n"
    "       Startup problems (singleton ties, two capability fallbacks) are listed; exit status 2 then.\n"
    "call   calls a hook: each ARG is read as the hook's declared argument type; --tag gives a capability\n"
    "       hook the call's tags. Prints the result as JSON (an array for broadcast-collect, null for none).\n"
    "       Exit status 1 when an implementation fails, 2 for usage or configuration errors.\n"
    "\n"
    "Options:\n"
    "  --plugins-dir DIR   search DIR for *.plugin and *.hooks files (repeatable)\n"
    "  --config FILE       host configuration (default: $STAGEHOST_CONFIG)\n"
    "  --json              JSON output (list)\n"
    "  --tag TAG           a capability tag of the call (repeatable)\n"
    "  --deterministic     fixed clock and seeded random source in the implementations' context\n"
    "  --grant PLUGIN:PERMISSION, --allow-unconfined   as for run\n"
    "  -v, --verbose       more logging\n"
    "  -h, --help          show this help\n";

static void json_str(sh_buf *b, const char *s)
{
    if (s)
        sh_json_write_string(b, s, strlen(s));
    else
        sh_buf_puts(b, "null");
}

static void signature_text(const sh_signature *sig, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "(");
    for (size_t i = 0; i < sig->nargs && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", sh_ntype_name(sig->args[i]));
    if (n < len)
        snprintf(out + n, len - n, ") -> %s", sh_ntype_name(sig->ret));
}

static void list_json(sh_hooks *h)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_puts(&b, "{\"hooks\":[");
    for (size_t i = 0; i < sh_hooks_count(h); i++) {
        sh_hook *hk = sh_hooks_at(h, i);
        const sh_hookspec_hook *s = sh_hook_spec(hk);
        sh_buf_puts(&b, i ? ",{\"hook\":" : "{\"hook\":");
        json_str(&b, s->full_name);
        sh_buf_puts(&b, ",\"dispatch\":");
        json_str(&b, sh_dispatch_name(s->dispatch));
        sh_buf_puts(&b, ",\"args\":[");
        for (size_t k = 0; k < s->sig.nargs; k++) {
            if (k)
                sh_buf_putc(&b, ',');
            json_str(&b, sh_ntype_name(s->sig.args[k]));
        }
        sh_buf_puts(&b, "],\"returns\":");
        json_str(&b, sh_ntype_name(s->sig.ret));
        sh_buf_printf(&b, ",\"best_effort\":%s,\"description\":", s->best_effort ? "true" : "false");
        json_str(&b, s->description);
        sh_buf_puts(&b, ",\"hookspec\":");
        json_str(&b, sh_hook_spec_path(hk));
        sh_buf_printf(&b, ",\"line\":%d,\"implementations\":[", s->line);
        for (size_t k = 0; k < sh_hook_impl_count(hk); k++) {
            sh_hook_impl_info im;
            sh_hook_impl_at(hk, k, &im);
            sh_buf_puts(&b, k ? ",{\"plugin\":" : "{\"plugin\":");
            json_str(&b, im.plugin);
            sh_buf_puts(&b, ",\"symbol\":");
            json_str(&b, im.decl->symbol);
            sh_buf_printf(&b, ",\"priority\":%lld,\"fallback\":%s,\"denied\":%s,\"isolation\":",
                          (long long)im.decl->priority, im.decl->fallback ? "true" : "false",
                          im.denied ? "true" : "false");
            json_str(&b, sh_isolation_name(im.isolation));
            sh_buf_puts(&b, ",\"supports\":[");
            for (size_t t = 0; t < im.decl->supports_count; t++) {
                if (t)
                    sh_buf_putc(&b, ',');
                json_str(&b, im.decl->supports[t]);
            }
            sh_buf_puts(&b, "]}");
        }
        sh_buf_puts(&b, "]}");
    }
    sh_buf_puts(&b, "],\"problems\":[");
    const char *p = sh_hooks_problems(h);
    for (bool first = true; p && *p; first = false) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!first)
            sh_buf_putc(&b, ',');
        sh_json_write_string(&b, p, n);
        p = nl ? nl + 1 : NULL;
    }
    sh_buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
    sh_buf_free(&b);
}

static void list_text(sh_hooks *h)
{
    for (size_t i = 0; i < sh_hooks_count(h); i++) {
        sh_hook *hk = sh_hooks_at(h, i);
        const sh_hookspec_hook *s = sh_hook_spec(hk);
        char sig[512];
        signature_text(&s->sig, sig, sizeof sig);
        printf("%s  %s%s  %s  (%s:%d)\n", s->full_name, sh_dispatch_name(s->dispatch),
               s->best_effort ? " best_effort" : "", sig, sh_hook_spec_path(hk), s->line);
        if (s->description)
            printf("    %s\n", s->description);
        if (!sh_hook_impl_count(hk))
            printf("    (no implementations)\n");
        for (size_t k = 0; k < sh_hook_impl_count(hk); k++) {
            sh_hook_impl_info im;
            sh_hook_impl_at(hk, k, &im);
            printf("    %zu. %s  priority %lld  symbol %s  isolation %s", k + 1, im.plugin,
                   (long long)im.decl->priority, im.decl->symbol, sh_isolation_name(im.isolation));
            for (size_t t = 0; t < im.decl->supports_count; t++)
                printf("%s%s", t ? "," : "  supports ", im.decl->supports[t]);
            printf("%s%s\n", im.decl->fallback ? "  fallback" : "", im.denied ? "  (denied by governance)" : "");
        }
    }
    const char *p = sh_hooks_problems(h);
    if (p)
        printf("problems:\n%s\n", p);
}

static int call(sh_runtime *rt, const sh_cli *cli)
{
    sh_hooks *h = NULL;
    sh_error err;
    if (sh_hooks_get(rt, &h, &err) != SH_S_OK) {
        sh_hooks_free(h);
        return sh_cli_error(2, "%s", err.message);
    }
    sh_hook *hk = sh_hooks_find(h, cli->args[1]);
    if (!hk) {
        sh_hooks_free(h);
        return sh_cli_error(2, "hook '%s' not found: no hookspec on the plugin search path declares it; 'stagehost "
                               "hooks list' shows the known hooks", cli->args[1]);
    }
    const sh_hookspec_hook *s = sh_hook_spec(hk);
    size_t nargs = (size_t)cli->arg_count - 2;
    if (nargs != s->sig.nargs) {
        char sig[512];
        signature_text(&s->sig, sig, sizeof sig);
        sh_hooks_free(h);
        return sh_cli_error(2, "hooks call: '%s' takes %zu argument%s %s, got %zu", s->full_name, s->sig.nargs,
                            s->sig.nargs == 1 ? "" : "s", sig, nargs);
    }
    sh_value *args[SH_SIG_MAX_ARGS] = {0};
    int rc = -1;
    for (size_t i = 0; i < nargs && rc < 0; i++)
        if (sh_ntype_value_from_text(s->sig.args[i], cli->args[2 + i], &args[i], &err) != SH_S_OK)
            rc = sh_cli_error(2, "hooks call %s: argument %zu: %s", s->full_name, i + 1, err.message);
    if (rc < 0) {
        sh_hooks_run_started(h);
        sh_value *result = NULL;
        sh_status st = sh_hooks_call(h, hk, (const sh_value *const *)args, nargs, cli->tags, cli->tag_count, &result,
                                     &err);
        if (st != SH_S_OK) {
            rc = sh_cli_error(sh_status_exit_code(st), "%s", err.message);
        } else {
            sh_buf b;
            sh_buf_init(&b);
            if (result)
                sh_json_write(&b, result);
            else
                sh_buf_puts(&b, "null");
            sh_buf_putc(&b, '\n');
            fwrite(b.data, 1, b.len, stdout);
            sh_buf_free(&b);
            rc = 0;
        }
        sh_value_free(result);
    }
    for (size_t i = 0; i < nargs; i++)
        sh_value_free(args[i]);
    sh_hooks_free(h);
    return rc;
}

int sh_cmd_hooks(const sh_env *env, int argc, char **argv)
{
    sh_cli cli = {.env = env, .command = "hooks", .usage = usage};
    int rc = sh_cli_parse(&cli, argc, argv);
    if (rc >= 0)
        goto out;
    const char *sub = cli.arg_count ? cli.args[0] : NULL;
    if (!sub || (strcmp(sub, "list") != 0 && strcmp(sub, "call") != 0)) {
        rc = sh_cli_error(2, "hooks: expected 'list' or 'call'\n%s", usage);
        goto out;
    }
    if (strcmp(sub, "list") == 0 && cli.arg_count != 1) {
        rc = sh_cli_error(2, "hooks list takes no arguments\n%s", usage);
        goto out;
    }
    if (strcmp(sub, "call") == 0 && cli.arg_count < 2) {
        rc = sh_cli_error(2, "hooks call: expected KIND.NAME\n%s", usage);
        goto out;
    }
    sh_runtime rt;
    /* Calling runs plugin code, in workers forked from a zygote; listing reads files only. */
    bool calling = strcmp(sub, "call") == 0;
    rc = sh_cli_runtime(&cli, &rt, calling, !calling);
    if (rc >= 0)
        goto out;
    if (calling) {
        rc = call(&rt, &cli);
    } else {
        sh_hooks *h = NULL;
        sh_error err;
        if (sh_hooks_build(&rt, &h, &err) != SH_S_OK) {
            rc = sh_cli_error(2, "%s", err.message);
        } else {
            if (cli.json)
                list_json(h);
            else
                list_text(h);
            rc = sh_hooks_problems(h) ? 2 : 0;
            sh_hooks_free(h);
        }
    }
    sh_runtime_stop(&rt);
out:
    sh_cli_free(&cli);
    return rc;
}
