/*
 * stagehost/abi.h - the frozen binary interface between the stagehost host and its plugins.
 *
 * This header is the contract. It includes nothing but <stdint.h> and <stddef.h>, so a plugin compiled against
 * it depends on nothing else of stagehost. stagehost/hooks.h adds the calling conventions of hook
 * implementations and function stages, which the host calls by symbol rather than through a table.
 *
 * How the ABI grows. These rules keep compiled plugins loading for the life of ABI major version 1:
 *
 *  - Every struct and function table starts with a uint32_t `size`: sizeof() of that struct as compiled by the
 *    side that filled it in. Neither side reads a member that lies past the size the other side reported.
 *  - Structs and tables only grow by appending members at the end. Nothing is reordered, retyped or removed
 *    while the major version is 1. Each appended member carries a comment naming the version that added it
 *    ("1.1"). A plugin built for an older minor keeps loading forever.
 *  - The host's value and call functions grow as SQLite's routine table does: a new one is appended to sh_host,
 *    and a plugin tests SH_HOST_HAS(host, member) before calling it. Optional services, which one host may
 *    offer and another not, will not each take a slot of their own: if one is ever needed, a single function
 *    appended to sh_host will look services up by a string ID, each a size-prefixed table of its own, NULL when
 *    the host lacks it. There is none yet.
 *  - Members appended to the plugin's tables (sh_plugin, sh_stage) are optional: the host reads one only when the
 *    table's size covers it, and treats a NULL one as absent.
 *  - Codes that cross the interface (statuses, value types, log levels) are constants of an anonymous enum;
 *    where a signature carries one it has a fixed-width type (int for statuses, uint32_t for the others), never
 *    a C enum type, whose size a compiler option could change. Codes are only added, never reused.
 *  - Values (items, configuration) are opaque handles. Plugins read and build them only through the host's
 *    function table, so the host may change their representation without breaking a plugin.
 *
 * Tags. Every function below is tagged with the thread it may be called from, when in the lifecycle, and who
 * owns the memory that goes in and comes out, in these words (as CLAP tags [main-thread & active]):
 *
 *   [plugin-thread]    the one thread from which the host calls a plugin instance: it never calls two of one
 *                      plugin's functions at once, so a plugin needs no locking unless it starts threads of its
 *                      own. A function that takes an sh_call may be called only from the thread it was handed to.
 *   [any-thread]       any thread, the plugin's own included, while no other thread frees or changes the values
 *                      involved.
 *   [in-call]          only while the plugin function that received `call` runs: a call dies when it returns.
 *   [init..fini]       from the start of init() until fini() returns.
 *   [create..destroy]  from the return of create_stage() until destroy() is called, for that stage.
 *   [once]             exactly once per plugin, or per stage for a stage's function.
 *   [borrowed]         pointers handed over stay valid only as long as the member says; copy what you keep.
 *   [copied]           the callee copies what pointer arguments point at before it returns.
 *   [takes]            the callee owns the value argument from the call on, whatever it returns.
 *   [owned]            a returned value belongs to the caller until a [takes] function gets it or value_free().
 *   [static]           must stay valid and unchanged for as long as the library is loaded.
 *   [optional]         may be NULL.
 *
 * A plugin may start threads, but must join them before the function that started them returns or, at the
 * latest, in fini().
 */
#ifndef STAGEHOST_ABI_H
#define STAGEHOST_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------------------------- */

#define SH_ABI_MAJOR 1
#define SH_ABI_MINOR 1

/* A version packed into one integer: major in the high 16 bits, minor in the low 16 bits. */
#define SH_ABI_VERSION(major, minor) ((((uint32_t)(major)) << 16) | ((uint32_t)(minor) & 0xffffu))
#define SH_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define SH_ABI_VERSION_MINOR(v) ((uint32_t)(v) & 0xffffu)
#define SH_ABI_CURRENT SH_ABI_VERSION(SH_ABI_MAJOR, SH_ABI_MINOR)

