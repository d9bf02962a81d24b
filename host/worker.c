#include "worker.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct sh_worker {
    pid_t pid; /* 0 once reaped */
    int fd;    /* -1 once closed */
    char *plugin;
    sh_buf out;
    sh_buf in;
};

static int64_t deadline(int64_t timeout_ms)
{
    if (timeout_ms <= 0)
        timeout_ms = SH_DEFAULT_TIMEOUT_MS;
    return sh_monotonic_ns() + timeout_ms * 1000000;
}

/* "killed by signal SIGSEGV (Segmentation fault)" or "exited with status 3". */
static void describe_status(int status, char *buf, size_t len)
{
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

/* Reaps the worker, waiting up to `grace_ms` for it to exit by itself before killing it. */
static int reap(sh_worker *w, int grace_ms, int *status)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->pid <= 0)
        return -1;
    int64_t end = sh_monotonic_ns() + (int64_t)grace_ms * 1000000;
    for (;;) {
        pid_t r = waitpid(w->pid, status, WNOHANG);
        if (r == w->pid || (r < 0 && errno != EINTR))
            break;
        if (r == 0 && sh_monotonic_ns() >= end) {
            kill(w->pid, SIGKILL);
            while (waitpid(w->pid, status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    w->pid = 0;
    return 0;
}

/* Turns a failed exchange into the final error: the worker is killed (if needed) and reaped either way. */
static sh_status fail_worker(sh_worker *w, sh_status st, const char *during, sh_error *err)
{
    pid_t pid = w->pid;
    int status = 0;
    char why[256];
    if (st == SH_S_TIMEOUT) {
        kill(w->pid, SIGKILL);
        reap(w, 0, &status);
        return sh_error_set(err, SH_S_TIMEOUT,
                            "worker process %d of plugin '%s' did not finish %s before its deadline and was killed; "
                            "raise limits.timeout_ms (descriptor) or timeout_ms (pipeline stage) if the work is "
                            "legitimately slow",
                            (int)pid, w->plugin, during);
    }
    if (st == SH_S_PROTOCOL) {
        char detail[SH_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->message : "");
        kill(w->pid, SIGKILL);
        reap(w, 0, &status);
        return sh_error_set(err, SH_S_PROTOCOL,
                            "worker process %d of plugin '%s' broke the protocol during %s (%s) and was killed; "
                            "a plugin must not write to the worker's channel itself",
                            (int)pid, w->plugin, during, detail);
    }
    /* End of stream or an I/O error: the worker died or closed its channel. */
    reap(w, 200, &status);
    describe_status(status, why, sizeof why);
    return sh_error_set(err, SH_S_CRASH, "worker process %d of plugin '%s' %s during %s", (int)pid, w->plugin, why,
                        during);
}

static sh_status send_out(sh_worker *w, const char *during, sh_error *err)
{
    if (w->fd < 0)
        return sh_error_set(err, SH_S_CRASH, "the worker of plugin '%s' is no longer running", w->plugin);
    sh_status st = sh_wire_send(w->fd, &w->out, err);
    sh_buf_reset(&w->out);
    return st == SH_S_OK || st == SH_S_NOMEM ? st : fail_worker(w, st, during, err);
}

/* Reads frames until DONE/READY, handing EMIT items to `out` (when not NULL) and printing LOG lines. */
static sh_status await_done(sh_worker *w, const sh_invocation *inv, int64_t until, const char *during,
                            sh_values *out, int64_t *aux, sh_error *err)
{
    for (;;) {
        uint8_t type;
        bool eof;
        sh_status st = sh_wire_recv(w->fd, &w->in, &type, SH_WIRE_DEFAULT_MAX_FRAME, until, &eof, err);
        if (st != SH_S_OK)
            return fail_worker(w, st == SH_S_NOMEM ? SH_S_PROTOCOL : st, during, err);
        sh_wire_reader r;
        sh_wire_reader_init(&r, w->in.data, w->in.len);
        if (type == SH_MSG_EMIT && out) {
            sh_value *item;
            st = sh_wire_get_value(&r, &item, err);
            if (st == SH_S_OK && !sh_wire_reader_done(&r)) {
                sh_value_free(item);
                st = sh_error_set(err, SH_S_PROTOCOL, "trailing bytes after an emitted item");
            }
            if (st == SH_S_OK && sh_values_push(out, item) != SH_OK)
                st = sh_error_set(err, SH_S_NOMEM, "out of memory collecting output");
            if (st != SH_S_OK)
                return st == SH_S_NOMEM ? st : fail_worker(w, SH_S_PROTOCOL, during, err);
        } else if (type == SH_MSG_LOG) {
            sh_value *level = NULL, *msg = NULL;
            if (sh_wire_get_typed(&r, SH_TYPE_INT, "log level", &level, err) != SH_S_OK ||
                sh_wire_get_typed(&r, SH_TYPE_STRING, "log message", &msg, err) != SH_S_OK) {
                sh_value_free(level);
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            }
            int64_t lv = sh_value_get_int(level);
            sh_call_log_stderr(NULL, inv, lv < 0 || lv > SH_LOG_DEBUG ? SH_LOG_INFO : (sh_log_level)lv,
                               sh_value_get_string(msg, NULL));
            sh_value_free(level);
            sh_value_free(msg);
        } else if (type == SH_MSG_DONE || type == SH_MSG_READY) {
            sh_value *status = NULL, *a = NULL, *msg = NULL;
            if (sh_wire_get_typed(&r, SH_TYPE_INT, "status", &status, err) != SH_S_OK ||
                sh_wire_get_typed(&r, SH_TYPE_INT, "result", &a, err) != SH_S_OK ||
                sh_wire_get_typed(&r, SH_TYPE_STRING, "message", &msg, err) != SH_S_OK) {
                sh_value_free(status);
                sh_value_free(a);
                return fail_worker(w, SH_S_PROTOCOL, during, err);
            }
            int64_t code = sh_value_get_int(status);
            if (aux)
                *aux = sh_value_get_int(a);
            if (code != 0)
                sh_error_set(err, type == SH_MSG_READY ? SH_S_LOAD : SH_S_STAGE, "%s",
                             sh_value_get_string(msg, NULL));
            sh_value_free(status);
            sh_value_free(a);
            sh_value_free(msg);
            return code == 0 ? SH_S_OK : (type == SH_MSG_READY ? SH_S_LOAD : SH_S_STAGE);
        } else {
            sh_error_set(err, SH_S_PROTOCOL, "unexpected frame type %u", type);
            return fail_worker(w, SH_S_PROTOCOL, during, err);
        }
    }
}

sh_status sh_worker_start(const sh_descriptor *d, const sh_value *config, int64_t timeout_ms, sh_worker **out,
                          sh_error *err)
{
    *out = NULL;
    sh_worker *w = calloc(1, sizeof *w);
    if (!w || !(w->plugin = strdup(d->name))) {
        free(w);
        return sh_error_set(err, SH_S_NOMEM, "out of memory starting a worker for plugin '%s'", d->name);
    }
    w->fd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(w->plugin);
        free(w);
        return sh_error_set(err, SH_S_IO, "cannot create a channel for a worker of plugin '%s': %s", d->name,
                            strerror(errno));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        free(w->plugin);
        free(w);
        return sh_error_set(err, SH_S_IO, "cannot fork a worker for plugin '%s': %s", d->name, strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        sh_worker_child_main(sv[1], d, config);
    }
    close(sv[1]);
    w->pid = pid;
    w->fd = sv[0];
    sh_log(SH_LOG_DEBUG, "started worker %d for plugin '%s'", (int)pid, d->name);
    sh_invocation inv = {.plugin = d->name, .stage = "(load)", .attempt = 1};
    sh_status st = await_done(w, &inv, deadline(timeout_ms), "loading", NULL, NULL, err);
    if (st != SH_S_OK) {
        sh_worker_stop(w);
        return st;
    }
    *out = w;
    return SH_S_OK;
}

static sh_status put_invocation(sh_buf *b, const sh_invocation *inv, sh_error *err)
{
    sh_value *m = sh_protocol_invocation_to_value(inv);
    if (!m)
        return sh_error_set(err, SH_S_NOMEM, "out of memory encoding a request");
    sh_wire_put_value(b, m);
    sh_value_free(m);
    return SH_S_OK;
}

sh_status sh_worker_create_stage(sh_worker *w, const sh_invocation *inv, const char *type, const sh_value *config,
                                 int64_t timeout_ms, uint32_t *id, sh_error *err)
{
    size_t f = sh_wire_frame_begin(&w->out, SH_MSG_CREATE);
    sh_wire_put_string(&w->out, type);
    sh_wire_put_string(&w->out, inv->stage);
    sh_wire_put_value(&w->out, config);
    if (put_invocation(&w->out, inv, err) != SH_S_OK)
        return SH_S_NOMEM;
    sh_wire_frame_end(&w->out, f);
    sh_status st = send_out(w, "create_stage", err);
    int64_t aux = 0;
    if (st == SH_S_OK)
        st = await_done(w, inv, deadline(timeout_ms), "create_stage", NULL, &aux, err);
    if (st == SH_S_OK)
        *id = (uint32_t)aux;
    return st;
}

sh_status sh_worker_process(sh_worker *w, uint32_t id, const sh_invocation *inv, const sh_value *const *items,
                            size_t count, int64_t timeout_ms, sh_values *out, sh_error *err)
{
    size_t f = sh_wire_frame_begin(&w->out, SH_MSG_PROCESS);
    sh_wire_put_int(&w->out, id);
    if (put_invocation(&w->out, inv, err) != SH_S_OK)
        return SH_S_NOMEM;
    for (size_t i = 0; i < count; i++)
        sh_wire_put_value(&w->out, items[i]);
    sh_wire_frame_end(&w->out, f);
    sh_status st = send_out(w, "process", err);
    if (st == SH_S_OK)
        st = await_done(w, inv, deadline(timeout_ms), "process", out, NULL, err);
    if (st != SH_S_OK)
        sh_values_clear(out);
    return st;
}

sh_status sh_worker_destroy_stage(sh_worker *w, uint32_t id, int64_t timeout_ms, sh_error *err)
{
    if (!sh_worker_alive(w))
        return SH_S_OK;
    size_t f = sh_wire_frame_begin(&w->out, SH_MSG_DESTROY);
    sh_wire_put_int(&w->out, id);
    sh_wire_frame_end(&w->out, f);
    sh_invocation inv = {.plugin = w->plugin, .stage = "(destroy)", .attempt = 1};
    sh_status st = send_out(w, "destroy", err);
    return st == SH_S_OK ? await_done(w, &inv, deadline(timeout_ms), "destroy", NULL, NULL, err) : st;
}

bool sh_worker_alive(const sh_worker *w) { return w && w->pid > 0 && w->fd >= 0; }
int sh_worker_pid(const sh_worker *w) { return w ? (int)w->pid : 0; }

void sh_worker_stop(sh_worker *w)
{
    if (!w)
        return;
    if (sh_worker_alive(w)) {
        sh_buf_reset(&w->out);
        size_t f = sh_wire_frame_begin(&w->out, SH_MSG_SHUTDOWN);
        sh_wire_frame_end(&w->out, f);
        sh_wire_send(w->fd, &w->out, NULL);
    }
    int status;
    /* fini() gets a moment to release what it holds; a worker that ignores shutdown is killed. */
    reap(w, 2000, &status);
    sh_buf_free(&w->out);
    sh_buf_free(&w->in);
    free(w->plugin);
    free(w);
}
