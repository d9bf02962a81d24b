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

/* Waits up to `spin_ns` for `fd` (a socket) to become readable by polling it without sleeping; true when it
 * did. A call's answer usually arrives within microseconds, sooner than the kernel can put the waiting process to
 * sleep and wake it again: a short spin before a blocking wait saves both. Never spins on a machine with one
 * CPU, where spinning would only delay the peer. */
#define SH_FRAME_SPIN_NS 50000
bool sh_frame_spin_readable(int fd, int64_t spin_ns);

#endif
