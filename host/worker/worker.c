#include "worker/worker.h"
#include "util/fdpass.h"
#include "util/rmtree.h"
#include "worker/child.h"
#include "util/log.h"
#include "util/clock.h"
#include "worker/protocol.h"
#include "worker/shmbuf.h"
#include "worker/zygote.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <stdatomic.h>
#include <unistd.h>

struct sh_worker {
    pid_t pid; /* 0 once reaped */
    int fd;    /* -1 once closed */
    char *plugin;
    sh_zygote *zygote;     /* the worker's parent, which reaps it; NULL when the host forked it itself */
    sh_worker_limits limits;
    sh_exit_info exit;     /* how it ended, once reaped */
    sh_call_usage usage;   /* of the last call */
    char *tmp_root;        /* the worker's private directory; removed once it is reaped */
    uint32_t abi;          /* negotiated with the plugin, as the worker reported it */
    sh_buf out;
    sh_frame_in in;      /* what the worker sent, not yet read */
    sh_inv_cache sent;   /* the invocation strings the worker has: only changes are sent */
    sh_shmbuf shm;       /* the shared buffer for large payloads, once one was needed */
    bool shm_announce;   /* the worker has not been given this buffer yet */
    size_t shm_hint;     /* the size the last call's output asked for in the socket */
    sh_buf scratch;      /* a private copy of a structured item from the shared buffer, decoded from there */
    sh_buf request;      /* what the zygote was asked to start: a replacement after a crash is started from it */
    uid_t uid;           /* the user the worker runs as (0: unchanged), for a replacement's directory */
    gid_t gid;
};

static int64_t deadline(const sh_worker *w)
{
    int64_t ms = w->limits.timeout_ms > 0 ? w->limits.timeout_ms : SH_DEFAULT_TIMEOUT_MS;
    return sh_monotonic_ns() + ms * 1000000;
}

/* "killed by signal SIGSEGV (Segmentation fault)" or "exited with status 3". */
static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        snprintf(buf, len, "exited without answering (it closed its channel or called exit(0))");
        return;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, len, "was killed by signal SIG%s (%s)", abbrev ? abbrev : "?", strsignal(sig));
    } else if (WIFEXITED(status)) {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, len, "stopped (wait status 0x%x)", status);
    }
}

/* Waits up to `grace_ms` for the worker to exit by itself, then kills it; always reaps it. */
static void reap(sh_worker *w, int grace_ms)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->pid <= 0)
        return;
    memset(&w->exit, 0, sizeof w->exit);
    /* What the plugin forked shares the worker's process group; none of it may outlive the worker. */
    pid_t group = w->pid;
    if (w->zygote) {
        if (sh_zygote_wait(w->zygote, w->pid, grace_ms, &w->exit, NULL) == SH_S_TIMEOUT) {
            kill(w->pid, SIGKILL);
            /* SIGKILL cannot be ignored: the report follows at once unless the zygote itself is gone. */
            sh_zygote_wait(w->zygote, w->pid, 5000, &w->exit, NULL);
        }
        /* The zygote killed the worker's process group when it reaped it. */
        w->pid = 0;
        return;
    }
    int64_t end = sh_monotonic_ns() + (int64_t)grace_ms * 1000000;
    long nap_ns = 50000;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    for (;;) {
        /* Look before reaping: the dead worker's group id stays reserved until it is reaped. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == w->pid)
            break;
        if (r < 0 && errno != EINTR)
            break;
        if (sh_monotonic_ns() >= end) {
            kill(w->pid, SIGKILL);
            while (waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
            break;
        }
        /* A worker told to stop exits within a few hundred microseconds: look again soon, then less often. */
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 1000000)
            nap_ns *= 2;
    }
    kill(-group, SIGKILL);
    while (wait4(w->pid, &w->exit.status, 0, &ru) < 0 && errno == EINTR)
        ;
    w->exit.maxrss_kb = ru.ru_maxrss;
    w->exit.utime_us = ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
    w->exit.stime_us = ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    w->pid = 0;
}

/* Why a worker that died on its own died, with the limit it most likely hit. */
static void explain_death(const sh_worker *w, char *buf, size_t len)
{
    describe_status(w->exit.status, buf, len);
    size_t used = strlen(buf);
    int sig = WIFSIGNALED(w->exit.status) ? WTERMSIG(w->exit.status) : 0;
    if (sig == SIGXCPU || (sig == SIGKILL && w->limits.cpu_seconds > 0 &&
                           (w->exit.utime_us + w->exit.stime_us) / 1000000 >= w->limits.cpu_seconds)) {
        snprintf(buf + used, len - used, ": it exceeded its CPU limit of %lld s per call (limits.cpu_seconds)",
                 (long long)w->limits.cpu_seconds);
    } else if (sig == SIGXFSZ) {
        snprintf(buf + used, len - used, ": it wrote a file larger than its limit of %lld MiB (limits.file_size_mb)",
                 (long long)w->limits.file_size_mb);
    } else if (w->limits.memory_mb > 0 && w->exit.maxrss_kb * 10 >= w->limits.memory_mb * 1024 * 8) {
        /* Allocations fail near the limit, and a plugin that does not check them crashes: say so. */
        snprintf(buf + used, len - used,
                 " after reaching %lld MiB of its %lld MiB memory limit (limits.memory_mb): it most likely ran out "
                 "of memory",
                 (long long)(w->exit.maxrss_kb / 1024), (long long)w->limits.memory_mb);
    }
}

