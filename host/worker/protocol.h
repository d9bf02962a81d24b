/*
 * The host <-> worker protocol, over worker/frame.h frames. The host sends one request and reads frames until
 * its answer (RESULT, DONE or READY; CALL_END after a fork).
 *
 *   host -> worker                                    worker -> host
 *   CALL    header, name type, config value, items    EMIT*, EMIT_SHM*, LOG*, RESULT
 *           (create + process + destroy of one stage)  and, when the header's fork flag was set, CALL_END [wait
 *                                                     status]
 *   HOOK    header, name symbol, signature value,     EMIT [result]?, LOG*, DONE [status, stopped, message]
 *           argument values to the end of the frame   (and CALL_END after a fork, as for CALL)
 *   HEALTH  []                                        DONE [status, 0, message]
 *   SHM     u64 size, and a memfd (SCM_RIGHTS)        nothing: the worker maps it as its shared buffer
 *   SHUTDOWN []                                       (exits after fini)
 *   (after fork)                                      READY [status, abi, message]
 *
 * [a, b] and "value" are codec values (value/codec.h); the rest is binary, so that a warm call costs no allocation
 * beyond the items themselves:
 *
 *   header: u8 flags (SH_CALL_*), u32 attempt, u64 seed, u8 mask, then for each bit i of mask (the invocation
 *           string fields that changed since the last call on this worker, SH_INV_*): u32 length (SH_INV_NULL for
 *           none) and the bytes. Both sides keep the last values: pipeline, plugin and base dir are sent once.
 *   name:   u32 length, the bytes and a NUL (so that the worker uses it in place).
 *   items:  u32 count, u8 where; where 0: the items follow as codec values; where 1: u64 offset, u64 length of
 *           their encoding in the shared buffer, each item followed by a NUL byte (so that the worker can lend a
 *           string or bytes item to the plugin in place, as an sh_value's octets are NUL-terminated).
 *   EMIT_SHM: u64 offset, u64 length: one item, encoded in the shared buffer (large items only).
 *   RESULT: u32 status, i64 user_us, i64 sys_us, i64 maxrss_kb, the message's bytes to the end of the frame.
 *
 * The shared buffer is a sealed memfd (it can neither shrink nor grow) the host creates and fills; the worker
 * decodes its inputs from it and may encode large emitted items into it. The host checks every offset and length
 * a worker sends against its own idea of the buffer's size, copies bytes out before it validates them, and reads
 * each length exactly once: a worker that scribbles over the buffer can spoil only its own call's output.
 *
 * Status 0 is success; otherwise the message says why.
 */
#ifndef SH_PROTOCOL_H
#define SH_PROTOCOL_H

#include "plugin/call.h"
#include "plugin/ffi.h"
#include "value/codec.h"
#include "worker/frame.h"

#include <stdbool.h>

enum {
    SH_MSG_SHUTDOWN = 4,
    SH_MSG_HEALTH = 5,
    SH_MSG_HOOK = 6,
    SH_MSG_CALL = 7,
    SH_MSG_SHM = 8,
    SH_MSG_READY = 10,
    SH_MSG_EMIT = 11,
    SH_MSG_LOG = 12,
    SH_MSG_DONE = 13,
    SH_MSG_CALL_END = 14,
    SH_MSG_EMIT_SHM = 15,
    SH_MSG_RESULT = 16
};

/* Call header flags. */
enum { SH_CALL_FORK = 1, SH_CALL_DETERMINISTIC = 2 };

/* The invocation's string fields, in header order (bits of the header's mask). */
enum { SH_INV_EXECUTION_ID, SH_INV_TASK_ID, SH_INV_PIPELINE, SH_INV_STAGE, SH_INV_PLUGIN, SH_INV_BASE_DIR,
       SH_INV_FIELDS };
#define SH_INV_NULL UINT32_MAX

/* Items: inline in the frame, or in the shared buffer. */
enum { SH_ITEMS_INLINE = 0, SH_ITEMS_SHM = 1 };

/* The fixed part of a RESULT frame, before its message. */
#define SH_RESULT_FIXED 28

/* The last invocation strings sent on (host) or received from (worker) one channel. Each side reuses its
 * storage, so an unchanged field costs neither bytes on the wire nor an allocation. */
typedef struct sh_inv_cache {
    char *value[SH_INV_FIELDS];
    size_t cap[SH_INV_FIELDS];
    bool null[SH_INV_FIELDS];
    bool known[SH_INV_FIELDS]; /* false until set, or after a failed allocation: sent again next time */
} sh_inv_cache;

void sh_inv_cache_free(sh_inv_cache *c);

/* Appends a call header for `inv` to b, with the fields that differ from `sent`, and updates `sent`. */
void sh_protocol_put_header(sh_buf *b, sh_inv_cache *sent, const sh_invocation *inv, uint8_t flags);
/* Reads a call header into `have` and fills *inv from it (its strings point into `have`). False when malformed. */
bool sh_protocol_get_header(sh_codec_reader *r, sh_inv_cache *have, sh_invocation *inv, uint8_t *flags);

/* Little-endian fixed-size fields for the binary messages: false when fewer bytes than needed remain. */
bool sh_protocol_get_u8(sh_codec_reader *r, uint8_t *v);
bool sh_protocol_get_u32(sh_codec_reader *r, uint32_t *v);
bool sh_protocol_get_u64(sh_codec_reader *r, uint64_t *v);

/* Appends a RESULT frame. */
void sh_protocol_put_result(sh_buf *b, int64_t status, int64_t user_us, int64_t sys_us, int64_t maxrss_kb,
                            const char *message);

/* Appends a name (a stage type, a hook symbol); reads one, pointing into the frame. False when malformed. */
void sh_protocol_put_name(sh_buf *b, const char *s);
bool sh_protocol_get_name(sh_codec_reader *r, const char **s);

/* A hook signature as an array of type names, the return type first; and back (false when malformed). */
sh_value *sh_protocol_signature_to_value(const sh_signature *sig);
bool sh_protocol_signature_from_value(const sh_value *v, sh_signature *sig);

/* Appends an SHM frame: the shared buffer is `size` bytes long (its descriptor travels with the frame). */
void sh_protocol_put_shm(sh_buf *b, uint64_t size);

/* Appends a DONE or READY frame. */
void sh_protocol_put_done(sh_buf *b, uint8_t type, int64_t status, int64_t aux, const char *message);

#endif
