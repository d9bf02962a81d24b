/* Passing one file descriptor over a Unix socket (SCM_RIGHTS) with a payload. The receiving side is attack
 * surface (a worker, or a plugin in it, may send anything): it takes at most one descriptor, close-on-exec, and
 * closes whatever else arrived, so a peer can neither leak descriptors into the receiver nor pass a malformed
 * control message off as one. */
#ifndef SH_FDPASS_H
#define SH_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* Sends `len` bytes of `data` with descriptor `fd` attached, in one sendmsg (MSG_NOSIGNAL, EINTR retried).
 * Returns the bytes sent (the descriptor travels with the first of them), or -1 with errno (EAGAIN when a
 * non-blocking socket is full: nothing was sent, the descriptor neither). */
ssize_t sh_fdpass_send(int sock, const void *data, size_t len, int fd);

/* Receives up to `cap` bytes into `buf` with one recvmsg (`flags`, e.g. MSG_DONTWAIT; MSG_CMSG_CLOEXEC is always
 * added). *fd receives the descriptor that came with them, or -1: only the first descriptor of a well-formed
 * SCM_RIGHTS message counts; every other one received is closed, and nothing is kept from a receive that
 * returns no bytes. Returns the bytes received, 0 at the end of the stream, or -1 with errno (EINTR included). */
ssize_t sh_fdpass_recv(int sock, void *buf, size_t cap, int flags, int *fd);

#endif