static void prespawn(sh_worker *w);

/* Turns a failed exchange into the final error: the worker is killed (if needed) and reaped either way, and a
 * replacement is started at once for the start that will follow. */
static sh_status fail_worker_reaped(sh_worker *w, sh_status st, const char *during, sh_error *err);

static sh_status fail_worker(sh_worker *w, sh_status st, const char *during, sh_error *err)
{
    sh_status rc = fail_worker_reaped(w, st, during, err);
    prespawn(w);
    return rc;
}

static sh_status fail_worker_reaped(sh_worker *w, sh_status st, const char *during, sh_error *err)
{
    pid_t pid = w->pid;
    char why[512];
    if (st == SH_S_TIMEOUT) {
        kill(w->pid, SIGKILL);
        reap(w, 5000);
        return sh_error_set(err, SH_S_TIMEOUT,
                            "worker process %d of plugin '%s' did not finish %s within its %lld ms deadline and was "
                            "killed; raise limits.timeout_ms (descriptor) or timeout_ms (pipeline stage) if the work "
                            "is legitimately slow",
                            (int)pid, w->plugin, during, (long long)w->limits.timeout_ms);
    }
    if (st == SH_S_PROTOCOL) {
        char detail[SH_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->message : "");
        int kind = err ? err->kind : SH_EK_NONE; /* the detail's kind is the whole error's */
        kill(w->pid, SIGKILL);
        reap(w, 5000);
        /* Emitting a lot is no protocol breach: the message says which limit it reached and how to raise it. */
        if (kind == SH_EK_OUTPUT_CAP)
            return sh_error_set_kind(err, SH_S_PROTOCOL, kind,
                                     "worker process %d of plugin '%s' was stopped during %s: %s; a call's whole "
                                     "output is held until it ends, so raise limits.output_mb for the plugin (host "
                                     "configuration or descriptor) or give the stage less input per run",
                                     (int)pid, w->plugin, during, detail);
        return sh_error_set_kind(err, SH_S_PROTOCOL, kind,
                            "worker process %d of plugin '%s' broke the protocol during %s (%s) and was killed; "
                            "a plugin must not write to the worker's channel or its shared buffer itself",
                            (int)pid, w->plugin, during, detail);
    }
    /* End of stream or an I/O error: the worker died or closed its channel. */
    reap(w, 1000);
    explain_death(w, why, sizeof why);
    return sh_error_set(err, SH_S_CRASH, "worker process %d of plugin '%s' %s during %s", (int)pid, w->plugin, why,
                        during);
}

static sh_status fail_memory(sh_worker *w, int64_t rss_kb, const char *during, sh_error *err)
{
    pid_t pid = w->pid;
    kill(w->pid, SIGKILL);
    reap(w, 5000);
    prespawn(w);
    return sh_error_set(err, SH_S_CRASH,
                        "worker process %d of plugin '%s' exceeded its memory limit of %lld MiB during %s (resident "
                        "%lld MiB) and was killed; raise limits.memory_mb if it needs more",
                        (int)pid, w->plugin, (long long)w->limits.memory_mb, during, (long long)(rss_kb / 1024));
}

/* Sends the first bytes of b with the shared buffer's descriptor attached; *sent tells how many. */
static sh_status send_fd(sh_worker *w, const sh_buf *b, size_t *sent, sh_error *err)
{
    for (;;) {
        ssize_t n = sh_fdpass_send(w->fd, b->data, b->len, w->shm.fd);
        if (n > 0) {
            *sent = (size_t)n;
            return SH_S_OK;
        }
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
            if (poll(&pfd, 1, 60000) == 0)
                return sh_error_set(err, SH_S_TIMEOUT, "the worker has not read its channel for 60 s");
            continue;
        }
        return sh_error_set(err, SH_S_IO, "writing to the worker channel failed: %s", strerror(errno));
    }
}

static sh_status send_out(sh_worker *w, const char *during, sh_error *err)
{
    if (w->fd < 0)
        return sh_error_set(err, SH_S_CRASH, "the worker of plugin '%s' is no longer running", w->plugin);
    sh_status st = SH_S_OK;
    if (w->out.failed) {
        /* Not sent: the worker did not get the invocation fields of its header either; they go again next time. */
        memset(w->sent.known, 0, sizeof w->sent.known);
        st = sh_error_set(err, SH_S_NOMEM, "out of memory (or a value over 4 GiB) while encoding a frame");
    } else if (w->shm_announce) {
        size_t sent = 0;
        st = send_fd(w, &w->out, &sent, err);
        w->shm_announce = false;
        sh_buf rest = {.data = w->out.data + sent, .len = w->out.len - sent, .cap = w->out.len - sent};
        if (st == SH_S_OK && rest.len)
            st = sh_frame_send(w->fd, &rest, err);
    } else {
        st = sh_frame_send(w->fd, &w->out, err);
    }
    sh_buf_reset(&w->out);
    return st == SH_S_OK || st == SH_S_NOMEM ? st : fail_worker(w, st, during, err);
}

