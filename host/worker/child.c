/* The child side of a worker: confine the process, load the plugin, then serve requests until told to stop.
 * This is one of the two places allowed to end the process (_exit), as it is the worker's own main. */
#include "worker/child.h"
#include "util/sanitizer.h"
#include "plugin/inproc.h"
#include "util/clock.h"
#include "util/fdpass.h"
#include "util/rmtree.h"
#include "worker/protocol.h"
#include "worker/shmbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef SH_UNDER_ASAN
#include <sanitizer/lsan_interface.h>

/* LeakSanitizer's exit-time check traces the process, which the seccomp filter forbids: a plugin calling exit()
 * would die of SIGABRT instead. The check stays on in the host; in workers, this hook turns it off. */
static volatile int in_worker;
__attribute__((visibility("default"))) int __lsan_is_turned_off(void) { return in_worker; }
#endif

/* Flush emitted frames to the host once this much is buffered, so memory stays bounded for big outputs. */
#define FLUSH_AT (256u * 1024u)

typedef struct child {
    int fd;
    int64_t cpu_seconds; /* per-call CPU limit */
    sh_buf out;
    sh_frame_in in; /* what the host sent, not yet served */
    struct rusage last; /* resource use at the end of the last call, the start of the next */
    bool have_last;
    bool broken; /* the host went away; stop producing */
    sh_inv_cache inv; /* the invocation strings the host sent last */
    sh_shmbuf shm;    /* the shared buffer, once the host sent one */
    size_t shm_used;  /* of the current call's output in it */
    int pending_fd;   /* a descriptor that came with the request being read (SH_MSG_SHM), or -1 */
    bool spin;        /* wait for the next request awake for a moment (never on one CPU) */
} child;

