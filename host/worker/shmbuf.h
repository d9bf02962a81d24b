/*
 * A shared buffer between the host and one worker, for large payloads: a memfd mapped in both, so that a large
 * item crosses once by memcpy instead of through the socket (encode, send, receive, reassemble).
 *
 * The host creates it, allocates its pages up front (fallocate: writing into it can never fail with SIGBUS for
 * want of memory) and seals its size (it can neither shrink nor grow, and no further seal can be added), then
 * hands the worker a descriptor. A worker can therefore change the buffer's contents, at any moment, but never
 * its size: the host's mapping stays valid, and the host checks every offset and length against its own size.
 */
#ifndef SH_SHMBUF_H
#define SH_SHMBUF_H

#include "util/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Payloads at least this large go through the shared buffer; smaller ones are cheaper inline on the socket. */
#define SH_SHMBUF_THRESHOLD (64u * 1024u)

typedef struct sh_shmbuf {
    uint8_t *base; /* NULL: none */
    size_t size;
    int fd; /* the host keeps it to pass on; -1 in the worker once mapped */
} sh_shmbuf;

#define SH_SHMBUF_NONE {NULL, 0, -1}

/* Host: a new buffer of at least `size` bytes (rounded up to a MiB), sealed and pre-faulted. */
sh_status sh_shmbuf_create(sh_shmbuf *s, size_t size, sh_error *err);

/* Worker: maps `fd` (taking it: closed here) of `size` bytes, which the host announced. 0, or -1 when the
 * descriptor is not a sealed buffer of at least that size. */
int sh_shmbuf_map(sh_shmbuf *s, int fd, size_t size);

/* Whether [offset, offset + len) lies within the buffer, without overflow. */
bool sh_shmbuf_contains(const sh_shmbuf *s, uint64_t offset, uint64_t len);

void sh_shmbuf_release(sh_shmbuf *s);

#endif
