/* seccomp: refuse, with EPERM, the system calls a pipeline stage has no business making: tracing and reading
 * other processes, mounting, loading kernel code, BPF, perf, keyrings, namespaces, rebooting; network sockets
 * unless `network` is granted, and execve unless `exec` is. */
#include "sandbox.h"
#include "sh_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if SH_HAVE_SECCOMP
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>

static const char *const always_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "unshare",
    "setns", "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "iopl", "ioperm", "userfaultfd", "quotactl", "lookup_dcookie", "syslog", "personality", "mbind",
    "move_pages", "migrate_pages", "kcmp", "pidfd_getfd",
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

int sh_seccomp_apply(const sh_descriptor *d, char *why, size_t len)
{
    /* Only the native architecture is allowed: a 32-bit system call from a 64-bit worker kills it
     * (libseccomp's default for a foreign architecture), so the rules below cannot be sidestepped. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(why, len, "seccomp: cannot create a filter");
        return -1;
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
    if (rc == 0 && !d->permissions.network) {
        /* Local sockets stay (socketpair, AF_UNIX); anything that can reach a network does not. */
        struct scmp_arg_cmp not_unix = {.arg = 0, .op = SCMP_CMP_NE, .datum_a = AF_UNIX, .datum_b = 0};
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), "socket", 1, &not_unix, why, len);
    }
    if (rc == 0 && !d->permissions.exec) {
        rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve), "execve", 0, NULL, why, len);
        if (rc == 0)
            rc = deny(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), "execveat", 0, NULL, why, len);
    }
    if (rc == 0) {
        int lrc = seccomp_load(ctx);
        if (lrc < 0) {
            snprintf(why, len, "seccomp: cannot load the filter: %s", strerror(-lrc));
            rc = -1;
        }
    }
    seccomp_release(ctx);
    return rc;
}
#else
bool sh_seccomp_available(void) { return false; }

int sh_seccomp_apply(const sh_descriptor *d, char *why, size_t len)
{
    (void)d;
    snprintf(why, len, "seccomp: stagehost was built without libseccomp (meson option 'sandbox')");
    return -1;
}
#endif
