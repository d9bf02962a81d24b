/*
 * File layout (integers little-endian):
 *
 *   header  8-byte magic "SHREGCAC" | u32 SH_REGCACHE_FORMAT | u32 0 | u64 body length | u64 checksum of the body
 *   body    wire values: BYTES key | INT directory count | per directory:
 *             BYTES path | BYTES real path | INT st_dev | INT st_ino | INT mtime_ns | INT entry count |
 *             BYTES entries
 *   entry   BYTES file name | INT size | INT mtime_ns | INT ctime_ns | INT st_ino | INT status |
 *             BYTES payload (status OK: the wire encoding of sh_descriptor_to_value; else the error message) |
 *             BYTES plugin name, or NULL
 *
 * The key names the host version, SH_REGCACHE_SCHEMA, the descriptor format and the size of sh_descriptor: a
 * file written by another build is ignored. A directory's section applies only while its path still leads to the
 * same inode with the same real path; its mtime is recorded, but every entry is still checked against its file,
 * since editing a file in place leaves the directory's mtime alone. Entries of a directory are in byte order of file names, the order discovery lists them in, so a
 * scan walks them in step with the directory listing and copies unchanged entries without decoding them.
 */
#include "regcache.h"
#include "buf.h"
#include "descriptor_value.h"
#include "sh_config.h"
#include "wire.h"

#include <stagehost/abi.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_FILE "registry-v1.cache"
#define HEADER_SIZE 32
#define MAX_CACHE_BYTES ((size_t)1 << 30)
/* Directories scanned in this run come first; others are kept (while they exist) up to this many in all, so
 * that a host run over many temporary plugin directories does not grow the file without bound. */
#define MAX_DIRS 64
/* A file modified less than this before the scan started is not cached: a second change within the same
 * timestamp tick, with the same size, would go unseen (coarse kernel clocks, 1-2 s on some filesystems). */
#define RACY_NS (2 * 1000000000LL)
#define MAX_DESCRIPTOR_BYTES (1u << 20)

static const uint8_t magic[8] = {'S', 'H', 'R', 'E', 'G', 'C', 'A', 'C'};

static sh_regcache_stats stats;

void sh_regcache_get_stats(sh_regcache_stats *out) { *out = stats; }
void sh_regcache_reset_stats(void) { memset(&stats, 0, sizeof stats); }

typedef struct cdir {
    char *path;
    char *real; /* realpath(path): descriptors record their directory's, and the same inode can have several */
    int64_t dev, ino, mtime;
    const uint8_t *ent; /* its entries: in the loaded file, or in fresh once a scan changed them */
    size_t ent_len;
    uint64_t ent_count;
    sh_buf fresh;
    bool scanned; /* in this run */
} cdir;

struct sh_regcache {
    char *dir;  /* the cache directory */
    char *file; /* dir/registry-v1.cache */
    uint8_t *data;
    size_t len;
    cdir *dirs;
    size_t ndirs, cap;
    size_t *order; /* indices of scanned directories, in scan order */
    size_t norder;
    bool dirty;
    int64_t start_ns;
    /* The directory being scanned. */
    bool active;
    size_t cur;
    char *cur_real;
    int64_t cur_dev, cur_ino, cur_mtime;
    sh_wire_reader old; /* its old entries not yet walked past */
    uint64_t old_left;
    /* Its new entries. While every file is a hit, in order, they are the old ones: `mirror` says so and
     * mirror_end is where they end, and nothing is copied (a warm start copies nothing). */
    bool mirror;
    const uint8_t *old_base, *mirror_end;
    sh_buf fresh;
    uint64_t fresh_count;
    bool cur_dirty;
};

/* ---- encoding helpers: the wire format's BYTES and INT, read without allocating ---- */

static void put_bytes(sh_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        b->failed = 1;
        return;
    }
    sh_buf_u8(b, SH_WIRE_BYTES);
    sh_buf_u32(b, (uint32_t)n);
    sh_buf_append(b, p, n);
}

static bool rd_int(sh_wire_reader *r, int64_t *out)
{
    if (r->len - r->pos < 9 || r->data[r->pos] != SH_WIRE_INT)
        return false;
    uint64_t v = 0;
    for (int i = 8; i >= 1; i--)
        v = (v << 8) | r->data[r->pos + (size_t)i];
    *out = (int64_t)v;
    r->pos += 9;
    return true;
}

