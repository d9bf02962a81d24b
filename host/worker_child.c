/* The child side of a worker: confine the process, load the plugin, then serve requests until told to stop.
 * This is one of the two places allowed to end the process (_exit), as it is the worker's own main. */
#include "inproc.h"
#include "protocol.h"
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SH_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SH_UNDER_ASAN 1
#endif
#endif

/* Flush emitted frames to the host once this much is buffered, so memory stays bounded for big outputs. */
#define FLUSH_AT (256u * 1024u)

typedef struct child {
    int fd;
    sh_buf out;
    sh_buf in;
    bool broken; /* the host went away; stop producing */
} child;

static void flush(child *c)
{
    if (!c->broken && sh_wire_send(c->fd, &c->out, NULL) != SH_S_OK)
        c->broken = true;
    sh_buf_reset(&c->out);
}

static int child_emit(void *sink, sh_value *item)
{
    child *c = sink;
    size_t f = sh_wire_frame_begin(&c->out, SH_MSG_EMIT);
    sh_wire_put_value(&c->out, item);
    sh_wire_frame_end(&c->out, f);
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
    size_t f = sh_wire_frame_begin(&c->out, SH_MSG_LOG);
    sh_wire_put_int(&c->out, level);
    sh_wire_put_string(&c->out, message);
    sh_wire_frame_end(&c->out, f);
}

static void set_limit(int resource, rlim_t value)
{
    struct rlimit rl = {value, value};
    setrlimit(resource, &rl);
}

/* The parts of confinement that need nothing but the descriptor: no core dumps, and the declared limits. */
static void confine(const sh_descriptor *d)
{
    set_limit(RLIMIT_CORE, 0);
    if (d->limits.cpu_seconds > 0) {
        /* SIGXCPU at the soft limit, SIGKILL a second later at the hard one. */
        struct rlimit rl = {(rlim_t)d->limits.cpu_seconds, (rlim_t)d->limits.cpu_seconds + 1};
        setrlimit(RLIMIT_CPU, &rl);
    }
    if (d->limits.open_files > 0)
        set_limit(RLIMIT_NOFILE, (rlim_t)d->limits.open_files);
#ifndef SH_UNDER_ASAN
    /* AddressSanitizer reserves terabytes of address space up front; an address-space limit would break it. */
    if (d->limits.memory_mb > 0)
        set_limit(RLIMIT_AS, (rlim_t)d->limits.memory_mb * 1024 * 1024);
#endif
}

static void reply(child *c, int64_t status, int64_t aux, const char *message)
{
    sh_protocol_put_done(&c->out, SH_MSG_DONE, status, aux, message);
    flush(c);
}

static void serve_create(child *c, sh_inproc *ip, sh_wire_reader *r)
{
    sh_error err;
    sh_error_clear(&err);
    sh_value *type = NULL, *name = NULL, *config = NULL, *invv = NULL;
    if (sh_wire_get_typed(r, SH_TYPE_STRING, "type", &type, &err) == SH_S_OK &&
        sh_wire_get_typed(r, SH_TYPE_STRING, "name", &name, &err) == SH_S_OK &&
        sh_wire_get_typed(r, SH_TYPE_MAP, "config", &config, &err) == SH_S_OK &&
        sh_wire_get_typed(r, SH_TYPE_MAP, "invocation", &invv, &err) == SH_S_OK) {
        sh_invocation inv;
        sh_protocol_invocation_from_value(invv, &inv);
        uint32_t id = 0;
        sh_status st = sh_inproc_create_stage(ip, &inv, sh_value_get_string(type, NULL), config, &id, &err);
        reply(c, st, id, st == SH_S_OK ? "" : err.message);
    } else {
        reply(c, SH_S_PROTOCOL, 0, err.message);
    }
    sh_value_free(type);
    sh_value_free(name);
    sh_value_free(config);
    sh_value_free(invv);
}

static void serve_process(child *c, sh_inproc *ip, sh_wire_reader *r)
{
    sh_error err;
    sh_error_clear(&err);
    sh_value *id = NULL, *invv = NULL;
    sh_values items = {0};
    sh_status st = sh_wire_get_typed(r, SH_TYPE_INT, "stage id", &id, &err);
    if (st == SH_S_OK)
        st = sh_wire_get_typed(r, SH_TYPE_MAP, "invocation", &invv, &err);
    while (st == SH_S_OK && !sh_wire_reader_done(r)) {
        sh_value *item;
        st = sh_wire_get_value(r, &item, &err);
        if (st == SH_S_OK && sh_values_push(&items, item) != SH_OK)
            st = sh_error_set(&err, SH_S_NOMEM, "out of memory receiving items");
    }
    if (st == SH_S_OK) {
        sh_invocation inv;
        sh_protocol_invocation_from_value(invv, &inv);
        st = sh_inproc_process(ip, (uint32_t)sh_value_get_int(id), &inv, (const sh_value *const *)items.items,
                               items.len, child_emit, c, child_log, c, &err);
    }
    reply(c, st, 0, st == SH_S_OK ? "" : err.message);
    sh_values_clear(&items);
    sh_value_free(id);
    sh_value_free(invv);
}

_Noreturn void sh_worker_child_main(int fd, const sh_descriptor *d, const sh_value *config)
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
    /* A plugin's printf must not corrupt the host's standard output. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    /* Keep only stdio and the channel: nothing else the host had open is the plugin's business. */
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close_range((unsigned)fd + 1, ~0U, 0);
    confine(d);

    child c = {.fd = fd};
    sh_error err;
    sh_error_clear(&err);
    sh_inproc *ip = NULL;
    sh_status st = sh_inproc_open(d, config, &ip, &err);
    sh_protocol_put_done(&c.out, SH_MSG_READY, st, 0, st == SH_S_OK ? "" : err.message);
    flush(&c);
    if (st != SH_S_OK)
        _exit(0);

    for (;;) {
        uint8_t type;
        bool eof;
        if (sh_wire_recv(fd, &c.in, &type, UINT32_MAX, 0, &eof, &err) != SH_S_OK)
            break; /* the host closed the channel or died: nothing left to serve */
        sh_wire_reader r;
        sh_wire_reader_init(&r, c.in.data, c.in.len);
        if (type == SH_MSG_CREATE) {
            serve_create(&c, ip, &r);
        } else if (type == SH_MSG_PROCESS) {
            serve_process(&c, ip, &r);
        } else if (type == SH_MSG_DESTROY) {
            sh_value *id = NULL;
            if (sh_wire_get_typed(&r, SH_TYPE_INT, "stage id", &id, &err) == SH_S_OK)
                sh_inproc_destroy_stage(ip, (uint32_t)sh_value_get_int(id));
            sh_value_free(id);
            reply(&c, 0, 0, "");
        } else {
            break; /* SHUTDOWN, or a request this worker does not know */
        }
        if (c.broken)
            break;
    }
    sh_inproc_close(ip);
    sh_buf_free(&c.out);
    sh_buf_free(&c.in);
    close(fd);
    _exit(0);
}
