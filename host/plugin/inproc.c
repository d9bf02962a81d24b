#include "plugin/inproc.h"
#include "plugin/function_stage.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct inproc_stage {
    sh_stage *stage;     /* NULL once destroyed */
    bool finished;       /* finish() ran (or would have): the stage takes no more batches */
    sh_stage_def def;    /* kept alive until destroy(), as the ABI promises the plugin */
    char *type;
    char *name;
    sh_value *config;
} inproc_stage;

/* A symbol the descriptor names (a hook implementation or a function stage), resolved when the plugin loads. */
typedef struct resolved {
    char *symbol;
    char *stage_type; /* function stages: the stage type; NULL for hooks */
    sh_value *spec;   /* function stages: the descriptor's function spec (a copy) */
    void (*fn)(void);
} resolved;

struct sh_inproc {
    sh_loaded loaded;
    resolved *symbols;
    size_t symbol_count;
    sh_inproc **deps; /* the plugins this one requires, opened before it, closed after it */
    size_t dep_count;
    char *name;
    sh_value *config;
    inproc_stage *stages;
    size_t len, cap;
};

static sh_status open_common(sh_inproc *ip, const char *name, const sh_value *config, sh_error *err)
{
    /* init() may keep `config` until fini(), so the instance owns a copy for its whole life. */
    ip->name = strdup(name);
    ip->config = config ? sh_value_copy(config) : sh_value_map();
    if (!ip->name || !ip->config)
        return sh_error_set(err, SH_S_NOMEM, "out of memory loading plugin '%s'", name);
    return sh_loader_init(&ip->loaded, name, ip->config, err);
}

static sh_status open_one(const sh_descriptor *d, const sh_value *config, bool global, sh_inproc **out,
                          sh_error *err);

/* Resolves every hook implementation's and function stage's symbol before init(): a plugin that lacks one is
 * refused as a whole, at load, rather than failing on some later call. */
static sh_status resolve_symbols(sh_inproc *ip, const sh_descriptor *d, sh_error *err)
{
    size_t n = d->hook_count;
    for (size_t i = 0; i < d->stage_count; i++)
        n += d->stages[i].function != NULL;
    if (!n)
        return SH_S_OK;
    if (!(ip->symbols = calloc(n, sizeof *ip->symbols)))
        return sh_error_set(err, SH_S_NOMEM, "out of memory loading plugin '%s'", d->name);
    for (size_t i = 0; i < d->hook_count + d->stage_count; i++) {
        const sh_hook_decl *h = i < d->hook_count ? &d->hooks[i] : NULL;
        const sh_stage_decl *st = h ? NULL : &d->stages[i - d->hook_count];
        if (st && !st->function)
            continue;
        const char *symbol = h ? h->symbol : sh_funcstage_symbol(st->function);
        dlerror();
        void *sym = dlsym(ip->loaded.dl, symbol);
        if (!sym)
            return sh_error_set(err, SH_S_LOAD,
                                "plugin '%s' is refused: %s:%d declares %s '%s' implemented by symbol '%s', but %s "
                                "does not export it (nor does any library it links); export the function (not "
                                "static, default visibility, e.g. with SH_SDK_EXPORT) or fix the descriptor",
                                d->name, d->path, h ? h->line : st->line, h ? "hook" : "function stage",
                                h ? h->hook : st->type, symbol, d->library_path);
        /* dlsym also searches the libraries the plugin links: a hook symbol that only libc or libm defines (a
         * "log" or "close" the plugin kept static, or a typo) would be called with the hook convention, to
         * undefined effect. A hook is the plugin's own function; function stages may wrap a linked library. */
        Dl_info where = {0};
        struct link_map *owner = NULL, *self = NULL;
        if (h && dladdr1(sym, &where, (void **)&owner, RTLD_DL_LINKMAP) &&
            dlinfo(ip->loaded.dl, RTLD_DI_LINKMAP, &self) == 0 && owner != self)
            return sh_error_set(err, SH_S_LOAD,
                                "plugin '%s' is refused: %s:%d declares hook '%s' implemented by symbol '%s', which "
                                "%s defines, not by %s: a hook implementation must be the plugin's own exported "
                                "function; fix 'symbol' or export the function from the plugin",
                                d->name, d->path, h->line, h->hook, symbol,
                                where.dli_fname ? where.dli_fname : "another library", d->library_path);
        resolved *r = &ip->symbols[ip->symbol_count++];
        r->symbol = strdup(symbol);
        r->stage_type = st ? strdup(st->type) : NULL;
        r->spec = st ? sh_value_copy(st->function) : NULL;
        /* POSIX guarantees a function pointer survives the round trip through dlsym's void *. */
        memcpy(&r->fn, &sym, sizeof r->fn);
        if (!r->symbol || (st && (!r->stage_type || !r->spec)))
            return sh_error_set(err, SH_S_NOMEM, "out of memory loading plugin '%s'", d->name);
    }
    return SH_S_OK;
}

