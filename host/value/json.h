/* Values as JSON text (the `write` stage's JSON Lines, `--json` output). Bytes become {"$bytes": "<base64>"}
 * so they survive the trip; non-finite doubles become null, as JSON has no spelling for them. */
#ifndef SH_JSON_H
#define SH_JSON_H

#include "util/buf.h"
#include "value/value.h"

void sh_json_write(sh_buf *b, const sh_value *v);
void sh_json_write_string(sh_buf *b, const char *s, size_t len);

#endif
