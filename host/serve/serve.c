#include "serve/serve.h"
#include "serve/ctl.h"
#include "engine/engine.h"
#include "value/json.h"
#include "util/log.h"
#include "serve/reload.h"
#include "engine/report.h"
#include "util/clock.h"
#include "value/codec.h"
#include "worker/frame.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A request bigger than this is not a stagehost ctl request. */
#define MAX_REQUEST (64 * 1024)

static sh_status listen_on(const char *path, int *out, sh_error *err)
{
    struct sockaddr_un sa;
    if (sh_ctl_address(path, &sa, err) != SH_S_OK)
        return SH_S_CONFIG;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return sh_error_set(err, SH_S_CONFIG, "--socket %s: a file that is not a socket is in the way", path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (live)
            return sh_error_set(err, SH_S_CONFIG, "--socket %s: another stagehost serve is listening there", path);
        unlink(path); /* stale, left by a server that was killed */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sh_error_set(err, SH_S_IO, "cannot create a socket: %s", strerror(errno));
    /* Owner-only from the moment it exists: the umask applies at bind(), before any client could connect. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    if (rc != 0 || listen(fd, 16) != 0) {
        close(fd);
        return sh_error_set(err, SH_S_IO, "--socket %s: cannot listen: %s", path, strerror(rc ? e : errno));
    }
    *out = fd;
    return SH_S_OK;
}

static void reply(int fd, int exit_code, const sh_buf *text)
{
    sh_value *m = sh_value_map();
    if (m) {
        sh_value_map_set(m, "exit", sh_value_int(exit_code));
        sh_value_map_set(m, "output", sh_value_string(text->len ? (const char *)text->data : "", text->len));
    }
    sh_buf b;
    sh_buf_init(&b);
    size_t f = sh_frame_begin(&b, SH_CTL_RESPONSE);
    sh_codec_put_value(&b, m);
    sh_frame_end(&b, f);
    sh_frame_send(fd, &b, NULL);
    sh_buf_free(&b);
    sh_value_free(m);
}

static int do_run(sh_runtime *rt, sh_hooks **hooks, const char *path, sh_buf *out)
{
    sh_error err;
    sh_pipeline *p = NULL;
    sh_run_report report = {0};
    sh_run_options opts = {.hooks = hooks};
    sh_status st = sh_pipeline_load(path, &p, &err);
    if (st == SH_S_OK)
        st = sh_engine_run(p, rt, &opts, &report, &err);
    if (report.stages)
        sh_run_report_render(&report, p->name, out);
    if (st != SH_S_OK)
        sh_buf_printf(out, "%s\n", err.message);
    sh_run_report_free(&report);
    sh_pipeline_free(p);
    return sh_status_exit_code(st);
}

static void list_one(void *ctx, const char *plugin, sh_isolation iso, int pid, int64_t idle_ms)
{
    sh_buf *out = ctx;
    if (pid)
        sh_buf_printf(out, "%-24s %-8s worker %-8d idle %lld ms\n", plugin, sh_isolation_name(iso), pid,
                      (long long)idle_ms);
    else
        sh_buf_printf(out, "%-24s %-8s in the host  idle %lld ms\n", plugin, sh_isolation_name(iso),
                      (long long)idle_ms);
}

typedef struct loaded_query {
    const char *name;
    bool *found;
} loaded_query;

static void is_loaded(void *ctx, const char *plugin, sh_isolation iso, int pid, int64_t idle_ms)
{
    (void)iso, (void)pid, (void)idle_ms;
    loaded_query *q = ctx;
    if (strcmp(plugin, q->name) == 0)
        *q->found = true;
}

/* The parent of `pid`, from /proc; 0 when unknown, or when `pid` has exited (a zombie). */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    int ppid = 0;
    char state;
    if (!close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2 || state == 'Z' || state == 'X')
        return 0;
    return (pid_t)ppid;
}

/* Why the client is refused, or NULL to serve it. Our own plugin workers (and anything they forked) are refused:
 * every such process descends from the zygote. The socket's permissions keep other users out, and workers cannot
 * make a Unix socket (sandbox/seccomp.c); this keeps confined plugin code from driving the host that confines it
 * (running a pipeline of its own making, say) should one get a socket anyway. A client that cannot be identified
 * is refused too: one that is gone by now (its request still queued) could have been anything, a worker's child
 * included, and a real client waits for its answer. */
static const char *refused_peer(const sh_runtime *rt, int conn)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0 || parent_of(cred.pid) == 0)
        return "a process that cannot be identified (gone before its request was read)";
    pid_t zygote = sh_zygote_pid(rt->zygote);
    if (!zygote)
        return NULL;
    pid_t p = cred.pid;
    for (int depth = 0; p > 1 && depth < 64; depth++, p = parent_of(p))
        if (p == zygote)
            return "a plugin worker";
    return NULL;
}

