/*
 * stagehost/sdk.h - conveniences for plugin authors, over the ABI in stagehost/abi.h.
 *
 * Nothing here is part of the binary interface: it compiles into the plugin. A plugin that prefers to fill in
 * sh_entry and sh_plugin by hand can include stagehost/abi.h alone.
 *
 * A minimal plugin:
 *
 *     #include <stagehost/sdk.h>
 *
 *     static int upper(void *user, sh_call *call, const sh_value *const *items, size_t count)
 *     {
 *         (void)user;
 *         for (size_t i = 0; i < count; i++) {
 *             sh_value *out = sh_copy(items[i]);
 *             const char *text = sh_get_string(items[i], "text", "");
 *             ... build the upper-cased text, then:
 *             sh_set_string(out, "text", upper_text);
 *             if (sh_emit(call, out) != SH_OK)
 *                 return SH_ERR_IO;
 *         }
 *         return SH_OK;
 *     }
 *
 *     static const sh_sdk_stage stages[] = {
 *         { .type = "upper", .input = "document", .output = "document", .process = upper },
 *     };
 *     SH_SDK_PLUGIN(.name = "example/upper", .version = "1.0.0", .stages = stages,
 *                   .stage_count = SH_SDK_COUNT(stages));
 *
 * Thread and lifecycle rules are those of abi.h: every function here that takes an sh_call may be called only
 * from the plugin thread, inside the plugin function that received that call. A wrapper here of a host function
 * appended after ABI 1.0 tests SH_HOST_HAS() itself and returns SH_ERR_UNSUPPORTED from an older host.
 *
 * The plugin may be C or C++: SH_SDK_PLUGIN exports the entry with C linkage from either.
 */
#ifndef STAGEHOST_SDK_H
#define STAGEHOST_SDK_H

#include <stagehost/abi.h>
#include <stagehost/hooks.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SH_SDK_COUNT(array) (sizeof(array) / sizeof((array)[0]))

#if defined(__GNUC__) || defined(__clang__)
#define SH_SDK_EXPORT __attribute__((visibility("default")))
#define SH_SDK_HIDDEN __attribute__((visibility("hidden")))
#define SH_SDK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SH_SDK_EXPORT
#define SH_SDK_HIDDEN
#define SH_SDK_PRINTF(fmt, args)
#endif

/* One stage type and the functions that implement it. */
typedef struct sh_sdk_stage {
    const char *type;        /* action name, e.g. "chunk" */
    const char *input;       /* input contract ("any" when NULL) */
    const char *output;      /* output contract ("any" when NULL) */
    const char *description; /* optional */
    /* Optional: build per-stage state from def->config. Called from create_stage(). */
    int (*create)(sh_call *call, const sh_stage_def *def, void **user);
    /* Required: consume a batch and emit results (see sh_stage.process in abi.h). */
    int (*process)(void *user, sh_call *call, const sh_value *const *items, size_t count);
    /* Optional: free what create() built. */
    void (*destroy)(void *user);
    /* Optional: emit what the stage held back once its input ended (see sh_stage.finish in abi.h). A plugin with
     * one refuses hosts older than ABI 1.1, which would never call it. */
    int (*finish)(void *user, sh_call *call);
} sh_sdk_stage;

/* A whole plugin. Only name, version, stages and stage_count are required. */
typedef struct sh_sdk_plugin {
    const char *name;    /* "namespace/name", as in the descriptor */
    const char *version; /* as in the descriptor */
    const sh_sdk_stage *stages;
    size_t stage_count;
    uint16_t min_abi_minor; /* the oldest host ABI minor (major 1) this plugin can work with; default 0 */
    int (*init)(sh_call *call, const sh_value *config, void **state);
    void (*fini)(void *state);
    int (*health)(void *state, sh_call *call);
} sh_sdk_plugin;

/* Set by SH_SDK_PLUGIN: the host table and the plugin's own state (from sh_sdk_plugin.init). */
extern const sh_host *sh_sdk_host SH_SDK_HIDDEN;
extern void *sh_sdk_state SH_SDK_HIDDEN;

/* ---- Errors and logs -------------------------------------------------------------------------------------- */

/* Record a formatted failure message; returns SH_ERR_FAILED so that `return sh_failf(call, ...);` reads well. */
static inline SH_SDK_PRINTF(2, 3) int sh_failf(sh_call *call, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sh_sdk_host->fail(call, buf);
    return SH_ERR_FAILED;
}