/* Resident set size of a process in KiB, from /proc; -1 when it cannot be read. */
static int64_t rss_kb(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long long size, resident;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Waits until the channel is readable. With a memory limit, the worker's resident size is checked every
 * WATCH_MS meanwhile: an address-space limit alone would turn a memory bomb into an anonymous crash. */
#define WATCH_MS 20
static sh_status wait_readable(sh_worker *w, int64_t until, int64_t *over_kb, sh_error *err)
{
    int64_t limit_kb = w->limits.memory_mb * 1024;
    for (;;) {
        int64_t left = until - sh_monotonic_ns();
        if (left <= 0)
            return sh_error_set(err, SH_S_TIMEOUT, "timed out");
        int ms = (int)((left + 999999) / 1000000);
        if (limit_kb > 0 && ms > WATCH_MS)
            ms = WATCH_MS;
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, ms);
        if (pr > 0)
            return SH_S_OK;
        if (pr < 0 && errno != EINTR)
            return sh_error_set(err, SH_S_IO, "waiting for the worker failed: %s", strerror(errno));
        if (limit_kb > 0) {
            int64_t rss = rss_kb(w->pid);
            if (rss > limit_kb) {
                *over_kb = rss;
                return SH_S_OK;
            }
        }
    }
}

/* Tries to read for up to SH_FRAME_SPIN_NS without sleeping; true when something (or the end) arrived, with
 * whatever came appended to w->in. Never spins on one CPU, where it would only delay the worker. */
static bool spin_read(sh_worker *w)
{
    static _Atomic int cpus;
    int n_cpus = cpus;
    if (!n_cpus)
        cpus = n_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_cpus < 2)
        return false;
    sh_buf *in = &w->in.buf;
    int64_t until = sh_monotonic_ns() + SH_FRAME_SPIN_NS;
    do {
        for (int i = 0; i < 16; i++) {
            ssize_t n = read(w->fd, in->data + in->len, in->cap - in->len);
            if (n > 0) {
                in->len += (size_t)n;
                return true;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                return true; /* the caller's own read reports it */
            /* Yield, not pause: on a busy machine the worker may be waiting for this very CPU. */
            sched_yield();
        }
    } while (sh_monotonic_ns() < until);
    return false;
}

/* The next frame from the worker (sh_frame_take). A memory-limit breach found while waiting is reported in
 * *over_kb. */
