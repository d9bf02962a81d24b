/*
 * The host <-> worker protocol, over wire.h frames. The host sends one request and reads frames until DONE.
 *
 *   host -> worker                                    worker -> host
 *   CREATE  [type, name, config map, invocation map]  DONE [status, stage id, message]
 *   PROCESS [stage id, fork, invocation, item...]     EMIT [item]*, LOG [level, message]*,
 *                                                     DONE [status, 0, message, usage map]
 *                                                     and, when fork was set, CALL_END [wait status]
 *   DESTROY [stage id]                                DONE [status, 0, message]
 *   HEALTH []                                         DONE [status, 0, message]
 *   HOOK [symbol, signature, fork, invocation, arg...] EMIT [result]?, DONE [status, stopped, message]
 *                                                     (and CALL_END after a fork, as for PROCESS)
 *   SHUTDOWN []                                       (exits after fini)
 *   (after fork)                                      READY [status, 0, message]
 *
 * Status 0 is success; otherwise the message says why.
 */
#ifndef SH_PROTOCOL_H
#define SH_PROTOCOL_H

#include "call.h"
#include "ffisig.h"
#include "wire.h"

enum {
    SH_MSG_CREATE = 1,
    SH_MSG_PROCESS = 2,
    SH_MSG_DESTROY = 3,
    SH_MSG_SHUTDOWN = 4,
    SH_MSG_HEALTH = 5,
    SH_MSG_HOOK = 6,
    SH_MSG_READY = 10,
    SH_MSG_EMIT = 11,
    SH_MSG_LOG = 12,
    SH_MSG_DONE = 13,
    SH_MSG_CALL_END = 14
};

/* An invocation as a map, and back. Decoded strings point into `map`, which must outlive `inv`. */
sh_value *sh_protocol_invocation_to_value(const sh_invocation *inv);
void sh_protocol_invocation_from_value(const sh_value *map, sh_invocation *inv);

/* A hook signature as an array of type names, the return type first; and back (false when malformed). */
sh_value *sh_protocol_signature_to_value(const sh_signature *sig);
bool sh_protocol_signature_from_value(const sh_value *v, sh_signature *sig);

/* Appends a DONE or READY frame. */
void sh_protocol_put_done(sh_buf *b, uint8_t type, int64_t status, int64_t aux, const char *message);

#endif
