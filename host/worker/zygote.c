#include "worker/zygote.h"
#include "worker/spawn_request.h"
#include "util/fdpass.h"
#include "util/log.h"
#include "util/clock.h"
#include "value/codec.h"
#include "worker/child.h"

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { Z_SPAWN = 1, Z_STOP = 2, Z_SPAWNED = 10, Z_EXIT = 11 };

/* Control messages are small; a descriptor with its configuration fits easily. */
#define Z_MAX_MESSAGE (1024 * 1024)

typedef struct exit_record {
    pid_t pid;
    sh_exit_info info;
} exit_record;

struct sh_zygote {
    pid_t pid;
    int fd; /* SOCK_SEQPACKET: one message per send, with its file descriptor */
    exit_record *exits; /* reports received but not yet asked for */
    size_t exit_len, exit_cap;
    /* The engine runs stages on several threads: a spawn's request and answer must not interleave with another
     * thread's, and the exit records are shared. */
    pthread_mutex_t lock;
    char *spare_dir; /* a worker's private directory made ahead of time (sh_zygote_give_dir), or NULL */
    /* A worker started ahead of time (sh_zygote_put_spare): its request, process, host end and directory. */
    uint8_t *spare_req;
    size_t spare_len;
    pid_t spare_pid;
    int spare_fd;
    char *spare_tmp;
    int64_t spare_ns; /* when it was started */
};

/* A spare that no start took within this long is ended: the plugin may have been quarantined or unloaded. */
#define SPARE_TTL_NS (5 * 1000000000LL)

/* ---- the zygote process ------------------------------------------------------------------------------------- */

static void send_exit(int fd, pid_t pid, int status, const struct rusage *ru)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_u8(&b, Z_EXIT);
    sh_buf_u64(&b, (uint64_t)pid);
    sh_buf_u64(&b, (uint64_t)(int64_t)status);
    sh_buf_u64(&b, (uint64_t)ru->ru_maxrss);
    sh_buf_u64(&b, (uint64_t)(ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec));
    sh_buf_u64(&b, (uint64_t)(ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec));
    if (!b.failed)
        send(fd, b.data, b.len, MSG_NOSIGNAL);
    sh_buf_free(&b);
}

/* The workers this zygote forked; anything else it reaps is an orphan a worker left behind. */
static pid_t *workers;
static size_t worker_count, worker_cap;

static void track(pid_t pid)
{
    if (worker_count == worker_cap) {
        size_t cap = worker_cap ? worker_cap * 2 : 64;
        pid_t *p = realloc(workers, cap * sizeof *p);
        if (!p)
            return; /* untracked: its exit goes unreported and the host's wait for it times out */
        workers = p;
        worker_cap = cap;
    }
    workers[worker_count++] = pid;
}

static bool untrack(pid_t pid)
{
    for (size_t i = 0; i < worker_count; i++)
        if (workers[i] == pid) {
            workers[i] = workers[--worker_count];
            return true;
        }
    return false;
}

static void reap_children(int fd)
{
    for (;;) {
        /* Look before reaping: while the dead worker is not reaped, its process group id cannot be reused, so
         * killing the group reaches exactly what the plugin forked and left behind. */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            return;
        pid_t pid = si.si_pid;
        bool worker = untrack(pid);
        if (worker)
            kill(-pid, SIGKILL);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) == pid && worker)
            send_exit(fd, pid, status, &ru);
    }
}

/* What a spawn request asks for, decoded by the zygote before it forks: decoding in the fresh child would pay a
 * copy-on-write page fault for nearly every allocation (about 100 us), here it touches warm memory. */
typedef struct spawn_request {
    sh_descriptor *d;
    sh_value *config, *pv, *tmp;
    sh_sandbox_policy policy;
} spawn_request;

static void free_request(spawn_request *req)
{
    sh_descriptor_free(req->d);
    sh_value_free(req->config);
    sh_value_free(req->pv);
    sh_value_free(req->tmp);
}