/* The default name of the one exported entry symbol; a descriptor may name another with `entry`. */
#define SH_DEFAULT_ENTRY "stagehost_plugin"

/* ---------------------------------------------------------------------------------------------------------------
 * Codes
 * ------------------------------------------------------------------------------------------------------------- */

/* Statuses, the int that plugin and host functions return. Zero is success; everything else is a failure whose
 * message was set with sh_host.fail() (plugin side) or is described by the host function's documentation. */
enum {
    SH_OK = 0,
    SH_ERR_FAILED = 1,      /* the operation failed; the message says why */
    SH_ERR_INVALID = 2,     /* an argument or configuration value is invalid */
    SH_ERR_NOMEM = 3,       /* out of memory */
    SH_ERR_UNSUPPORTED = 4, /* the request needs something the other side does not provide */
    SH_ERR_IO = 5           /* an I/O operation failed */
};

/* Value types, as returned by sh_host.value_type(). */
typedef uint32_t sh_type;
enum {
    SH_TYPE_NULL = 0,
    SH_TYPE_BOOL = 1,
    SH_TYPE_INT = 2,
    SH_TYPE_DOUBLE = 3,
    SH_TYPE_STRING = 4, /* UTF-8 text */
    SH_TYPE_BYTES = 5,  /* arbitrary octets */
    SH_TYPE_ARRAY = 6,
    SH_TYPE_MAP = 7     /* string keys, insertion ordered, unique */
};

/* Log levels, as taken by sh_host.log(). */
typedef uint32_t sh_log_level;
enum {
    SH_LOG_ERROR = 0,
    SH_LOG_WARN = 1,
    SH_LOG_INFO = 2,
    SH_LOG_DEBUG = 3
};

/* ---------------------------------------------------------------------------------------------------------------
 * Opaque handles
 * ------------------------------------------------------------------------------------------------------------- */

/* An item or a configuration value: null, bool, integer, double, string, bytes, array or map.
 * Read and built only through sh_host. */
typedef struct sh_value sh_value;

/* One invocation of a plugin function by the host: it carries the invocation context (execution id, task id,
 * attempt, stage, private temporary directory, clock, random source), collects emitted items and the error
 * message. [in-call]: valid only during the plugin function it was passed to. */
typedef struct sh_call sh_call;

/* ---------------------------------------------------------------------------------------------------------------
 * Invocation context, filled in by sh_host.context()
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct sh_context {
    uint32_t size;             /* set by the plugin to sizeof(sh_context) before the call */
    uint32_t attempt;          /* 1 for the first attempt of a task, 2 for its first retry, ... */
    const char *execution_id;  /* unique per pipeline run */
    const char *task_id;       /* unique per invocation within a run */
    const char *pipeline;      /* the pipeline's name */
    const char *stage;         /* the stage's name in the pipeline */
    const char *plugin;        /* the plugin's name, "namespace/name" */
    const char *tmp_dir;       /* private temporary directory of this invocation, removed after it */
    const char *base_dir;      /* the directory relative paths in stage configuration are resolved against */
} sh_context;

/* ---------------------------------------------------------------------------------------------------------------
 * The host function table
 *
 * Passed to sh_plugin.init(); valid [init..fini]; a plugin may keep the pointer. A member appended after 1.0 is
 * there only when host->size says so: test SH_HOST_HAS(host, member) first.
 * ------------------------------------------------------------------------------------------------------------- */