static sh_status next_frame(sh_worker *w, int64_t until, size_t max, uint8_t *type, sh_codec_reader *payload,
                            int64_t *over_kb, sh_error *err)
{
    bool spun = false;
    sh_buf *in = &w->in.buf;
    for (;;) {
        const uint8_t *p = NULL;
        size_t len = 0;
        sh_frame_status fs = sh_frame_take(&w->in, max, type, &p, &len);
        switch (fs) {
        case SH_FRAME_READY:
            sh_codec_reader_init(payload, p, len);
            return SH_S_OK;
        case SH_FRAME_EMPTY:
        case SH_FRAME_OVER:
            return sh_frame_refused(fs, len, max, err);
        case SH_FRAME_NOMEM:
            return sh_error_set(err, SH_S_NOMEM, "out of memory reading from the worker");
        case SH_FRAME_MORE:
            break;
        }
        ssize_t n = read(w->fd, in->data + in->len, in->cap - in->len);
        if (n > 0) {
            in->len += (size_t)n;
            continue;
        }
        if (n == 0) {
            size_t avail = sh_frame_pending(&w->in);
            if (avail == 0)
                return sh_error_set(err, SH_S_IO, "end of stream");
            return sh_error_set(err, SH_S_PROTOCOL, "truncated frame: the worker closed its channel %zu bytes into one",
                                avail);
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return sh_error_set(err, SH_S_IO, "reading the worker channel failed: %s", strerror(errno));
        /* A short call answers within microseconds: wait for it awake, by trying the read itself (one system
         * call per try, not a peek and then a read), before sleeping in poll. */
        if (!spun && spin_read(w))
            continue;
        spun = true;
        sh_status st = wait_readable(w, until, over_kb, err);
        if (st != SH_S_OK || *over_kb)
            return st;
    }
}

static sh_status read_usage(sh_codec_reader *r, sh_call_usage *usage, sh_error *err)
{
    memset(usage, 0, sizeof *usage);
    if (sh_codec_reader_done(r))
        return SH_S_OK;
    sh_value *u = NULL;
    if (sh_codec_get_typed(r, SH_TYPE_MAP, "usage", &u, err) != SH_S_OK)
        return SH_S_PROTOCOL;
    usage->user_us = sh_value_get_int(sh_value_map_get(u, "user_us"));
    usage->sys_us = sh_value_get_int(sh_value_map_get(u, "sys_us"));
    usage->maxrss_kb = sh_value_get_int(sh_value_map_get(u, "maxrss_kb"));
    sh_value_free(u);
    return SH_S_OK;
}

/* Reads frames until DONE/READY, handing EMIT items to `out` (when not NULL) and printing LOG lines. A forked
 * call ("call" isolation) ends with CALL_END, which carries how the call's process ended. */
static sh_status await_done(sh_worker *w, const sh_invocation *inv, const char *during, sh_values *out,
                            int64_t *aux, bool forked, sh_error *err)
{
    int64_t until = deadline(w);
    size_t cap = w->limits.output_mb > 0 ? (size_t)w->limits.output_mb * 1024 * 1024 : SH_FRAME_DEFAULT_MAX;
    size_t received = 0, socket_bytes = 0;
    bool done = false;
    sh_status result = SH_S_OK;
    for (;;) {
        int64_t over_kb = 0;
        uint8_t type = 0;
        sh_codec_reader r;
        sh_status st = next_frame(w, until, received < cap ? cap - received : 0, &type, &r, &over_kb, err);
        if (st == SH_S_OK && over_kb)
            return fail_memory(w, over_kb, during, err);
        if (st == SH_S_PROTOCOL && err->kind == SH_EK_OUTPUT_CAP)
            sh_error_set_kind(err, SH_S_PROTOCOL, SH_EK_OUTPUT_CAP, "the call emitted more than its output cap of "
                              "%zu MiB (limits.output_mb)", cap / (1024 * 1024));
        if (st != SH_S_OK)
            return fail_worker(w, st == SH_S_NOMEM ? SH_S_PROTOCOL : st, during, err);
        received += r.len + 5;
        if (type == SH_MSG_EMIT) {
            /* Output that came through the socket in bulk: the next request sets up a shared buffer for it. */
            socket_bytes += r.len;
            if (socket_bytes >= SH_SHMBUF_THRESHOLD && socket_bytes > w->shm_hint)
                w->shm_hint = socket_bytes;
        }
        if (type == SH_MSG_EMIT && out && !done) {
            sh_value *item;
            st = sh_codec_get_value(&r, &item, err);
            if (st == SH_S_OK && !sh_codec_reader_done(&r)) {
                sh_value_free(item);
                st = sh_error_set(err, SH_S_PROTOCOL, "trailing bytes after an emitted item");
            }
            if (st == SH_S_OK && sh_values_push(out, item) != SH_OK)
                st = sh_error_set(err, SH_S_NOMEM, "out of memory collecting output");
            /* Either way the rest of the call's frames stay unread: the worker cannot be used again. */
            if (st != SH_S_OK)
                return fail_worker(w, SH_S_PROTOCOL, during, err);
        } else if (type == SH_MSG_EMIT_SHM && out && !done) {
            /* The offset and length come from our own copy of the frame and are checked against our own size of
             * the buffer; the bytes are copied out before anything looks at them (sh_codec_get_shared). */
            uint64_t off = 0, len = 0;
            sh_value *item = NULL;
            if (!sh_protocol_get_u64(&r, &off) || !sh_protocol_get_u64(&r, &len) || !sh_codec_reader_done(&r))
                st = sh_error_set(err, SH_S_PROTOCOL, "malformed shared-buffer item frame");
            else if (!sh_shmbuf_contains(&w->shm, off, len))
                st = sh_error_set(err, SH_S_PROTOCOL,
                                  "an item at offset %llu, %llu bytes long, lies outside the %zu-byte shared buffer",
                                  (unsigned long long)off, (unsigned long long)len, w->shm.size);
            else if (len > cap - (received < cap ? received : cap))
                st = sh_error_set_kind(err, SH_S_PROTOCOL, SH_EK_OUTPUT_CAP, "the call emitted more than its output "
                                       "cap of %zu MiB (limits.output_mb)", cap / (1024 * 1024));
            else
                st = sh_codec_get_shared(w->shm.base + off, (size_t)len, &w->scratch, &item, err);
            received += (size_t)len;
            if (st == SH_S_OK && sh_values_push(out, item) != SH_OK)
                st = sh_error_set(err, SH_S_NOMEM, "out of memory collecting output");
            if (st != SH_S_OK)
                return fail_worker(w, SH_S_PROTOCOL, during, err);
        } else if (type == SH_MSG_RESULT && !done) {
            uint32_t code = 0;
            uint64_t u = 0, sy = 0, rss = 0;
            if (!sh_protocol_get_u32(&r, &code) || !sh_protocol_get_u64(&r, &u) || !sh_protocol_get_u64(&r, &sy) ||
                !sh_protocol_get_u64(&r, &rss) || !sh_utf8_valid((const char *)r.data + r.pos, r.len - r.pos)) {
                sh_error_set(err, SH_S_PROTOCOL, "malformed call result");
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            }
            w->usage.user_us = (int64_t)u;
            w->usage.sys_us = (int64_t)sy;
            w->usage.maxrss_kb = (int64_t)rss;
            if (code != 0) {
                result = code == SH_S_NOMEM ? SH_S_NOMEM : SH_S_STAGE;
                /* The worker is not trusted to have made its message safe (util/text.h): made so again here. */
                char safe[SH_MESSAGE_MAX];
                sh_text_safe(safe, sizeof safe, (const char *)r.data + r.pos, r.len - r.pos);
                sh_error_set(err, result, "%s", safe);
            }
            if (!forked)
                return result;
            done = true;
        } else if (type == SH_MSG_LOG) {
            sh_value *level = NULL, *msg = NULL;
            if (sh_codec_get_typed(&r, SH_TYPE_INT, "log level", &level, err) != SH_S_OK ||
                sh_codec_get_typed(&r, SH_TYPE_STRING, "log message", &msg, err) != SH_S_OK) {
                sh_value_free(level);
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            }
            int64_t lv = sh_value_get_int(level);
            sh_call_log_stderr(NULL, inv, lv < 0 || lv > SH_LOG_DEBUG ? SH_LOG_INFO : (sh_log_level)lv,
                               sh_value_get_string(msg, NULL));
            sh_value_free(level);
            sh_value_free(msg);
        } else if ((type == SH_MSG_DONE || type == SH_MSG_READY) && !done) {
            sh_value *status = NULL, *a = NULL, *msg = NULL;
            if (sh_codec_get_typed(&r, SH_TYPE_INT, "status", &status, err) != SH_S_OK ||
                sh_codec_get_typed(&r, SH_TYPE_INT, "result", &a, err) != SH_S_OK ||
                sh_codec_get_typed(&r, SH_TYPE_STRING, "message", &msg, err) != SH_S_OK ||
                read_usage(&r, &w->usage, err) != SH_S_OK) {
                sh_value_free(status);
                sh_value_free(a);
                sh_value_free(msg);
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            }
            int64_t code = sh_value_get_int(status);
            if (aux)
                *aux = sh_value_get_int(a);
            if (code != 0) {
                result = type == SH_MSG_READY ? SH_S_LOAD : code == SH_S_NOMEM ? SH_S_NOMEM : SH_S_STAGE;
                /* A failed READY names the load step as its second field; a worker's word is checked first. */
                int64_t kind = type == SH_MSG_READY ? sh_value_get_int(a) : SH_EK_NONE;
                size_t mlen = 0;
                const char *m = sh_value_get_string(msg, &mlen);
                char safe[SH_MESSAGE_MAX];
                sh_text_safe(safe, sizeof safe, m ? m : "", m ? mlen : 0);
                sh_error_set_kind(err, result, kind > SH_EK_NONE && kind < SH_EK_COUNT ? (int)kind : SH_EK_NONE, "%s",
                                  safe);
            }
            sh_value_free(status);
            sh_value_free(a);
            sh_value_free(msg);
            if (!forked)
                return result;
            done = true;
        } else if (type == SH_MSG_CALL_END && forked) {
            sh_value *status = NULL;
            if (sh_codec_get_typed(&r, SH_TYPE_INT, "call status", &status, err) != SH_S_OK)
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            int ws = (int)sh_value_get_int(status);
            sh_value_free(status);
            if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && done)
                return result;
            char why[256];
            describe_status(ws, why, sizeof why);
            return sh_error_set(err, SH_S_CRASH, "the call process of plugin '%s' (forked from worker %d) %s during %s",
                                w->plugin, (int)w->pid, why, during);
        } else {
            sh_error_set(err, SH_S_PROTOCOL, "unexpected frame type %u", type);
            return fail_worker(w, SH_S_PROTOCOL, during, err);
        }
    }
}

