#include "registry/descriptor.h"
#include "value/cfgread.h"
#include "registry/function_spec.h"
#include "registry/hookspec.h"
#include "registry/version.h"
#include "util/names.h"

#include <stagehost/abi.h>

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const isolation_names[] = {
    [SH_ISOLATION_PROCESS] = "process",
    [SH_ISOLATION_CALL] = "call",
    [SH_ISOLATION_NONE] = "none",
};
SH_DEFINE_STRING_TABLE(sh_isolation, sh_isolation, isolation_names, "process")

static const char *const stage_keys[] = {"type", "input", "output", "description", "idempotent",
                                         "function", "args", "returns"};

/* Element `i` of `stages` into d->stages[i]; `first` is the index of an earlier stage of the same type, or
 * SIZE_MAX. Problems are recorded and the walk goes on; only SH_S_NOMEM stops it. */
static sh_status parse_stage(sh_cfg *p, const config_setting_t *s, int i, size_t first, sh_descriptor *d)
{
    config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    sh_stage_decl *st = &d->stages[i];
    d->stage_count = (size_t)i + 1;
    st->line = sh_cfg_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        sh_cfg_fail(p, g, "element %d of 'stages' must be a group { type = ...; }, got %s", i + 1,
                    sh_cfg_type_word(g));
        return SH_S_OK;
    }
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(p, g, "a stage", stage_keys, sizeof stage_keys / sizeof stage_keys[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "type", "the stage type, such as \"chunk\"", true, &st->type));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "input", "an input contract name such as \"document\" or \"any\"", false,
                                    &st->input));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "output", "an output contract name such as \"chunk\" or \"any\"", false,
                                    &st->output));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "description", "a string", false, &st->description));
    SH_CFG_KEEP_GOING(sh_cfg_bool(p, g, "idempotent", &st->idempotent));
    SH_CFG_KEEP_GOING(sh_funcstage_parse(p, g, &st->function));
    if (!st->input)
        st->input = strdup("any");
    if (!st->output)
        st->output = strdup("any");
    if (!st->input || !st->output)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    if (!sh_valid_contract_name(st->input) || !sh_valid_contract_name(st->output))
        sh_cfg_fail(p, g, "contract names must use lowercase letters, digits, '_' and '-' (got input '%s', "
                          "output '%s')", st->input, st->output);
    if (!st->type)
        return SH_S_OK;
    if (!sh_valid_stage_type(st->type))
        sh_cfg_fail(p, sh_cfg_member(g, "type"),
                    "stage type '%s' is invalid: use letters, digits, '_' and '-' only (no '.' or '/')", st->type);
    else if (first != SIZE_MAX)
        sh_cfg_fail(p, g, "stage type '%s' is declared twice (first at line %d)", st->type,
                    sh_cfg_line(config_setting_get_elem(s, (unsigned)first)));
    return SH_S_OK;
}

static sh_status parse_stages(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    config_setting_t *s = sh_cfg_member(root, "stages");
    if (!s)
        return sh_cfg_fail(p, root, "missing required key 'stages' (a list of groups such as "
                             "( { type = \"chunk\"; input = \"document\"; output = \"chunk\"; } ))");
    d->stages_line = sh_cfg_line(s);
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return sh_cfg_fail(p, s, "key 'stages' must be a list of groups ( { type = ...; }, ... ), got %s",
                           sh_cfg_type_word(s));
    int n = config_setting_length(s);
    if (n == 0)
        return sh_cfg_fail(p, s, "key 'stages' is empty: a plugin must provide at least one stage type");
    d->stages = calloc((size_t)n, sizeof *d->stages);
    if (!d->stages)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    /* Duplicates are found before the walk, so each is reported in line order with the other problems. */
    size_t *first = NULL;
    sh_status rc = sh_cfg_first_duplicates(p, s, "type", &first);
    for (int i = 0; rc == SH_S_OK && i < n; i++)
        rc = parse_stage(p, s, i, first[i], d);
    free(first);
    return rc;
}