typedef struct sh_host {
    uint32_t size;        /* sizeof(sh_host) as built by the host */
    uint32_t abi_version; /* SH_ABI_VERSION the host was built with */

    /* -- Errors and logging ------------------------------------------------------------------------------------ */

    /* Record why the current plugin function fails; it must then return a nonzero status. The last message set
     * wins. [plugin-thread] [in-call] [copied] */
    void (*fail)(sh_call *call, const char *message);

    /* Write one log line, attributed to the plugin and stage. [plugin-thread] [in-call] [copied] */
    void (*log)(sh_call *call, sh_log_level level, const char *message);

    /* -- Invocation context ------------------------------------------------------------------------------------ */

    /* Fill `out` (whose `size` the plugin set) with the invocation context, writing no further than out->size.
     * Returns SH_OK, or SH_ERR_INVALID when out->size is smaller than the ABI 1.0 sh_context.
     * [plugin-thread] [in-call] [borrowed]: the strings live until the function that received `call` returns. */
    int (*context)(sh_call *call, sh_context *out);

    /* Nanoseconds since the Unix epoch, from the invocation's clock (fixed in deterministic runs).
     * [plugin-thread] [in-call] */
    int64_t (*now_ns)(sh_call *call);

    /* 64 random bits from the invocation's random source (seeded in deterministic runs).
     * [plugin-thread] [in-call] */
    uint64_t (*random_u64)(sh_call *call);

    /* -- Emitting ---------------------------------------------------------------------------------------------- */

    /* Emit one output item, from sh_stage.process() or sh_stage.finish() only. Returns SH_OK, SH_ERR_INVALID
     * for a NULL item or when called from another function, SH_ERR_IO when the output cannot be delivered (the
     * plugin should stop and return that status). [plugin-thread] [in-call] [takes] `item` */
    int (*emit)(sh_call *call, sh_value *item);

    /* -- Reading values ----------------------------------------------------------------------------------------
     * [any-thread], while the value is alive: items passed to process() live until it returns; the configuration
     * passed to init() lives [init..fini]; the one in an sh_stage_def until destroy().
     * [borrowed]: returned pointers belong to the value and die with it. */

    sh_type (*value_type)(const sh_value *v);
    /* 0 or 1; 0 for a non-bool. */
    int (*value_bool)(const sh_value *v);
    /* The integer; a double is truncated toward zero; 0 for anything else. */
    int64_t (*value_int)(const sh_value *v);
    /* The double; an integer is converted; 0.0 for anything else. */
    double (*value_double)(const sh_value *v);
    /* A NUL-terminated UTF-8 string (it may contain NULs: use *len); NULL for a non-string. `len` may be NULL. */
    const char *(*value_string)(const sh_value *v, size_t *len);
    /* The octets of a bytes value; NULL for a non-bytes value. `len` may be NULL. */
    const void *(*value_bytes)(const sh_value *v, size_t *len);
    /* Number of elements of an array or entries of a map; 0 for anything else. */
    size_t (*value_count)(const sh_value *v);
    /* Element `index` of an array; NULL when out of range or not an array. */
    const sh_value *(*array_get)(const sh_value *v, size_t index);
    /* The value under `key` in a map; NULL when absent or not a map. */
    const sh_value *(*map_get)(const sh_value *v, const char *key);
    /* Entry `index` of a map in insertion order: returns its key and sets *value; NULL when out of range. */
    const char *(*map_entry)(const sh_value *v, size_t index, const sh_value **value);

    /* -- Building values ---------------------------------------------------------------------------------------
     * [any-thread] [init..fini]. Constructors return an [owned] value, or NULL when out of memory; new_string
     * also returns NULL when the text is not valid UTF-8 (build a bytes value instead). */

    sh_value *(*new_null)(void);
    sh_value *(*new_bool)(int b);
    sh_value *(*new_int)(int64_t i);
    sh_value *(*new_double)(double d);
    /* `len` bytes of UTF-8 text. [copied] */
    sh_value *(*new_string)(const char *text, size_t len);
    /* `len` octets. [copied] */
    sh_value *(*new_bytes)(const void *data, size_t len);
    sh_value *(*new_array)(void);
    sh_value *(*new_map)(void);
    /* A deep copy of any value, borrowed ones included. */
    sh_value *(*value_copy)(const sh_value *v);
    /* Frees a value the caller owns. NULL is allowed. */
    void (*value_free)(sh_value *v);
    /* Appends `item` to `array`. Returns SH_OK, SH_ERR_INVALID (not an array, NULL item) or SH_ERR_NOMEM.
     * [takes] `item` */
    int (*array_push)(sh_value *array, sh_value *item);
    /* Sets `key` to `item` in `map`, replacing and freeing an existing entry in place. Returns SH_OK,
     * SH_ERR_INVALID or SH_ERR_NOMEM. [copied] `key` [takes] `item` */
    int (*map_set)(sh_value *map, const char *key, sh_value *item);

    /* Appended after 1.0: nothing yet. */
} sh_host;

