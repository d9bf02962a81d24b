/* Plugin text made safe to show: a plugin's failure and log messages are data, printed to a terminal, stored
 * in the run store and written into JSON. */
#ifndef SH_TEXT_H
#define SH_TEXT_H

#include <stddef.h>

/* The cap on one message from a plugin, the same on the terminal, in the run store and in the JSON report. */
#define SH_MESSAGE_MAX 1024

/* Writes `in` (`len` bytes; it need not be NUL-terminated) into out[size] as one line of valid UTF-8 that cannot
 * steer a terminal or forge another line: invalid bytes become '?'; C0 controls, DEL and C1 controls are escaped
 * (\n, \r, \t, \xHH, \u0080..\u009f), so a message stays on its line and sends no escape sequence. Cut at a
 * character or escape, never inside one. Returns the length written (out is always NUL-terminated). */
size_t sh_text_safe(char *out, size_t size, const char *in, size_t len);

#endif