static bool decode_request(const uint8_t *msg, size_t len, spawn_request *req)
{
    memset(req, 0, sizeof *req);
    sh_codec_reader r;
    sh_codec_reader_init(&r, msg, len);
    sh_value *dv = NULL;
    sh_error err;
    bool ok = sh_codec_get_typed(&r, SH_TYPE_MAP, "descriptor", &dv, &err) == SH_S_OK &&
              sh_codec_get_typed(&r, SH_TYPE_MAP, "config", &req->config, &err) == SH_S_OK &&
              sh_codec_get_typed(&r, SH_TYPE_MAP, "policy", &req->pv, &err) == SH_S_OK &&
              sh_codec_get_value(&r, &req->tmp, &err) == SH_S_OK &&
              sh_descriptor_from_value(dv, &req->d, &err) == SH_S_OK;
    sh_value_free(dv);
    if (!ok)
        free_request(req);
    if (ok) {
        const sh_value *pv = req->pv;
        req->policy = (sh_sandbox_policy){
            .landlock = sh_value_get_bool(sh_value_map_get(pv, "landlock")),
            .seccomp = sh_value_get_bool(sh_value_map_get(pv, "seccomp")),
            .tmp_root = sh_value_get_string(req->tmp, NULL),
            .uid = (uid_t)sh_value_get_int(sh_value_map_get(pv, "uid")),
            .gid = (gid_t)sh_value_get_int(sh_value_map_get(pv, "gid")),
        };
    }
    return ok;
}

/* The new worker, forked from the zygote: it becomes a worker for good. */
_Noreturn static void become_worker(int control, int sigfd, spawn_request *req, int worker_fd)
{
    close(control);
    close(sigfd);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGCHLD, SIG_DFL);
    sh_worker_child_main(worker_fd, req->d, req->config, &req->policy);
}

static void serve_spawn(int control, int sigfd, const uint8_t *msg, size_t len, int worker_fd)
{
    spawn_request req;
    bool ok = worker_fd >= 0 && decode_request(msg, len, &req);
    pid_t pid = worker_fd < 0 ? -EBADF : !ok ? -EINVAL : fork();
    if (pid == 0)
        become_worker(control, sigfd, &req, worker_fd);
    int64_t answer = pid < 0 ? (worker_fd < 0 || !ok ? (int64_t)pid : -(int64_t)errno) : pid;
    if (pid > 0)
        track(pid);
    if (ok)
        free_request(&req);
    if (worker_fd >= 0)
        close(worker_fd);
    uint8_t reply[9] = {Z_SPAWNED};
    for (int i = 0; i < 8; i++)
        reply[1 + i] = (uint8_t)((uint64_t)answer >> (8 * i));
    send(control, reply, sizeof reply, MSG_NOSIGNAL);
}

_Noreturn static void zygote_main(int control, pid_t host)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != host)
        _exit(0);
    prctl(PR_SET_NAME, "stagehost-zyg");
    /* Orphans of workers (what a plugin forked) come to us rather than to init, so they are always reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGINT, SIG_IGN); /* a terminal ^C is the host's to handle */
    signal(SIGPIPE, SIG_IGN);
    if (control > 3)
        close_range(3, (unsigned)control - 1, 0);
    close_range((unsigned)control + 1, ~0U, 0);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    uint8_t *msg = malloc(Z_MAX_MESSAGE);
    if (sigfd < 0 || !msg)
        _exit(1);
    /* While the host discovers plugins, compile the seccomp filters every worker will load. */
    sh_seccomp_prepare();
    for (;;) {
        struct pollfd pfd[2] = {{.fd = control, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
                ;
            reap_children(control);
        }
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        int fd = -1;
        ssize_t n = sh_fdpass_recv(control, msg, Z_MAX_MESSAGE, 0, &fd);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || msg[0] == Z_STOP) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (msg[0] == Z_SPAWN)
            serve_spawn(control, sigfd, msg + 1, (size_t)n - 1, fd);
        else if (fd >= 0)
            close(fd);
    }
    /* Our workers die with us (their death signal), and the host stops waiting for reports. Their groups, with
     * whatever the plugins forked, go too. */
    for (size_t i = 0; i < worker_count; i++)
        kill(-workers[i], SIGKILL);
    /* Reap what is left (as subreaper we inherited the orphans), so nothing lingers as a zombie under an init
     * that may not reap; a second is plenty for processes that were all sent SIGKILL. */
    int64_t end = sh_monotonic_ns() + 1000000000LL;
    while (sh_monotonic_ns() < end) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            break;
        if (pid <= 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    _exit(0);
}