/* True when the host table `h` is large enough to contain `member`. */
#define SH_HOST_HAS(h, member) \
    ((h)->size >= offsetof(sh_host, member) + sizeof(((const sh_host *)0)->member))

/* ---------------------------------------------------------------------------------------------------------------
 * Stages
 * ------------------------------------------------------------------------------------------------------------- */

/* What the host asks create_stage() to build. */
typedef struct sh_stage_def {
    uint32_t size;          /* sizeof(sh_stage_def) as built by the host */
    const char *type;       /* the action, one of the plugin's stage types, e.g. "chunk" */
    const char *name;       /* the stage's name in the pipeline */
    const sh_value *config; /* the stage's `config` group as a map; an empty map when absent; never NULL */
} sh_stage_def;

/* A stage instance, built by create_stage() and owned by the plugin until destroy() returns.
 *
 * The host drives it as: create_stage(), then process() once per batch of input (a source stage, first in its
 * pipeline, receives one empty batch), then finish() once, then destroy(). When a process() or finish() fails,
 * or the run is abandoned, only destroy() follows, and the items the failing call emitted are discarded. */
typedef struct sh_stage {
    uint32_t size; /* sizeof(sh_stage) as built by the plugin */
    void *user;    /* the plugin's own state; the host never touches it */

    /* Consume one batch of input items, emitting output items with host->emit(call, ...).
     * Returns SH_OK, or a nonzero status after host->fail(call, why).
     * [plugin-thread] [create..destroy] [borrowed]: `items` and every item in it live until process() returns. */
    int (*process)(struct sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count);

    /* Release the stage, after its last process() or finish(). [plugin-thread] [once], before fini(). */
    void (*destroy)(struct sh_stage *stage);

    /* 1.1 */
    /* The end of the input: emit what the stage held back (a total, a last partial group) with host->emit();
     * its items follow those of the last process(). Called once the last process() returned SH_OK: for a source
     * stage after its one empty batch, and also for a stage that no batch reached. Returns SH_OK, or a nonzero
     * status after host->fail(call, why). A host older than 1.1 never calls it: a plugin that cannot do without
     * it refuses such a host in negotiate(). [plugin-thread] [once] [optional] */
    int (*finish)(struct sh_stage *stage, sh_call *call);
} sh_stage;

/* ---------------------------------------------------------------------------------------------------------------
 * The plugin
 * ------------------------------------------------------------------------------------------------------------- */

/* One stage type a plugin provides. The host compares these with the descriptor's `stages`. [static] */
typedef struct sh_stage_type {
    uint32_t size;           /* sizeof(sh_stage_type) as built by the plugin */
    const char *type;        /* the action name, e.g. "chunk" */
    const char *input;       /* input contract, e.g. "document"; "any" accepts everything */
    const char *output;      /* output contract, e.g. "chunk" */
    const char *description; /* one line for people; may be NULL */
} sh_stage_type;

