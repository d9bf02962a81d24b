/*
 * The sandbox: what confines a worker before any plugin code runs (its library's constructors included).
 *
 * In order: drop to an unprivileged user when the host runs as root; no_new_privs; a clean environment holding
 * only granted variables; the working directory set to the worker's private directory; Landlock rules that allow
 * reading the plugin's own directory, the system library directories and granted paths, writing the private
 * directory and granted paths, and that scope signals and abstract sockets to the worker; then a seccomp filter
 * that denies the system calls a data-pipeline stage has no business making.
 */
#ifndef SH_SANDBOX_H
#define SH_SANDBOX_H

#include "registry/descriptor.h"

#include <stdbool.h>
#include <sys/types.h>

/* How a worker is confined; sent to the worker with its descriptor (whose permissions are the effective ones). */
typedef struct sh_sandbox_policy {
    bool landlock;         /* apply Landlock rules (off only with --allow-unconfined on a kernel without it) */
    bool seccomp;          /* apply the seccomp filter (likewise) */
    const char *tmp_root;  /* the worker's private directory: writable, its working directory, removed by the host */
    const char *tmp_base;  /* where the host makes tmp_root: its TMPDIR (sh_env's tmpdir); NULL: /tmp */
    uid_t uid;             /* drop to this user and group when running as root; 0: stay */
    gid_t gid;
    int64_t default_processes; /* RLIMIT_NPROC when the plugin's limits say nothing; 0: none */
} sh_sandbox_policy;

#define SH_DEFAULT_WORKER_PROCESSES 256

/* What this kernel and build offer. */
typedef struct sh_sandbox_support {
    bool seccomp;      /* built with libseccomp and the kernel filters */
    int landlock_abi;  /* 0: no Landlock */
    bool rlimits;
    bool user_switch;  /* running as root, and the unprivileged user exists */
    uid_t uid;
    gid_t gid;
    const char *user;  /* the unprivileged user workers run as */
} sh_sandbox_support;

/* Probes the kernel (in a short-lived child, so nothing sticks to the host). `pretend` (STAGEHOST_PRETEND_MISSING:
 * "seccomp", "landlock", comma-separated; NULL: nothing) reports those as missing, to rehearse a degraded kernel.
 * `user` is the account workers drop to when the host runs as root (NULL: "nobody"). */
void sh_sandbox_probe(const char *user, const char *pretend, sh_sandbox_support *out);

/* Applies the sandbox in a worker. Returns 0, or -1 with the reason in `why`. Worker child only. */
int sh_sandbox_apply(const sh_sandbox_policy *policy, sh_descriptor *d, char *why, size_t len);

/* The two kernel mechanisms, one file each. */
int sh_landlock_apply(const sh_descriptor *d, const char *tmp_root, char *why, size_t len);
/* The two halves of sh_landlock_apply: the rules are gathered while the worker still has the host's rights to
 * open the paths (a ruleset file descriptor, or -1), and enforced once it has dropped them. */
int sh_landlock_prepare(const sh_descriptor *d, const char *tmp_root, char *why, size_t len);
int sh_landlock_restrict(int ruleset, char *why, size_t len);
int sh_seccomp_apply(const sh_descriptor *d, char *why, size_t len);
/* Compiles the filters ahead of time (the zygote does, so each worker only loads one). */
void sh_seccomp_prepare(void);
int sh_landlock_abi(void);
bool sh_seccomp_available(void);

#endif