static inline SH_SDK_PRINTF(3, 4) void sh_logf(sh_call *call, sh_log_level level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sh_sdk_host->log(call, level, buf);
}

/* ---- Context ---------------------------------------------------------------------------------------------- */

static inline sh_context sh_get_context(sh_call *call)
{
    sh_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    sh_sdk_host->context(call, &ctx);
    return ctx;
}

/* ---- Emitting --------------------------------------------------------------------------------------------- */

/* Emit `item` (ownership passes to the host). */
static inline int sh_emit(sh_call *call, sh_value *item) { return sh_sdk_host->emit(call, item); }

/* ---- Reading map fields ------------------------------------------------------------------------------------ */

static inline const sh_value *sh_get(const sh_value *map, const char *key) { return sh_sdk_host->map_get(map, key); }

/* The string under `key`, or `fallback` when absent or not a string. */
static inline const char *sh_get_string(const sh_value *map, const char *key, const char *fallback)
{
    const sh_value *v = sh_sdk_host->map_get(map, key);
    const char *s = v ? sh_sdk_host->value_string(v, NULL) : NULL;
    return s ? s : fallback;
}

/* The integer under `key`, or `fallback` when absent or not a number. */
static inline int64_t sh_get_int(const sh_value *map, const char *key, int64_t fallback)
{
    const sh_value *v = sh_sdk_host->map_get(map, key);
    if (!v)
        return fallback;
    sh_type t = sh_sdk_host->value_type(v);
    return (t == SH_TYPE_INT || t == SH_TYPE_DOUBLE) ? sh_sdk_host->value_int(v) : fallback;
}

static inline double sh_get_double(const sh_value *map, const char *key, double fallback)
{
    const sh_value *v = sh_sdk_host->map_get(map, key);
    if (!v)
        return fallback;
    sh_type t = sh_sdk_host->value_type(v);
    return (t == SH_TYPE_INT || t == SH_TYPE_DOUBLE) ? sh_sdk_host->value_double(v) : fallback;
}

static inline int sh_get_bool(const sh_value *map, const char *key, int fallback)
{
    const sh_value *v = sh_sdk_host->map_get(map, key);
    return (v && sh_sdk_host->value_type(v) == SH_TYPE_BOOL) ? sh_sdk_host->value_bool(v) : fallback;
}

/* ---- Building values -------------------------------------------------------------------------------------- */

static inline sh_value *sh_copy(const sh_value *v) { return sh_sdk_host->value_copy(v); }
static inline void sh_free(sh_value *v) { sh_sdk_host->value_free(v); }
static inline sh_value *sh_new_map(void) { return sh_sdk_host->new_map(); }
static inline sh_value *sh_new_text(const char *text) { return sh_sdk_host->new_string(text, strlen(text)); }

/* Set map[key] to a string (copied). Returns SH_OK, SH_ERR_NOMEM, or SH_ERR_INVALID for invalid UTF-8. */
static inline int sh_set_stringn(sh_value *map, const char *key, const char *text, size_t len)
{
    sh_value *v = sh_sdk_host->new_string(text, len);
    return v ? sh_sdk_host->map_set(map, key, v) : SH_ERR_INVALID;
}
static inline int sh_set_string(sh_value *map, const char *key, const char *text)
{
    return sh_set_stringn(map, key, text, strlen(text));
}
static inline int sh_set_int(sh_value *map, const char *key, int64_t i)
{
    sh_value *v = sh_sdk_host->new_int(i);
    return v ? sh_sdk_host->map_set(map, key, v) : SH_ERR_NOMEM;
}
static inline int sh_set_double(sh_value *map, const char *key, double d)
{
    sh_value *v = sh_sdk_host->new_double(d);
    return v ? sh_sdk_host->map_set(map, key, v) : SH_ERR_NOMEM;
}
static inline int sh_set_bool(sh_value *map, const char *key, int b)
{
    sh_value *v = sh_sdk_host->new_bool(b);
    return v ? sh_sdk_host->map_set(map, key, v) : SH_ERR_NOMEM;
}

/* ---- Hook implementations and function stages ---------------------------------------------------------------
 *
 * Their calling conventions are part of the ABI: see stagehost/hooks.h. Export an implementation with
 * SH_SDK_EXPORT (and extern "C" in C++), e.g. `SH_SDK_EXPORT int my_validate(sh_call *call, const char *text,
 * int *out);`, and fail it with `return sh_failf(call, "why");`. */

