/* Development mode: watch the plugin search path (and a pipeline file) with inotify, and apply changes to a live
 * runtime without restarting it. `stagehost run --watch` re-discovers and runs again; `stagehost serve --dev`
 * revalidates each changed plugin and only then swaps it in. Either way the zygote and the warm workers of
 * unchanged plugins stay, and the workers of changed plugins are retired so the next call runs the new code. */
#ifndef SH_RELOAD_H
#define SH_RELOAD_H

#include "util/buf.h"
#include "hooks/hooks.h"
#include "runtime/runtime.h"

#include <stdbool.h>

/* Quiet time after the last relevant event before changes are applied: an editor's save or a linker's output
 * arrives as a burst of events, which should cause one reload. */
#define SH_RELOAD_DEBOUNCE_MS 200

typedef struct sh_reload sh_reload;

/* Starts watching the directories of `rt`'s search path, the directories of the libraries its descriptors name,
 * and, when `pipeline_path` is not NULL, that file. Records what is on disk now, so that only later changes
 * count. `rt` is borrowed for the watcher's life. */
sh_status sh_reload_new(sh_runtime *rt, const char *pipeline_path, sh_reload **out, sh_error *err);
void sh_reload_free(sh_reload *r);

/* The inotify descriptor, to poll for POLLIN. */
int sh_reload_fd(const sh_reload *r);

/* Drains pending events; an event about a descriptor, a library or the pipeline (re)starts the quiet period. */
sh_status sh_reload_read(sh_reload *r, sh_error *err);

/* Milliseconds until pending changes are due (0: due now), or -1 when nothing is pending. */
int sh_reload_wait_ms(const sh_reload *r);

typedef struct sh_reload_result {
    bool pipeline_changed; /* the pipeline file was written, replaced or deleted */
    size_t plugin_changes; /* descriptors added, removed or replaced in the registry */
    size_t refused;        /* new versions refused (revalidation only); each is logged as a warning */
} sh_reload_result;

/* Compares the files with what was recorded and applies the differences to the runtime's registry; retires
 * (unloads) the workers of every plugin whose entry changed or went away. Without `revalidate` (run --watch),
 * the registry becomes what discovery finds now, invalid descriptors included. With `revalidate` (serve --dev),
 * a changed descriptor is re-parsed and its library loaded in a throwaway "process" worker first; a version that
 * fails either check is refused and the working entry (and its warm worker) stays. `what` receives one phrase
 * per change, separated by "; " (appended; nothing when nothing changed). SH_S_NOMEM only: other problems are
 * reported as changes or refusals. The front end's hook table `*hooks` points into the registry this replaces:
 * it is freed first (and built again on its next use). */
sh_status sh_reload_apply(sh_reload *r, bool revalidate, sh_hooks **hooks, sh_reload_result *result, sh_buf *what,
                          sh_error *err);

#endif