static const char *const hook_keys[] = {"hook", "symbol", "priority", "supports", "fallback"};

/* Element `i` of `hooks` into d->hooks[i]; `first` as in parse_stage. */
static sh_status parse_hook(sh_cfg *p, const config_setting_t *s, int i, size_t first, sh_descriptor *d)
{
    config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
    sh_hook_decl *h = &d->hooks[i];
    d->hook_count = (size_t)i + 1;
    h->line = sh_cfg_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        sh_cfg_fail(p, g, "element %d of 'hooks' must be a group { hook = ...; symbol = ...; }, got %s", i + 1,
                    sh_cfg_type_word(g));
        return SH_S_OK;
    }
    SH_CFG_KEEP_GOING(
        sh_cfg_check_keys(p, g, "a hook implementation", hook_keys, sizeof hook_keys / sizeof hook_keys[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "hook", "the hook as \"KIND.NAME\"", true, &h->hook));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, g, "symbol", "the exported C function implementing the hook", true,
                                    &h->symbol));
    SH_CFG_KEEP_GOING(sh_cfg_int(p, g, "priority", "an integer below 1000", false, INT32_MIN, &h->priority));
    SH_CFG_KEEP_GOING(sh_cfg_bool(p, g, "fallback", &h->fallback));
    sh_strlist tags = {0};
    sh_status trc = sh_cfg_strlist(p, g, "supports", &tags);
    h->supports = tags.items; /* owned by the declaration even when the list stopped short */
    h->supports_count = tags.len;
    SH_CFG_KEEP_GOING(trc);
    const char *dot = h->hook ? strchr(h->hook, '.') : NULL;
    if (h->hook) {
        char *kind = dot ? strndup(h->hook, (size_t)(dot - h->hook)) : NULL;
        bool ok = kind && sh_hook_name_valid(kind) && sh_hook_name_valid(dot + 1);
        free(kind);
        if (!ok)
            sh_cfg_fail(p, sh_cfg_member(g, "hook"),
                        "hook '%s' must be \"KIND.NAME\" (lowercase letters, digits, '_' and '-'), such as "
                        "\"doc.validate\"", h->hook);
    }
    if (h->symbol && !sh_valid_c_identifier(h->symbol))
        sh_cfg_fail(p, sh_cfg_member(g, "symbol"), "symbol '%s' is not a C identifier", h->symbol);
    if (h->priority >= SH_HOOK_PRIORITY_RESERVED)
        sh_cfg_fail(p, sh_cfg_member(g, "priority"),
                    "priority %lld is reserved: priorities %d and above belong to the host's middleware "
                    "(governance, quota); use a priority below %d",
                    (long long)h->priority, SH_HOOK_PRIORITY_RESERVED, SH_HOOK_PRIORITY_RESERVED);
    if (h->hook && first != SIZE_MAX)
        sh_cfg_fail(p, g, "hook '%s' is implemented twice (first at line %d)", h->hook,
                    sh_cfg_line(config_setting_get_elem(s, (unsigned)first)));
    return SH_S_OK;
}

static sh_status parse_hooks(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    config_setting_t *s = sh_cfg_member(root, "hooks");
    if (!s)
        return SH_S_OK;
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return sh_cfg_fail(p, s,
                           "key 'hooks' must be a list of groups ( { hook = \"KIND.NAME\"; symbol = ...; } ), got %s",
                           sh_cfg_type_word(s));
    int n = config_setting_length(s);
    if (n && !(d->hooks = calloc((size_t)n, sizeof *d->hooks)))
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    size_t *first = NULL;
    sh_status rc = sh_cfg_first_duplicates(p, s, "hook", &first);
    for (int i = 0; rc == SH_S_OK && i < n; i++)
        rc = parse_hook(p, s, i, first[i], d);
    free(first);
    return rc;
}