/* The next request (sh_frame_take). False when the host closed the channel, died, or sent a frame of length 0. */
static bool next_request(child *c, uint8_t *type, sh_codec_reader *r)
{
    bool spin = c->spin;
    int64_t spin_until = spin ? sh_monotonic_ns() + SH_FRAME_SPIN_NS : 0;
    sh_buf *in = &c->in.buf;
    for (;;) {
        const uint8_t *p;
        size_t len;
        sh_frame_status fs = sh_frame_take(&c->in, UINT32_MAX, type, &p, &len);
        if (fs == SH_FRAME_READY) {
            sh_codec_reader_init(r, p, len);
            return true;
        }
        if (fs != SH_FRAME_MORE)
            return false;
        /* recvmsg, not read: a descriptor the host passes (the shared buffer) would be dropped by read. The next
         * request of a busy host follows its answer within microseconds: wait for it awake for a moment (as the
         * host waits for the answer) before sleeping, which would cost a wake-up each way. */
        int fd = -1;
        ssize_t n = sh_fdpass_recv(c->fd, in->data + in->len, in->cap - in->len, spin ? MSG_DONTWAIT : 0, &fd);
        if (n < 0 && errno == EAGAIN && spin) {
            if (sh_monotonic_ns() >= spin_until)
                spin = false;
            /* Yield, not pause: when the host runs on this same CPU (a busy machine), it must get to run. */
            sched_yield();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (fd >= 0) {
            if (c->pending_fd >= 0)
                close(c->pending_fd);
            c->pending_fd = fd;
        }
        if (n <= 0)
            return false;
        in->len += (size_t)n;
    }
}

static void flush(child *c)
{
    if (!c->broken && sh_frame_send(c->fd, &c->out, NULL) != SH_S_OK)
        c->broken = true;
    sh_buf_reset(&c->out);
}

static int child_emit(void *sink, sh_value *item)
{
    child *c = sink;
    size_t size = c->shm.base ? sh_codec_value_size(item) : 0;
    if (size >= SH_SHMBUF_THRESHOLD && size != SIZE_MAX && size <= c->shm.size - c->shm_used) {
        /* A large item goes into the shared buffer, encoded in place; the frame only says where. The host reads
         * this call's part of the buffer only after the call, and the next call starts over at 0. */
        sh_codec_encode(c->shm.base + c->shm_used, item);
        size_t f = sh_frame_begin(&c->out, SH_MSG_EMIT_SHM);
        sh_buf_u64(&c->out, c->shm_used);
        sh_buf_u64(&c->out, size);
        sh_frame_end(&c->out, f);
        c->shm_used += size;
    } else {
        size_t f = sh_frame_begin(&c->out, SH_MSG_EMIT);
        sh_codec_put_value(&c->out, item);
        sh_frame_end(&c->out, f);
    }
    sh_value_free(item);
    if (c->out.failed)
        return SH_ERR_NOMEM;
    if (c->out.len >= FLUSH_AT)
        flush(c);
    return c->broken ? SH_ERR_IO : SH_OK;
}

static void child_log(void *sink, const sh_invocation *inv, sh_log_level level, const char *message)
{
    (void)inv;
    child *c = sink;
    size_t f = sh_frame_begin(&c->out, SH_MSG_LOG);
    sh_codec_put_int(&c->out, level);
    sh_codec_put_string(&c->out, message);
    sh_frame_end(&c->out, f);
}

static void set_limit(int resource, rlim_t value)
{
    struct rlimit rl = {value, value};
    setrlimit(resource, &rl);
}

/* The parts of confinement that need nothing but the limits: no core dumps, and the resource limits. */
static void confine(const sh_descriptor *d)
{
    set_limit(RLIMIT_CORE, 0);
    /* Soft and hard limits alike, so the plugin cannot raise them back. Without a declared limit, open files
     * stay at the inherited soft limit. */
    struct rlimit nofile;
    getrlimit(RLIMIT_NOFILE, &nofile);
    set_limit(RLIMIT_NOFILE, d->limits.open_files > 0 ? (rlim_t)d->limits.open_files : nofile.rlim_cur);
    if (d->limits.processes > 0)
        set_limit(RLIMIT_NPROC, (rlim_t)d->limits.processes);
    if (d->limits.file_size_mb > 0) {
        /* A write past the limit then fails with EFBIG instead of killing the worker with SIGXFSZ. */
        signal(SIGXFSZ, SIG_IGN);
        set_limit(RLIMIT_FSIZE, (rlim_t)d->limits.file_size_mb * 1024 * 1024);
    }
#ifndef SH_UNDER_ASAN
    /* The host watches the worker's resident size against memory_mb and names the limit when it kills it. The
     * address-space limit is only a backstop against a runaway that outpaces the watch, so it is generous.
     * (AddressSanitizer reserves terabytes of address space up front: no such limit under it.) */
    if (d->limits.memory_mb > 0)
        set_limit(RLIMIT_AS, (rlim_t)(d->limits.memory_mb * 4 + 512) * 1024 * 1024);
#endif
}

/* The CPU limit counts per call: the soft limit is set to what the process has used so far plus the limit,
 * so SIGXCPU arrives after `seconds` of CPU in this call. */
static void limit_cpu_for_call(int64_t seconds)
{
    if (seconds <= 0)
        return;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct rlimit rl;
    getrlimit(RLIMIT_CPU, &rl);
    rl.rlim_cur = (rlim_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + seconds);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_CPU, &rl);
}

static int64_t us(struct timeval tv) { return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec; }

static void reply(child *c, int64_t status, int64_t aux, const char *message)
{
    sh_protocol_put_done(&c->out, SH_MSG_DONE, status, aux, message);
    flush(c);
}

/* Runs the stage a CALL created over the call's items, then its finish(), and replies RESULT with the call's
 * resource use. */