/* BYTES, or NULL when `nullable` (then *p is NULL). */
static bool rd_bytes(sh_wire_reader *r, const uint8_t **p, size_t *n, bool nullable)
{
    if (r->pos >= r->len)
        return false;
    if (nullable && r->data[r->pos] == SH_WIRE_NULL) {
        r->pos++;
        *p = NULL;
        *n = 0;
        return true;
    }
    if (r->len - r->pos < 5 || r->data[r->pos] != SH_WIRE_BYTES)
        return false;
    const uint8_t *q = r->data + r->pos + 1;
    size_t len = (size_t)q[0] | (size_t)q[1] << 8 | (size_t)q[2] << 16 | (size_t)q[3] << 24;
    if (len > r->len - r->pos - 5)
        return false;
    *p = q + 4;
    *n = len;
    r->pos += 5 + len;
    return true;
}

/* Bytes that must be a C string: no NUL inside. */
static bool rd_cstr(sh_wire_reader *r, const uint8_t **p, size_t *n, bool nullable)
{
    return rd_bytes(r, p, n, nullable) && (!*p || !memchr(*p, '\0', *n));
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* Detects truncation and corruption, not tampering (the file is private to its owner): four lanes of a
 * multiply-rotate hash over 64-bit words, FNV-1a's constants. Every step is a bijection of the lane, so any change
 * confined to one word always changes the result. */
static uint64_t checksum(const uint8_t *p, size_t n)
{
    const uint64_t prime = 0x100000001b3ULL;
    uint64_t h[4] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL, 0x9ce484222325cbf2ULL, 0x2325cbf29ce48422ULL};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * (size_t)k, 8);
            w ^= h[k];
            h[k] = ((w << 29) | (w >> 35)) * prime;
        }
    uint64_t r = (uint64_t)n;
    for (int k = 0; k < 4; k++)
        r = (((r ^ h[k]) << 29) | ((r ^ h[k]) >> 35)) * prime;
    for (; i < n; i++)
        r = (r ^ p[i]) * prime;
    return r ^ (r >> 32);
}

static int key_string(char *out, size_t size)
{
    /* The struct's size catches a descriptor change whose author forgot to bump the schema, most of the time. */
    return snprintf(out, size, "stagehost %s; schema %d; descriptor format %d; abi %d; descriptor %zu", SH_VERSION,
                    SH_REGCACHE_SCHEMA, SH_DESCRIPTOR_FORMAT, SH_ABI_MAJOR, sizeof(sh_descriptor));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void set_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- the cache directory ---- */

static bool writable_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) == 0;
}

