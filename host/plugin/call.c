#include "plugin/call.h"
#include "util/log.h"
#include "util/text.h"
#include "util/rmtree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void sh_call_init(sh_call *call, const sh_invocation *inv, sh_emit_fn emit, void *emit_sink, sh_log_fn log,
                  void *log_sink)
{
    memset(call, 0, sizeof *call);
    call->inv = inv;
    call->emit = emit;
    call->emit_sink = emit_sink;
    call->log = log ? log : sh_call_log_stderr;
    call->log_sink = log_sink;
}

void sh_call_finish(sh_call *call)
{
    if (call->tmp_dir) {
        sh_remove_tree(call->tmp_dir);
        free(call->tmp_dir);
        call->tmp_dir = NULL;
    }
}

const char *sh_call_error(const sh_call *call, int status)
{
    if (call->failed && call->error[0])
        return call->error;
    switch (status) {
    case SH_ERR_NOMEM:
        return "out of memory (the plugin gave no message)";
    case SH_ERR_INVALID:
        return "invalid argument or configuration (the plugin gave no message)";
    case SH_ERR_IO:
        return "I/O error (the plugin gave no message)";
    default:
        return "the plugin returned a failure without a message";
    }
}

void sh_call_log_stderr(void *sink, const sh_invocation *inv, sh_log_level level, const char *message)
{
    (void)sink;
    /* Every plugin log line passes here, in-process or from a worker: one safe line, capped, for the terminal
     * and the run store alike. */
    char safe[SH_MESSAGE_MAX];
    sh_text_safe(safe, sizeof safe, message, strlen(message));
    sh_log(level, "[%s %s] %s", inv && inv->plugin ? inv->plugin : "?", inv && inv->stage ? inv->stage : "-", safe);
    if (inv && inv->log_tap)
        inv->log_tap(inv->log_tap_ctx, level, safe);
}

/* ---- the table ---------------------------------------------------------------------------------------------- */

static void host_fail(sh_call *call, const char *message)
{
    if (!call)
        return;
    call->failed = true;
    /* The message travels as a string value (over the wire, into the run store and JSON) and is printed: it is
     * made one line of valid UTF-8 here, where the host takes it (util/text.h). */
    const char *m = message ? message : "(no message)";
    sh_text_safe(call->error, sizeof call->error, m, strlen(m));
}

static void host_log(sh_call *call, sh_log_level level, const char *message)
{
    if (call && message)
        call->log(call->log_sink, call->inv, level, message);
}

/* One per process, like the environment it stands for: set at start, read by every call after. */
static char tmp_base[4096] = "/tmp";

void sh_call_set_tmp_base(const char *dir) { snprintf(tmp_base, sizeof tmp_base, "%s", dir && *dir ? dir : "/tmp"); }

static const char *make_tmp_dir(sh_call *call)
{
    if (call->tmp_dir)
        return call->tmp_dir;
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/stagehost-call-XXXXXX", tmp_base);
    if (!mkdtemp(tmpl))
        return NULL;
    call->tmp_dir = strdup(tmpl);
    if (!call->tmp_dir)
        rmdir(tmpl);
    return call->tmp_dir;
}

static int host_context(sh_call *call, sh_context *out)
{
    if (!call || !out || out->size < offsetof(sh_context, base_dir) + sizeof(out->base_dir))
        return SH_ERR_INVALID;
    const sh_invocation *inv = call->inv;
    sh_context ctx = {
        .size = out->size < sizeof ctx ? out->size : (uint32_t)sizeof ctx,
        .attempt = inv->attempt,
        .execution_id = inv->execution_id,
        .task_id = inv->task_id,
        .pipeline = inv->pipeline,
        .stage = inv->stage,
        .plugin = inv->plugin,
        .tmp_dir = make_tmp_dir(call),
        .base_dir = inv->base_dir,
    };
    /* Write no further than the plugin's struct reaches, nor than ours does. */
    memcpy(out, &ctx, ctx.size);
    return SH_OK;
}

static int64_t host_now_ns(sh_call *call)
{
    if (call && call->inv && call->inv->deterministic)
        return SH_DETERMINISTIC_EPOCH_NS + 1000 * call->clock_reads++;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
    return (h ^ 0xff) * UINT64_C(0x100000001b3); /* a separator, so "ab"+"c" differs from "a"+"bc" */
}

/* splitmix64: tiny, fast, and the same sequence on every machine, which is all a deterministic run needs. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t host_random_u64(sh_call *call)
{
    if (call && call->inv && call->inv->deterministic) {
        if (!call->rng) {
            const sh_invocation *inv = call->inv;
            uint64_t h = fnv1a(fnv1a(fnv1a(UINT64_C(0xcbf29ce484222325), inv->plugin), inv->stage), inv->task_id);
            call->rng = (inv->seed ^ h) | 1; /* never 0, which means "not seeded yet" */
        }
        return splitmix64(&call->rng);
    }
    uint64_t v = 0;
    while (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v && errno == EINTR)
        ;
    return v;
}

static int host_emit(sh_call *call, sh_value *item)
{
    if (!call || !item || !call->emit) {
        sh_value_free(item);
        return SH_ERR_INVALID;
    }
    return call->emit(call->emit_sink, item);
}

static int host_value_bool(const sh_value *v) { return sh_value_get_bool(v); }
static sh_value *host_new_bool(int b) { return sh_value_bool(b); }

static const sh_host table = {
    .size = sizeof(sh_host),
    .abi_version = SH_ABI_CURRENT,
    .fail = host_fail,
    .log = host_log,
    .context = host_context,
    .now_ns = host_now_ns,
    .random_u64 = host_random_u64,
    .emit = host_emit,
    .value_type = sh_value_type,
    .value_bool = host_value_bool,
    .value_int = sh_value_get_int,
    .value_double = sh_value_get_double,
    .value_string = sh_value_get_string,
    .value_bytes = sh_value_get_bytes,
    .value_count = sh_value_count,
    .array_get = sh_value_array_get,
    .map_get = sh_value_map_get,
    .map_entry = sh_value_map_entry,
    .new_null = sh_value_null,
    .new_bool = host_new_bool,
    .new_int = sh_value_int,
    .new_double = sh_value_double,
    .new_string = sh_value_string,
    .new_bytes = sh_value_bytes,
    .new_array = sh_value_array,
    .new_map = sh_value_map,
    .value_copy = sh_value_copy,
    .value_free = sh_value_free,
    .array_push = sh_value_array_push,
    .map_set = sh_value_map_set,
};

const sh_host *sh_host_table(void) { return &table; }

int sh_call_failf(sh_call *call, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sh_host_table()->fail(call, msg);
    return code;
}