/* ---- The generic plugin behind SH_SDK_PLUGIN --------------------------------------------------------------- */

typedef struct sh_sdk_stage_instance {
    sh_stage stage;
    const sh_sdk_stage *spec;
    void *user;
} sh_sdk_stage_instance;

static inline int sh_sdk_process_(sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count)
{
    sh_sdk_stage_instance *inst = (sh_sdk_stage_instance *)stage->user;
    return inst->spec->process(inst->user, call, items, count);
}

static inline int sh_sdk_finish_(sh_stage *stage, sh_call *call)
{
    sh_sdk_stage_instance *inst = (sh_sdk_stage_instance *)stage->user;
    return inst->spec->finish(inst->user, call);
}

static inline void sh_sdk_destroy_(sh_stage *stage)
{
    sh_sdk_stage_instance *inst = (sh_sdk_stage_instance *)stage->user;
    if (inst->spec->destroy)
        inst->spec->destroy(inst->user);
    free(inst);
}

static inline int sh_sdk_create_stage_(const sh_sdk_plugin *p, sh_call *call, const sh_stage_def *def,
                                       sh_stage **out)
{
    for (size_t i = 0; i < p->stage_count; i++) {
        const sh_sdk_stage *spec = &p->stages[i];
        if (strcmp(spec->type, def->type) != 0)
            continue;
        sh_sdk_stage_instance *inst = (sh_sdk_stage_instance *)calloc(1, sizeof *inst);
        if (!inst)
            return sh_failf(call, "out of memory creating stage '%s'", def->name);
        inst->spec = spec;
        if (spec->create) {
            int rc = spec->create(call, def, &inst->user);
            if (rc != SH_OK) {
                free(inst);
                return rc;
            }
        }
        inst->stage.size = sizeof(sh_stage);
        inst->stage.user = inst;
        inst->stage.process = sh_sdk_process_;
        inst->stage.destroy = sh_sdk_destroy_;
        inst->stage.finish = spec->finish ? sh_sdk_finish_ : NULL;
        *out = &inst->stage;
        return SH_OK;
    }
    return sh_failf(call, "plugin '%s' has no stage type '%s'", p->name, def->type);
}

/* Fill the stage-type table once; returns NULL when the plugin declares more than the table holds. */
static inline const sh_stage_type *const *sh_sdk_types_(const sh_sdk_plugin *p, sh_stage_type *types,
                                                         const sh_stage_type **ptrs, size_t cap)
{
    if (p->stage_count > cap)
        return NULL;
    for (size_t i = 0; i < p->stage_count; i++) {
        types[i].size = sizeof(sh_stage_type);
        types[i].type = p->stages[i].type;
        types[i].input = p->stages[i].input ? p->stages[i].input : "any";
        types[i].output = p->stages[i].output ? p->stages[i].output : "any";
        types[i].description = p->stages[i].description;
        ptrs[i] = &types[i];
    }
    return ptrs;
}

/* The oldest host ABI minor the plugin can work with: its own min_abi_minor, or 1 when a stage has a finish(). */
static inline uint16_t sh_sdk_min_minor_(const sh_sdk_plugin *p)
{
    uint16_t min = p->min_abi_minor;
    for (size_t i = 0; i < p->stage_count; i++)
        if (p->stages[i].finish && min < 1)
            min = 1;
    return min;
}

#define SH_SDK_MAX_STAGE_TYPES 64

/* In C++ the entry needs extern "C": a namespace-scope const has internal linkage, and the name must not be
 * mangled. */
#ifdef __cplusplus
#define SH_SDK_ENTRY_LINKAGE extern "C"
#else
#define SH_SDK_ENTRY_LINKAGE
#endif

/*
 * SH_SDK_PLUGIN(...): define the plugin from designated initialisers of sh_sdk_plugin, and export it under the
 * default entry symbol. SH_SDK_PLUGIN_ENTRY(symbol, ...) exports it under another name (match the descriptor's
 * `entry`). Use once per plugin, in one source file.
 */
#define SH_SDK_PLUGIN(...) SH_SDK_PLUGIN_ENTRY(stagehost_plugin, __VA_ARGS__)

