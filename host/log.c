#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int verbosity;

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
    fprintf(stderr, "stagehost: %s: %s\n", sh_log_level_name(level), line);
}
