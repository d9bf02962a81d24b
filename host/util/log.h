/* Host logging to stderr, filtered by the CLI's verbosity. */
#ifndef SH_LOG_H
#define SH_LOG_H

#include <stagehost/abi.h>

/* 0: errors and warnings; 1 (-v): + info, resolution paths; 2 (-vv): + debug. */
void sh_log_set_verbosity(int level);
int sh_log_verbosity(void);
__attribute__((format(printf, 2, 3))) void sh_log(sh_log_level level, const char *fmt, ...);
const char *sh_log_level_name(sh_log_level level);

/* Calls `before` ahead of each line written and `after` once it is out, so that a live display on stderr can
 * erase itself and redraw below the line. NULL functions: none. [thread] set it while no other thread logs. */
void sh_log_set_guard(void (*before)(void *ctx), void (*after)(void *ctx), void *ctx);

#endif