static void run_process(child *c, sh_inproc *ip, uint32_t id, const sh_invocation *inv, const sh_values *items,
                        sh_status created, const char *create_error)
{
    sh_error err;
    sh_error_clear(&err);
    if (created != SH_S_OK) {
        sh_protocol_put_result(&c->out, created, 0, 0, 0, create_error);
        flush(c);
        return;
    }
    limit_cpu_for_call(c->cpu_seconds);
    /* A call's use starts where the last one's ended: one getrusage per call instead of two. What the worker
     * did in between (reading this request) is counted in this call, which is where it belongs anyway. */
    struct rusage before, after;
    if (c->have_last)
        before = c->last;
    else
        getrusage(RUSAGE_SELF, &before);
    sh_status st = sh_inproc_process(ip, id, inv, (const sh_value *const *)items->items, items->len,
                                     child_emit, c, child_log, c, &err);
    /* A call is the stage's whole input: its finish() follows at once (abi.h). */
    if (st == SH_S_OK)
        st = sh_inproc_finish(ip, id, inv, child_emit, c, child_log, c, &err);
    /* destroy() is part of the call, before its answer: one that hangs runs into this call's deadline, not into
     * the next call's, which would blame an innocent stage. */
    sh_inproc_destroy_stage(ip, id);
    getrusage(RUSAGE_SELF, &after);
    c->last = after;
    c->have_last = true;
    sh_protocol_put_result(&c->out, st, us(after.ru_utime) - us(before.ru_utime),
                           us(after.ru_stime) - us(before.ru_stime), after.ru_maxrss, st == SH_S_OK ? "" : err.message);
    flush(c);
}

/* The end of a call that was to run in a fork (CALL_END), with how its process ended. */
static void end_call(child *c, int status)
{
    size_t f = sh_frame_begin(&c->out, SH_MSG_CALL_END);
    sh_codec_put_int(&c->out, status);
    sh_frame_end(&c->out, f);
    flush(c);
}

/* "call" isolation: the call runs in a fork of this warm worker, so nothing it changes survives it. Returns true
 * in the call's process, which runs the call and then must _exit; false in the worker, once that process ended
 * and the end was reported. */
static bool fork_for_call(child *c)
{
    pid_t worker = getpid();
    /* No state survives a call, files included: the call works in a directory of its own (inside the worker's
     * private directory, where it may write), removed when it ends, so the next call finds nothing it left. */
    char dir[] = "call-XXXXXX";
    bool own_dir = mkdtemp(dir) != NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != worker || (own_dir && chdir(dir) != 0))
            _exit(1);
        c->have_last = false; /* a new process: its resource use starts from zero, not from the worker's */
        return true;
    }
    int status = 0;
    if (pid < 0)
        reply(c, SH_S_IO, 0, "cannot fork a process for the call");
    else
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    if (own_dir)
        sh_remove_tree(dir);
    end_call(c, status);
    return false;
}

/* Runs one hook implementation of the plugin and replies: EMIT [result] when there is one, then DONE with the
 * status (0, or the failure's message) and whether the implementation stopped its chain. */
static void run_hook(child *c, sh_inproc *ip, const sh_invocation *inv, const char *symbol, const sh_signature *sig,
                     const sh_values *args)
{
    sh_error err;
    sh_error_clear(&err);
    void (*fn)(void) = sh_inproc_symbol(ip, symbol);
    sh_ffi_call fc;
    sh_status st = fn ? SH_S_OK
                      : sh_error_set(&err, SH_S_STAGE, "the plugin declares no hook implemented by '%s'", symbol);
    if (st == SH_S_OK && args->len != sig->nargs)
        st = sh_error_set(&err, SH_S_PROTOCOL, "%zu arguments for a hook taking %zu", args->len, sig->nargs);
    if (st == SH_S_OK)
        st = sh_ffi_prepare(&fc, sig, SH_CONV_HOOK, &err);
    sh_ffi_args a;
    if (st == SH_S_OK)
        sh_ffi_args_init(&a, &fc);
    for (size_t i = 0; st == SH_S_OK && i < args->len; i++) {
        char what[64];
        snprintf(what, sizeof what, "argument %zu", i + 1);
        st = sh_ffi_arg_set(&a, &fc, i, args->items[i], what, &err);
    }
    int64_t stopped = 0;
    if (st == SH_S_OK) {
        limit_cpu_for_call(c->cpu_seconds);
        sh_call call;
        sh_call_init(&call, inv, NULL, NULL, child_log, c);
        sh_value *result = NULL;
        int rc = sh_ffi_call_hook(&fc, fn, &call, &a, &result);
        if (rc == SH_HOOK_STOP) {
            stopped = 1;
        } else if (rc != SH_OK) {
            st = sh_error_set(&err, SH_S_STAGE, "%s", sh_call_error(&call, rc));
        } else if (result) {
            size_t f = sh_frame_begin(&c->out, SH_MSG_EMIT);
            sh_codec_put_value(&c->out, result);
            sh_frame_end(&c->out, f);
        }
        sh_value_free(result);
        sh_call_finish(&call);
    }
    sh_protocol_put_done(&c->out, SH_MSG_DONE, st, stopped, st == SH_S_OK ? "" : err.message);
    flush(c);
}