void (*sh_inproc_symbol(const sh_inproc *ip, const char *symbol))(void)
{
    for (size_t i = 0; ip && i < ip->symbol_count; i++)
        if (!ip->symbols[i].stage_type && strcmp(ip->symbols[i].symbol, symbol) == 0)
            return ip->symbols[i].fn;
    return NULL;
}

static const resolved *function_stage(const sh_inproc *ip, const char *type)
{
    for (size_t i = 0; i < ip->symbol_count; i++)
        if (ip->symbols[i].stage_type && strcmp(ip->symbols[i].stage_type, type) == 0)
            return &ip->symbols[i];
    return NULL;
}

sh_status sh_inproc_open(const sh_descriptor *d, const sh_value *config, sh_inproc **out, sh_error *err)
{
    return open_one(d, config, false, out, err);
}

static sh_status open_one(const sh_descriptor *d, const sh_value *config, bool global, sh_inproc **out,
                          sh_error *err)
{
    *out = NULL;
    sh_inproc *ip = calloc(1, sizeof *ip);
    if (!ip || (d->dep_count && !(ip->deps = calloc(d->dep_count, sizeof *ip->deps)))) {
        free(ip);
        return sh_error_set(err, SH_S_NOMEM, "out of memory loading plugin '%s'", d->name);
    }
    sh_status rc = SH_S_OK;
    /* Dependencies first, deepest first, each initialised before what needs it. */
    for (size_t i = 0; rc == SH_S_OK && i < d->dep_count; i++) {
        rc = open_one(d->deps[i], NULL, true, &ip->deps[i], err);
        if (rc == SH_S_OK)
            ip->dep_count = i + 1;
        else
            sh_error_prefix(err, "loading '%s', which plugin '%s' requires", d->deps[i]->name, d->name);
    }
    if (rc == SH_S_OK)
        rc = global ? sh_loader_open_global(d, SH_ABI_CURRENT, &ip->loaded, err)
                    : sh_loader_open(d, SH_ABI_CURRENT, &ip->loaded, err);
    if (rc == SH_S_OK)
        rc = resolve_symbols(ip, d, err);
    if (rc == SH_S_OK)
        rc = open_common(ip, d->name, config, err);
    if (rc != SH_S_OK) {
        sh_inproc_close(ip);
        return rc;
    }
    *out = ip;
    return SH_S_OK;
}

sh_status sh_inproc_open_static(const sh_plugin *plugin, sh_inproc **out, sh_error *err)
{
    *out = NULL;
    sh_inproc *ip = calloc(1, sizeof *ip);
    if (!ip)
        return sh_error_set(err, SH_S_NOMEM, "out of memory loading plugin '%s'", plugin->name);
    ip->loaded.plugin = plugin;
    ip->loaded.abi = SH_ABI_CURRENT;
    sh_status rc = open_common(ip, plugin->name, NULL, err);
    if (rc != SH_S_OK) {
        sh_inproc_close(ip);
        return rc;
    }
    *out = ip;
    return SH_S_OK;
}

const sh_plugin *sh_inproc_plugin(const sh_inproc *ip) { return ip->loaded.plugin; }
uint32_t sh_inproc_abi(const sh_inproc *ip) { return ip->loaded.abi; }

sh_status sh_inproc_create_stage(sh_inproc *ip, const sh_invocation *inv, const char *type,
                                 const sh_value *config, uint32_t *id, sh_error *err)
{
    /* A destroyed stage's slot is taken again, so a warm plugin does not grow by one slot per call. */
    size_t slot = 0;
    while (slot < ip->len && ip->stages[slot].stage)
        slot++;
    if (slot == ip->len && ip->len == ip->cap) {
        size_t cap = ip->cap ? ip->cap * 2 : 4;
        inproc_stage *p = realloc(ip->stages, cap * sizeof *p);
        if (!p)
            return sh_error_set(err, SH_S_NOMEM, "out of memory creating stage '%s'", inv->stage);
        ip->stages = p;
        ip->cap = cap;
    }
    inproc_stage *s = &ip->stages[slot];
    memset(s, 0, sizeof *s);
    s->type = strdup(type);
    s->name = strdup(inv->stage ? inv->stage : type);
    s->config = config ? sh_value_copy(config) : sh_value_map();
    if (!s->type || !s->name || !s->config) {
        free(s->type);
        free(s->name);
        sh_value_free(s->config);
        return sh_error_set(err, SH_S_NOMEM, "out of memory creating stage '%s'", inv->stage);
    }
    s->def = (sh_stage_def){.size = sizeof(sh_stage_def), .type = s->type, .name = s->name, .config = s->config};

    sh_call call;
    sh_call_init(&call, inv, NULL, NULL, NULL, NULL);
    sh_stage *stage = NULL;
    sh_status st = SH_S_OK;
    const resolved *fn = function_stage(ip, type);
    int rc = SH_OK;
    if (fn) {
        /* A function stage: the host builds it around the plain C function; the plugin is not asked. */
        st = sh_funcstage_new(fn->spec, fn->fn, &stage, err);
        if (st != SH_S_OK)
            stage = NULL;
    } else {
        rc = ip->loaded.plugin->create_stage(ip->loaded.state, &call, &s->def, &stage);
    }
    if (st == SH_S_OK && rc != SH_OK)
        st = sh_error_set(err, SH_S_STAGE, "creating the stage failed: %s", sh_call_error(&call, rc));
    else if (st == SH_S_OK && (!stage || stage->size < SH_THROUGH(sh_stage, destroy) || !stage->process ||
                               !stage->destroy))
        st = sh_error_set(err, SH_S_STAGE,
                          "create_stage() returned %s: the plugin must return an sh_stage with size, process and "
                          "destroy set",
                          stage ? "an incomplete stage" : "success but no stage");
    sh_call_finish(&call);
    if (st != SH_S_OK) {
        free(s->type);
        free(s->name);
        sh_value_free(s->config);
        return st;
    }
    s->stage = stage;
    *id = (uint32_t)slot;
    if (slot == ip->len)
        ip->len++;
    return SH_S_OK;
}