/* ---- the host side ------------------------------------------------------------------------------------------ */

sh_status sh_zygote_start(sh_zygote **out, sh_error *err)
{
    *out = NULL;
    sh_zygote *z = calloc(1, sizeof *z);
    if (!z)
        return sh_error_set(err, SH_S_NOMEM, "out of memory starting the zygote");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        free(z);
        return sh_error_set(err, SH_S_IO, "cannot create the zygote's channel: %s", strerror(errno));
    }
    pid_t host = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        free(z);
        return sh_error_set(err, SH_S_IO, "cannot fork the zygote: %s", strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        zygote_main(sv[1], host);
    }
    close(sv[1]);
    z->pid = pid;
    z->fd = sv[0];
    z->spare_fd = -1;
    pthread_mutex_init(&z->lock, NULL);
    sh_log(SH_LOG_DEBUG, "zygote started as process %d", (int)pid);
    *out = z;
    return SH_S_OK;
}

pid_t sh_zygote_pid(const sh_zygote *z) { return z ? z->pid : 0; }

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void stash_exit(sh_zygote *z, const uint8_t *m)
{
    if (z->exit_len == z->exit_cap) {
        size_t cap = z->exit_cap ? z->exit_cap * 2 : 16;
        exit_record *p = realloc(z->exits, cap * sizeof *p);
        if (!p)
            return; /* the report is lost; a waiter for it times out and kills nothing that still runs */
        z->exits = p;
        z->exit_cap = cap;
    }
    exit_record *e = &z->exits[z->exit_len++];
    e->pid = (pid_t)get64(m + 1);
    e->info.status = (int)(int64_t)get64(m + 9);
    e->info.maxrss_kb = (int64_t)get64(m + 17);
    e->info.utime_us = (int64_t)get64(m + 25);
    e->info.stime_us = (int64_t)get64(m + 33);
}

/* Reads one message from the zygote within `timeout_ms`; exit reports are stashed, and a spawn reply is
 * returned in *spawned. Returns SH_S_OK when a message was handled. */
static sh_status read_message(sh_zygote *z, int timeout_ms, int64_t *spawned, bool *got_spawned, sh_error *err)
{
    struct pollfd pfd = {.fd = z->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0 && errno == EINTR)
        return SH_S_OK;
    if (pr == 0)
        return sh_error_set(err, SH_S_TIMEOUT, "no answer from the zygote");
    uint8_t m[64];
    ssize_t n = recv(z->fd, m, sizeof m, 0);
    if (n <= 0)
        return sh_error_set(err, SH_S_IO, "the zygote (process %d) is gone", (int)z->pid);
    if (m[0] == Z_EXIT && n == 41)
        stash_exit(z, m);
    else if (m[0] == Z_SPAWNED && n == 9) {
        *spawned = (int64_t)get64(m + 1);
        *got_spawned = true;
    }
    return SH_S_OK;
}

sh_status sh_zygote_request(const sh_descriptor *d, const sh_value *config, const sh_sandbox_policy *policy,
                            sh_buf *b, sh_error *err)
{
    sh_buf_reset(b);
    sh_value *dv = sh_descriptor_to_value(d);
    sh_value *pv = sh_value_map();
    if (pv) {
        int rc = sh_value_map_set(pv, "landlock", sh_value_bool(policy->landlock));
        rc |= sh_value_map_set(pv, "seccomp", sh_value_bool(policy->seccomp));
        rc |= sh_value_map_set(pv, "uid", sh_value_int(policy->uid));
        rc |= sh_value_map_set(pv, "gid", sh_value_int(policy->gid));
        if (rc != SH_OK) {
            sh_value_free(pv);
            pv = NULL;
        }
    }
    sh_value *empty = config ? NULL : sh_value_map();
    sh_buf_u8(b, Z_SPAWN);
    if (dv)
        sh_codec_put_value(b, dv);
    sh_codec_put_value(b, config ? config : empty);
    if (pv)
        sh_codec_put_value(b, pv);
    sh_value_free(dv);
    sh_value_free(pv);
    sh_value_free(empty);
    if (!dv || !pv || b->failed || b->len > Z_MAX_MESSAGE - 8192)
        return sh_error_set(err, SH_S_NOMEM, "cannot encode the spawn request for plugin '%s'", d->name);
    return SH_S_OK;
}