static void serve_hook(child *c, sh_inproc *ip, sh_codec_reader *r)
{
    sh_error err;
    sh_error_clear(&err);
    uint8_t flags = 0;
    sh_invocation inv;
    memset(&inv, 0, sizeof inv);
    const char *symbol = NULL;
    sh_value *sigv = NULL;
    sh_values args = {0};
    sh_signature sig = {0};
    sh_status st = SH_S_OK;
    if (!sh_protocol_get_header(r, &c->inv, &inv, &flags))
        st = sh_error_set(&err, SH_S_PROTOCOL, "malformed call header");
    else if (!sh_protocol_get_name(r, &symbol))
        st = sh_error_set(&err, SH_S_PROTOCOL, "malformed hook symbol");
    if (st == SH_S_OK)
        st = sh_codec_get_typed(r, SH_TYPE_ARRAY, "signature", &sigv, &err);
    if (st == SH_S_OK && !sh_protocol_signature_from_value(sigv, &sig))
        st = sh_error_set(&err, SH_S_PROTOCOL, "malformed hook signature");
    while (st == SH_S_OK && !sh_codec_reader_done(r)) {
        sh_value *arg;
        st = sh_codec_get_value(r, &arg, &err);
        if (st == SH_S_OK && sh_values_push(&args, arg) != SH_OK)
            st = sh_error_set(&err, SH_S_NOMEM, "out of memory receiving hook arguments");
    }
    if (st != SH_S_OK) {
        reply(c, st, 0, err.message);
    } else if (!(flags & SH_CALL_FORK)) {
        run_hook(c, ip, &inv, symbol, &sig, &args);
    } else if (fork_for_call(c)) {
        run_hook(c, ip, &inv, symbol, &sig, &args);
        _exit(0);
    }
    sh_values_clear(&args);
    sh_value_free(sigv);
}

/* A string or bytes item in the shared buffer, lent to the plugin in place instead of copied: inputs are
 * borrowed by the ABI, and the host leaves the buffer alone until the call's answer. The host puts a NUL after
 * each item there, as an sh_value's octets promise. */
static sh_value *lend(uint8_t tag, uint8_t *data, size_t len)
{
    sh_value *v = sh_value_bytes(NULL, 0);
    if (!v)
        return NULL;
    free(v->u.s.data);
    v->u.s.data = (char *)data;
    v->u.s.len = len;
    v->type = tag == SH_CODEC_STRING ? SH_TYPE_STRING : SH_TYPE_BYTES;
    return v;
}

static bool lent(const child *c, const sh_value *v)
{
    return c->shm.base && (v->type == SH_TYPE_STRING || v->type == SH_TYPE_BYTES) &&
           (uint8_t *)v->u.s.data >= c->shm.base && (uint8_t *)v->u.s.data < c->shm.base + c->shm.size;
}

/* Frees the items, giving lent storage back to the shared buffer first. */
static void clear_items(child *c, sh_values *items)
{
    for (size_t i = 0; i < items->len; i++)
        if (lent(c, items->items[i]))
            items->items[i]->u.s.data = NULL;
    sh_values_clear(items);
}

/* The items of a CALL request, inline in the frame or in the shared buffer. This call's output in
 * the buffer, if any, goes after its inputs, which stay lent to the plugin until it returns. */
