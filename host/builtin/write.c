/* Built-in `write`: items as JSON Lines into a file, written to a temporary file and renamed into place so a
 * failed run never leaves a half-written output. Items pass through, so `write` may sit mid-pipeline. */
#include "builtin/builtins.h"
#include "util/buf.h"
#include "plugin/call.h"
#include "value/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sh_builtin_write(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_host *h = sh_host_table();
    const char *path = sh_value_get_string(sh_value_map_get(def->config, "path"), NULL);
    char msg[1024];
    if (!path || !*path) {
        h->fail(call, "config key 'path' is required: the JSON Lines file to write, relative to the pipeline file");
        return SH_ERR_INVALID;
    }
    char *full = sh_builtin_resolve_path(call, path);
    size_t tl = full ? strlen(full) + 16 : 0;
    char *tmp = full ? malloc(tl) : NULL;
    if (!tmp) {
        free(full);
        h->fail(call, "out of memory");
        return SH_ERR_NOMEM;
    }
    snprintf(tmp, tl, "%s.tmp-XXXXXX", full);
    int fd = mkstemp(tmp);
    int rc = SH_OK;
    if (fd < 0) {
        snprintf(msg, sizeof msg, "cannot create %s: %s (does its directory exist and is it writable?)", full,
                 strerror(errno));
        rc = SH_ERR_IO;
    } else {
        sh_buf b;
        sh_buf_init(&b);
        for (size_t i = 0; i < count; i++) {
            sh_json_write(&b, items[i]);
            sh_buf_putc(&b, '\n');
        }
        FILE *f = fdopen(fd, "wb");
        bool ok = f && !b.failed && fwrite(b.data, 1, b.len, f) == b.len;
        ok = ok && fflush(f) == 0 && fsync(fd) == 0;
        int e = errno;
        if (f)
            fclose(f);
        else
            close(fd);
        sh_buf_free(&b);
        if (!ok || rename(tmp, full) != 0) {
            snprintf(msg, sizeof msg, "writing %s failed: %s", full, ok ? strerror(errno) : strerror(e));
            unlink(tmp);
            rc = SH_ERR_IO;
        }
    }
    free(tmp);
    free(full);
    if (rc != SH_OK) {
        h->fail(call, msg);
        return rc;
    }
    return sh_builtin_forward(call, items, count);
}