/* A worker's private directory, owned by the user it will run as: the one made ahead of time when there is one. */
static sh_status make_tmp_root(sh_zygote *zygote, const char *plugin, const sh_sandbox_policy *policy, char **out,
                               sh_error *err)
{
    const char *base = policy->tmp_base;
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/stagehost-worker-XXXXXX", base && *base ? base : "/tmp");
    char *spare = zygote ? sh_zygote_take_dir(zygote, base && *base ? base : "/tmp") : NULL;
    if (spare) {
        if (policy->uid && chown(spare, policy->uid, policy->gid) != 0) {
            int e = errno;
            rmdir(spare);
            free(spare);
            return sh_error_set(err, SH_S_IO, "cannot hand %s to the worker's user: %s", tmpl, strerror(e));
        }
        *out = spare;
        return SH_S_OK;
    }
    if (!mkdtemp(tmpl))
        return sh_error_set(err, SH_S_IO, "cannot create a private directory for plugin '%s' in %s: %s; set TMPDIR "
                                          "to a writable directory", plugin, base && *base ? base : "/tmp",
                            strerror(errno));
    if (policy->uid && chown(tmpl, policy->uid, policy->gid) != 0) {
        int e = errno;
        rmdir(tmpl);
        return sh_error_set(err, SH_S_IO, "cannot hand %s to the worker's user: %s", tmpl, strerror(e));
    }
    if (!(*out = strdup(tmpl))) {
        rmdir(tmpl);
        return sh_error_set(err, SH_S_NOMEM, "out of memory");
    }
    return SH_S_OK;
}

