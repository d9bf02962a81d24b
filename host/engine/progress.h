/* Live progress on a terminal: one line per stage that started (state, attempt, items in and out, elapsed),
 * redrawn in place. The engine only creates it when stderr is a terminal; nothing of it reaches a pipe or a file. */
#ifndef SH_PROGRESS_H
#define SH_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sh_progress sh_progress;

sh_progress *sh_progress_new(FILE *out); /* NULL when out of memory: no progress then */
void sh_progress_free(sh_progress *p);

/* Adds or updates the line of stage `name`. `items_out` is SIZE_MAX while unknown; times are CLOCK_MONOTONIC,
 * `ended_ns` 0 while the stage runs. */
void sh_progress_set(sh_progress *p, const char *name, const char *state, uint32_t attempt, size_t items_in,
                     size_t items_out, int64_t started_ns, int64_t ended_ns);

/* Redraws every line in place, over what the last draw left. */
void sh_progress_draw(sh_progress *p, int64_t now_ns);
/* Erases the lines, leaving the cursor where the first one was. */
void sh_progress_clear(sh_progress *p);

#endif
