#include "worker/shmbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

sh_status sh_shmbuf_create(sh_shmbuf *s, size_t size, sh_error *err)
{
    *s = (sh_shmbuf)SH_SHMBUF_NONE;
    size_t mib = (size_t)1 << 20;
    if (size > SIZE_MAX - mib)
        return sh_error_set(err, SH_S_NOMEM, "a shared buffer of %zu bytes is too large", size);
    size = (size + mib - 1) & ~(mib - 1);
    int fd = memfd_create("stagehost-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return sh_error_set(err, SH_S_IO, "cannot create a shared buffer: memfd_create: %s", strerror(errno));
    /* Pages allocated now, not at first touch: a later write by the host cannot die of SIGBUS on a full tmpfs or
     * memory cgroup. */
    int rc = ftruncate(fd, (off_t)size);
    if (rc == 0) {
        rc = fallocate(fd, 0, 0, (off_t)size);
        if (rc != 0 && errno == EOPNOTSUPP)
            rc = 0; /* kernels without shmem fallocate: MAP_POPULATE below still faults the pages in */
    }
    if (rc == 0)
        rc = fcntl(fd, F_ADD_SEALS, SEALS);
    void *p = rc == 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return sh_error_set(err, e == ENOMEM || e == ENOSPC ? SH_S_NOMEM : SH_S_IO,
                            "cannot set up a shared buffer of %zu MiB: %s", size >> 20, strerror(e));
    }
    s->base = p;
    s->size = size;
    s->fd = fd;
    return SH_S_OK;
}

int sh_shmbuf_map(sh_shmbuf *s, int fd, size_t size)
{
    sh_shmbuf_release(s);
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    /* Whatever arrives is checked, even from the host: a buffer that could shrink would kill us with SIGBUS. */
    if (fstat(fd, &st) != 0 || seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
        st.st_size < 0 || (uint64_t)st.st_size < size || size == 0) {
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -1;
    s->base = p;
    s->size = size;
    s->fd = -1;
    return 0;
}

bool sh_shmbuf_contains(const sh_shmbuf *s, uint64_t offset, uint64_t len)
{
    return s->base && offset <= s->size && len <= s->size - offset;
}

void sh_shmbuf_release(sh_shmbuf *s)
{
    if (s->base)
        munmap(s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    *s = (sh_shmbuf)SH_SHMBUF_NONE;
}
