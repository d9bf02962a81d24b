/* Landlock: file-system rules from the read and write grants, plus signal and abstract-socket scoping, so a
 * worker can neither read what it was not granted nor signal the host. The constants are the kernel's stable
 * ABI, spelled out here because the distribution's headers may predate the newer ones (ABI 4 to 6). */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)    /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define READ_RIGHTS (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)

int sh_landlock_abi(void)
{
    long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

/* Everything a given ABI can restrict on the file system. */
static uint64_t fs_rights(int abi)
{
    uint64_t all = (LL_FS_MAKE_SYM << 1) - 1;
    if (abi >= 2)
        all |= LL_FS_REFER;
    if (abi >= 3)
        all |= LL_FS_TRUNCATE;
    if (abi >= 5)
        all |= LL_FS_IOCTL_DEV;
    return all;
}

/* Allows `rights` beneath `path`. A path that does not exist is skipped: nothing to allow there. */
static int allow(int ruleset, const char *path, uint64_t rights, char *why, size_t len)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        int e = errno;
        snprintf(why, len, "%s is not accessible to the worker (%s)%s", path, strerror(e),
                 e == EACCES && getuid() != geteuid() ? "" : e == EACCES ? "; when the host runs as root, workers run "
                 "as an unprivileged user (sandbox.user in the host configuration, default nobody): make the "
                 "plugin's directories readable by it" : "");
        return -1;
    }
    struct stat st;
    /* Directory-only rights on a file are refused by the kernel: keep the file ones. */
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        rights &= LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
    struct ll_path_beneath_attr attr = {.allowed_access = rights, .parent_fd = fd};
    long rc = syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0);
    int e = errno;
    close(fd);
    if (rc != 0) {
        snprintf(why, len, "landlock: cannot add a rule for %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

/* What any worker may read: the dynamic loader's and C library's files, locales, and harmless devices. */
static const char *const system_read[] = {
    "/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom",
    "/proc/self",
};

int sh_landlock_apply(const sh_descriptor *d, const char *tmp_root, char *why, size_t len)
{
    int rs = sh_landlock_prepare(d, tmp_root, why, len);
    return rs < 0 ? -1 : sh_landlock_restrict(rs, why, len);
}

int sh_landlock_restrict(int rs, char *why, size_t len)
{
    int rc = 0;
    if (syscall(__NR_landlock_restrict_self, rs, 0) != 0) {
        snprintf(why, len, "landlock: cannot restrict the worker: %s", strerror(errno));
        rc = -1;
    }
    close(rs);
    return rc;
}

/* Read access to the directories of every dependency, and of the files their libraries really are. */
static int allow_dependencies(int rs, const sh_descriptor *d, char *why, size_t len, int depth)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && depth < 64 && i < d->dep_count; i++) {
        const sh_descriptor *dep = d->deps[i];
        rc = allow(rs, dep->dir, READ_RIGHTS, why, len);
        char dep_lib[PATH_MAX];
        if (rc == 0 && dep->library_path && realpath(dep->library_path, dep_lib)) {
            char *slash = strrchr(dep_lib, '/');
            if (slash && slash != dep_lib) {
                *slash = '\0';
                rc = allow(rs, dep_lib, READ_RIGHTS, why, len);
            }
        }
        if (rc == 0)
            rc = allow_dependencies(rs, dep, why, len, depth + 1);
    }
    return rc;
}

int sh_landlock_prepare(const sh_descriptor *d, const char *tmp_root, char *why, size_t len)
{
    int abi = sh_landlock_abi();
    if (abi <= 0) {
        snprintf(why, len, "landlock is not available on this kernel");
        return -1;
    }
    uint64_t fs = fs_rights(abi);
    struct ll_ruleset_attr attr = {.handled_access_fs = fs};
    /* TCP through Landlock too, when the kernel knows it: seccomp already refuses sockets without a grant. */
    if (abi >= 4 && !d->permissions.network)
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    if (abi >= 6)
        attr.scoped = LL_SCOPE_SIGNAL | LL_SCOPE_ABSTRACT_UNIX_SOCKET;
    size_t attr_size = abi >= 6 ? sizeof attr : abi >= 4 ? offsetof(struct ll_ruleset_attr, scoped)
                                                        : sizeof attr.handled_access_fs;
    int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) {
        snprintf(why, len, "landlock: cannot create a ruleset: %s", strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof system_read / sizeof system_read[0]; i++)
        rc = allow(rs, system_read[i], READ_RIGHTS, why, len);
    if (rc == 0)
        rc = allow(rs, d->dir, READ_RIGHTS, why, len);
    char libdir[PATH_MAX];
    if (rc == 0 && d->library_path && realpath(d->library_path, libdir)) {
        /* The library may be a link to a file elsewhere: the directory it really lives in is the plugin's too. */
        char *slash = strrchr(libdir, '/');
        if (slash && slash != libdir) {
            *slash = '\0';
            rc = allow(rs, libdir, READ_RIGHTS, why, len);
        }
    }
    /* The plugins it requires, however deep, are loaded in the same worker. */
    if (rc == 0)
        rc = allow_dependencies(rs, d, why, len, 0);
    for (size_t i = 0; rc == 0 && i < d->permissions.read.len; i++)
        rc = allow(rs, d->permissions.read.items[i], READ_RIGHTS, why, len);
    for (size_t i = 0; rc == 0 && i < d->permissions.write.len; i++)
        rc = allow(rs, d->permissions.write.items[i], fs, why, len);
    if (rc == 0 && tmp_root)
        rc = allow(rs, tmp_root, fs, why, len);
    if (rc != 0) {
        close(rs);
        return -1;
    }
    return rs;
}
