/* seccomp: refuse, with EPERM, the system calls a pipeline stage has no business making: tracing and reading
 * other processes, mounting, loading kernel code, BPF, perf, keyrings, namespaces, rebooting; System V IPC and
 * POSIX message queues (objects that outlive the worker); pushing input into a terminal; truncating, rewinding or
 * overwriting the standard streams (the host's log); Unix sockets (a worker talks to the host over the channel
 * it was given, and nothing else on the machine); network sockets unless `network` is granted, and execve unless
 * `exec` is. */
#include "sandbox/sandbox.h"
#include "sh_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if SH_HAVE_SECCOMP
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const always_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "unshare",
    "setns", "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "iopl", "ioperm", "userfaultfd", "quotactl", "lookup_dcookie", "syslog", "personality", "mbind",
    "move_pages", "migrate_pages", "kcmp", "pidfd_getfd",
    /* System V IPC and POSIX message queues live in the kernel until removed: a worker's segments, queues and
     * semaphores would outlive it, the host, and its memory limit. */
    "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    /* A worker and everything it forks stay in one process group, which the host kills as a whole. */
    "setsid", "setpgid",
};

bool sh_seccomp_available(void) { return true; }

/* Adds one rule; on failure names the system call in `why`. */
static int deny(scmp_filter_ctx ctx, uint32_t action, int nr, const char *name, unsigned n,
                const struct scmp_arg_cmp *cmp, char *why, size_t len)
{
    int rc = n ? seccomp_rule_add_array(ctx, action, nr, n, cmp) : seccomp_rule_add(ctx, action, nr, 0);
    if (rc < 0)
        snprintf(why, len, "seccomp: cannot add the rule for %s: %s", name, strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* Builds the filter for a worker with or without the network and exec grants; NULL (and `why`) on failure. */
static scmp_filter_ctx build(bool network, bool exec, char *why, size_t len)
{
    /* Only the native architecture is allowed: a 32-bit system call from a 64-bit worker kills it
     * (libseccomp's default for a foreign architecture), so the rules below cannot be sidestepped. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(why, len, "seccomp: cannot create a filter");
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof always_denied / sizeof always_denied[0]; i++) {
        int nr = seccomp_syscall_resolve_name(always_denied[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), nr, always_denied[i], 0, NULL, why, len);
    }
    /* New namespaces through clone are unshare by another name. clone3 passes its flags in memory, where a
     * filter cannot look: it is refused with ENOSYS, and the C library falls back to clone. */
    static const uint64_t namespaces[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                          CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; rc == 0 && i < sizeof namespaces / sizeof namespaces[0]; i++) {
        struct scmp_arg_cmp flag = SCMP_A0(SCMP_CMP_MASKED_EQ, namespaces[i], namespaces[i]);
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), "clone with a new namespace", 1, &flag, why, len);
    }
    if (rc == 0)
        rc = deny(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3", 0, NULL, why, len);
    /* io_uring performs system calls the filter never sees. */
    if (rc == 0)
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), "io_uring_setup", 0, NULL, why, len);
    /* Keystrokes pushed into the host's terminal run in the user's shell after stagehost exits. The kernel reads
     * an ioctl's request as 32 bits: the mask keeps a request with high bits set from slipping past. */
    static const uint64_t terminal_injection[] = {TIOCSTI, TIOCLINUX, TIOCCONS};
    for (size_t i = 0; rc == 0 && i < sizeof terminal_injection / sizeof terminal_injection[0]; i++) {
        struct scmp_arg_cmp req = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, terminal_injection[i]);
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), "terminal ioctl", 1, &req, why, len);
    }
    /* The standard streams are the host's (its log, perhaps a file): a worker may write to them, not truncate,
     * rewind or overwrite what is already there. */
    static const char *const rewrite[] = {"ftruncate", "lseek", "pwrite64", "pwritev", "pwritev2", "fallocate",
                                          /* a copy of the descriptor would not be 0-2 any more */
                                          "dup"};
    for (size_t i = 0; rc == 0 && i < sizeof rewrite / sizeof rewrite[0]; i++) {
        int nr = seccomp_syscall_resolve_name(rewrite[i]);
        for (uint64_t fd = 0; rc == 0 && nr != __NR_SCMP_ERROR && fd <= 2; fd++) {
            struct scmp_arg_cmp on = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, fd);
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), nr, rewrite[i], 1, &on, why, len);
        }
    }
    /* dup2 and dup3 may copy among 0-2 (a shell's 2>&1), not above. */
    static const char *const dup_to[] = {"dup2", "dup3"};
    for (size_t i = 0; rc == 0 && i < sizeof dup_to / sizeof dup_to[0]; i++) {
        int nr = seccomp_syscall_resolve_name(dup_to[i]);
        for (uint64_t fd = 0; rc == 0 && nr != __NR_SCMP_ERROR && fd <= 2; fd++) {
            struct scmp_arg_cmp on[2] = {SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, fd), SCMP_A1(SCMP_CMP_GT, 2, 0)};
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), nr, dup_to[i], 2, on, why, len);
        }
    }
    static const uint64_t dupfd[] = {F_DUPFD, F_DUPFD_CLOEXEC};
    for (size_t k = 0; rc == 0 && k < sizeof dupfd / sizeof dupfd[0]; k++)
        for (uint64_t fd = 0; rc == 0 && fd <= 2; fd++) {
            struct scmp_arg_cmp on[2] = {SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, fd),
                                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, dupfd[k])};
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fcntl), "fcntl(F_DUPFD)", 2, on, why, len);
        }
    /* A Unix socket reaches whatever listens on the machine, stagehost's own control socket included. Socket
     * pairs stay: they connect a process with itself or its children only. */
    if (rc == 0) {
        struct scmp_arg_cmp unix_domain = SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_UNIX); /* an int, as ioctl's */
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), "socket(AF_UNIX)", 1, &unix_domain, why, len);
    }
    if (rc == 0 && !network) {
        /* Anything else that can reach a network goes with the `network` grant. */
        struct scmp_arg_cmp not_unix = {.arg = 0, .op = SCMP_CMP_NE, .datum_a = AF_UNIX, .datum_b = 0};
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), "socket", 1, &not_unix, why, len);
    }
    if (rc == 0 && !exec) {
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve), "execve", 0, NULL, why, len);
        if (rc == 0)
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), "execveat", 0, NULL, why, len);
    }
    if (rc != 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/* The four filters (network and exec granted or not), compiled to BPF once, by the zygote while the host is
 * busy discovering plugins, so that each worker only loads a ready program. */
static struct {
    struct sock_filter *insns;
    unsigned short count;
} programs[4];

static int variant(bool network, bool exec) { return (network ? 2 : 0) + (exec ? 1 : 0); }

void sh_seccomp_prepare(void)
{
    for (int v = 0; v < 4; v++) {
        if (programs[v].insns)
            continue;
        char why[256];
        scmp_filter_ctx ctx = build(v & 2, v & 1, why, sizeof why);
        int fd = ctx ? memfd_create("stagehost-seccomp", MFD_CLOEXEC) : -1;
        if (fd >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
            off_t size = lseek(fd, 0, SEEK_END);
            struct sock_filter *insns = size > 0 ? malloc((size_t)size) : NULL;
            if (insns && pread(fd, insns, (size_t)size, 0) == size &&
                (size_t)size / sizeof *insns <= USHRT_MAX) {
                programs[v].insns = insns;
                programs[v].count = (unsigned short)((size_t)size / sizeof *insns);
            } else {
                free(insns);
            }
        }
        if (fd >= 0)
            close(fd);
        if (ctx)
            seccomp_release(ctx);
    }
}

int sh_seccomp_apply(const sh_descriptor *d, char *why, size_t len)
{
    int v = variant(d->permissions.network, d->permissions.exec);
    if (programs[v].insns) {
        struct sock_fprog prog = {.len = programs[v].count, .filter = programs[v].insns};
        /* no_new_privs is already set (sandbox.c), as loading a filter unprivileged requires. */
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
            snprintf(why, len, "seccomp: cannot load the filter: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    scmp_filter_ctx ctx = build(d->permissions.network, d->permissions.exec, why, len);
    if (!ctx)
        return -1;
    int rc = 0;
    int lrc = seccomp_load(ctx);
    if (lrc < 0) {
        snprintf(why, len, "seccomp: cannot load the filter: %s", strerror(-lrc));
        rc = -1;
    }
    seccomp_release(ctx);
    return rc;
}
#else
bool sh_seccomp_available(void) { return false; }

void sh_seccomp_prepare(void) {}

int sh_seccomp_apply(const sh_descriptor *d, char *why, size_t len)
{
    (void)d;
    snprintf(why, len, "seccomp: stagehost was built without libseccomp (meson option 'sandbox')");
    return -1;
}
#endif
