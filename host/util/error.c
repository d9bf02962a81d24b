#include "util/error.h"

#include <stdio.h>
#include <string.h>

static sh_status error_setv(sh_error *err, sh_status status, const char *fmt, va_list ap)
{
    if (err) {
        err->status = status;
        err->kind = SH_EK_NONE;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return status;
}

sh_status sh_error_set(sh_error *err, sh_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

sh_status sh_error_set_kind(sh_error *err, sh_status status, int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(err, status, fmt, ap);
    va_end(ap);
    if (err)
        err->kind = kind;
    return status;
}

sh_status sh_error_prefix(sh_error *err, const char *fmt, ...)
{
    if (!err)
        return SH_S_OK;
    char prefix[SH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[SH_ERROR_MESSAGE_MAX];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->message);
    memcpy(err->message, joined, sizeof joined);
    return err->status;
}

void sh_error_clear(sh_error *err)
{
    if (err) {
        err->status = SH_S_OK;
        err->kind = SH_EK_NONE;
        err->message[0] = '\0';
    }
}

int sh_status_exit_code(sh_status status)
{
    switch (status) {
    case SH_S_OK:
        return 0;
    case SH_S_STAGE:
    case SH_S_CRASH:
    case SH_S_TIMEOUT:
    case SH_S_PROTOCOL:
        return 1;
    default:
        return 2;
    }
}

void sh_error_append(sh_error *err, sh_status status, const char *fmt, ...)
{
    if (!err)
        return;
    char line[SH_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof err->message - used, "%s%s", used ? "\n" : "", line);
    err->status = status;
}