#define SH_SDK_PLUGIN_ENTRY(symbol, ...)                                                                      \
    const sh_host *sh_sdk_host SH_SDK_HIDDEN;                                                                 \
    void *sh_sdk_state SH_SDK_HIDDEN;                                                                         \
    static const sh_sdk_plugin sh_sdk_plugin_ = {__VA_ARGS__};                                                \
    static sh_stage_type sh_sdk_types_store_[SH_SDK_MAX_STAGE_TYPES];                                         \
    static const sh_stage_type *sh_sdk_type_ptrs_[SH_SDK_MAX_STAGE_TYPES];                                    \
    static int sh_sdk_init_(const sh_host *host, sh_call *call, const sh_value *config, void **state)         \
    {                                                                                                         \
        sh_sdk_host = host;                                                                                   \
        *state = NULL;                                                                                        \
        if (sh_sdk_plugin_.init) {                                                                            \
            int rc = sh_sdk_plugin_.init(call, config, &sh_sdk_state);                                        \
            if (rc != SH_OK)                                                                                  \
                return rc;                                                                                    \
        }                                                                                                     \
        *state = sh_sdk_state;                                                                                \
        return SH_OK;                                                                                         \
    }                                                                                                         \
    static void sh_sdk_fini_(void *state)                                                                     \
    {                                                                                                         \
        if (sh_sdk_plugin_.fini)                                                                              \
            sh_sdk_plugin_.fini(state);                                                                       \
    }                                                                                                         \
    static int sh_sdk_health_(void *state, sh_call *call)                                                     \
    {                                                                                                         \
        return sh_sdk_plugin_.health ? sh_sdk_plugin_.health(state, call) : SH_OK;                            \
    }                                                                                                         \
    static int sh_sdk_create_(void *state, sh_call *call, const sh_stage_def *def, sh_stage **out)           \
    {                                                                                                         \
        (void)state;                                                                                          \
        return sh_sdk_create_stage_(&sh_sdk_plugin_, call, def, out);                                         \
    }                                                                                                         \
    static sh_plugin sh_sdk_vtable_;                                                                          \
    static const sh_plugin *sh_sdk_negotiate_(uint32_t host_version, uint32_t *plugin_version,                \
                                              const char **reason)                                            \
    {                                                                                                         \
        if (SH_ABI_VERSION_MAJOR(host_version) != SH_ABI_MAJOR) {                                             \
            *reason = "the host speaks another ABI major version";                                            \
            return NULL;                                                                                      \
        }                                                                                                     \
        if (SH_ABI_VERSION_MINOR(host_version) < sh_sdk_min_minor_(&sh_sdk_plugin_)) {                        \
            *reason = "the plugin needs a newer host ABI minor version";                                      \
            return NULL;                                                                                      \
        }                                                                                                     \
        const sh_stage_type *const *types = sh_sdk_types_(&sh_sdk_plugin_, sh_sdk_types_store_,               \
                                                          sh_sdk_type_ptrs_, SH_SDK_MAX_STAGE_TYPES);         \
        if (!types) {                                                                                         \
            *reason = "the plugin declares more stage types than the SDK supports";                           \
            return NULL;                                                                                      \
        }                                                                                                     \
        sh_sdk_vtable_.size = sizeof(sh_plugin);                                                              \
        sh_sdk_vtable_.name = sh_sdk_plugin_.name;                                                            \
        sh_sdk_vtable_.version = sh_sdk_plugin_.version;                                                      \
        sh_sdk_vtable_.stage_types = types;                                                                   \
        sh_sdk_vtable_.stage_type_count = (uint32_t)sh_sdk_plugin_.stage_count;                               \
        sh_sdk_vtable_.init = sh_sdk_init_;                                                                   \
        sh_sdk_vtable_.fini = sh_sdk_fini_;                                                                   \
        sh_sdk_vtable_.health = sh_sdk_health_;                                                               \
        sh_sdk_vtable_.create_stage = sh_sdk_create_;                                                         \
        uint32_t minor = SH_ABI_VERSION_MINOR(host_version);                                                  \
        *plugin_version = SH_ABI_VERSION(SH_ABI_MAJOR, minor > SH_ABI_MINOR ? SH_ABI_MINOR : minor);          \
        return &sh_sdk_vtable_;                                                                               \
    }                                                                                                         \
    SH_SDK_ENTRY_LINKAGE SH_SDK_EXPORT const sh_entry symbol = {SH_MAGIC_INIT, sh_sdk_negotiate_}

#ifdef __cplusplus
}
#endif

#endif /* STAGEHOST_SDK_H */
