#include "registry/hookspec.h"
#include "value/cfgread.h"
#include "util/names.h"

#include <ctype.h>
#include <libconfig.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const dispatch_names[] = {
    [SH_DISPATCH_SINGLETON] = "singleton",
    [SH_DISPATCH_COLLECT] = "broadcast-collect",
    [SH_DISPATCH_NOTIFY] = "broadcast-notify",
    [SH_DISPATCH_CHAIN] = "chain",
    [SH_DISPATCH_CAPABILITY] = "capability",
};
SH_DEFINE_STRING_TABLE(sh_dispatch, sh_dispatch, dispatch_names, "?")

bool sh_hook_name_valid(const char *s)
{
    if (!islower((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}

static sh_status parse_type(sh_cfg *p, const config_setting_t *at, const char *text, bool allow_void,
                            sh_ntype *out)
{
    if (sh_ntype_parse(text, allow_void, out))
        return SH_S_OK;
    return sh_cfg_fail(p, at, "unknown type '%s': use one of %s%s", text, SH_NTYPE_NAMES,
                       allow_void ? ", void" : "");
}

static sh_status parse_hook(sh_cfg *p, const config_setting_t *g, sh_hookspec *s, sh_hookspec_hook *h)
{
    h->line = sh_cfg_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(p, g, "each element of 'hooks' must be a group { name = ...; dispatch = ...; }, got %s",
                           sh_cfg_type_word(g));
    static const char *const known[] = {"name", "dispatch", "args", "returns", "description", "best_effort"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(p, g, "a hook", known, sizeof known / sizeof known[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "name", "the hook's name, such as \"validate\"", true, &h->name));
    if (h->name && !sh_hook_name_valid(h->name))
        sh_cfg_fail(p, config_setting_get_member(g, "name"),
                    "hook name '%s' is invalid: lowercase letters, digits, '_' and '-', starting with a letter",
                    h->name);
    char *dispatch = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "dispatch",
                             "\"singleton\", \"broadcast-collect\", \"broadcast-notify\", \"chain\" or \"capability\"",
                             true, &dispatch));
    if (dispatch && !sh_dispatch_parse(dispatch, &h->dispatch))
        sh_cfg_fail(p, config_setting_get_member(g, "dispatch"),
                    "dispatch '%s' is not one of singleton, broadcast-collect, broadcast-notify, chain, capability",
                    dispatch);
    bool dispatch_ok = dispatch && sh_dispatch_parse(dispatch, &h->dispatch);
    free(dispatch);

    config_setting_t *args = config_setting_get_member(g, "args");
    if (args) {
        bool list = config_setting_type(args) == CONFIG_TYPE_LIST || config_setting_type(args) == CONFIG_TYPE_ARRAY;
        int n = list ? config_setting_length(args) : 0;
        if (!list)
            sh_cfg_fail(p, args, "'args' must be a list of type names such as ( \"string\", \"i64\" ), got %s",
                        sh_cfg_type_word(args));
        else if (n > SH_SIG_MAX_ARGS)
            sh_cfg_fail(p, args, "a hook takes at most %d arguments, this one declares %d", SH_SIG_MAX_ARGS, n);
        for (int i = 0; list && i < n && i < SH_SIG_MAX_ARGS; i++) {
            config_setting_t *a = config_setting_get_elem(args, (unsigned)i);
            const char *t = config_setting_type(a) == CONFIG_TYPE_STRING ? config_setting_get_string(a) : NULL;
            if (!t)
                sh_cfg_fail(p, a, "argument %d must be a type name (%s)", i + 1, SH_NTYPE_NAMES);
            else
                parse_type(p, a, t, false, &h->sig.args[i]);
            h->sig.nargs = (size_t)i + 1;
        }
    }
    char *ret = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "returns", "a type name, or \"void\"", false, &ret));
    h->sig.ret = SH_NT_VOID;
    if (ret)
        parse_type(p, config_setting_get_member(g, "returns"), ret, true, &h->sig.ret);
    free(ret);
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "description", "a string", false, &h->description));
    SH_CFG_KEEP_GOING(sh_cfg_bool(p, g, "best_effort", &h->best_effort));
    if (dispatch_ok && h->best_effort && h->dispatch != SH_DISPATCH_COLLECT)
        sh_cfg_fail(p, config_setting_get_member(g, "best_effort"),
                    "best_effort applies to broadcast-collect hooks only, and '%s' is %s", h->name ? h->name : "?",
                    sh_dispatch_name(h->dispatch));
    if (dispatch_ok && h->dispatch == SH_DISPATCH_NOTIFY && h->sig.ret != SH_NT_VOID)
        sh_cfg_fail(p, g, "broadcast-notify hook '%s' returns nothing: remove 'returns' (or make it \"void\")",
                    h->name ? h->name : "?");
    /* A chain feeds each output into the next implementation as its first argument. */
    if (dispatch_ok && h->dispatch == SH_DISPATCH_CHAIN &&
        (h->sig.nargs == 0 || h->sig.ret == SH_NT_VOID || h->sig.args[0] != h->sig.ret))
        sh_cfg_fail(p, g,
                    "chain hook '%s' must return the type of its first argument, which each implementation's output "
                    "replaces (e.g. args = ( \"string\" ); returns = \"string\";)",
                    h->name ? h->name : "?");
    if (h->name && s->kind) {
        size_t n = strlen(s->kind) + strlen(h->name) + 2;
        if (!(h->full_name = malloc(n)))
            return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
        snprintf(h->full_name, n, "%s.%s", s->kind, h->name);
    }
    return SH_S_OK;
}

