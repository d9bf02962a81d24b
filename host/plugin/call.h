/* sh_call: one invocation of a plugin function, and the host function table that plugins call through. */
#ifndef SH_CALL_H
#define SH_CALL_H

#include "util/text.h"
#include "value/value.h"

#include <stdbool.h>

/* What the host knows about an invocation; strings are borrowed for the call's duration. */
typedef struct sh_invocation {
    const char *execution_id;
    const char *task_id;
    const char *pipeline;
    const char *stage;
    const char *plugin;
    const char *base_dir;
    uint32_t attempt;
    /* --deterministic: now_ns() reads a fixed clock (SH_DETERMINISTIC_EPOCH_NS, one microsecond further at each
     * read within a call) and random_u64() a PRNG seeded from `seed`, the plugin, stage and task id, so the same
     * run gives byte-identical results in-process, in a worker and in call mode. */
    bool deterministic;
    uint64_t seed;
    /* Also receives the plugin's log lines (the engine keeps them in the run store); NULL: stderr only. Called
     * on the thread that runs the call. */
    void (*log_tap)(void *ctx, sh_log_level level, const char *message);
    void *log_tap_ctx;
} sh_invocation;

/* 2000-01-01T00:00:00Z: the deterministic clock's reading. */
#define SH_DETERMINISTIC_EPOCH_NS INT64_C(946684800000000000)
/* The seed of a deterministic run unless the caller picks another. */
#define SH_DETERMINISTIC_SEED UINT64_C(0x5354414745484f53)

typedef int (*sh_emit_fn)(void *sink, sh_value *item);
typedef void (*sh_log_fn)(void *sink, const sh_invocation *inv, sh_log_level level, const char *message);

struct sh_call {
    const sh_invocation *inv;
    sh_emit_fn emit;  /* NULL outside process(): emitting is refused */
    void *emit_sink;
    sh_log_fn log;
    void *log_sink;
    char *tmp_dir;    /* created on first request, removed by sh_call_finish() */
    bool failed;
    uint64_t rng;      /* deterministic PRNG state; 0 until first used */
    int64_t clock_reads; /* deterministic clock: reads so far */
    char error[SH_MESSAGE_MAX];
};

/* Prepares a call. `emit` may be NULL; `log` NULL logs through the host logger. */
void sh_call_init(sh_call *call, const sh_invocation *inv, sh_emit_fn emit, void *emit_sink, sh_log_fn log,
                  void *log_sink);
/* Removes the call's private temporary directory, if it was created. */
void sh_call_finish(sh_call *call);

/* Where calls of this process make their private temporary directories (NULL or "": /tmp): the host's TMPDIR
 * (sh_runtime_start sets it from its sh_env), a worker's own private directory (the worker sets it once
 * confined, the one directory it may write). Set before the first call, not while calls run. */
void sh_call_set_tmp_base(const char *dir);

/* The error message a failing plugin function set, or a generic one naming the status. */
const char *sh_call_error(const sh_call *call, int status);

/* The host function table handed to plugins (ABI 1.0). */
const sh_host *sh_host_table(void);

/* For the host's own stages (built-ins, function stages): records a formatted failure on `call`, as a plugin's
 * host->fail() would, and returns `code`. */
__attribute__((format(printf, 3, 4))) int sh_call_failf(sh_call *call, int code, const char *fmt, ...);

/* The default log sink: stderr through the host logger, prefixed with plugin and stage. */
void sh_call_log_stderr(void *sink, const sh_invocation *inv, sh_log_level level, const char *message);

#endif
