/* Built-in `read`: files, or every file under a directory, into items {path, content}; with split = "lines", one
 * item {path, line, content} per line. Content is a string when it is valid UTF-8, bytes otherwise. Input items
 * pass through first: the files are read once, after the last batch. */
#include "builtin/builtins.h"
#include "plugin/call.h"
#include "util/dirlist.h"
#include "util/buf.h"
#include "util/suggest.h"
#include "value/value.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES (64 * 1024 * 1024)
/* Lines mode reads through a buffer of this size, so a file of any size costs this plus its longest line. */
#define CHUNK_BYTES (256 * 1024)

static const char *const known_keys[] = {"path", "pattern", "recursive", "max_bytes", "split"};
static const char *const split_names[] = {"none", "lines"};

typedef enum split_mode { SPLIT_NONE, SPLIT_LINES } split_mode;

typedef struct reader {
    sh_call *call; /* the current call's; set by every batch and by finish */
    const char *path, *pattern; /* borrowed from the stage definition */
    bool recursive;
    int64_t max_bytes; /* a whole file's limit, or in lines mode a line's */
    split_mode split;
    char *chunk;       /* lines mode: the read buffer */
    sh_buf line;       /* lines mode: a line that spans reads */
} reader;

/* {path, content}, or with a line number (from 1) {path, line, content}; content is bytes unless valid UTF-8. */
static int emit_item(reader *r, const char *full, const char *shown, int64_t line, const char *data, size_t len)
{
    sh_value *content = sh_value_string(data, len);
    if (!content && !sh_utf8_valid(data, len))
        content = sh_value_bytes(data, len);
    sh_value *item = sh_value_map();
    if (!item || !content || sh_value_map_set(item, "path", sh_value_cstring(shown)) != SH_OK ||
        (line > 0 && sh_value_map_set(item, "line", sh_value_int(line)) != SH_OK) ||
        sh_value_map_set(item, "content", content) != SH_OK) {
        if (!item)
            sh_value_free(content);
        sh_value_free(item);
        return sh_call_failf(r->call, SH_ERR_NOMEM, "out of memory reading %s", full);
    }
    return sh_host_table()->emit(r->call, item);
}

