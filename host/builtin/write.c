/* Built-in `write`: items as JSON Lines into a file, appended batch by batch to a temporary file beside it and
 * renamed into place at the end of the stream, so a failed run never leaves a half-written output. Items pass
 * through, so `write` may sit mid-pipeline. */
#include "builtin/builtins.h"
#include "util/buf.h"
#include "plugin/call.h"
#include "value/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The JSON of a batch goes to the file whenever this much has gathered, so a batch costs at most this much more. */
#define FLUSH_BYTES (1024 * 1024)

static const char *const known_keys[] = {"path"};

typedef struct writer {
    char *full;       /* the path, resolved against the pipeline's directory */
    char *tmp;        /* the temporary file beside it, once created */
    int fd;           /* -1 until the first batch */
    sh_buf json;      /* JSON text not yet written */
} writer;

/* The configured path, touching no file; NULL with the reason in `why`. */
static const char *write_config(const sh_value *cfg, char *why, size_t why_len)
{
    if (!sh_builtin_known_keys(cfg, "write", known_keys, sizeof known_keys / sizeof known_keys[0], why, why_len))
        return NULL;
    const char *path = sh_value_get_string(sh_value_map_get(cfg, "path"), NULL);
    if (!path || !*path) {
        snprintf(why, why_len,
                 "config key 'path' is required: the JSON Lines file to write, relative to the pipeline file");
        return NULL;
    }
    return path;
}

static bool write_check(const sh_value *config, char *why, size_t why_len)
{
    return write_config(config, why, why_len) != NULL;
}

static int write_open(const sh_stage_def *def, sh_call *call, void **state)
{
    char why[512];
    const char *path = write_config(def->config, why, sizeof why);
    if (!path)
        return sh_call_failf(call, SH_ERR_INVALID, "%s", why);
    writer *w = calloc(1, sizeof *w);
    char *full = w ? sh_builtin_resolve_path(call, path) : NULL;
    char *tmp = full ? malloc(strlen(full) + 16) : NULL;
    if (!tmp) {
        free(full);
        free(w);
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    }
    *w = (writer){.full = full, .tmp = tmp, .fd = -1};
    sh_buf_init(&w->json);
    *state = w;
    return SH_OK;
}

/* mkdir -p of the directories above `file`; made with mode 0777 less the umask, as mkdir(1) would. */
static int make_parents(sh_call *call, const char *file)
{
    char *dir = strdup(file);
    if (!dir)
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    int rc = SH_OK;
    for (char *p = strchr(dir + 1, '/'); p && rc == SH_OK; p = strchr(p + 1, '/')) {
        *p = '\0';
        struct stat st;
        if (stat(dir, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                rc = sh_call_failf(call, SH_ERR_IO, "cannot create %s: %s is not a directory", file, dir);
        } else if (errno == ENOENT && mkdir(dir, 0777) != 0 && errno != EEXIST) {
            rc = sh_call_failf(call, SH_ERR_IO, "cannot create directory %s for %s: %s", dir, file,
                                  strerror(errno));
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* The temporary file, made with O_EXCL and mode 0666, so the umask (and a default ACL) applies as to any file the
 * user creates; mkstemp() would force 0600. */
static int create_tmp(writer *w, sh_call *call)
{
    int rc = make_parents(call, w->full);
    if (rc != SH_OK)
        return rc;
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint64_t)getpid() * 0x9e3779b97f4a7c15u ^ (uint64_t)time(NULL) ^ (uint64_t)attempt << 40;
        char suffix[7];
        for (int i = 0; i < 6; i++, r /= sizeof letters - 1)
            suffix[i] = letters[r % (sizeof letters - 1)];
        suffix[6] = '\0';
        sprintf(w->tmp, "%s.tmp-%s", w->full, suffix);
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd >= 0)
            return SH_OK;
        if (errno != EEXIST)
            break;
    }
    return sh_call_failf(call, SH_ERR_IO, "cannot create %s: %s (does its directory exist and is it writable?)",
                            w->full, strerror(errno));
}

static int flush_json(writer *w, sh_call *call)
{
    if (w->json.failed)
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory writing %s", w->full);
    for (size_t done = 0; done < w->json.len;) {
        ssize_t n = write(w->fd, w->json.data + done, w->json.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sh_call_failf(call, SH_ERR_IO, "writing %s failed: %s", w->full, strerror(errno));
        done += (size_t)n;
    }
    sh_buf_reset(&w->json);
    return SH_OK;
}

static int write_batch(void *state, sh_call *call, const sh_value *const *items, size_t count)
{
    writer *w = state;
    int rc = w->fd < 0 ? create_tmp(w, call) : SH_OK;
    for (size_t i = 0; rc == SH_OK && i < count; i++) {
        sh_json_write(&w->json, items[i]);
        sh_buf_putc(&w->json, '\n');
        if (w->json.len >= FLUSH_BYTES || w->json.failed)
            rc = flush_json(w, call);
    }
    if (rc == SH_OK)
        rc = flush_json(w, call);
    return rc == SH_OK ? sh_builtin_forward(call, items, count) : rc;
}

/* The data reaches the disk before the rename makes it the output, so a crash leaves the old file or the new one. */
static int write_finish(void *state, sh_call *call)
{
    writer *w = state;
    int rc = w->fd < 0 ? create_tmp(w, call) : SH_OK;
    if (rc != SH_OK)
        return rc;
    int e = fsync(w->fd) == 0 ? 0 : errno;
    if (close(w->fd) != 0 && !e)
        e = errno;
    w->fd = -1;
    if (!e && rename(w->tmp, w->full) != 0)
        e = errno;
    if (e) {
        unlink(w->tmp);
        return sh_call_failf(call, SH_ERR_IO, "writing %s failed: %s", w->full, strerror(e));
    }
    return SH_OK;
}

/* Without a finish (a failed batch, a failed run), the temporary file goes. */
static void write_close(void *state)
{
    writer *w = state;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    sh_buf_free(&w->json);
    free(w->tmp);
    free(w->full);
    free(w);
}

const sh_builtin_stream sh_builtin_write = {write_check, write_open, write_batch, write_finish, write_close};
