/* Built-in `read`: files, or every file under a directory, into items {path, content}. Content is a string
 * when the file is valid UTF-8, bytes otherwise. */
#include "builtin/builtins.h"
#include "plugin/call.h"
#include "value/value.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MAX_BYTES (64 * 1024 * 1024)

typedef struct reader {
    sh_call *call;
    const char *pattern;
    bool recursive;
    int64_t max_bytes;
    size_t emitted;
} reader;

static int read_file(reader *r, const char *full, const char *shown)
{
    FILE *f = fopen(full, "rb");
    if (!f)
        return sh_builtin_failf(r->call, SH_ERR_IO, "cannot open %s: %s", full, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > r->max_bytes) {
        fclose(f);
        return sh_builtin_failf(r->call, SH_ERR_INVALID, "%s is larger than max_bytes (%lld bytes): raise max_bytes in the "
                                              "stage's config to read it",
                     full, (long long)r->max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *data = malloc(size + 1);
    if (!data) {
        fclose(f);
        return sh_builtin_failf(r->call, SH_ERR_NOMEM, "out of memory reading %s", full);
    }
    size_t got = fread(data, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(data);
        return sh_builtin_failf(r->call, SH_ERR_IO, "reading %s failed (%zu of %zu bytes)", full, got, size);
    }
    sh_value *item = sh_value_map();
    sh_value *content = sh_utf8_valid(data, size) ? sh_value_string(data, size) : sh_value_bytes(data, size);
    free(data);
    if (!item || !content || sh_value_map_set(item, "path", sh_value_cstring(shown)) != SH_OK ||
        sh_value_map_set(item, "content", content) != SH_OK) {
        if (!item)
            sh_value_free(content);
        sh_value_free(item);
        return sh_builtin_failf(r->call, SH_ERR_NOMEM, "out of memory reading %s", full);
    }
    r->emitted++;
    return sh_host_table()->emit(r->call, item);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int read_dir(reader *r, const char *full, const char *shown)
{
    struct dirent **names;
    int n = scandir(full, &names, NULL, by_name);
    if (n < 0)
        return sh_builtin_failf(r->call, SH_ERR_IO, "cannot read directory %s: %s", full, strerror(errno));
    int rc = SH_OK;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc == SH_OK && name[0] != '.') {
            size_t fl = strlen(full) + strlen(name) + 2, sl = strlen(shown) + strlen(name) + 2;
            char *cf = malloc(fl), *cs = malloc(sl);
            if (!cf || !cs) {
                rc = sh_builtin_failf(r->call, SH_ERR_NOMEM, "out of memory listing %s", full);
            } else {
                snprintf(cf, fl, "%s/%s", full, name);
                snprintf(cs, sl, "%s/%s", shown, name);
                struct stat st;
                if (stat(cf, &st) != 0)
                    rc = sh_builtin_failf(r->call, SH_ERR_IO, "cannot stat %s: %s", cf, strerror(errno));
                else if (S_ISDIR(st.st_mode) && r->recursive)
                    rc = read_dir(r, cf, cs);
                else if (S_ISREG(st.st_mode) && fnmatch(r->pattern, name, 0) == 0)
                    rc = read_file(r, cf, cs);
            }
            free(cf);
            free(cs);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int sh_builtin_read(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_value *cfg = def->config;
    const char *path = sh_value_get_string(sh_value_map_get(cfg, "path"), NULL);
    if (!path || !*path)
        return sh_builtin_failf(call, SH_ERR_INVALID,
                     "config key 'path' is required: a file or directory to read, relative to the pipeline file");
    const sh_value *pat = sh_value_map_get(cfg, "pattern");
    const sh_value *rec = sh_value_map_get(cfg, "recursive");
    const sh_value *max = sh_value_map_get(cfg, "max_bytes");
    if ((pat && sh_value_type(pat) != SH_TYPE_STRING) || (rec && sh_value_type(rec) != SH_TYPE_BOOL) ||
        (max && (sh_value_type(max) != SH_TYPE_INT || sh_value_get_int(max) < 0)))
        return sh_builtin_failf(call, SH_ERR_INVALID,
                     "config: 'pattern' must be a string (a glob such as \"*.txt\"), 'recursive' true or false, "
                     "'max_bytes' a non-negative integer");
    reader r = {.call = call,
                .pattern = pat ? sh_value_get_string(pat, NULL) : "*",
                .recursive = rec ? sh_value_get_bool(rec) : true,
                .max_bytes = max ? sh_value_get_int(max) : DEFAULT_MAX_BYTES};

    int rc = sh_builtin_forward(call, items, count);
    if (rc != SH_OK)
        return rc;
    char *full = sh_builtin_resolve_path(call, path);
    if (!full)
        return sh_builtin_failf(call, SH_ERR_NOMEM, "out of memory");
    struct stat st;
    if (stat(full, &st) != 0)
        rc = sh_builtin_failf(call, SH_ERR_IO, "cannot read '%s' (%s): %s; 'path' is relative to the pipeline file's directory",
                   path, full, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = read_dir(&r, full, path);
    else
        rc = read_file(&r, full, path);
    free(full);
    return rc;
}
