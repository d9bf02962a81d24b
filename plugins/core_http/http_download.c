/*
 * download: fetches an artifact from an http(s) or file:// URL into a file, relative to the pipeline's
 * directory, verifying its SHA-256 when one is given.
 *
 * What to fetch comes from the config (`url`, `path`, `sha256`: one download, after passing the input on) or
 * else from each item (`url_field`, `path_field`, `sha256_field`). The body streams into a temporary file
 * beside the destination while its digest is computed; only a complete transfer with a 2xx status (or a
 * file:// read) and a matching checksum is renamed into place, so the destination never holds a partial or
 * wrong artifact. When the destination already has the expected checksum, nothing is fetched (`cached`).
 * SHA-256 is OpenSSL's (libcrypto's EVP interface): libcurl already loads libcrypto, and EVP is its stable API.
 */
#define _POSIX_C_SOURCE 200809L
#include "core_http.h"
#include "plugin_config.h"
#include "plugin_path.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

typedef struct download_cfg {
    const char *url, *path, *sha256;
    const char *url_field, *path_field, *sha256_field;
    fetch_opts fetch;
} download_cfg;

/* A SHA-256 as given by a user: 64 hex digits, optionally prefixed "sha256:". */
static bool valid_sha256(const char *s)
{
    if (strncmp(s, "sha256:", 7) == 0)
        s += 7;
    size_t n = 0;
    while (isxdigit((unsigned char)s[n]))
        n++;
    return n == 64 && s[n] == '\0';
}

int download_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"url", "path", "sha256", "url_field", "path_field", "sha256_field",
                                        "headers", "timeout_ms", "max_bytes", "follow_redirects"};
    download_cfg c = {0};
    int rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "url", NULL, &c.url);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "path", NULL, &c.path);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "sha256", NULL, &c.sha256);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "url_field", "url", &c.url_field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "path_field", "path", &c.path_field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "sha256_field", "sha256", &c.sha256_field);
    if (rc != SH_OK)
        return rc;
    if (c.url && !c.path)
        return sh_failf(call, "config: 'url' needs 'path', the file to download it to (relative to the pipeline's "
                              "directory)");
    if (c.sha256 && !valid_sha256(c.sha256))
        return sh_failf(call, "config: 'sha256' must be 64 hexadecimal digits (optionally \"sha256:...\"), got \"%s\"",
                        c.sha256);
    /* Download limits: artifacts are bigger and slower than API responses. */
    sh_value *cfg = sh_copy(def->config);
    if (!cfg)
        return sh_failf(call, "out of memory");
    if (!sh_get(cfg, "timeout_ms"))
        sh_set_int(cfg, "timeout_ms", 300000);
    if (!sh_get(cfg, "max_bytes"))
        sh_set_int(cfg, "max_bytes", 1LL << 32);
    rc = fetch_opts_parse(call, cfg, "http,https,file", &c.fetch);
    sh_free(cfg);
    if (rc != SH_OK)
        return rc;
    download_cfg *p = malloc(sizeof *p);
    if (!p) {
        fetch_opts_free(&c.fetch);
        return sh_failf(call, "out of memory");
    }
    *p = c;
    *user = p;
    return SH_OK;
}

void download_destroy(void *user)
{
    download_cfg *c = user;
    fetch_opts_free(&c->fetch);
    free(c);
}

/* The body goes to a file and through the digest. */
typedef struct sink {
    FILE *f;
    EVP_MD_CTX *md;
    int64_t bytes;
    int err;
} sink;

static int to_file(void *ctx, const char *data, size_t len)
{
    sink *s = ctx;
    if (fwrite(data, 1, len, s->f) != len) {
        s->err = errno ? errno : EIO;
        return -1;
    }
    if (EVP_DigestUpdate(s->md, data, len) != 1) {
        s->err = ENOMEM;
        return -1;
    }
    s->bytes += (int64_t)len;
    return 0;
}

static void hex_digest(EVP_MD_CTX *md, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[64] = '\0';
}

/* The SHA-256 of an existing file, in `out`; false when it cannot be read. */
static bool file_sha256(const char *path, char out[65], int64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    char buf[65536];
    size_t n;
    *bytes = 0;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        ok = EVP_DigestUpdate(md, buf, n) == 1;
        *bytes += (int64_t)n;
    }
    ok = ok && !ferror(f);
    if (ok)
        hex_digest(md, out);
    EVP_MD_CTX_free(md);
    fclose(f);
    return ok;
}

static bool same_digest(const char *expected, const char *got)
{
    if (strncmp(expected, "sha256:", 7) == 0)
        expected += 7;
    return strcasecmp(expected, got) == 0;
}

/* True when `path` stays inside the directory it is resolved against: relative, and no ".." component. A path
 * from an item is data (a URL list may come off the network), so it must not reach ~/.bashrc or ../../etc; a
 * path in the config is the user's own choice and may go anywhere. */
static bool stays_inside(const char *path)
{
    if (path[0] == '/')
        return false;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        p += *p == '/';
    }
    return true;
}

static int emit_result(sh_call *call, const sh_value *item, const char *url, const char *path, int64_t bytes,
                       const char *digest, bool cached)
{
    sh_value *out = item ? sh_copy(item) : sh_new_map();
    int rc = out ? sh_set_string(out, "url", url) : SH_ERR_NOMEM;
    if (rc == SH_OK)
        rc = sh_set_string(out, "path", path);
    if (rc == SH_OK)
        rc = sh_set_int(out, "bytes", bytes);
    if (rc == SH_OK)
        rc = sh_set_string(out, "sha256", digest);
    if (rc == SH_OK)
        rc = sh_set_bool(out, "cached", cached);
    if (rc != SH_OK) {
        sh_free(out);
        return sh_failf(call, "download %s: out of memory building the item", url);
    }
    if (sh_emit(call, out) != SH_OK)
        return sh_failf(call, "download %s: the host refused the output", url);
    return SH_OK;
}

