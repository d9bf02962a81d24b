#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

static int verbosity;

/* A live display on stderr (progress.h) that must be taken down around each line and put back after it. */
static void (*guard_before)(void *ctx);
static void (*guard_after)(void *ctx);
static void *guard_ctx;

void sh_log_set_guard(void (*before)(void *ctx), void (*after)(void *ctx), void *ctx)
{
    guard_before = before;
    guard_after = after;
    guard_ctx = ctx;
}

void sh_log_set_verbosity(int level) { verbosity = level; }
int sh_log_verbosity(void) { return verbosity; }

const char *sh_log_level_name(sh_log_level level)
{
    switch (level) {
    case SH_LOG_ERROR:
        return "error";
    case SH_LOG_WARN:
        return "warning";
    case SH_LOG_INFO:
        return "info";
    case SH_LOG_DEBUG:
        return "debug";
    }
    return "log";
}

void sh_log(sh_log_level level, const char *fmt, ...)
{
    if ((int)level > (int)SH_LOG_WARN + verbosity)
        return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (guard_before)
        guard_before(guard_ctx);
    fprintf(stderr, "stagehost: %s: %s\n", sh_log_level_name(level), line);
    if (guard_after)
        guard_after(guard_ctx);
}
