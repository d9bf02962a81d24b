/* The engine's private parts, shared by its files (as libinput's touchpad files share one header):
 *   engine.c    sh_engine_run: setup, the report, teardown
 *   schedule.c  the scheduler: what may start, threads for isolated calls, one plugin call
 *   stage.c     the stage state machine: prepare (resume, cache), attempts, retries, gate polls, failure
 *   record.c    the run store's records of stages and attempts
 *   identity.c  run and execution ids, fingerprints and cache keys
 * Everything here runs under engine.lock unless it says otherwise. */
#ifndef SH_ENGINE_PRIVATE_H
#define SH_ENGINE_PRIVATE_H

#include "engine/engine.h"
#include "builtin/builtins.h"
#include "value/digest.h"
#include "builtin/gate.h"
#include "hooks/hooks.h"
#include "builtin/hook.h"
#include "hooks/stage.h"
#include "runtime/acquire.h"
#include "runtime/policy.h"
#include "util/log.h"
#include "engine/progress.h"
#include "engine/store.h"
#include "sh_config.h"
#include "util/clock.h"
#include "worker/worker.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef enum stage_state {
    S_WAITING,    /* upstream stages not finished */
    S_READY,      /* may start */
    S_RUNNING,    /* a task of it is under way */
    S_RETRY_WAIT, /* failed; the next attempt starts at ready_at */
    S_GATE_WAIT,  /* a gate whose condition does not hold yet; it polls again at ready_at */
    S_DONE,
    S_FAILED,
    S_SKIPPED
} stage_state;

/* One plugin call: a stage's attempt, or one upstream stage run again for a gate. */
typedef struct call {
    size_t stage; /* whose configuration and plugin */
    uint32_t attempt;
    sh_values input, output;
    sh_status status;
    sh_error err;
    sh_call_usage usage;
    int64_t started_ns, ended_ns; /* CLOCK_MONOTONIC */
    int64_t wall_started_ns;
    bool started_worker;
    sh_log_record *logs;
    size_t log_len, log_cap;
} call;

/* What runs at once: one call, or for a gate poll one call per upstream stage, in order. */
typedef struct task {
    struct engine *e;
    size_t owner;
    bool gate_poll;
    call *calls;
    size_t count;
    bool threaded;
    bool done; /* under e->lock */
    pthread_t thread;
} task;

typedef struct stage_run {
    stage_state state;
    sh_target target;
    const sh_descriptor *d; /* NULL: built-in */
    sh_isolation iso;
    const char *status_word; /* for the report: succeeded, failed, skipped, cached, reused */
    sh_values output;
    size_t items_in;
    uint32_t attempts;     /* in this process */
    uint32_t attempt_base; /* attempts recorded by earlier runs of a resumed run */
    int64_t first_start_ns, end_ns, wall_started_ns;
    int64_t ready_at_ns;   /* S_RETRY_WAIT, S_GATE_WAIT */
    int64_t gate_deadline_ns;
    char gate_detail[512];
    sh_gate gate;
    bool is_gate;
    sh_hook_stage hook;
    bool is_hook;
    bool use_cache;
    char fingerprint[SH_DIGEST_HEX];
    char cache_key[SH_DIGEST_HEX];
    char source[300];
    char *error;
    task *running;
    bool unrecorded; /* the run store refused its last record: tried again at the end */
} stage_run;

typedef struct engine {
    sh_pipeline *p;
    sh_runtime *rt;
    sh_runstore *store;
    const sh_run_options *opts;
    sh_hooks **hooks;  /* the caller's table (opts->hooks) or own_hooks */
    sh_hooks *own_hooks;
    char run_id[65];
    char execution_id[65]; /* what plugins see: the run id, or a fixed one under --deterministic */
    stage_run *s;
    size_t *order;
    /* Guards the engine's own state: the stages, the scheduler and every task's `done`. The runtime, its pool
     * and metrics guard themselves. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t threads, jobs;
    bool stop;                /* a stage failed the run: start nothing new */
    size_t failed_stage;      /* the first stage that failed the run; p->count: none */
    sh_error failure;         /* its error */
    size_t workers_started;
    sh_progress *progress;
    size_t store_failures;
} engine;

static inline const char *plugin_name(const stage_run *sr) { return sr->d ? sr->d->name : SH_BUILTIN_PLUGIN_NAME; }
static inline const char *plugin_version(const stage_run *sr) { return sr->d ? sr->d->version : SH_VERSION; }

static inline int64_t now_ns(void) { return sh_monotonic_ns(); }

static inline char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *dupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* identity.c */
void sh_engine_new_run_id(char out[65]);
void sh_engine_make_execution_id(engine *e);
void sh_engine_describe_source(const stage_run *sr, char *out, size_t len);
bool sh_engine_fingerprint(engine *e, size_t i);
bool sh_engine_cache_key(engine *e, size_t i, const sh_values *input);

/* record.c: a batch groups the records of one transition into one transaction. */
sh_status sh_engine_open_store(engine *e, sh_error *err);
void sh_engine_store_warn(const sh_error *err);
void sh_engine_put_stage(engine *e, size_t i, const char *status, const call *c, bool with_output);
void sh_engine_put_attempt(engine *e, const call *c, bool running);
void sh_engine_batch_begin(engine *e);
void sh_engine_batch_end(engine *e, size_t i);
/* Records the end of the run; after a success, drops the stored outputs unless the pipeline keeps them. */
void sh_engine_record_end(engine *e, const char *status);

/* stage.c */
void sh_engine_prepare(engine *e, size_t i);
task *sh_engine_make_task(engine *e, size_t i);
void sh_engine_finish_task(engine *e, task *t);
void sh_engine_fail_stage(engine *e, size_t i, sh_status status, const sh_error *cause, const call *c);
void sh_engine_skip_stage(engine *e, size_t i, const char *why);

/* schedule.c: runs the stages until nothing more can start. */
void sh_engine_schedule(engine *e);

#endif
