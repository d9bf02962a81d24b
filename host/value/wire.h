/*
 * The wire format between the host and its workers: length-prefixed frames over a stream socket, carrying
 * values in a compact tagged encoding. The host never trusts what a worker sends: every length is checked
 * against the frame, nesting is bounded, and strings must be valid UTF-8.
 *
 * Frame:  u32 length (little-endian; counts the type byte and the payload) | u8 type | payload
 * Value:  u8 tag | data, where tag is one of SH_WIRE_* below; lengths and counts are u32 little-endian.
 */
#ifndef SH_WIRE_H
#define SH_WIRE_H

#include "util/buf.h"
#include "util/error.h"
#include "value/value.h"

#define SH_WIRE_MAX_DEPTH 128
#define SH_WIRE_DEFAULT_MAX_FRAME (256u * 1024u * 1024u)

enum {
    SH_WIRE_NULL = 0,
    SH_WIRE_FALSE = 1,
    SH_WIRE_TRUE = 2,
    SH_WIRE_INT = 3,
    SH_WIRE_DOUBLE = 4,
    SH_WIRE_STRING = 5,
    SH_WIRE_BYTES = 6,
    SH_WIRE_ARRAY = 7,
    SH_WIRE_MAP = 8
};

/* Encoding. Errors (out of memory) show in buf->failed. */
void sh_wire_put_value(sh_buf *b, const sh_value *v);
void sh_wire_put_string(sh_buf *b, const char *s); /* a string value; NULL encodes as null */
void sh_wire_put_int(sh_buf *b, int64_t i);        /* an integer value */
/* Starts a frame of `type` in b (which may already hold earlier frames); returns the frame's offset. */
size_t sh_wire_frame_begin(sh_buf *b, uint8_t type);
/* Completes the frame started at `offset` by writing its length. */
void sh_wire_frame_end(sh_buf *b, size_t offset);

/* The size of v's encoding; SIZE_MAX when it cannot be encoded (a piece over 4 GiB). */
size_t sh_wire_value_size(const sh_value *v);
/* Encodes v into dst, which must have room for sh_wire_value_size(v) bytes; returns the bytes written. For
 * encoding straight into a shared buffer, without a copy through an sh_buf. */
size_t sh_wire_encode(uint8_t *dst, const sh_value *v);

/* Decoding from one frame's payload. */
typedef struct sh_wire_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
} sh_wire_reader;

void sh_wire_reader_init(sh_wire_reader *r, const void *data, size_t len);
bool sh_wire_reader_done(const sh_wire_reader *r);
/* Decodes one value; SH_S_PROTOCOL with a precise message on malformed input. */
sh_status sh_wire_get_value(sh_wire_reader *r, sh_value **out, sh_error *err);
/* Decodes a value that must be of `type` (a convenience for protocol fields); `what` names it in errors. */
sh_status sh_wire_get_typed(sh_wire_reader *r, sh_type type, const char *what, sh_value **out, sh_error *err);

/* Decodes the one value encoded in `len` bytes at `p`, memory that another process may rewrite while it is read
 * (a worker's shared buffer). Nothing is validated where it could still change: a string or bytes value is
 * copied into its own storage first (one copy), its length read once, and a string is checked for UTF-8 in that
 * copy; anything else is copied into `scratch` (reused) and decoded from there. */
sh_status sh_wire_get_shared(const uint8_t *p, size_t len, sh_buf *scratch, sh_value **out, sh_error *err);

/* I/O. Writes all of b, retrying on EINTR and short writes; never raises SIGPIPE. */
sh_status sh_wire_send(int fd, const sh_buf *b, sh_error *err);

/* Reads one frame into `payload` (reset first) and its type into *type. `deadline_ns` is a CLOCK_MONOTONIC
 * deadline, or 0 to wait forever. Returns SH_S_OK; SH_S_IO with message "end of stream" when the peer closed
 * before a frame started (check *eof); SH_S_TIMEOUT; or SH_S_PROTOCOL for a truncated or oversized frame. */
sh_status sh_wire_recv(int fd, sh_buf *payload, uint8_t *type, size_t max_frame, int64_t deadline_ns, bool *eof,
                       sh_error *err);

/* Waits up to `spin_ns` for `fd` (a socket) to become readable by polling it without sleeping; true when it
 * did. A call's answer usually arrives within microseconds, sooner than the kernel can put the waiting process to
 * sleep and wake it again: a short spin before a blocking wait saves both. Never spins on a machine with one
 * CPU, where spinning would only delay the peer. */
#define SH_WIRE_SPIN_NS 50000
bool sh_wire_spin_readable(int fd, int64_t spin_ns);

int64_t sh_monotonic_ns(void);

#endif
