#include "worker/frame.h"
#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

size_t sh_frame_begin(sh_buf *b, uint8_t type)
{
    size_t offset = b->len;
    sh_buf_u32(b, 0);
    sh_buf_u8(b, type);
    return offset;
}

void sh_frame_end(sh_buf *b, size_t offset)
{
    if (b->failed)
        return;
    size_t len = b->len - offset - 4;
    if (len > UINT32_MAX) {
        b->failed = 1;
        return;
    }
    uint8_t *p = b->data + offset;
    p[0] = (uint8_t)len;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 24);
}

bool sh_frame_spin_readable(int fd, int64_t spin_ns)
{
    /* Every thread computes the same value, so a relaxed atomic suffices (a plain int would be a data race). */
    static _Atomic int cached_cpus;
    int cpus = atomic_load_explicit(&cached_cpus, memory_order_relaxed);
    if (!cpus) {
        cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&cached_cpus, cpus, memory_order_relaxed);
    }
    if (cpus < 2 || spin_ns <= 0)
        return false;
    int64_t until = sh_monotonic_ns() + spin_ns;
    char c;
    do {
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        /* Data, or the end of the stream (also "readable"); an error other than "nothing yet" ends the spin too:
         * the caller's ordinary read reports it. */
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause(); /* lets the other hyperthread run while this one waits */
#endif
    } while (sh_monotonic_ns() < until);
    return false;
}

sh_status sh_frame_send(int fd, const sh_buf *b, sh_error *err)
{
    if (b->failed)
        return sh_error_set(err, SH_S_NOMEM, "out of memory (or a value over 4 GiB) while encoding a frame");
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, b->data + off, b->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                /* A non-blocking channel that is full: wait until the reader makes room. */
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, 60000) == 0)
                    return sh_error_set(err, SH_S_TIMEOUT, "the worker has not read its channel for 60 s");
                continue;
            }
            return sh_error_set(err, SH_S_IO, "writing to the worker channel failed: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    return SH_S_OK;
}

/* Reads exactly len bytes unless the deadline passes or the peer closes. *got tells how many arrived. */
static sh_status read_full(int fd, uint8_t *dst, size_t len, int64_t deadline_ns, size_t *got, sh_error *err)
{
    *got = 0;
    while (*got < len) {
        if (deadline_ns) {
            int64_t left = deadline_ns - sh_monotonic_ns();
            if (left <= 0)
                return sh_error_set(err, SH_S_TIMEOUT, "timed out");
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ms = (int)((left + 999999) / 1000000);
            int pr = poll(&pfd, 1, ms);
            if (pr < 0 && errno != EINTR)
                return sh_error_set(err, SH_S_IO, "waiting for the worker channel failed: %s", strerror(errno));
            if (pr <= 0)
                continue;
        }
        ssize_t n = read(fd, dst + *got, len - *got);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return sh_error_set(err, SH_S_IO, "reading the worker channel failed: %s", strerror(errno));
        }
        if (n == 0)
            return SH_S_OK;
        *got += (size_t)n;
    }
    return SH_S_OK;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A frame header, its first 5 bytes: the length counts the type byte, so 0 is malformed. */
static sh_frame_status check_header(const uint8_t *p, size_t max, uint32_t *len)
{
    *len = get32(p);
    return *len == 0 ? SH_FRAME_EMPTY : *len > max ? SH_FRAME_OVER : SH_FRAME_READY;
}

sh_status sh_frame_refused(sh_frame_status st, size_t len, size_t max, sh_error *err)
{
    if (st == SH_FRAME_EMPTY)
        return sh_error_set(err, SH_S_PROTOCOL, "frame of length 0 has no type byte");
    /* A frame no sender of this protocol makes (past the largest frame there is) is a breach; a plausible one past
     * what the reader still accepts is output over its cap, which the message can say how to raise. */
    return sh_error_set_kind(err, SH_S_PROTOCOL, len <= SH_FRAME_DEFAULT_MAX ? SH_EK_OUTPUT_CAP : SH_EK_NONE,
                             "frame of %zu bytes exceeds the limit of %zu bytes", len, max);
}

size_t sh_frame_pending(const sh_frame_in *in) { return in->buf.len - in->start; }

sh_frame_status sh_frame_take(sh_frame_in *in, size_t max, uint8_t *type, const uint8_t **payload, size_t *len)
{
    size_t avail = in->buf.len - in->start;
    const uint8_t *p = avail ? in->buf.data + in->start : NULL;
    size_t want = 64 * 1024;
    if (avail >= 5) {
        uint32_t flen;
        sh_frame_status hs = check_header(p, max, &flen);
        if (hs != SH_FRAME_READY) {
            *len = flen;
            return hs;
        }
        if (avail >= 4 + (size_t)flen) {
            *type = p[4];
            *payload = p + 5;
            *len = flen - 1;
            in->start += 4 + (size_t)flen;
            return SH_FRAME_READY;
        }
        if (4 + (size_t)flen - avail > want)
            want = 4 + (size_t)flen - avail;
    }
    /* Move what is left to the front, then make room for the rest of the frame. */
    if (in->start) {
        memmove(in->buf.data, in->buf.data + in->start, avail);
        in->buf.len = avail;
        in->start = 0;
    }
    return sh_buf_reserve(&in->buf, want) == 0 ? SH_FRAME_MORE : SH_FRAME_NOMEM;
}

void sh_frame_in_free(sh_frame_in *in)
{
    sh_buf_free(&in->buf);
    in->start = 0;
}

sh_status sh_frame_recv(int fd, sh_buf *payload, uint8_t *type, size_t max_frame, int64_t deadline_ns, bool *eof,
                       sh_error *err)
{
    *eof = false;
    sh_buf_reset(payload);
    uint8_t hdr[5];
    size_t got;
    sh_status st = read_full(fd, hdr, sizeof hdr, deadline_ns, &got, err);
    if (st != SH_S_OK)
        return st;
    if (got == 0) {
        *eof = true;
        return sh_error_set(err, SH_S_IO, "end of stream");
    }
    if (got < sizeof hdr)
        return sh_error_set(err, SH_S_PROTOCOL, "truncated frame header (%zu of 5 bytes before end of stream)",
                            got);
    uint32_t len;
    sh_frame_status hs = check_header(hdr, max_frame, &len);
    if (hs != SH_FRAME_READY)
        return sh_frame_refused(hs, len, max_frame, err);
    *type = hdr[4];
    size_t body = len - 1;
    if (sh_buf_reserve(payload, body + 1) != 0)
        return sh_error_set(err, SH_S_NOMEM, "out of memory for a %zu-byte frame", body);
    st = read_full(fd, payload->data, body, deadline_ns, &got, err);
    if (st != SH_S_OK)
        return st;
    if (got < body)
        return sh_error_set(err, SH_S_PROTOCOL, "truncated frame: %zu of %zu payload bytes before end of stream",
                            got, body);
    payload->len = body;
    return SH_S_OK;
}