static sh_status parse_root(sh_cfg *p, const config_setting_t *root, sh_hookspec *s)
{
    static const char *const known[] = {"kind", "api", "hooks", "description"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(p, root, "a hookspec", known, sizeof known / sizeof known[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "kind", "the hook kind, such as \"doc\"", true, &s->kind));
    if (s->kind && !sh_hook_name_valid(s->kind)) {
        sh_cfg_fail(p, config_setting_get_member(root, "kind"),
                    "kind '%s' is invalid: lowercase letters, digits, '_' and '-', starting with a letter", s->kind);
        free(s->kind);
        s->kind = NULL;
    }
    char *api = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "api", "the hookspec's API version, such as \"1.0\"", true, &api));
    unsigned major = 0, minor = 0;
    char tail = 0;
    if (api && (sscanf(api, "%5u.%5u%c", &major, &minor, &tail) != 2 || major > 0xffff || minor > 0xffff ||
                !isdigit((unsigned char)api[0])))
        sh_cfg_fail(p, config_setting_get_member(root, "api"), "api must look like \"1.0\" (MAJOR.MINOR), got \"%s\"",
                    api);
    s->api_major = (uint16_t)major;
    s->api_minor = (uint16_t)minor;
    free(api);
    config_setting_t *hooks = config_setting_get_member(root, "hooks");
    if (!hooks)
        return sh_cfg_fail(p, root,
                           "missing required key 'hooks' (a list of groups ( { name = ...; dispatch = ...; } ))");
    if (config_setting_type(hooks) != CONFIG_TYPE_LIST)
        return sh_cfg_fail(p, hooks, "'hooks' must be a list of groups ( { name = ...; }, ... ), got %s",
                           sh_cfg_type_word(hooks));
    int n = config_setting_length(hooks);
    if (n == 0)
        return sh_cfg_fail(p, hooks, "'hooks' is empty: a hookspec declares at least one hook");
    if (!(s->hooks = calloc((size_t)n, sizeof *s->hooks)))
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    size_t *first = NULL;
    sh_status rc = sh_cfg_first_duplicates(p, hooks, "name", &first);
    for (int i = 0; rc == SH_S_OK && i < n; i++) {
        s->count = (size_t)i + 1;
        rc = parse_hook(p, config_setting_get_elem(hooks, (unsigned)i), s, &s->hooks[i]);
        if (rc == SH_S_NOMEM)
            break;
        rc = SH_S_OK;
        if (s->hooks[i].name && first[i] != SIZE_MAX)
            sh_cfg_fail(p, config_setting_get_elem(hooks, (unsigned)i),
                        "hook '%s' is declared twice (first at line %d)", s->hooks[i].name, s->hooks[first[i]].line);
    }
    free(first);
    if (rc != SH_S_OK)
        return rc;
    return p->errors ? SH_S_CONFIG : SH_S_OK;
}

static sh_status finish(config_t *cfg, sh_status rc, const char *path, sh_hookspec **out, sh_error *err)
{
    sh_hookspec *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        config_destroy(cfg);
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading %s", path);
    }
    if (rc == SH_S_OK) {
        sh_cfg p = {.path = path, .err = err};
        rc = parse_root(&p, config_root_setting(cfg), s);
    }
    config_destroy(cfg);
    if (rc != SH_S_OK) {
        sh_hookspec_free(s);
        return rc;
    }
    *out = s;
    return SH_S_OK;
}

sh_status sh_hookspec_load(const char *path, sh_hookspec **out, sh_error *err)
{
    *out = NULL;
    config_t cfg;
    sh_status rc = sh_cfg_read_file(&cfg, path, "hookspec", SH_CFG_MAX_DESCRIPTOR, err);
    return finish(&cfg, rc, path, out, err);
}

sh_status sh_hookspec_parse_text(const char *text, const char *name, sh_hookspec **out, sh_error *err)
{
    *out = NULL;
    config_t cfg;
    config_init(&cfg);
    sh_status rc = SH_S_OK;
    if (config_read_string(&cfg, text) != CONFIG_TRUE)
        rc = sh_error_set(err, SH_S_CONFIG, "%s:%d: syntax error: %s", name, config_error_line(&cfg),
                          config_error_text(&cfg));
    return finish(&cfg, rc, name, out, err);
}

void sh_hookspec_free(sh_hookspec *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->hooks[i].name);
        free(s->hooks[i].full_name);
        free(s->hooks[i].description);
    }
    free(s->hooks);
    free(s->kind);
    free(s->path);
    free(s);
}