/* After a crash, the pool starts a new worker for the plugin at its next use: start it now, while the failure is
 * reported, and leave it with the zygote for that start to adopt (sh_zygote_take_spare). */
static void prespawn(sh_worker *w)
{
    if (!w->zygote || !w->request.len)
        return;
    sh_sandbox_policy p = {.uid = w->uid, .gid = w->gid};
    char *tmp = NULL;
    sh_error ignored;
    int sv[2];
    pid_t pid = 0;
    if (make_tmp_root(w->zygote, w->plugin, &p, &tmp, &ignored) != SH_S_OK)
        return;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rmdir(tmp);
        free(tmp);
        return;
    }
    sh_status st = sh_zygote_spawn_request(w->zygote, &w->request, tmp, sv[1], &pid, &ignored);
    close(sv[1]);
    if (st != SH_S_OK) {
        close(sv[0]);
        rmdir(tmp);
        free(tmp);
        return;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    sh_zygote_put_spare(w->zygote, &w->request, pid, sv[0], tmp);
}

/* Whatever the worker left in its directory goes with it, even when it crashed. */
static void remove_tmp_root(sh_worker *w)
{
    if (w->tmp_root) {
        sh_remove_tree(w->tmp_root);
        free(w->tmp_root);
        w->tmp_root = NULL;
    }
}

sh_status sh_worker_start(const sh_descriptor *d, const sh_worker_limits *limits, const sh_value *config,
                          const sh_sandbox_policy *policy, sh_zygote *zygote, sh_worker **out, sh_error *err)
{
    *out = NULL;
    sh_worker *w = calloc(1, sizeof *w);
    if (!w || !(w->plugin = strdup(d->name))) {
        free(w);
        return sh_error_set(err, SH_S_NOMEM, "out of memory starting a worker for plugin '%s'", d->name);
    }
    w->fd = -1;
    w->shm = (sh_shmbuf)SH_SHMBUF_NONE; /* not fd 0: calloc's zero is a real descriptor */
    w->limits = *limits;
    w->zygote = zygote;
    /* The worker applies the effective limits, which may differ from the descriptor's own. */
    sh_descriptor effective = *d;
    effective.limits = *limits;
    if (!effective.limits.processes && policy)
        effective.limits.processes = policy->default_processes;
    /* No policy: neither confinement nor a change of user (tests and benchmarks that measure the bare cost). */
    sh_sandbox_policy unconfined = {0};
    sh_sandbox_policy effective_policy = policy ? *policy : unconfined;
    policy = &effective_policy;
    w->uid = effective_policy.uid;
    w->gid = effective_policy.gid;
    pid_t pid = 0;
    sh_status st = SH_S_OK;
    bool adopted = false;
    if (zygote) {
        /* What to start, without the private directory: equal to a spare's, the spare is this worker. */
        effective_policy.tmp_root = NULL;
        st = sh_zygote_request(&effective, config, &effective_policy, &w->request, err);
        int fd = -1;
        adopted = st == SH_S_OK && sh_zygote_take_spare(zygote, &w->request, &pid, &fd, &w->tmp_root);
        if (adopted)
            w->fd = fd;
    }
    if (st == SH_S_OK && !adopted)
        st = make_tmp_root(zygote, d->name, policy, &w->tmp_root, err);
    if (st != SH_S_OK) {
        sh_buf_free(&w->request);
        free(w->plugin);
        free(w);
        return st;
    }
    effective_policy.tmp_root = w->tmp_root;
    int sv[2] = {-1, -1};
    if (!adopted && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        remove_tmp_root(w);
        sh_buf_free(&w->request);
        free(w->plugin);
        free(w);
        return sh_error_set(err, SH_S_IO, "cannot create a channel for a worker of plugin '%s': %s", d->name,
                            strerror(errno));
    }
    if (adopted) {
        /* already running */
    } else if (zygote) {
        st = sh_zygote_spawn_request(zygote, &w->request, w->tmp_root, sv[1], &pid, err);
        if (st != SH_S_OK)
            sh_error_prefix(err, "plugin '%s'", d->name);
    } else {
        fflush(NULL);
        pid = fork();
        if (pid == 0) {
            close(sv[0]);
            sh_worker_child_main(sv[1], &effective, config, &effective_policy);
        }
        if (pid < 0)
            st = sh_error_set(err, SH_S_IO, "cannot fork a worker for plugin '%s': %s", d->name, strerror(errno));
    }
    if (!adopted)
        close(sv[1]);
    if (st != SH_S_OK) {
        close(sv[0]);
        remove_tmp_root(w);
        sh_buf_free(&w->request);
        free(w->plugin);
        free(w);
        return st;
    }
    w->pid = pid;
    if (!adopted)
        w->fd = sv[0];
    if (zygote && !adopted) {
        /* While the worker starts, make the next worker's private directory: one mkdir off the next start. */
        const char *base = policy->tmp_base;
        char spare[4096];
        snprintf(spare, sizeof spare, "%s/stagehost-worker-XXXXXX", base && *base ? base : "/tmp");
        char *copy = mkdtemp(spare) ? strdup(spare) : NULL;
        if (copy)
            sh_zygote_give_dir(zygote, copy);
        else if (spare[0] && !strstr(spare, "XXXXXX"))
            rmdir(spare);
    }
    /* Non-blocking, so the reader can take whatever has arrived in one go and wait only when nothing has. */
    fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
    sh_log(SH_LOG_DEBUG, "started worker %d for plugin '%s'%s", (int)pid, d->name,
           adopted ? " (a spare, started after a crash)" : zygote ? " (from the zygote)" : "");
    sh_invocation inv = {.plugin = d->name, .stage = "(load)", .attempt = 1};
    int64_t abi = 0;
    st = await_done(w, &inv, "loading", NULL, &abi, false, err);
    w->abi = st == SH_S_OK ? (uint32_t)abi : 0;
    if (st != SH_S_OK) {
        sh_worker_stop(w);
        return st;
    }
    *out = w;
    return SH_S_OK;
}

