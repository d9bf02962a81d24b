/*
 * The zygote: a small process forked from the host early, before it discovers plugins or grows, that forks
 * workers on request. A worker's start cost then does not grow with the host's memory.
 *
 * The zygote reaps its workers and reports each exit (wait status and resource usage) to the host, which asks
 * for the status of a worker it saw die. The zygote dies with the host (PR_SET_PDEATHSIG), and workers die with
 * the zygote, so no process outlives a host killed with SIGKILL.
 */
#ifndef SH_ZYGOTE_H
#define SH_ZYGOTE_H

#include "util/buf.h"
#include "registry/descriptor.h"
#include "util/error.h"
#include "sandbox/sandbox.h"
#include "value/value.h"

#include <sys/types.h>

typedef struct sh_zygote sh_zygote;

/* How a worker ended. */
typedef struct sh_exit_info {
    int status;          /* as from waitpid() */
    int64_t maxrss_kb;   /* peak resident set size */
    int64_t utime_us, stime_us;
} sh_exit_info;

/* Forks the zygote. Call it as early as possible, before loading anything big. */
sh_status sh_zygote_start(sh_zygote **out, sh_error *err);

/* Starts a worker serving `worker_fd` (which the caller then closes) for plugin `d` with `config`. */
sh_status sh_zygote_spawn(sh_zygote *z, const sh_descriptor *d, const sh_value *config,
                          const sh_sandbox_policy *policy, int worker_fd, pid_t *pid, sh_error *err);

/* The same in two steps: the request names what to start (descriptor, configuration, policy but for its private
 * directory), so equal requests start equal workers; the spawn adds the directory. */
sh_status sh_zygote_request(const sh_descriptor *d, const sh_value *config, const sh_sandbox_policy *policy,
                            sh_buf *request, sh_error *err);
sh_status sh_zygote_spawn_request(sh_zygote *z, const sh_buf *request, const char *tmp_root, int worker_fd,
                                  pid_t *pid, sh_error *err);

/* A spare worker, started ahead of time (after a crash, for the start that follows it): put hands over its
 * process, the host end of its channel and its directory (one spare at a time: an earlier one is ended); take
 * gives them to a start with an equal request, and returns false when there is none. */
void sh_zygote_put_spare(sh_zygote *z, const sh_buf *request, pid_t pid, int fd, char *tmp_root);
bool sh_zygote_take_spare(sh_zygote *z, const sh_buf *request, pid_t *pid, int *fd, char **tmp_root);

/* Waits up to `timeout_ms` (-1: forever) for worker `pid` to end and reports how. Returns SH_S_TIMEOUT when it
 * has not ended by then, SH_S_IO when the zygote is gone. */
sh_status sh_zygote_wait(sh_zygote *z, pid_t pid, int timeout_ms, sh_exit_info *info, sh_error *err);

/* Forgets an exit report the caller no longer needs (for workers reaped without waiting). */
void sh_zygote_forget(sh_zygote *z, pid_t pid);

/* A worker's private directory made ahead of time, while the last worker was starting, so that making one is
 * off the path of the next start: take it (NULL when there is none under `base`), and give the next one (owned
 * by the zygote until taken; removed when the zygote stops). */
char *sh_zygote_take_dir(sh_zygote *z, const char *base);
void sh_zygote_give_dir(sh_zygote *z, char *dir);

pid_t sh_zygote_pid(const sh_zygote *z);

/* Stops the zygote; its remaining workers die with it. NULL is allowed. */
void sh_zygote_stop(sh_zygote *z);

#endif
