/* The control protocol of `stagehost serve`, and its client. A request is one frame of type SH_CTL_REQUEST holding
 * an array of strings (the command and its arguments); the answer is one frame of type SH_CTL_RESPONSE holding
 * {exit, output}. */
#ifndef SH_CTL_H
#define SH_CTL_H

#include "util/buf.h"
#include "util/error.h"

#include <stddef.h>
#include <sys/un.h>

enum { SH_CTL_REQUEST = 1, SH_CTL_RESPONSE = 2 };

/* The socket address for `path`; SH_S_CONFIG naming --socket when it is too long for a Unix socket. */
sh_status sh_ctl_address(const char *path, struct sockaddr_un *sa, sh_error *err);

/* Sends one request and waits for the answer: *exit_code and `output` (appended). */
sh_status sh_ctl(const char *socket_path, const char *const *args, size_t count, int *exit_code, sh_buf *output,
                 sh_error *err);

#endif