/* The plugin's vtable, returned by sh_entry.negotiate(). [static], with every string and array in it. */
typedef struct sh_plugin {
    uint32_t size;        /* sizeof(sh_plugin) as built by the plugin */
    const char *name;     /* "namespace/name", must equal the descriptor's `name` */
    const char *version;  /* semantic version, must equal the descriptor's `version` */
    const sh_stage_type *const *stage_types; /* `stage_type_count` pointers */
    uint32_t stage_type_count;

    /* Initialise the plugin, after negotiation and before anything else. `config` is the plugin's section of the
     * host configuration as a map (empty when absent). Store plugin-wide state in *state; it is handed back to
     * every other function. Returns SH_OK, or a nonzero status after host->fail(call, why): the plugin is then
     * not used, and fini() is not called.
     * [plugin-thread] [once] [borrowed]: `host` and `config` live [init..fini]. */
    int (*init)(const sh_host *host, sh_call *call, const sh_value *config, void **state);

    /* Release everything init() and the plugin acquired, last, after every stage was destroyed.
     * [plugin-thread] [once], after a successful init() [optional] */
    void (*fini)(void *state);

    /* Report whether the plugin can do its work (a database reachable, a model loaded...). Returns SH_OK when
     * healthy, or a nonzero status after host->fail(call, why). NULL: always healthy.
     * [plugin-thread] [init..fini], between other calls [optional] */
    int (*health)(void *state, sh_call *call);

    /* Build a stage instance for `def`; (*out)->size must be set to sizeof(sh_stage). Returns SH_OK and sets
     * *out, or a nonzero status after host->fail(call, why).
     * [plugin-thread] [init..fini] [borrowed]: `def`, its strings and config live until the new stage's
     * destroy() returns; the stage is the plugin's, freed by its destroy(). */
    int (*create_stage)(void *state, sh_call *call, const sh_stage_def *def, sh_stage **out);
} sh_plugin;

/* ---------------------------------------------------------------------------------------------------------------
 * The entry symbol and its magic block
 * ------------------------------------------------------------------------------------------------------------- */

#define SH_MAGIC 0x48475453u          /* "STGH" read as little-endian bytes */
#define SH_BYTE_ORDER_TAG 0x01020304u /* read back byte-swapped on a host of the other byte order */

/* The magic block: plain data, checked by the host before it calls anything in the library. The sizes are those
 * the plugin was compiled with: a plugin built for an older minor reports smaller ones than the host's own. */
typedef struct sh_magic {
    uint32_t size;            /* sizeof(sh_magic) */
    uint32_t magic;           /* SH_MAGIC */
    uint16_t abi_major;       /* SH_ABI_MAJOR the plugin was compiled with */
    uint16_t abi_minor;       /* SH_ABI_MINOR the plugin was compiled with */
    uint32_t byte_order;      /* SH_BYTE_ORDER_TAG */
    uint32_t pointer_size;    /* sizeof(void *) */
    uint32_t entry_size;      /* sizeof(sh_entry) */
    uint32_t plugin_size;     /* sizeof(sh_plugin) */
    uint32_t stage_size;      /* sizeof(sh_stage) */
    uint32_t stage_type_size; /* sizeof(sh_stage_type) */
    uint32_t host_size;       /* sizeof(sh_host) the plugin was compiled against */
    uint32_t stage_def_size;  /* sizeof(sh_stage_def) the plugin was compiled against */
    uint32_t context_size;    /* sizeof(sh_context) the plugin was compiled against */
} sh_magic;

/* The one exported symbol. Its name is the descriptor's `entry` (default SH_DEFAULT_ENTRY). [static] */
typedef struct sh_entry {
    sh_magic magic;

    /* Two-way version negotiation. `host_version` is the newest ABI version the host speaks. The plugin writes
     * the version it will use to *plugin_version (same major; minor at most the host's) and returns its vtable
     * for that version, or returns NULL to refuse loading (and may explain with *reason, a [static] string).
     * [plugin-thread] [once], right after the magic block was accepted, before init(). Returns a [static]
     * vtable. */
    const sh_plugin *(*negotiate)(uint32_t host_version, uint32_t *plugin_version, const char **reason);
} sh_entry;

/* A magic block initialiser for the ABI this header describes. */
#define SH_MAGIC_INIT                                                                                        \
    {                                                                                                        \
        sizeof(sh_magic), SH_MAGIC, SH_ABI_MAJOR, SH_ABI_MINOR, SH_BYTE_ORDER_TAG, (uint32_t)sizeof(void *), \
            sizeof(sh_entry), sizeof(sh_plugin), sizeof(sh_stage), sizeof(sh_stage_type), sizeof(sh_host),   \
            sizeof(sh_stage_def), sizeof(sh_context)                                                         \
    }

#ifdef __cplusplus
}
#endif

#endif /* STAGEHOST_ABI_H */