/* Handles one request; returns false when the server should stop afterwards. */
static bool handle(sh_runtime *rt, sh_hooks **hooks, const sh_value *args, int *exit_code, sh_buf *out)
{
    size_t n = sh_value_count(args);
    const char *cmd = sh_value_get_string(sh_value_array_get(args, 0), NULL);
    const char *arg = n > 1 ? sh_value_get_string(sh_value_array_get(args, 1), NULL) : NULL;
    *exit_code = 0;
    if (!cmd) {
        *exit_code = 2;
        sh_buf_puts(out, "empty request\n");
    } else if (strcmp(cmd, "run") == 0 && arg && n == 2) {
        *exit_code = do_run(rt, hooks, arg, out);
    } else if (strcmp(cmd, "plugins") == 0 && n == 1) {
        sh_pool_each(rt->pool, list_one, out);
        if (!out->len)
            sh_buf_puts(out, "(no plugin loaded)\n");
        /* Then every plugin with its status, "loaded" for those warm now. */
        sh_buf_puts(out, "\n");
        for (size_t i = 0; i < rt->registry.len; i++) {
            const sh_registry_entry *e = &rt->registry.entries[i];
            if (!e->desc)
                continue;
            bool loaded = false;
            sh_pool_each(rt->pool, is_loaded, &(loaded_query){.name = e->desc->name, .found = &loaded});
            sh_buf_printf(out, "%-24s %-10s %s%s%s\n", e->desc->name, e->desc->version,
                          loaded && e->status == SH_PLUGIN_AVAILABLE ? "loaded" : sh_plugin_status_name(e->status),
                          e->reason ? ": " : "", e->reason ? e->reason : "");
        }
    } else if (strcmp(cmd, "unload") == 0 && arg && n == 2) {
        size_t k = sh_pool_unload(rt->pool, arg);
        if (k)
            sh_buf_printf(out, "unloaded plugin '%s' (%zu instance%s)\n", arg, k, k == 1 ? "" : "s");
        else {
            *exit_code = 2;
            sh_buf_printf(out, "plugin '%s' is not loaded; 'stagehost ctl plugins' lists what is\n", arg);
        }
    } else if (strcmp(cmd, "stats") == 0 && n == 1) {
        sh_metrics_render_json(rt->metrics, out);
        /* The cache's current size is the server's to tell, next to the metrics' counters. */
        if (out->len && out->data[out->len - 1] == '}') {
            out->len--;
            sh_buf_printf(out, ",\"live_workers\":%zu}", sh_pool_live_workers(rt->pool));
        }
        sh_buf_putc(out, '\n');
    } else if (strcmp(cmd, "shutdown") == 0 && n == 1) {
        sh_buf_puts(out, "shutting down\n");
        return false;
    } else {
        *exit_code = 2;
        sh_buf_printf(out, "unknown request '%s' with %zu argument(s): use run PIPELINE, plugins, unload PLUGIN, "
                           "stats or shutdown\n", cmd, n - 1);
    }
    return true;
}

/* Reads one request from a new connection and answers it. */
static bool serve_one(sh_runtime *rt, sh_hooks **hooks, int conn)
{
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type;
    bool eof, go_on = true;
    sh_error err;
    /* A client that connects and says nothing must not stall the server. */
    sh_status st = sh_frame_recv(conn, &in, &type, MAX_REQUEST, sh_monotonic_ns() + 5000000000LL, &eof, &err);
    sh_value *args = NULL;
    if (st == SH_S_OK && type == SH_CTL_REQUEST) {
        sh_codec_reader r;
        sh_codec_reader_init(&r, in.data, in.len);
        st = sh_codec_get_typed(&r, SH_TYPE_ARRAY, "request", &args, &err);
    }
    sh_buf out;
    sh_buf_init(&out);
    int exit_code = 2;
    if (st == SH_S_OK && args)
        go_on = handle(rt, hooks, args, &exit_code, &out);
    else
        sh_buf_printf(&out, "malformed request: %s\n", st == SH_S_OK ? "not a request frame" : err.message);
    reply(conn, exit_code, &out);
    sh_buf_free(&out);
    sh_buf_free(&in);
    sh_value_free(args);
    return go_on;
}