sh_status sh_descriptor_parse_limits(sh_cfg *p, const config_setting_t *s, sh_limits *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(p, s, "key 'limits' must be a group { timeout_ms = ...; }, got %s", sh_cfg_type_word(s));
    static const char *const known[] = {"memory_mb", "cpu_seconds", "timeout_ms", "open_files",
                                        "processes", "file_size_mb", "output_mb"};
    sh_status rc = sh_cfg_check_keys(p, s, "'limits'", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "memory_mb", "a size in MiB", false, 1, &out->memory_mb);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "cpu_seconds", "a number of seconds", false, 1, &out->cpu_seconds);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "timeout_ms", "a number of milliseconds", false, 1, &out->timeout_ms);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "open_files", "a number of file descriptors", false, 16, &out->open_files);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "processes", "a number of processes", false, 1, &out->processes);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "file_size_mb", "a size in MiB", false, 1, &out->file_size_mb);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(p, s, "output_mb", "a size in MiB", false, 1, &out->output_mb);
    /* Upper bounds catch a unit mistake (milliseconds for seconds, bytes for MiB) before it reaches setrlimit. */
    static const struct {
        const char *key;
        int64_t max;
        const char *unit;
    } ranges[] = {{"memory_mb", 1 << 20, "MiB (1 TiB)"},       {"cpu_seconds", 7 * 86400, "seconds (a week)"},
                  {"timeout_ms", 7 * 86400000LL, "ms (a week)"}, {"open_files", 1 << 20, "descriptors"},
                  {"processes", 1 << 20, "processes"},         {"file_size_mb", 1 << 20, "MiB (1 TiB)"},
                  {"output_mb", 1 << 14, "MiB (16 GiB)"}};
    const int64_t values[] = {out->memory_mb,  out->cpu_seconds,  out->timeout_ms, out->open_files,
                              out->processes, out->file_size_mb, out->output_mb};
    for (size_t i = 0; rc == SH_S_OK && i < sizeof ranges / sizeof ranges[0]; i++)
        if (values[i] > ranges[i].max)
            rc = sh_cfg_fail(p, sh_cfg_member(s, ranges[i].key),
                             "limits.%s = %lld is out of range: at most %lld %s", ranges[i].key,
                             (long long)values[i], (long long)ranges[i].max, ranges[i].unit);
    return rc;
}

static sh_status parse_limits(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    config_setting_t *s = sh_cfg_member(root, "limits");
    return s ? sh_descriptor_parse_limits(p, s, &d->limits) : SH_S_OK;
}