static sh_status read_items(child *c, sh_codec_reader *r, sh_values *items, sh_error *err)
{
    uint32_t count;
    uint8_t where;
    c->shm_used = 0;
    if (!sh_protocol_get_u32(r, &count) || !sh_protocol_get_u8(r, &where))
        return sh_error_set(err, SH_S_PROTOCOL, "truncated item list");
    if (where == SH_ITEMS_INLINE) {
        for (uint32_t i = 0; i < count; i++) {
            sh_value *item;
            if (sh_codec_get_value(r, &item, err) != SH_S_OK)
                return SH_S_PROTOCOL;
            if (sh_values_push(items, item) != SH_OK)
                return sh_error_set(err, SH_S_NOMEM, "out of memory receiving items");
        }
        return sh_codec_reader_done(r) ? SH_S_OK : sh_error_set(err, SH_S_PROTOCOL, "trailing bytes after the items");
    }
    uint64_t off, len;
    if (!sh_protocol_get_u64(r, &off) || !sh_protocol_get_u64(r, &len) || !sh_shmbuf_contains(&c->shm, off, len))
        return sh_error_set(err, SH_S_PROTOCOL, "items outside the shared buffer");
    sh_codec_reader shared;
    sh_codec_reader_init(&shared, c->shm.base + off, (size_t)len);
    for (uint32_t i = 0; i < count; i++) {
        sh_value *item = NULL;
        size_t left = shared.len - shared.pos;
        const uint8_t *p = shared.data + shared.pos;
        uint32_t n = left >= 5 ? (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24
                               : 0;
        if (left >= 5 && (p[0] == SH_CODEC_STRING || p[0] == SH_CODEC_BYTES) && n < left - 5 && p[5 + n] == '\0') {
            if (!(item = lend(p[0], c->shm.base + off + shared.pos + 5, n)))
                return sh_error_set(err, SH_S_NOMEM, "out of memory receiving items");
            shared.pos += 5 + (size_t)n;
        } else if (sh_codec_get_value(&shared, &item, err) != SH_S_OK) {
            return SH_S_PROTOCOL;
        }
        if (sh_values_push(items, item) != SH_OK) {
            if (lent(c, item))
                item->u.s.data = NULL;
            sh_value_free(item);
            return sh_error_set(err, SH_S_NOMEM, "out of memory receiving items");
        }
        uint8_t nul;
        if (!sh_protocol_get_u8(&shared, &nul) || nul != 0)
            return sh_error_set(err, SH_S_PROTOCOL, "an item in the shared buffer lacks its terminator");
    }
    if (!sh_codec_reader_done(&shared))
        return sh_error_set(err, SH_S_PROTOCOL, "trailing bytes after the items");
    c->shm_used = (size_t)(off + len);
    return SH_S_OK;
}

/* CALL: create, process, destroy. */
static void serve_call(child *c, sh_inproc *ip, sh_codec_reader *r)
{
    sh_error err;
    sh_error_clear(&err);
    uint32_t id = 0;
    uint8_t flags = 0;
    sh_invocation inv;
    memset(&inv, 0, sizeof inv);
    sh_values items = {0};
    sh_value *config = NULL;
    const char *type = NULL;
    sh_status st = SH_S_OK;
    if (!sh_protocol_get_header(r, &c->inv, &inv, &flags))
        st = sh_error_set(&err, SH_S_PROTOCOL, "malformed call header");
    else if (!sh_protocol_get_name(r, &type))
        st = sh_error_set(&err, SH_S_PROTOCOL, "malformed stage type");
    if (st == SH_S_OK)
        st = sh_codec_get_typed(r, SH_TYPE_MAP, "config", &config, &err);
    if (st == SH_S_OK)
        st = read_items(c, r, &items, &err);
    if (st != SH_S_OK) {
        sh_protocol_put_result(&c->out, st, 0, 0, 0, err.message);
        flush(c);
        clear_items(c, &items);
        sh_value_free(config);
        return;
    }
    sh_error cerr;
    sh_error_clear(&cerr);
    /* With a fork per call, all of the call's plugin code (create to destroy) runs in the call's process, so
     * none of it touches the warm worker. */
    if (!(flags & SH_CALL_FORK) || fork_for_call(c)) {
        sh_status created = sh_inproc_create_stage(ip, &inv, type, config, &id, &cerr);
        run_process(c, ip, id, &inv, &items, created, cerr.message);
        if (flags & SH_CALL_FORK)
            _exit(0);
    }
    clear_items(c, &items);
    sh_value_free(config);
}

/* The host's shared buffer for large payloads: it replaces the last one. */
static void serve_shm(child *c, sh_codec_reader *r)
{
    uint64_t size = 0;
    int fd = c->pending_fd;
    c->pending_fd = -1;
    bool ok = sh_protocol_get_u64(r, &size) && fd >= 0;
    if (!ok && fd >= 0)
        close(fd);
    /* sh_shmbuf_map takes the descriptor, whatever it decides. */
    if (!ok || sh_shmbuf_map(&c->shm, fd, (size_t)size) != 0)
        c->broken = true; /* the host cannot use us without it: end, and it reports the worker's exit */
}

_Noreturn void sh_worker_child_main(int fd, sh_descriptor *d, const sh_value *config,
                                    const sh_sandbox_policy *policy)
{
    /* Die with the host, even when it is killed with SIGKILL; and catch the race where it already died. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    signal(SIGPIPE, SIG_IGN);
    /* A crash must end the worker by its signal, so the host can name it: no handler inherited from the host
     * (or installed by a sanitizer runtime) may turn it into an ordinary exit. */
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        signal(fatal[i], SIG_DFL);
    signal(SIGINT, SIG_IGN); /* a terminal ^C is the host's to handle; it stops workers itself */
    /* A plugin's printf must not corrupt the host's standard output, and what is piped into the host is not the
     * plugin's to read. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup3(null, STDIN_FILENO, 0);
        close(null);
    }
#ifdef SH_UNDER_ASAN
    in_worker = 1;
#endif
    /* A group of its own: the host kills the whole group, so nothing the plugin forks outlives the worker, and a
     * terminal's ^C goes to the host alone. */
    setpgid(0, 0);
    /* Keep only stdio and the channel: nothing else the host had open is the plugin's business. */
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    confine(d);
    /* Large blocks from the heap, kept when freed, rather than fresh mappings each time: a stage that copies a
     * 64 MiB item per call then reuses memory already faulted in instead of taking 16,384 page faults twice a
     * call. Memory stays with the worker (its resident size is watched), which is unloaded when idle. */
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);

    child c = {.fd = fd, .cpu_seconds = d->limits.cpu_seconds, .shm = SH_SHMBUF_NONE, .pending_fd = -1,
               .spin = sysconf(_SC_NPROCESSORS_ONLN) > 1};
    sh_error err;
    sh_error_clear(&err);
    sh_inproc *ip = NULL;
    char why[1024];
    sh_status st = SH_S_OK;
    /* Confined before the library is opened: its constructors are plugin code too. */
    if (sh_sandbox_apply(policy, d, why, sizeof why) != 0)
        st = sh_error_set(&err, SH_S_LOAD, "cannot confine the worker of plugin '%s': %s", d->name, why);
    sh_call_set_tmp_base(policy->tmp_root);
    /* Changing user clears the parent-death signal: set it again, and catch a parent that died meanwhile. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    if (st == SH_S_OK)
        st = sh_inproc_open(d, config, &ip, &err);
    /* READY's second field: the ABI in use, or on failure the kind of the error (which step refused it). */
    sh_protocol_put_done(&c.out, SH_MSG_READY, st, st == SH_S_OK ? (int64_t)sh_inproc_abi(ip) : err.kind,
                         st == SH_S_OK ? "" : err.message);
    flush(&c);
    if (st != SH_S_OK)
        _exit(0);

    for (;;) {
        uint8_t type;
        sh_codec_reader r;
        if (!next_request(&c, &type, &r))
            break; /* the host closed the channel or died: nothing left to serve */
        if (type == SH_MSG_CALL) {
            serve_call(&c, ip, &r);
        } else if (type == SH_MSG_SHM) {
            serve_shm(&c, &r);
        } else if (type == SH_MSG_HOOK) {
            serve_hook(&c, ip, &r);
        } else if (type == SH_MSG_HEALTH) {
            sh_error herr;
            sh_status hs = sh_inproc_health(ip, &herr);
            reply(&c, hs, 0, hs == SH_S_OK ? "" : herr.message);
        } else {
            break; /* SHUTDOWN, or a request this worker does not know */
        }
        if (c.broken)
            break;
    }
    sh_inproc_close(ip);
    sh_buf_free(&c.out);
    sh_frame_in_free(&c.in);
    sh_inv_cache_free(&c.inv);
    sh_shmbuf_release(&c.shm);
    close(fd);
    _exit(0);
}