static int download_one(const download_cfg *c, sh_call *call, const char *url, const char *path,
                        const char *expected, const sh_value *item)
{
    if (expected && !valid_sha256(expected))
        return sh_failf(call, "download %s: the expected sha256 \"%s\" is not 64 hexadecimal digits", url, expected);
    char *full = pp_resolve(call, path);
    if (!full)
        return SH_ERR_NOMEM;
    char digest[65];
    int64_t bytes = 0;
    if (expected && file_sha256(full, digest, &bytes) && same_digest(expected, digest)) {
        free(full);
        return emit_result(call, item, url, path, bytes, digest, true);
    }
    char failed[4096];
    size_t tlen = strlen(full) + 16;
    char *tmp = malloc(tlen);
    int rc = SH_OK;
    if (!tmp) {
        free(full);
        return sh_failf(call, "out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp-XXXXXX", full);
    int fd = -1;
    if (pp_make_parents(full, failed, sizeof failed) != 0) {
        int e = errno;
        rc = sh_failf(call, "download %s: cannot create directory '%s' for '%s': %s%s", url, failed, path, strerror(e),
                      pp_access_hint(e));
    } else if ((fd = mkstemp(tmp)) < 0) {
        int e = errno;
        rc = sh_failf(call, "download %s: cannot create a file beside '%s': %s%s", url, path, strerror(e),
                      pp_access_hint(e));
    }
    if (rc != SH_OK) {
        free(tmp);
        free(full);
        return rc;
    }
    sink s = {.f = fdopen(fd, "wb"), .md = EVP_MD_CTX_new()};
    fetch_result res;
    if (!s.f || !s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1)
        rc = sh_failf(call, "download %s: out of memory", url);
    else
        rc = fetch(call, &c->fetch, "download", url, to_file, &s, &res);
    if (rc == SH_ERR_IO)
        rc = sh_failf(call, "download %s: cannot write '%s': %s%s", url, path, strerror(s.err), pp_access_hint(s.err));
    /* On disk before the rename, as the built-in write does: after a crash the destination is the old file or the
     * whole new one, never a renamed file whose data never reached the disk. */
    if (rc == SH_OK && s.f && (fflush(s.f) != 0 || fsync(fd) != 0))
        rc = sh_failf(call, "download %s: cannot write '%s': %s%s", url, path, strerror(errno), pp_access_hint(errno));
    if (s.f && fclose(s.f) != 0 && rc == SH_OK)
        rc = sh_failf(call, "download %s: cannot write '%s': %s%s", url, path, strerror(errno), pp_access_hint(errno));
    else if (!s.f)
        close(fd);
    bool is_file = strncasecmp(url, "file:", 5) == 0;
    if (rc == SH_OK && !is_file && (res.status < 200 || res.status > 299))
        rc = sh_failf(call, "download %s answered HTTP %ld; nothing was written to '%s'; check the URL", url,
                      res.status, path);
    if (rc == SH_OK) {
        hex_digest(s.md, digest);
        if (expected && !same_digest(expected, digest))
            rc = sh_failf(call, "download %s: checksum mismatch: expected sha256 %s, got %s (%lld bytes); the download "
                                "was discarded and '%s' left as it was; check the URL and the expected checksum",
                          url, expected, digest, (long long)s.bytes, path);
    }
    if (rc == SH_OK && rename(tmp, full) != 0)
        rc = sh_failf(call, "download %s: cannot move the download into '%s': %s%s", url, path, strerror(errno),
                      pp_access_hint(errno));
    if (rc != SH_OK)
        unlink(tmp);
    EVP_MD_CTX_free(s.md);
    free(tmp);
    free(full);
    if (rc != SH_OK)
        return rc;
    return emit_result(call, item, url, path, s.bytes, digest, false);
}

int download_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    const download_cfg *c = user;
    if (c->url) {
        for (size_t i = 0; i < count; i++)
            if (sh_emit(call, sh_copy(items[i])) != SH_OK)
                return sh_failf(call, "cannot pass on item %zu: the host refused the output", i + 1);
        return download_one(c, call, c->url, c->path, c->sha256, NULL);
    }
    if (count == 0)
        return sh_failf(call, "nothing to download: set 'url' and 'path' in the stage's config, or feed it items with "
                              "'%s' and '%s' fields", c->url_field, c->path_field);
    for (size_t i = 0; i < count; i++) {
        const char *url = sh_get_string(items[i], c->url_field, NULL);
        const char *path = c->path ? c->path : sh_get_string(items[i], c->path_field, NULL);
        const char *sha = c->sha256 ? c->sha256 : sh_get_string(items[i], c->sha256_field, NULL);
        if (!url || !path || !*path)
            return sh_failf(call, "item %zu needs a '%s' (URL) and a '%s' (destination) text field; name them with "
                                  "'url_field' and 'path_field'", i + 1, c->url_field, c->path_field);
        if (!c->path && !stays_inside(path))
            return sh_failf(call, "item %zu: the destination '%s' (field '%s') is absolute or has a '..' component; "
                                  "a destination from an item must stay inside the pipeline's directory: fix the "
                                  "item, or set 'path' in the stage's config", i + 1, path, c->path_field);
        int rc = download_one(c, call, url, path, sha, items[i]);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}