static int read_file(reader *r, const char *full, const char *shown)
{
    FILE *f = fopen(full, "rb");
    if (!f)
        return sh_call_failf(r->call, SH_ERR_IO, "cannot open %s: %s", full, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > r->max_bytes) {
        fclose(f);
        return sh_call_failf(r->call, SH_ERR_INVALID, "%s is larger than max_bytes (%lld bytes): raise max_bytes in the "
                                              "stage's config to read it",
                     full, (long long)r->max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        fclose(f);
        return sh_call_failf(r->call, SH_ERR_NOMEM, "out of memory reading %s", full);
    }
    size_t got = fread(data, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(data);
        return sh_call_failf(r->call, SH_ERR_IO, "reading %s failed (%zu of %zu bytes)", full, got, size);
    }
    int rc = emit_item(r, full, shown, 0, data, size);
    free(data);
    return rc;
}

/* One line as an item. A `\r` before the newline goes with it, so CRLF files read like LF files. */
static int emit_line(reader *r, const char *full, const char *shown, int64_t number, const char *text, size_t len,
                     bool terminated)
{
    if (terminated && len > 0 && text[len - 1] == '\r')
        len--;
    return emit_item(r, full, shown, number, text, len);
}

static int line_too_long(reader *r, const char *shown, int64_t number)
{
    return sh_call_failf(r->call, SH_ERR_INVALID,
                            "%s:%lld: the line is longer than max_bytes (%lld bytes): raise max_bytes in the stage's "
                            "config to read it",
                            shown, (long long)number, (long long)r->max_bytes);
}

/* Emits each line as soon as its newline is read; only a line that spans two reads is copied. */
static int read_lines(reader *r, const char *full, const char *shown)
{
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sh_call_failf(r->call, SH_ERR_IO, "cannot open %s: %s", full, strerror(errno));
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    sh_buf_reset(&r->line);
    int64_t number = 0;
    int rc = SH_OK;
    while (rc == SH_OK) {
        ssize_t n = read(fd, r->chunk, CHUNK_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sh_call_failf(r->call, SH_ERR_IO, "reading %s failed after line %lld: %s", full,
                                  (long long)number, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        const char *p = r->chunk, *end = r->chunk + n;
        while (rc == SH_OK && p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t take = (size_t)((nl ? nl : end) - p);
            if ((int64_t)(r->line.len + take) > r->max_bytes) {
                rc = line_too_long(r, shown, number + 1);
                break;
            }
            if (!nl) {
                sh_buf_append(&r->line, p, take);
                break;
            }
            if (r->line.len == 0) {
                rc = emit_line(r, full, shown, ++number, p, take, true);
            } else {
                sh_buf_append(&r->line, p, take);
                if (r->line.failed)
                    break;
                rc = emit_line(r, full, shown, ++number, (const char *)r->line.data, r->line.len, true);
                sh_buf_reset(&r->line);
            }
            p = nl + 1;
        }
        if (rc == SH_OK && r->line.failed)
            rc = sh_call_failf(r->call, SH_ERR_NOMEM, "out of memory reading line %lld of %s",
                                  (long long)number + 1, full);
    }
    /* A last line without a newline is a line too. */
    if (rc == SH_OK && r->line.len > 0)
        rc = emit_line(r, full, shown, ++number, (const char *)r->line.data, r->line.len, false);
    sh_buf_reset(&r->line);
    close(fd);
    return rc;
}

static int read_one(reader *r, const char *full, const char *shown)
{
    return r->split == SPLIT_LINES ? read_lines(r, full, shown) : read_file(r, full, shown);
}

static int read_dir(reader *r, const char *full, const char *shown)
{
    sh_strlist names = {0};
    sh_error err;
    sh_status ls = sh_dirlist(full, NULL, &names, &err);
    if (ls != SH_S_OK)
        return sh_call_failf(r->call, ls == SH_S_NOMEM ? SH_ERR_NOMEM : SH_ERR_IO, "%s", err.message);
    int rc = SH_OK;
    for (size_t i = 0; i < names.len; i++) {
        const char *name = names.items[i];
        if (rc == SH_OK) {
            size_t fl = strlen(full) + strlen(name) + 2, sl = strlen(shown) + strlen(name) + 2;
            char *cf = malloc(fl), *cs = malloc(sl);
            if (!cf || !cs) {
                rc = sh_call_failf(r->call, SH_ERR_NOMEM, "out of memory listing %s", full);
            } else {
                snprintf(cf, fl, "%s/%s", full, name);
                snprintf(cs, sl, "%s/%s", shown, name);
                struct stat st;
                if (stat(cf, &st) != 0)
                    rc = sh_call_failf(r->call, SH_ERR_IO, "cannot stat %s: %s", cf, strerror(errno));
                else if (S_ISDIR(st.st_mode) && r->recursive)
                    rc = read_dir(r, cf, cs);
                else if (S_ISREG(st.st_mode) && fnmatch(r->pattern, name, 0) == 0)
                    rc = read_one(r, cf, cs);
            }
            free(cf);
            free(cs);
        }
    }
    sh_strlist_clear(&names);
    return rc;
}

/* `split` is one of split_names; a near miss is named. */
static bool read_split(const sh_value *v, split_mode *out, char *why, size_t why_len)
{
    *out = SPLIT_NONE;
    if (!v)
        return true;
    const char *s = sh_value_get_string(v, NULL);
    size_t n = sizeof split_names / sizeof split_names[0];
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, split_names[i]) == 0) {
            *out = (split_mode)i;
            return true;
        }
    const char *hint = s ? sh_suggest(s, split_names, n) : NULL;
    if (!s)
        snprintf(why, why_len, "config: 'split' must be the string \"none\" or \"lines\", got a value of type %s",
                 sh_type_name(sh_value_type(v)));
    else
        snprintf(why, why_len, "config: 'split' must be \"none\" (one item per file, the default) or \"lines\" (one "
                 "item per line), got \"%s\"%s%s%s", s, hint ? " (did you mean \"" : "", hint ? hint : "",
                 hint ? "\"?)" : "");
    return false;
}

/* The stage's configuration into `r`, touching no file; false with the reason in `why`. */
static bool read_config(const sh_value *cfg, reader *r, char *why, size_t why_len)
{
    if (!sh_builtin_known_keys(cfg, "read", known_keys, sizeof known_keys / sizeof known_keys[0], why, why_len))
        return false;
    const char *path = sh_value_get_string(sh_value_map_get(cfg, "path"), NULL);
    if (!path || !*path) {
        snprintf(why, why_len,
                 "config key 'path' is required: a file or directory to read, relative to the pipeline file");
        return false;
    }
    const sh_value *pat = sh_value_map_get(cfg, "pattern");
    const sh_value *rec = sh_value_map_get(cfg, "recursive");
    const sh_value *max = sh_value_map_get(cfg, "max_bytes");
    if ((pat && sh_value_type(pat) != SH_TYPE_STRING) || (rec && sh_value_type(rec) != SH_TYPE_BOOL) ||
        (max && (sh_value_type(max) != SH_TYPE_INT || sh_value_get_int(max) < 0))) {
        snprintf(why, why_len, "config: 'pattern' must be a string (a glob such as \"*.txt\"), 'recursive' true or "
                 "false, 'max_bytes' a non-negative integer");
        return false;
    }
    *r = (reader){.path = path,
                  .pattern = pat ? sh_value_get_string(pat, NULL) : "*",
                  .recursive = rec ? sh_value_get_bool(rec) : true,
                  .max_bytes = max ? sh_value_get_int(max) : DEFAULT_MAX_BYTES};
    return read_split(sh_value_map_get(cfg, "split"), &r->split, why, why_len);
}

static bool read_check(const sh_value *config, char *why, size_t why_len)
{
    reader r;
    return read_config(config, &r, why, why_len);
}

static int read_open(const sh_stage_def *def, sh_call *call, void **state)
{
    reader *r = calloc(1, sizeof *r);
    if (!r)
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    char why[512];
    if (!read_config(def->config, r, why, sizeof why)) {
        free(r);
        return sh_call_failf(call, SH_ERR_INVALID, "%s", why);
    }
    sh_buf_init(&r->line);
    if (r->split == SPLIT_LINES && !(r->chunk = malloc(CHUNK_BYTES))) {
        free(r);
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    }
    *state = r;
    return SH_OK;
}

static int read_batch(void *state, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)state;
    return sh_builtin_forward(call, items, count);
}

static int read_finish(void *state, sh_call *call)
{
    reader *r = state;
    r->call = call;
    char *full = sh_builtin_resolve_path(call, r->path);
    if (!full)
        return sh_call_failf(call, SH_ERR_NOMEM, "out of memory");
    struct stat st;
    int rc;
    if (stat(full, &st) != 0)
        rc = sh_call_failf(call, SH_ERR_IO, "cannot read '%s' (%s): %s; 'path' is relative to the pipeline file's directory",
                   r->path, full, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = read_dir(r, full, r->path);
    else
        rc = read_one(r, full, r->path);
    free(full);
    return rc;
}

static void read_close(void *state)
{
    reader *r = state;
    sh_buf_free(&r->line);
    free(r->chunk);
    free(r);
}

const sh_builtin_stream sh_builtin_read = {read_check, read_open, read_batch, read_finish, read_close};
