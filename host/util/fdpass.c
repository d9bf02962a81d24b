#include "util/fdpass.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t sh_fdpass_send(int sock, const void *data, size_t len, int fd)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t sh_fdpass_recv(int sock, void *buf, size_t cap, int flags, int *fd)
{
    /* Room for a few descriptors, so that a peer sending more than one is seen doing it and its extras closed
     * here; what does not fit the kernel discards itself (MSG_CTRUNC). */
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    *fd = -1;
    ssize_t n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -1; /* nothing is received with a failed call */
    /* A truncated control message is not one the protocol sends: nothing from it is kept. */
    bool keep = n > 0 && !(mh.msg_flags & MSG_CTRUNC);
    const char *end = cm.buf + (mh.msg_controllen < sizeof cm.buf ? mh.msg_controllen : sizeof cm.buf);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        /* The descriptors the header counts, but never past what the buffer holds. */
        const unsigned char *data = CMSG_DATA(c);
        size_t bytes = c->cmsg_len - CMSG_LEN(0);
        if (bytes > (size_t)(end - (const char *)data))
            bytes = (size_t)(end - (const char *)data);
        for (size_t i = 0; i + sizeof(int) <= bytes; i += sizeof(int)) {
            int got;
            memcpy(&got, data + i, sizeof got);
            if (got < 0)
                continue;
            if (keep && *fd < 0)
                *fd = got;
            else
                close(got);
        }
    }
    return n;
}