/* mkdir -p, private to the user: the cache says which libraries the host will load. */
static bool make_dirs(char *path)
{
    if (writable_dir(path))
        return true;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return false;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return false;
    return writable_dir(path);
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* The first usable candidate: STAGEHOST_CACHE_DIR alone when set (an explicit choice is never second-guessed),
 * else $XDG_CACHE_HOME/stagehost (absolute only, as the XDG specification says), else $HOME/.cache/stagehost. */
static char *pick_dir(void)
{
    const char *explicit_dir = getenv("STAGEHOST_CACHE_DIR");
    char *cand[2] = {NULL, NULL};
    if (explicit_dir && *explicit_dir) {
        cand[0] = strdup(explicit_dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
            cand[0] = join(xdg, "stagehost");
        if (home && home[0] == '/')
            cand[1] = join(home, ".cache/stagehost");
    }
    char *chosen = NULL;
    for (int i = 0; i < 2; i++) {
        if (cand[i] && !chosen && make_dirs(cand[i]))
            chosen = cand[i];
        else
            free(cand[i]);
    }
    return chosen;
}

/* ---- loading ---- */

static void drop_dirs(sh_regcache *c)
{
    for (size_t i = 0; i < c->ndirs; i++) {
        free(c->dirs[i].path);
        free(c->dirs[i].real);
        sh_buf_free(&c->dirs[i].fresh);
    }
    free(c->dirs);
    c->dirs = NULL;
    c->ndirs = c->cap = 0;
}

static cdir *add_cdir(sh_regcache *c, const uint8_t *path, size_t len)
{
    if (c->ndirs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        cdir *p = realloc(c->dirs, cap * sizeof *p);
        if (!p)
            return NULL;
        c->dirs = p;
        c->cap = cap;
    }
    cdir *d = &c->dirs[c->ndirs];
    memset(d, 0, sizeof *d);
    if (!(d->path = strndup((const char *)path, len)))
        return NULL;
    sh_buf_init(&d->fresh);
    c->ndirs++;
    return d;
}

static bool parse_body(sh_regcache *c, const uint8_t *body, size_t len)
{
    sh_wire_reader r;
    sh_wire_reader_init(&r, body, len);
    char want[256];
    int wlen = key_string(want, sizeof want);
    const uint8_t *key;
    size_t klen;
    int64_t count;
    if (!rd_bytes(&r, &key, &klen, false) || wlen < 0 || klen != (size_t)wlen || memcmp(key, want, klen) != 0 ||
        !rd_int(&r, &count) || count < 0 || (uint64_t)count > len)
        return false;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *path, *real, *entries;
        size_t plen, rlen, elen;
        int64_t dev, ino, mtime, n;
        if (!rd_cstr(&r, &path, &plen, false) || !rd_cstr(&r, &real, &rlen, false) || !rd_int(&r, &dev) ||
            !rd_int(&r, &ino) || !rd_int(&r, &mtime) || !rd_int(&r, &n) || !rd_bytes(&r, &entries, &elen, false) ||
            n < 0 || (uint64_t)n > elen)
            return false;
        cdir *d = add_cdir(c, path, plen);
        if (!d || !(d->real = strndup((const char *)real, rlen)))
            return false;
        d->dev = dev;
        d->ino = ino;
        d->mtime = mtime;
        d->ent = entries;
        d->ent_len = elen;
        d->ent_count = (uint64_t)n;
    }
    return sh_wire_reader_done(&r);
}

/* Reads and checks the whole file. Anything wrong leaves the cache empty and marked for rewriting. */
static void load(sh_regcache *c)
{
    int fd = open(c->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        /* No file yet: the first scanned directory marks the cache dirty. Anything else, rewrite it. */
        c->dirty = errno != ENOENT;
        return;
    }
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
              !(st.st_mode & (S_IWGRP | S_IWOTH)) && st.st_size >= HEADER_SIZE &&
              (uint64_t)st.st_size <= MAX_CACHE_BYTES;
    size_t size = ok ? (size_t)st.st_size : 0;
    uint8_t *data = ok ? malloc(size) : NULL;
    size_t got = 0;
    while (data && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    ok = data && got == size && memcmp(data, magic, sizeof magic) == 0 &&
         (data[8] | data[9] << 8 | data[10] << 16 | (uint32_t)data[11] << 24) == SH_REGCACHE_FORMAT &&
         get_u64(data + 16) == size - HEADER_SIZE &&
         get_u64(data + 24) == checksum(data + HEADER_SIZE, size - HEADER_SIZE);
    if (ok) {
        c->data = data;
        c->len = size;
        ok = parse_body(c, data + HEADER_SIZE, size - HEADER_SIZE);
    }
    if (!ok) {
        drop_dirs(c);
        free(data);
        c->data = NULL;
        c->len = 0;
        c->dirty = true;
        return;
    }
    stats.loads++;
}

sh_regcache *sh_regcache_open(void)
{
    const char *off = getenv("STAGEHOST_NO_CACHE");
    if (off && *off && strcmp(off, "0") != 0)
        return NULL;
    sh_regcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c->start_ns = ns(now);
    sh_buf_init(&c->fresh);
    if (!(c->dir = pick_dir()) || !(c->file = join(c->dir, CACHE_FILE))) {
        free(c->dir);
        free(c);
        return NULL;
    }
    load(c);
    return c;
}

/* ---- writing ---- */

static void put_section(sh_buf *b, const cdir *d)
{
    put_bytes(b, d->path, strlen(d->path));
    put_bytes(b, d->real, strlen(d->real));
    sh_wire_put_int(b, d->dev);
    sh_wire_put_int(b, d->ino);
    sh_wire_put_int(b, d->mtime);
    sh_wire_put_int(b, (int64_t)d->ent_count);
    put_bytes(b, d->ent, d->ent_len);
}

/* A directory not scanned this run is worth keeping while it is still the directory it was. */
static bool still_there(const cdir *d)
{
    struct stat st;
    return stat(d->path, &st) == 0 && S_ISDIR(st.st_mode) && (int64_t)st.st_dev == d->dev &&
           (int64_t)st.st_ino == d->ino;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void save(sh_regcache *c)
{
    sh_buf b;
    sh_buf_init(&b);
    uint8_t header[HEADER_SIZE] = {0};
    sh_buf_append(&b, header, sizeof header);
    char key[256];
    int klen = key_string(key, sizeof key);
    put_bytes(&b, key, klen > 0 ? (size_t)klen : 0);
    size_t count_at = b.len + 1; /* the INT's 8 bytes, after its tag */
    sh_wire_put_int(&b, 0);
    size_t written = 0;
    for (size_t i = 0; i < c->norder; i++, written++)
        put_section(&b, &c->dirs[c->order[i]]);
    for (size_t i = 0; i < c->ndirs && written < MAX_DIRS; i++)
        if (!c->dirs[i].scanned && c->dirs[i].real && still_there(&c->dirs[i])) {
            put_section(&b, &c->dirs[i]);
            written++;
        }
    if (b.failed) {
        sh_buf_free(&b);
        return;
    }
    set_u64(b.data + count_at, written);
    memcpy(b.data, magic, sizeof magic);
    b.data[8] = SH_REGCACHE_FORMAT;
    set_u64(b.data + 16, b.len - HEADER_SIZE);
    set_u64(b.data + 24, checksum(b.data + HEADER_SIZE, b.len - HEADER_SIZE));

    /* Readers see the old file or the new one, never a part: the new one is complete on disk before the rename.
     * Concurrent hosts each rename their own temporary file; the last one wins, and the loser's work is only
     * redone next time. */
    char *tmp = join(c->dir, "." CACHE_FILE ".XXXXXX");
    int fd = tmp ? mkostemp(tmp, O_CLOEXEC) : -1;
    if (fd >= 0) {
        bool ok = write_all(fd, b.data, b.len) && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (ok && rename(tmp, c->file) == 0)
            stats.writes++;
        else
            unlink(tmp);
    }
    free(tmp);
    sh_buf_free(&b);
}

void sh_regcache_close(sh_regcache *c)
{
    if (!c)
        return;
    if (c->dirty)
        save(c);
    drop_dirs(c);
    sh_buf_free(&c->fresh);
    free(c->cur_real);
    free(c->order);
    free(c->data);
    free(c->dir);
    free(c->file);
    free(c);
}

/* ---- scanning ---- */

void sh_regcache_begin_dir(sh_regcache *c, const char *dir)
{
    if (!c)
        return;
    c->active = false;
    sh_buf_reset(&c->fresh);
    c->fresh.failed = 0;
    c->fresh_count = 0;
    c->old_left = 0;
    c->mirror = true;
    c->old_base = c->mirror_end = NULL;
    c->cur_dirty = false;
    free(c->cur_real);
    c->cur_real = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !(c->cur_real = realpath(dir, NULL)))
        return;
    size_t i = 0;
    while (i < c->ndirs && strcmp(c->dirs[i].path, dir) != 0)
        i++;
    if (i < c->ndirs && c->dirs[i].scanned)
        return; /* the same directory twice in one run: the first scan's section stands */
    if (i == c->ndirs) {
        if (!add_cdir(c, (const uint8_t *)dir, strlen(dir)))
            return;
        c->cur_dirty = true;
    }
    cdir *d = &c->dirs[i];
    c->cur = i;
    c->cur_dev = (int64_t)st.st_dev;
    c->cur_ino = (int64_t)st.st_ino;
    c->cur_mtime = ns(st.st_mtim);
    if (d->ent && d->dev == c->cur_dev && d->ino == c->cur_ino && d->real && strcmp(d->real, c->cur_real) == 0) {
        sh_wire_reader_init(&c->old, d->ent, d->ent_len);
        c->old_left = d->ent_count;
        c->old_base = c->mirror_end = d->ent;
    } else if (d->ent) {
        c->cur_dirty = true; /* a different directory now goes by this path: nothing of it applies */
    }
    c->cur_dirty = c->cur_dirty || d->mtime != c->cur_mtime;
    c->active = true;
}

/* The new entries stop being the old ones: copy those mirrored so far. */
static void unmirror(sh_regcache *c)
{
    if (c->mirror && c->mirror_end > c->old_base)
        sh_buf_append(&c->fresh, c->old_base, (size_t)(c->mirror_end - c->old_base));
    c->mirror = false;
}

void sh_regcache_end_dir(sh_regcache *c)
{
    if (!c || !c->active)
        return;
    c->active = false;
    if (c->old_left)
        c->cur_dirty = true; /* entries for files that are gone */
    if (c->cur_dirty)
        unmirror(c);
    size_t *order = realloc(c->order, (c->norder + 1) * sizeof *order);
    if (order)
        c->order = order;
    if (!order || c->fresh.failed)
        return; /* out of memory: keep the old section, which the next run checks entry by entry anyway */
    c->order[c->norder++] = c->cur;
    cdir *d = &c->dirs[c->cur];
    if (c->cur_dirty) {
        sh_buf_free(&d->fresh);
        d->fresh = c->fresh;
        d->ent = d->fresh.data;
        d->ent_len = d->fresh.len;
        d->ent_count = c->fresh_count;
        sh_buf_init(&c->fresh);
    }
    free(d->real);
    d->real = c->cur_real;
    c->cur_real = NULL;
    d->dev = c->cur_dev;
    d->ino = c->cur_ino;
    d->mtime = c->cur_mtime;
    d->scanned = true;
    c->dirty = c->dirty || c->cur_dirty;
}

typedef struct entry {
    const uint8_t *start;
    size_t len;
    const uint8_t *file;
    size_t file_len;
    int64_t size, mtime, ctime, ino, status;
    const uint8_t *payload, *name;
    size_t payload_len, name_len;
} entry;

static bool read_entry(sh_wire_reader *r, entry *e)
{
    size_t start = r->pos;
    if (!rd_bytes(r, &e->file, &e->file_len, false) || !rd_int(r, &e->size) || !rd_int(r, &e->mtime) ||
        !rd_int(r, &e->ctime) || !rd_int(r, &e->ino) || !rd_int(r, &e->status) ||
        !rd_bytes(r, &e->payload, &e->payload_len, false) || !rd_cstr(r, &e->name, &e->name_len, true))
        return false;
    e->start = r->data + start;
    e->len = r->pos - start;
    return true;
}

/* Byte order, as discovery sorts names (strcmp compares unsigned bytes too). */
static int name_cmp(const uint8_t *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an > bn) - (an < bn);
}

/* Walks the old entries up to `file`; true with *e when it has one. Entries passed by belong to files that are
 * gone. */
static bool find_old(sh_regcache *c, const char *file, entry *e)
{
    size_t flen = strlen(file);
    while (c->old_left) {
        sh_wire_reader save = c->old;
        if (!read_entry(&c->old, e)) {
            c->old_left = 0; /* unreadable (cannot happen past the checksum): drop the rest */
            c->cur_dirty = true;
            return false;
        }
        int cmp = name_cmp(e->file, e->file_len, file, flen);
        if (cmp > 0) {
            c->old = save;
            return false;
        }
        c->old_left--;
        if (cmp == 0)
            return true;
        c->cur_dirty = true;
    }
    return false;
}

static bool same_key(const entry *e, const struct stat *st)
{
    return e->size == (int64_t)st->st_size && e->mtime == ns(st->st_mtim) && e->ctime == ns(st->st_ctim) &&
           e->ino == (int64_t)st->st_ino;
}

/* A cached valid descriptor, if it decodes to this very file and its library is still there: discovery checks
 * the library's existence, and a library that vanished must make the descriptor invalid exactly as a parse
 * would (the caller then parses, for the exact message). */
static sh_descriptor *use_valid(const entry *e, const char *path)
{
    sh_wire_reader r;
    sh_wire_reader_init(&r, e->payload, e->payload_len);
    sh_value *v = NULL;
    sh_descriptor *d = NULL;
    sh_error derr;
    if (sh_wire_get_value(&r, &v, &derr) != SH_S_OK || !sh_wire_reader_done(&r) ||
        sh_descriptor_from_value(v, &d, &derr) != SH_S_OK) {
        sh_value_free(v);
        return NULL;
    }
    sh_value_free(v);
    struct stat st;
    if (!d->path || strcmp(d->path, path) != 0 || !d->library_path || stat(d->library_path, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        sh_descriptor_free(d);
        return NULL;
    }
    return d;
}

/* libconfig follows @include directives: such a descriptor depends on files the cache does not watch. */
static bool self_contained(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    char *text = NULL;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (off_t)MAX_DESCRIPTOR_BYTES &&
              (text = malloc((size_t)st.st_size + 1)) != NULL;
    ssize_t n = ok ? read(fd, text, (size_t)st.st_size) : -1;
    close(fd);
    ok = ok && n == st.st_size;
    for (ssize_t i = 0; ok && i < n; i++)
        ok = !(text[i] == '@' && n - i >= 8 && strncasecmp(text + i, "@include", 8) == 0);
    free(text);
    return ok;
}

static void store(sh_regcache *c, const char *path, const char *file, const struct stat *st, sh_status rc,
                  const sh_descriptor *d, const char *name, const sh_error *err)
{
    if (rc == SH_S_NOMEM || ns(st->st_mtim) >= c->start_ns - RACY_NS)
        return;
    /* A refusal that names the plugin came late enough to be about the library, which may appear anywhere
     * later: such refusals are parsed again each time (they are rare). */
    if (rc != SH_S_OK && (name || !err))
        return;
    /* Always through the value form, so that fields added to it are cached without a change here. */
    sh_value *v = NULL;
    if (rc == SH_S_OK && !(v = sh_descriptor_to_value(d)))
        return; /* out of memory, or a string the value form cannot hold */
    if (!self_contained(path)) {
        sh_value_free(v);
        return;
    }
    unmirror(c);
    sh_buf *b = &c->fresh;
    put_bytes(b, file, strlen(file));
    sh_wire_put_int(b, (int64_t)st->st_size);
    sh_wire_put_int(b, ns(st->st_mtim));
    sh_wire_put_int(b, ns(st->st_ctim));
    sh_wire_put_int(b, (int64_t)st->st_ino);
    sh_wire_put_int(b, rc);
    if (v) {
        /* BYTES around the value, its length patched in, so a scan can pass over it without decoding. */
        sh_buf_u8(b, SH_WIRE_BYTES);
        size_t at = b->len;
        sh_buf_u32(b, 0);
        sh_wire_put_value(b, v);
        size_t len = b->len - at - 4;
        if (!b->failed && len <= UINT32_MAX)
            for (int i = 0; i < 4; i++)
                b->data[at + (size_t)i] = (uint8_t)(len >> (8 * i));
        else
            b->failed = 1;
        sh_value_free(v);
    } else {
        put_bytes(b, err->message, strlen(err->message));
    }
    sh_buf_u8(b, SH_WIRE_NULL); /* the plugin name: only unnamed refusals are cached, for now */
    c->fresh_count++;
    c->cur_dirty = true;
}

/* An unchanged entry goes to the new section as it is. */
static void keep(sh_regcache *c, const entry *e)
{
    if (c->mirror && e->start == c->mirror_end) {
        c->mirror_end += e->len;
    } else {
        unmirror(c);
        sh_buf_append(&c->fresh, e->start, e->len);
    }
    c->fresh_count++;
}

sh_status sh_regcache_load(sh_regcache *c, const char *path, const char *file, sh_descriptor **out, char **name,
                           sh_error *err)
{
    struct stat st;
    if (!c || !c->active || stat(path, &st) != 0)
        return sh_descriptor_load_named(path, out, name, err);
    entry e;
    if (find_old(c, file, &e)) {
        if (same_key(&e, &st)) {
            if (e.status == SH_S_OK) {
                sh_descriptor *d = use_valid(&e, path);
                if (d) {
                    *out = d;
                    if (name)
                        *name = NULL;
                    keep(c, &e);
                    stats.hits++;
                    return SH_S_OK;
                }
            } else if (e.status > SH_S_OK && e.status <= SH_S_NOMEM && e.payload_len < SH_ERROR_MESSAGE_MAX &&
                       !memchr(e.payload, '\0', e.payload_len)) {
                char *pname = e.name ? strndup((const char *)e.name, e.name_len) : NULL;
                if (!e.name || pname) {
                    *out = NULL;
                    if (name)
                        *name = pname;
                    else
                        free(pname);
                    keep(c, &e);
                    stats.hits++;
                    return sh_error_set(err, (sh_status)e.status, "%.*s", (int)e.payload_len,
                                        (const char *)e.payload);
                }
            }
        }
        c->cur_dirty = true; /* the entry is stale: replaced below, or dropped */
    }
    stats.misses++;
    /* Whether a refusal named the plugin decides whether it may be cached, so ask even if the caller does not. */
    char *local = NULL;
    char **np = name ? name : &local;
    sh_status rc = sh_descriptor_load_named(path, out, np, err);
    store(c, path, file, &st, rc, *out, *np, err);
    free(local);
    return rc;
}