static sh_status parse_permissions(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    config_setting_t *s = sh_cfg_member(root, "permissions");
    if (!s)
        return SH_S_OK;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(p, s, "key 'permissions' must be a group { network = false; ... }, got %s",
                           sh_cfg_type_word(s));
    static const char *const known[] = {"network", "exec", "read", "write", "env"};
    sh_status rc = sh_cfg_check_keys(p, s, "'permissions'", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_bool(p, s, "network", &d->permissions.network);
    if (rc == SH_S_OK)
        rc = sh_cfg_bool(p, s, "exec", &d->permissions.exec);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(p, s, "read", &d->permissions.read);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(p, s, "write", &d->permissions.write);
    if (rc == SH_S_OK)
        rc = sh_cfg_strlist(p, s, "env", &d->permissions.env);
    /* Grants are matched by path: a relative path would mean something different in every working directory. */
    const sh_strlist *lists[] = {&d->permissions.read, &d->permissions.write};
    const char *names[] = {"read", "write"};
    for (size_t k = 0; rc == SH_S_OK && k < 2; k++)
        for (size_t i = 0; rc == SH_S_OK && i < lists[k]->len; i++)
            if (lists[k]->items[i][0] != '/')
                rc = sh_cfg_fail(p, sh_cfg_member(s, names[k]),
                                 "permissions.%s path '%s' must be absolute", names[k], lists[k]->items[i]);
    return rc;
}

static sh_status parse_abi(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    char *abi = NULL;
    sh_status rc = sh_cfg_string(p, root, "abi", "the ABI version the plugin was built for, such as \"1.0\"", true,
                              &abi);
    if (rc != SH_S_OK)
        return rc;
    /* Digits, a dot, digits: sscanf would also take signs and spaces. */
    unsigned long major = 0, minor = 0;
    const char *q = abi;
    bool ok = isdigit((unsigned char)*q);
    while (ok && isdigit((unsigned char)*q) && major <= 0xffff)
        major = major * 10 + (unsigned long)(*q++ - '0');
    ok = ok && *q++ == '.' && isdigit((unsigned char)*q);
    while (ok && isdigit((unsigned char)*q) && minor <= 0xffff)
        minor = minor * 10 + (unsigned long)(*q++ - '0');
    ok = ok && *q == '\0';
    config_setting_t *s = sh_cfg_member(root, "abi");
    if (!ok || major > 0xffff || minor > 0xffff) {
        rc = sh_cfg_fail(p, s, "key 'abi' must look like \"1.0\" (MAJOR.MINOR), got \"%s\"", abi);
    } else if (major != SH_ABI_MAJOR) {
        rc = sh_cfg_fail(p, s, "plugin is built for ABI %lu.%lu, but this host speaks ABI %d.x: rebuild the plugin "
                        "against the stagehost %d SDK",
                  major, minor, SH_ABI_MAJOR, SH_ABI_MAJOR);
    } else {
        d->abi_major = (uint16_t)major;
        d->abi_minor = (uint16_t)minor;
    }
    free(abi);
    return rc;
}

static sh_status parse_requires(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    SH_CFG_KEEP_GOING(sh_cfg_strlist(p, root, "requires", &d->requires));
    config_setting_t *s = sh_cfg_member(root, "requires");
    if (!d->requires.len)
        return SH_S_OK;
    d->requirements = calloc(d->requires.len, sizeof *d->requirements);
    if (!d->requirements)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    for (size_t i = 0; i < d->requires.len; i++) {
        char why[512];
        if (!sh_requirement_parse(d->requires.items[i], &d->requirements[i], why, sizeof why))
            sh_cfg_fail(p, config_setting_get_elem(s, (unsigned)i), "%s", why);
        else if (d->name && strcmp(d->requirements[i].name, d->name) == 0)
            sh_cfg_fail(p, config_setting_get_elem(s, (unsigned)i), "plugin '%s' requires itself", d->name);
    }
    return SH_S_OK;
}

static sh_status parse_root(sh_cfg *p, const config_setting_t *root, sh_descriptor *d)
{
    static const char *const known[] = {"format",   "name",     "version",   "library",     "entry",
                                        "abi",      "stages",   "requires",  "priority",    "isolation",
                                        "limits",   "permissions", "description", "hooks"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(p, root, "the descriptor", known, sizeof known / sizeof known[0]));

    int64_t format = SH_DESCRIPTOR_FORMAT;
    if (sh_cfg_int(p, root, "format", "the descriptor format version, 1", true, 0, &format) == SH_S_OK &&
        format != SH_DESCRIPTOR_FORMAT)
        sh_cfg_fail(p, sh_cfg_member(root, "format"),
                    "descriptor format %lld is not supported: this host reads format %d", (long long)format,
                    SH_DESCRIPTOR_FORMAT);
    d->format = (int)format;

    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "name", "the plugin's name as \"namespace/name\"", true, &d->name));
    d->name_line = sh_cfg_line(sh_cfg_member(root, "name"));
    if (d->name && !sh_valid_plugin_name(d->name)) {
        sh_cfg_fail(p, sh_cfg_member(root, "name"),
                    "plugin name '%s' must be \"namespace/name\" with lowercase letters, digits and '-' in each "
                    "part, such as \"core/text\"",
                    d->name);
        free(d->name);
        d->name = NULL; /* an invalid name must not stand for the plugin elsewhere */
    }

    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "version", "a semantic version string such as \"1.0.0\"", true,
                                    &d->version));
    d->version_line = sh_cfg_line(sh_cfg_member(root, "version"));
    if (d->version && !sh_valid_semver(d->version))
        sh_cfg_fail(p, sh_cfg_member(root, "version"),
                    "version '%s' is not a semantic version such as \"1.4.0\"", d->version);

    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "library", "the plugin's shared object, relative to the descriptor", true,
                             &d->library));
    if (d->library && !sh_valid_library_path(d->library))
        sh_cfg_fail(p, sh_cfg_member(root, "library"),
                    "library '%s' must be a path inside the plugin's directory, relative to the descriptor, with no "
                    "'..' (put the library beside its descriptor, or link it there)",
                    d->library);
    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "entry", "the exported entry symbol", false, &d->entry));
    if (!d->entry && !(d->entry = strdup(SH_DEFAULT_ENTRY)))
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    if (!sh_valid_c_identifier(d->entry))
        sh_cfg_fail(p, sh_cfg_member(root, "entry"), "entry '%s' is not a C identifier", d->entry);

    SH_CFG_KEEP_GOING(parse_abi(p, root, d));
    SH_CFG_KEEP_GOING(parse_stages(p, root, d));
    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "description", "a string", false, &d->description));
    SH_CFG_KEEP_GOING(parse_requires(p, root, d));
    SH_CFG_KEEP_GOING(sh_cfg_int(p, root, "priority", "an integer", false, INT32_MIN, &d->priority));

    char *iso = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(p, root, "isolation", "\"process\", \"call\" or \"none\"", false, &iso));
    if (iso && !sh_isolation_parse(iso, &d->isolation))
        sh_cfg_fail(p, sh_cfg_member(root, "isolation"),
                    "isolation '%s' is not one of \"process\", \"call\" or \"none\"", iso);
    free(iso);
    SH_CFG_KEEP_GOING(parse_limits(p, root, d));
    SH_CFG_KEEP_GOING(parse_permissions(p, root, d));
    SH_CFG_KEEP_GOING(parse_hooks(p, root, d));
    return p->errors ? SH_S_CONFIG : SH_S_OK;
}