static sh_status spawn_locked(sh_zygote *z, const sh_buf *request, const char *tmp_root, int worker_fd,
                              pid_t *pid, sh_error *err)
{
    /* The request, then the worker's own private directory: what is before it is the same for equal workers. */
    sh_buf b;
    sh_buf_init(&b);
    sh_buf_append(&b, request->data, request->len);
    sh_codec_put_string(&b, tmp_root);
    if (b.failed || b.len > Z_MAX_MESSAGE) {
        sh_buf_free(&b);
        return sh_error_set(err, SH_S_NOMEM, "cannot encode a spawn request");
    }
    ssize_t n = sh_fdpass_send(z->fd, b.data, b.len, worker_fd);
    sh_buf_free(&b);
    if (n < 0)
        return sh_error_set(err, SH_S_IO, "cannot reach the zygote (process %d): %s", (int)z->pid, strerror(errno));
    bool got = false;
    int64_t answer = 0;
    int64_t until = sh_monotonic_ns() + 10 * 1000000000LL;
    while (!got) {
        int left = (int)((until - sh_monotonic_ns()) / 1000000);
        sh_status st = read_message(z, left > 0 ? left : 0, &answer, &got, err);
        if (st != SH_S_OK)
            return sh_error_prefix(err, "starting a worker");
    }
    if (answer <= 0)
        return sh_error_set(err, SH_S_IO, "the zygote could not fork a worker: %s", strerror((int)-answer));
    *pid = (pid_t)answer;
    return SH_S_OK;
}

sh_status sh_zygote_spawn_request(sh_zygote *z, const sh_buf *request, const char *tmp_root, int worker_fd,
                                  pid_t *pid, sh_error *err)
{
    pthread_mutex_lock(&z->lock);
    sh_status rc = spawn_locked(z, request, tmp_root, worker_fd, pid, err);
    pthread_mutex_unlock(&z->lock);
    return rc;
}

sh_status sh_zygote_spawn(sh_zygote *z, const sh_descriptor *d, const sh_value *config,
                          const sh_sandbox_policy *policy, int worker_fd, pid_t *pid, sh_error *err)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_status rc = sh_zygote_request(d, config, policy, &b, err);
    if (rc == SH_S_OK)
        rc = sh_zygote_spawn_request(z, &b, policy->tmp_root, worker_fd, pid, err);
    if (rc != SH_S_OK)
        sh_error_prefix(err, "plugin '%s'", d->name);
    sh_buf_free(&b);
    return rc;
}

static bool take_exit(sh_zygote *z, pid_t pid, sh_exit_info *info)
{
    for (size_t i = 0; i < z->exit_len; i++) {
        if (z->exits[i].pid != pid)
            continue;
        if (info)
            *info = z->exits[i].info;
        z->exits[i] = z->exits[--z->exit_len];
        return true;
    }
    return false;
}

sh_status sh_zygote_wait(sh_zygote *z, pid_t pid, int timeout_ms, sh_exit_info *info, sh_error *err)
{
    int64_t until = timeout_ms < 0 ? 0 : sh_monotonic_ns() + (int64_t)timeout_ms * 1000000;
    sh_status st = SH_S_OK;
    pthread_mutex_lock(&z->lock);
    while (!take_exit(z, pid, info)) {
        int left = 10;
        if (until) {
            int64_t ns = until - sh_monotonic_ns();
            if (ns <= 0) {
                st = sh_error_set(err, SH_S_TIMEOUT, "worker %d has not exited", (int)pid);
                break;
            }
            if (ns < 10 * 1000000)
                left = (int)((ns + 999999) / 1000000);
        }
        /* Wait for something to read without the lock, so that a thread spawning a worker (which holds it from
         * its request to its answer) is never kept waiting by us; then read only what is there, under the lock.
         * Whatever the other thread read meanwhile was stashed, and take_exit finds it. */
        pthread_mutex_unlock(&z->lock);
        struct pollfd pfd = {.fd = z->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left);
        pthread_mutex_lock(&z->lock);
        if (pr <= 0)
            continue;
        int64_t ignored;
        bool got = false;
        st = read_message(z, 0, &ignored, &got, err);
        if (st == SH_S_IO)
            break;
        st = SH_S_OK;
    }
    pthread_mutex_unlock(&z->lock);
    return st;
}

