/* The `gate` built-in: waits until a condition on its input items holds. The condition is checked here; the
 * waiting is the engine's: while the condition does not hold it runs the gate's upstream stages again every
 * poll_interval_ms, up to timeout_ms, so a gate after a stage that reads a status (a file, an HTTP endpoint)
 * waits for that status to change. */
#ifndef SH_GATE_H
#define SH_GATE_H

#include "value/value.h"

#include <stdbool.h>
#include <stddef.h>

#define SH_GATE_TYPE "gate"
#define SH_GATE_DEFAULT_POLL_MS 1000
#define SH_GATE_DEFAULT_TIMEOUT_MS 60000

typedef struct sh_gate {
    char *field;            /* a key, or a dotted path into nested maps ("status.state") */
    sh_value *equals;       /* the value it must equal */
    bool any;               /* true: one item suffices; false (default): every item, and at least one */
    int64_t poll_interval_ms;
    int64_t timeout_ms;
} sh_gate;

/* Reads the gate's stage configuration { field; equals; match = "all"|"any"; poll_interval_ms; timeout_ms; }.
 * On error returns false with a message naming the key and what is expected in `why`. */
bool sh_gate_parse(const sh_value *config, sh_gate *out, char *why, size_t why_len);
void sh_gate_free(sh_gate *g);

/* Whether the condition holds for `items`; when it does not, `detail` says why (how many items did not match,
 * and the first one's value). */
bool sh_gate_holds(const sh_gate *g, const sh_value *const *items, size_t count, char *detail, size_t detail_len);

/* The condition as text, for messages: `status == "ready" (every item)`. */
void sh_gate_describe(const sh_gate *g, char *out, size_t len);

#endif