void sh_descriptor_dir_release(sh_descriptor_dir *dir)
{
    free(dir->lib);
    dir->lib = NULL;
}

bool sh_descriptor_library_regular(sh_descriptor_dir *dir, const char *library_path, int *err_no)
{
    if (dir && dir->lib && strcmp(dir->lib, library_path) == 0) {
        *err_no = dir->lib_errno;
        return dir->lib_regular;
    }
    struct stat st;
    *err_no = stat(library_path, &st) == 0 ? 0 : errno;
    bool regular = *err_no == 0 && S_ISREG(st.st_mode);
    char *copy = dir ? strdup(library_path) : NULL;
    if (copy) {
        free(dir->lib);
        dir->lib = copy;
        dir->lib_errno = *err_no;
        dir->lib_regular = regular;
    }
    return regular;
}

static sh_status resolve_library(sh_cfg *p, config_setting_t *root, sh_descriptor *d, sh_descriptor_dir *dir)
{
    size_t dn = strlen(d->dir), ln = strlen(d->library);
    d->library_path = malloc(dn + ln + 2);
    if (!d->library_path)
        return sh_error_set(p->err, SH_S_NOMEM, "out of memory reading %s", p->path);
    memcpy(d->library_path, d->dir, dn);
    d->library_path[dn] = '/';
    memcpy(d->library_path + dn + 1, d->library, ln + 1);
    int e;
    if (sh_descriptor_library_regular(dir, d->library_path, &e))
        return SH_S_OK;
    if (e)
        return sh_cfg_fail(p, sh_cfg_member(root, "library"),
                    "library '%s' not found at %s (%s): build the plugin, or fix 'library' (it is relative to "
                    "the descriptor's directory)",
                    d->library, d->library_path, strerror(e));
    return sh_cfg_fail(p, sh_cfg_member(root, "library"), "library %s is not a regular file", d->library_path);
}

