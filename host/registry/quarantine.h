/* The quarantine: plugins whose workers crashed too many times in a row, remembered across runs in a small state
 * file keyed by library path, size and modification time, like GStreamer's registry blacklist, but visible,
 * explained, cleared automatically when the library changes, and clearable with `stagehost plugins reset`. */
#ifndef SH_QUARANTINE_H
#define SH_QUARANTINE_H

#include "util/error.h"

#include <stdbool.h>

#define SH_DEFAULT_QUARANTINE_AFTER 3

typedef struct sh_quarantine sh_quarantine;

/* Opens the store at DIR/quarantine, DIR being the state directory (sh_env's state_dir: $STAGEHOST_STATE_DIR,
 * else $XDG_STATE_HOME/stagehost, else ~/.local/state/stagehost). A missing or unreadable file is an empty
 * store; with `dir` NULL the store is kept in memory, for this process only. NULL only when out of memory. */
sh_quarantine *sh_quarantine_open(const char *dir, int threshold);
void sh_quarantine_free(sh_quarantine *q);

/* Consecutive crashes recorded for the library as it is now (0 when its size or mtime changed since). */
int sh_quarantine_crashes(const sh_quarantine *q, const char *library_path, const char **last_reason);
bool sh_quarantine_is_quarantined(const sh_quarantine *q, const char *library_path, const char **last_reason);
int sh_quarantine_threshold(const sh_quarantine *q);

/* Records one call's outcome: a crash adds one, a success clears the count. Saved at once (atomically) when it
 * changed. Returns true when this crash put the plugin into quarantine. */
bool sh_quarantine_record(sh_quarantine *q, const char *library_path, bool crashed, const char *reason);

/* Forgets the library; returns false when it was not recorded. */
bool sh_quarantine_reset(sh_quarantine *q, const char *library_path);

#endif
