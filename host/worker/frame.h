/*
 * Frames: how the host and its workers (and `stagehost serve` and its clients) take turns on a stream socket.
 * A frame is
 *
 *     u32 length (little-endian; counts the type byte and the payload) | u8 type | payload
 *
 * The type says what the frame is (SH_MSG_* in worker/protocol.h, SH_CTL_* in serve); the payload is a sequence
 * of values in the value codec (value/codec.h) and, in a few frames, raw fixed-width integers
 * (sh_protocol_get_u64). Several frames may be built in one buffer and sent in one write. The reader never
 * trusts the peer: a frame over the caller's limit, a zero length (no type byte) or a stream that ends inside a
 * frame is a protocol error.
 */
#ifndef SH_FRAME_H
#define SH_FRAME_H

#include "util/buf.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>

#define SH_FRAME_DEFAULT_MAX (256u * 1024u * 1024u)

/* Starts a frame of `type` in b (which may already hold earlier frames); returns the frame's offset. */
size_t sh_frame_begin(sh_buf *b, uint8_t type);
/* Completes the frame started at `offset` by writing its length. */
void sh_frame_end(sh_buf *b, size_t offset);

/* Writes all of b, retrying on EINTR and short writes; never raises SIGPIPE. */
sh_status sh_frame_send(int fd, const sh_buf *b, sh_error *err);

/* Reads one frame into `payload` (reset first) and its type into *type. `deadline_ns` is a CLOCK_MONOTONIC
 * deadline, or 0 to wait forever. Returns SH_S_OK; SH_S_IO with message "end of stream" when the peer closed
 * before a frame started (check *eof); SH_S_TIMEOUT; or SH_S_PROTOCOL for a truncated or oversized frame. */
sh_status sh_frame_recv(int fd, sh_buf *payload, uint8_t *type, size_t max_frame, int64_t deadline_ns, bool *eof,
                        sh_error *err);

/* Frames as they arrive on a stream, read in as large pieces as the peer wrote them (one read usually brings a
 * call's emitted items, logs and its answer together): the bytes, and where the next unread frame starts. The
 * worker channel reads both its ends this way. */
typedef struct sh_frame_in {
    sh_buf buf;
    size_t start;
} sh_frame_in;

typedef enum sh_frame_status {
    SH_FRAME_READY, /* a whole frame, now consumed: *type, *payload and *len (the payload's) are set */
    SH_FRAME_MORE,  /* not a whole frame yet: read more into buf.data + buf.len (up to buf.cap) and look again */
    SH_FRAME_EMPTY, /* a frame of length 0, which cannot even hold its type byte */
    SH_FRAME_OVER,  /* a frame longer than the caller's limit; *len is the length it claims */
    SH_FRAME_NOMEM  /* no room for the rest of the frame */
} sh_frame_status;

/* The next frame in `in`, decoded from its header alone (a frame over `max` is refused before its payload
 * arrives). *payload points into `in` and stays valid until the next call. Before SH_FRAME_MORE, the unread
 * bytes are moved to the front and room is made for the rest of the frame (at least 64 KiB). */
sh_frame_status sh_frame_take(sh_frame_in *in, size_t max, uint8_t *type, const uint8_t **payload, size_t *len);
/* How many bytes of an unfinished frame are waiting in `in`. */
size_t sh_frame_pending(const sh_frame_in *in);
void sh_frame_in_free(sh_frame_in *in);

/* The error for a refused header (SH_FRAME_EMPTY, or SH_FRAME_OVER a limit of `max`): SH_S_PROTOCOL, of kind
 * SH_EK_OUTPUT_CAP when the frame could be real (at most SH_FRAME_DEFAULT_MAX bytes). */
sh_status sh_frame_refused(sh_frame_status st, size_t len, size_t max, sh_error *err);

/* Waits up to `spin_ns` for `fd` (a socket) to become readable by polling it without sleeping; true when it
 * did. A call's answer usually arrives within microseconds, sooner than the kernel can put the waiting process to
 * sleep and wake it again: a short spin before a blocking wait saves both. Never spins on a machine with one
 * CPU, where spinning would only delay the peer. */
#define SH_FRAME_SPIN_NS 50000
bool sh_frame_spin_readable(int fd, int64_t spin_ns);

#endif