sh_status sh_descriptor_load(const char *path, sh_descriptor **out, sh_error *err)
{
    return sh_descriptor_load_in(path, NULL, out, NULL, err);
}

sh_status sh_descriptor_load_in(const char *path, sh_descriptor_dir *dir_info, sh_descriptor **out, char **name,
                                sh_error *err)
{
    *out = NULL;
    if (name)
        *name = NULL;
    sh_descriptor *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path)))
        goto nomem;
    /* An absolute directory, so the library path stays valid in a worker, whose working directory differs.
     * Discovery resolves it once per directory (realpath walks every component: a few syscalls per file). */
    if (dir_info && dir_info->real) {
        d->dir = strdup(dir_info->real);
    } else {
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
        char resolved[PATH_MAX];
        d->dir = dir && realpath(dir, resolved) ? strdup(resolved) : dir ? strdup(dir) : NULL;
        free(dir);
    }
    if (!d->dir)
        goto nomem;

    config_t cfg;
    sh_cfg p = {.path = path, .err = err};
    sh_status rc = sh_cfg_read_file(&cfg, path, "descriptor", SH_CFG_MAX_DESCRIPTOR, err);
    if (rc == SH_S_OK) {
        config_setting_t *root = config_root_setting(&cfg);
        rc = parse_root(&p, root, d);
        /* The library is looked for even when something else is wrong: every problem is reported at once. */
        if (rc != SH_S_NOMEM && d->library && sh_valid_library_path(d->library)) {
            sh_status lrc = resolve_library(&p, root, d, dir_info);
            rc = rc == SH_S_OK ? lrc : rc;
        }
    }
    config_destroy(&cfg);
    if (rc != SH_S_OK) {
        if (name && d->name && sh_valid_plugin_name(d->name)) {
            *name = d->name;
            d->name = NULL;
        }
        sh_descriptor_free(d);
        return rc;
    }
    *out = d;
    return SH_S_OK;

nomem:
    sh_descriptor_free(d);
    return sh_error_set(err, SH_S_NOMEM, "out of memory reading %s", path);
}

void sh_descriptor_free(sh_descriptor *d)
{
    if (!d)
        return;
    if (d->packed) {
        for (size_t i = 0; i < d->stage_count; i++)
            sh_value_free(d->stages[i].function);
        if (d->owns_deps)
            for (size_t i = 0; i < d->dep_count; i++)
                sh_descriptor_free(d->deps[i]);
        free(d->deps);
        free(d);
        return;
    }
    for (size_t i = 0; i < d->stage_count; i++) {
        free(d->stages[i].type);
        free(d->stages[i].input);
        free(d->stages[i].output);
        free(d->stages[i].description);
        sh_value_free(d->stages[i].function);
    }
    free(d->stages);
    for (size_t i = 0; i < d->hook_count; i++) {
        free(d->hooks[i].hook);
        free(d->hooks[i].symbol);
        for (size_t k = 0; k < d->hooks[i].supports_count; k++)
            free(d->hooks[i].supports[k]);
        free(d->hooks[i].supports);
    }
    free(d->hooks);
    sh_strlist_clear(&d->requires);
    free(d->requirements);
    if (d->owns_deps)
        for (size_t i = 0; i < d->dep_count; i++)
            sh_descriptor_free(d->deps[i]);
    free(d->deps);
    sh_strlist_clear(&d->permissions.read);
    sh_strlist_clear(&d->permissions.write);
    sh_strlist_clear(&d->permissions.env);
    free(d->path);
    free(d->dir);
    free(d->name);
    free(d->version);
    free(d->library);
    free(d->library_path);
    free(d->entry);
    free(d->description);
    free(d);
}

const sh_stage_decl *sh_descriptor_find_stage(const sh_descriptor *d, const char *type)
{
    for (size_t i = 0; i < d->stage_count; i++)
        if (strcmp(d->stages[i].type, type) == 0)
            return &d->stages[i];
    return NULL;
}