void sh_zygote_forget(sh_zygote *z, pid_t pid)
{
    pthread_mutex_lock(&z->lock);
    take_exit(z, pid, NULL);
    pthread_mutex_unlock(&z->lock);
}

/* Ends a spare nobody took: killed, its exit report collected, its (unused) directory removed. */
static void discard_spare(sh_zygote *z, uint8_t *req, pid_t pid, int fd, char *tmp)
{
    free(req);
    if (fd >= 0)
        close(fd);
    if (pid > 0) {
        kill(pid, SIGKILL);
        sh_zygote_wait(z, pid, 2000, NULL, NULL);
    }
    if (tmp) {
        rmdir(tmp);
        free(tmp);
    }
}

bool sh_zygote_take_spare(sh_zygote *z, const sh_buf *request, pid_t *pid, int *fd, char **tmp_root)
{
    pthread_mutex_lock(&z->lock);
    bool match = z->spare_req && z->spare_len == request->len && memcmp(z->spare_req, request->data, request->len) == 0;
    bool stale = z->spare_req && !match && sh_monotonic_ns() - z->spare_ns > SPARE_TTL_NS;
    uint8_t *req = z->spare_req;
    pid_t spid = z->spare_pid;
    int sfd = z->spare_fd;
    char *stmp = z->spare_tmp;
    if (match) {
        *pid = spid;
        *fd = sfd;
        *tmp_root = stmp;
        free(req);
    }
    if (match || stale) {
        z->spare_req = NULL;
        z->spare_tmp = NULL;
        z->spare_fd = -1;
    }
    pthread_mutex_unlock(&z->lock);
    if (stale)
        discard_spare(z, req, spid, sfd, stmp);
    return match;
}

void sh_zygote_put_spare(sh_zygote *z, const sh_buf *request, pid_t pid, int fd, char *tmp_root)
{
    uint8_t *req = malloc(request->len ? request->len : 1);
    if (!req) {
        discard_spare(z, NULL, pid, fd, tmp_root);
        return;
    }
    memcpy(req, request->data, request->len);
    pthread_mutex_lock(&z->lock);
    uint8_t *old_req = z->spare_req;
    pid_t old_pid = z->spare_pid;
    int old_fd = z->spare_fd;
    char *old_tmp = z->spare_tmp;
    z->spare_req = req;
    z->spare_len = request->len;
    z->spare_pid = pid;
    z->spare_fd = fd;
    z->spare_tmp = tmp_root;
    z->spare_ns = sh_monotonic_ns();
    pthread_mutex_unlock(&z->lock);
    if (old_req)
        discard_spare(z, old_req, old_pid, old_fd, old_tmp);
}

char *sh_zygote_take_dir(sh_zygote *z, const char *base)
{
    pthread_mutex_lock(&z->lock);
    char *dir = z->spare_dir;
    size_t n = strlen(base);
    if (dir && strncmp(dir, base, n) == 0 && dir[n] == '/')
        z->spare_dir = NULL;
    else
        dir = NULL;
    pthread_mutex_unlock(&z->lock);
    return dir;
}

void sh_zygote_give_dir(sh_zygote *z, char *dir)
{
    pthread_mutex_lock(&z->lock);
    char *old = z->spare_dir;
    z->spare_dir = dir;
    pthread_mutex_unlock(&z->lock);
    if (old) {
        rmdir(old);
        free(old);
    }
}

void sh_zygote_stop(sh_zygote *z)
{
    if (!z)
        return;
    if (z->spare_dir) {
        rmdir(z->spare_dir);
        free(z->spare_dir);
    }
    uint8_t stop = Z_STOP;
    send(z->fd, &stop, 1, MSG_NOSIGNAL);
    close(z->fd);
    int status;
    /* The zygote exits at once; its workers follow by their death signal. */
    while (waitpid(z->pid, &status, 0) < 0 && errno == EINTR)
        ;
    /* A spare worker died with the zygote (it killed its workers before exiting). */
    if (z->spare_req) {
        free(z->spare_req);
        close(z->spare_fd);
        if (z->spare_tmp)
            rmdir(z->spare_tmp);
        free(z->spare_tmp);
    }
    free(z->exits);
    pthread_mutex_destroy(&z->lock);
    free(z);
}