/* Applies the changes the watcher has been quiet about long enough. A request is never in progress here, so a
 * retired worker finishes no call: calls run on the old worker up to the change, and on a new one after it. */
static void apply_changes(sh_reload *reload, sh_hooks **hooks)
{
    sh_buf what;
    sh_buf_init(&what);
    sh_reload_result res;
    sh_error err;
    if (sh_reload_apply(reload, true, hooks, &res, &what, &err) != SH_S_OK)
        sh_log(SH_LOG_ERROR, "reload: %s", err.message);
    /* Printed whatever the verbosity: in development mode, what was reloaded is the point. */
    if (what.len)
        fprintf(stderr, "stagehost: reload: %.*s\n", (int)what.len, (const char *)what.data);
    sh_buf_free(&what);
}

sh_status sh_serve_dev(sh_runtime *rt, const char *socket_path, sh_reload *reload, sh_error *err)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &stop, &old);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    int lfd = -1;
    sh_status rc = sfd < 0 ? sh_error_set(err, SH_S_IO, "signalfd: %s", strerror(errno))
                           : listen_on(socket_path, &lfd, err);
    if (rc == SH_S_OK)
        sh_log(SH_LOG_INFO, "serving on %s (process %d)", socket_path, (int)getpid());
    bool running = rc == SH_S_OK;
    int64_t health_every = rt->config && rt->config->health_interval_ms ? rt->config->health_interval_ms
                                                                        : SH_DEFAULT_HEALTH_INTERVAL_MS;
    int64_t last_health = sh_monotonic_ns();
    /* The hook table is the server's, kept across requests (its in-process instances stay warm). */
    sh_hooks *hooks = NULL;
    while (running) {
        struct pollfd pfd[3] = {{.fd = lfd, .events = POLLIN},
                                {.fd = sfd, .events = POLLIN},
                                {.fd = reload ? sh_reload_fd(reload) : -1, .events = POLLIN}};
        /* Wake at least once a second to let idle workers expire, and when pending changes fall due. */
        int timeout = 1000;
        int due = reload ? sh_reload_wait_ms(reload) : -1;
        if (due >= 0 && due < timeout)
            timeout = due;
        int pr = poll(pfd, 3, timeout);
        sh_pool_expire(rt->pool);
        /* Loaded plugins are asked for their health now and then: a failing one is degraded, then unloaded. */
        int64_t now = sh_monotonic_ns();
        if (now - last_health >= health_every * 1000000) {
            sh_runtime_check_health(rt);
            last_health = now;
        }
        if (pr < 0 && errno != EINTR) {
            rc = sh_error_set(err, SH_S_IO, "poll: %s", strerror(errno));
            break;
        }
        if (pr > 0 && (pfd[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                sh_log(SH_LOG_INFO, "received %s: shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            running = false;
        } else if (pr > 0 && (pfd[0].revents & POLLIN)) {
            int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            const char *refused = conn >= 0 ? refused_peer(rt, conn) : NULL;
            if (refused) {
                sh_log(SH_LOG_WARN, "refused a request on %s from %s", socket_path, refused);
                sh_buf msg;
                sh_buf_init(&msg);
                sh_buf_printf(&msg, "requests from %s are refused\n", refused);
                reply(conn, 2, &msg);
                sh_buf_free(&msg);
            } else if (conn >= 0) {
                running = serve_one(rt, &hooks, conn);
            }
            if (conn >= 0)
                close(conn);
        }
        if (running && reload && pr > 0 && (pfd[2].revents & POLLIN)) {
            sh_error werr;
            if (sh_reload_read(reload, &werr) != SH_S_OK) {
                /* Serving matters more than watching: carry on without it. */
                sh_log(SH_LOG_ERROR, "reload: %s; no longer watching for changes", werr.message);
                reload = NULL;
            }
        }
        if (running && reload && sh_reload_wait_ms(reload) == 0)
            apply_changes(reload, &hooks);
    }
    if (lfd >= 0) {
        close(lfd);
        unlink(socket_path);
    }
    /* Every plugin's fini runs and every worker is reaped before we return. */
    sh_hooks_free(hooks);
    sh_pool_clear(rt->pool);
    if (sfd >= 0)
        close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
