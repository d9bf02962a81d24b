/* Long-running mode: a runtime kept warm behind a Unix socket, driven by `stagehost ctl` (serve/ctl.h, which
 * also states the request format). Requests are served one at a time. */
#ifndef SH_SERVE_H
#define SH_SERVE_H

#include "runtime/runtime.h"

#define SH_DEFAULT_HEALTH_INTERVAL_MS 30000

/* Serves on `socket_path` (created owner-only; a stale socket is replaced, a live one refused) until a
 * `shutdown` request, SIGTERM or SIGINT. Idle workers expire by the runtime's TTL meanwhile. On the way out,
 * every plugin is unloaded (fini runs, workers are reaped) and the socket is removed. In development mode
 * (`serve --dev`, `reload` not NULL) changes `reload` reports are revalidated and applied between requests (see
 * sh_reload_apply); each is logged. `reload` is borrowed and watches `rt`. */
typedef struct sh_reload sh_reload;
sh_status sh_serve_dev(sh_runtime *rt, const char *socket_path, sh_reload *reload, sh_error *err);

#endif