/* Appends the items of a CALL request: inline when they are small, else encoded straight into the
 * shared buffer (set up or enlarged here, and announced to the worker in the same send). */
static sh_status put_items(sh_worker *w, const sh_value *const *items, size_t count, sh_error *err)
{
    if (count > UINT32_MAX)
        return sh_error_set(err, SH_S_NOMEM, "too many items for one call (%zu)", count);
    size_t total = 0;
    for (size_t i = 0; i < count && total != SIZE_MAX; i++) {
        size_t k = sh_codec_value_size(items[i]);
        total = k == SIZE_MAX || k > SIZE_MAX / 2 - total ? SIZE_MAX : total + k;
    }
    if (total == SIZE_MAX)
        return sh_error_set(err, SH_S_NOMEM, "an item is too large to send to a worker (a value over 4 GiB)");
    /* Through the buffer, each item is followed by a NUL, so the worker can lend a string or bytes item to the
     * plugin in place; the call's large output follows the inputs. */
    size_t in_shm = total + count;
    size_t want = in_shm + w->shm_hint;
    if (want >= SH_SHMBUF_THRESHOLD && want > w->shm.size) {
        sh_shmbuf fresh;
        /* Without a shared buffer the items still go through the socket: slower, never wrong. */
        sh_error ignored;
        if (sh_shmbuf_create(&fresh, want, &ignored) == SH_S_OK) {
            sh_shmbuf_release(&w->shm);
            w->shm = fresh;
            w->shm_announce = true;
        }
    }
    w->shm_hint = 0;
    sh_buf_u32(&w->out, (uint32_t)count);
    if (total >= SH_SHMBUF_THRESHOLD && in_shm <= w->shm.size) {
        sh_buf_u8(&w->out, SH_ITEMS_SHM);
        sh_buf_u64(&w->out, 0);
        sh_buf_u64(&w->out, in_shm);
        size_t at = 0;
        for (size_t i = 0; i < count; i++) {
            at += sh_codec_encode(w->shm.base + at, items[i]);
            w->shm.base[at++] = 0;
        }
    } else {
        sh_buf_u8(&w->out, SH_ITEMS_INLINE);
        for (size_t i = 0; i < count; i++)
            sh_codec_put_value(&w->out, items[i]);
    }
    return SH_S_OK;
}

/* Completes a request frame; when the worker does not have the current shared buffer yet, puts the SHM
 * announcement in front, so it travels first, with the descriptor, in the same send. */
static void finish_request(sh_worker *w, size_t frame)
{
    sh_frame_end(&w->out, frame);
    if (w->shm_announce) {
        /* Appended, then moved in front: the worker must map the buffer before it reads the items from it. */
        size_t request = w->out.len;
        sh_protocol_put_shm(&w->out, w->shm.size);
        size_t n = w->out.len - request;
        if (sh_buf_reserve(&w->out, n) == 0) {
            /* The request moves up by n, the announcement after it; the announcement is copied to the front. */
            memmove(w->out.data + n, w->out.data, w->out.len);
            memcpy(w->out.data, w->out.data + w->out.len, n);
        }
    }
}

sh_status sh_worker_call(sh_worker *w, const sh_invocation *inv, const char *type, const sh_value *config,
                         const sh_value *const *items, size_t count, bool fork_call, sh_values *out, sh_error *err)
{
    memset(&w->usage, 0, sizeof w->usage);
    sh_buf_reset(&w->out);
    size_t f = sh_frame_begin(&w->out, SH_MSG_CALL);
    sh_protocol_put_header(&w->out, &w->sent, inv, fork_call ? SH_CALL_FORK : 0);
    sh_protocol_put_name(&w->out, type);
    if (config) {
        sh_codec_put_value(&w->out, config);
    } else {
        /* No configuration is an empty one: the ABI promises plugins a map. */
        sh_buf_u8(&w->out, SH_CODEC_MAP);
        sh_buf_u32(&w->out, 0);
    }
    sh_status st = put_items(w, items, count, err);
    if (st != SH_S_OK) {
        memset(w->sent.known, 0, sizeof w->sent.known);
        return st;
    }
    finish_request(w, f);
    st = send_out(w, "process", err);
    if (st == SH_S_OK)
        st = await_done(w, inv, "process", out, NULL, fork_call, err);
    if (st != SH_S_OK)
        sh_values_clear(out);
    return st;
}