static inproc_stage *find(sh_inproc *ip, uint32_t id)
{
    return id < ip->len && ip->stages[id].stage ? &ip->stages[id] : NULL;
}

/* process() of a batch or, with `finish`, finish(): both emit, and fail alike. */
static sh_status run_stage(sh_inproc *ip, uint32_t id, const sh_invocation *inv, const sh_value *const *items,
                           size_t count, bool finish, sh_emit_fn emit, void *emit_sink, sh_log_fn log,
                           void *log_sink, sh_error *err)
{
    inproc_stage *s = find(ip, id);
    if (!s)
        return sh_error_set(err, SH_S_STAGE, "no stage %u in plugin '%s'", id, ip->name);
    if (s->finished)
        return sh_error_set(err, SH_S_STAGE, "stage %u of plugin '%s' has finished: it takes no more input", id,
                            ip->name);
    sh_stage *stage = s->stage;
    s->finished = finish;
    /* A stage built for ABI 1.0 ends before `finish`: the host must not read past its size. */
    if (finish && (stage->size < SH_THROUGH(sh_stage, finish) || !stage->finish))
        return SH_S_OK;
    sh_call call;
    sh_call_init(&call, inv, emit, emit_sink, log, log_sink);
    int rc = finish ? stage->finish(stage, &call) : stage->process(stage, &call, items, count);
    sh_status st = SH_S_OK;
    if (rc != SH_OK)
        st = sh_error_set(err, SH_S_STAGE, "%s", sh_call_error(&call, rc));
    sh_call_finish(&call);
    return st;
}

sh_status sh_inproc_process(sh_inproc *ip, uint32_t id, const sh_invocation *inv, const sh_value *const *items,
                            size_t count, sh_emit_fn emit, void *emit_sink, sh_log_fn log, void *log_sink,
                            sh_error *err)
{
    return run_stage(ip, id, inv, items, count, false, emit, emit_sink, log, log_sink, err);
}

sh_status sh_inproc_finish(sh_inproc *ip, uint32_t id, const sh_invocation *inv, sh_emit_fn emit, void *emit_sink,
                           sh_log_fn log, void *log_sink, sh_error *err)
{
    return run_stage(ip, id, inv, NULL, 0, true, emit, emit_sink, log, log_sink, err);
}

static void destroy_one(inproc_stage *s)
{
    if (!s->stage)
        return;
    s->stage->destroy(s->stage);
    s->stage = NULL;
    free(s->type);
    free(s->name);
    sh_value_free(s->config);
}

sh_status sh_inproc_health(sh_inproc *ip, sh_error *err)
{
    const sh_plugin *p = ip->loaded.plugin;
    if (!p->health)
        return SH_S_OK;
    sh_invocation inv = {.plugin = ip->name, .stage = "(health)", .attempt = 1};
    sh_call call;
    sh_call_init(&call, &inv, NULL, NULL, NULL, NULL);
    int rc = p->health(ip->loaded.state, &call);
    sh_status st = rc == SH_OK ? SH_S_OK
                               : sh_error_set(err, SH_S_STAGE, "plugin '%s' is unhealthy: %s", ip->name,
                                              sh_call_error(&call, rc));
    sh_call_finish(&call);
    return st;
}

void sh_inproc_destroy_stage(sh_inproc *ip, uint32_t id)
{
    inproc_stage *s = find(ip, id);
    if (s)
        destroy_one(s);
}

void sh_inproc_close(sh_inproc *ip)
{
    if (!ip)
        return;
    for (size_t i = 0; i < ip->len; i++)
        destroy_one(&ip->stages[i]);
    free(ip->stages);
    sh_loader_close(&ip->loaded);
    for (size_t i = 0; i < ip->symbol_count; i++) {
        free(ip->symbols[i].symbol);
        free(ip->symbols[i].stage_type);
        sh_value_free(ip->symbols[i].spec);
    }
    free(ip->symbols);
    /* Dependencies are finalised after the plugins that need them, in reverse order of loading. */
    for (size_t i = ip->dep_count; i-- > 0;)
        sh_inproc_close(ip->deps[i]);
    free(ip->deps);
    sh_value_free(ip->config);
    free(ip->name);
    free(ip);
}