sh_status sh_worker_hook(sh_worker *w, const sh_invocation *inv, const char *symbol, const sh_signature *sig,
                         const sh_value *const *args, size_t nargs, bool fork_call, sh_value **result, bool *stopped,
                         sh_error *err)
{
    *result = NULL;
    *stopped = false;
    if (!sh_worker_alive(w))
        return sh_error_set(err, SH_S_CRASH, "the worker of plugin '%s' is no longer running", w->plugin);
    sh_value *sv = sh_protocol_signature_to_value(sig);
    if (!sv)
        return sh_error_set(err, SH_S_NOMEM, "out of memory encoding a hook call");
    sh_buf_reset(&w->out);
    size_t f = sh_frame_begin(&w->out, SH_MSG_HOOK);
    sh_protocol_put_header(&w->out, &w->sent, inv, fork_call ? SH_CALL_FORK : 0);
    sh_protocol_put_name(&w->out, symbol);
    sh_codec_put_value(&w->out, sv);
    sh_value_free(sv);
    for (size_t i = 0; i < nargs; i++)
        sh_codec_put_value(&w->out, args[i]);
    sh_frame_end(&w->out, f);
    sh_values out = {0};
    int64_t aux = 0;
    sh_status st = send_out(w, "hook", err);
    if (st == SH_S_OK)
        st = await_done(w, inv, "hook", &out, &aux, fork_call, err);
    /* The answer comes from another process: checked against the hookspec before the host uses it. The worker's
     * own code always sends a checked one (sh_ffi_call_hook), so a wrong one was written by the plugin. */
    char why[128];
    sh_status sent = st;
    if (st == SH_S_OK && out.len > 1)
        st = sh_error_set(err, SH_S_PROTOCOL, "it answered hook '%s' with %zu results", inv->stage, out.len);
    else if (st == SH_S_OK && aux && out.len)
        st = sh_error_set(err, SH_S_PROTOCOL, "it both stopped the chain and answered hook '%s'", inv->stage);
    else if (st == SH_S_OK && !aux && !sh_ffi_result_ok(sig->ret, out.len ? out.items[0] : NULL, why, sizeof why))
        st = sh_error_set(err, SH_S_PROTOCOL, "it answered hook '%s' with %s, but its hookspec declares %s%s result",
                          inv->stage, why, sig->ret == SH_NT_VOID ? "no" : "a ",
                          sig->ret == SH_NT_VOID ? "" : sh_ntype_name(sig->ret));
    if (sent == SH_S_OK && st != SH_S_OK) {
        sh_values_clear(&out);
        return fail_worker(w, st, "hook", err);
    }
    if (st == SH_S_OK && out.len == 1) {
        *result = out.items[0];
        out.len = 0;
    }
    *stopped = st == SH_S_OK && aux != 0;
    sh_values_clear(&out);
    return st;
}

sh_status sh_worker_health(sh_worker *w, sh_error *err)
{
    if (!sh_worker_alive(w))
        return sh_error_set(err, SH_S_CRASH, "the worker of plugin '%s' is no longer running", w->plugin);
    sh_buf_reset(&w->out);
    size_t f = sh_frame_begin(&w->out, SH_MSG_HEALTH);
    sh_frame_end(&w->out, f);
    sh_invocation inv = {.plugin = w->plugin, .stage = "(health)", .attempt = 1};
    sh_status st = send_out(w, "health", err);
    return st == SH_S_OK ? await_done(w, &inv, "health", NULL, NULL, false, err) : st;
}

void sh_worker_set_timeout(sh_worker *w, int64_t timeout_ms)
{
    if (w)
        w->limits.timeout_ms = timeout_ms;
}

bool sh_worker_alive(const sh_worker *w) { return w && w->pid > 0 && w->fd >= 0; }
int sh_worker_pid(const sh_worker *w) { return w ? (int)w->pid : 0; }
uint32_t sh_worker_abi(const sh_worker *w) { return w->abi; }
const sh_call_usage *sh_worker_last_usage(const sh_worker *w) { return &w->usage; }

void sh_worker_stop(sh_worker *w)
{
    if (!w)
        return;
    if (sh_worker_alive(w)) {
        sh_buf_reset(&w->out);
        size_t f = sh_frame_begin(&w->out, SH_MSG_SHUTDOWN);
        sh_frame_end(&w->out, f);
        sh_frame_send(w->fd, &w->out, NULL);
    }
    /* fini() gets a moment to release what it holds; a worker that ignores shutdown is killed. */
    reap(w, 2000);
    remove_tmp_root(w);
    sh_buf_free(&w->out);
    sh_frame_in_free(&w->in);
    sh_buf_free(&w->scratch);
    sh_buf_free(&w->request);
    sh_inv_cache_free(&w->sent);
    sh_shmbuf_release(&w->shm);
    free(w->plugin);
    free(w);
}
