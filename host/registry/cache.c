/*
 * File layout (integers little-endian; a string is a u32 length, its bytes, then a NUL):
 *
 *   header  8-byte magic "SHREGCAC" | u32 SH_REGCACHE_FORMAT | u32 0 | u64 body length | u64 checksum of the body
 *   body    string key | u32 directory count | per directory:
 *             string path | string real path | i64 st_dev, st_ino, mtime_ns, ctime_ns | u32 listed |
 *             u32 entry count | u64 entries length | entries
 *   entry   u32 entry length | string file name | i64 size, mtime_ns, ctime_ns, st_ino | i32 status |
 *             u32 payload length | payload
 *
 * An entry's status is SH_S_OK with the descriptor's record (registry/cache_record.c) as payload, a refusal's status
 * with its message, or LISTED with no payload: the file is there but is parsed each time (modified too recently,
 * @include, or a refusal that names the plugin). Every descriptor file of a directory has an entry, in byte order
 * of file names, the order discovery lists them in: a scan walks the entries in step with the listing and copies
 * unchanged ones without decoding them.
 *
 * The key names the host version, SH_REGCACHE_SCHEMA, the descriptor format, the size of sh_descriptor and the
 * value codec version (a stage's function is recorded as a codec value): a file written by another build is
 * ignored and rebuilt. The rules that decide what may be answered from the file are in registry/cache.h.
 */
#include "registry/cache.h"
#include "util/buf.h"
#include "registry/cache_record.h"
#include "sh_config.h"
#include "value/codec.h"

#include <stagehost/abi.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define CACHE_FILE "registry-v2.cache"
/* The format 1 file of earlier builds: removed when this format's file is written, so it does not linger. */
#define OLD_CACHE_FILE "registry-v1.cache"
#define HEADER_SIZE 32
#define MAX_CACHE_BYTES ((size_t)1 << 30)
/* Directories scanned in this run come first; others are kept (while they exist) up to this many in all, so
 * that a host run over many temporary plugin directories does not grow the file without bound. */
#define MAX_DIRS 64
/* A file (or directory) modified less than this before the scan started is not trusted: a second change within
 * the same timestamp tick, with the same size, would go unseen (coarse kernel clocks, 1-2 s on some
 * filesystems). */
#define RACY_NS (2 * 1000000000LL)
#define MAX_DESCRIPTOR_BYTES (1u << 20)
#define LISTED (-1)

static const uint8_t magic[8] = {'S', 'H', 'R', 'E', 'G', 'C', 'A', 'C'};

static sh_regcache_stats stats;

void sh_regcache_get_stats(sh_regcache_stats *out) { *out = stats; }
void sh_regcache_reset_stats(void) { memset(&stats, 0, sizeof stats); }

/* A bounds-checked cursor over the file. */
typedef struct cur {
    const uint8_t *p, *end;
} cur;

typedef struct cdir {
    char *path;
    char *real; /* realpath(path): descriptors record their directory's, and the same inode can have several */
    int64_t dev, ino, mtime, ctime;
    bool listed;        /* the entries name every descriptor file the directory held at (mtime, ctime) */
    const uint8_t *ent; /* its entries: in the loaded file, or in fresh once a scan changed them */
    size_t ent_len;
    uint64_t ent_count;
    sh_buf fresh;
    bool scanned; /* in this run */
} cdir;

struct sh_regcache {
    int codec;  /* the value codec version of the records: SH_VALUE_CODEC_VERSION but in tests */
    char *dir;  /* the cache directory */
    char *file; /* dir/CACHE_FILE */
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
    int dfd;
    char *cur_real;
    int64_t cur_dev, cur_ino, cur_mtime, cur_ctime;
    bool complete;      /* every file so far got its entry */
    const char **names; /* the listing handed to discovery */
    cur old;            /* its old entries not yet walked past */
    uint64_t old_left;
    /* Its new entries. While every file is a hit, in order, they are the old ones: `mirror` says so and
     * mirror_end is where they end, and nothing is copied (a warm start copies nothing). */
    bool mirror;
    const uint8_t *old_base, *mirror_end;
    sh_buf fresh;
    uint64_t fresh_count;
    bool cur_dirty;
};

/* ---- encoding ---- */

static void put_str(sh_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n >= UINT32_MAX) {
        b->failed = 1;
        return;
    }
    sh_buf_u32(b, (uint32_t)n);
    sh_buf_append(b, s, n + 1);
}

static void put_i64(sh_buf *b, int64_t v) { sh_buf_u64(b, (uint64_t)v); }

static void patch_u32(sh_buf *b, size_t at, size_t v)
{
    if (b->failed || v > UINT32_MAX) {
        b->failed = 1;
        return;
    }
    for (int i = 0; i < 4; i++)
        b->data[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, 8); /* one load where the byte order allows */
#else
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
#endif
    return v;
}

static void set_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static bool rd_u32(cur *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return true;
}

static bool rd_i64(cur *r, int64_t *v)
{
    if (r->end - r->p < 8)
        return false;
    *v = (int64_t)get_u64(r->p);
    r->p += 8;
    return true;
}

/* A string: NUL-terminated in place, no NUL inside. */
static bool rd_str(cur *r, const char **s, size_t *n)
{
    uint32_t len;
    if (!rd_u32(r, &len) || (size_t)(r->end - r->p) <= len || r->p[len] != '\0' || memchr(r->p, '\0', len))
        return false;
    *s = (const char *)r->p;
    *n = len;
    r->p += (size_t)len + 1;
    return true;
}

static bool rd_bytes(cur *r, size_t n, const uint8_t **p)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    *p = r->p;
    r->p += n;
    return true;
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* Detects truncation and corruption, not tampering (the file is private to its owner). XXH3 reads at memory
 * speed: the check costs a fraction of a millisecond for 10,000 entries. */
static uint64_t checksum(const uint8_t *p, size_t n) { return XXH3_64bits(p, n); }

static int key_string(const sh_regcache *c, char *out, size_t size)
{
    /* The struct's size catches a descriptor change whose author forgot to bump the schema, most of the time. */
    return snprintf(out, size, "stagehost %s; schema %d; descriptor format %d; abi %d; descriptor %zu; value codec %d",
                    SH_VERSION, SH_REGCACHE_SCHEMA, SH_DESCRIPTOR_FORMAT, SH_ABI_MAJOR, sizeof(sh_descriptor),
                    c->codec);
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

/* The first candidate (sh_env's cache_dirs: the XDG rules) that is, or can be made, a writable directory. */
static char *pick_dir(const sh_strlist *candidates)
{
    for (size_t i = 0; i < candidates->len; i++) {
        char *dir = strdup(candidates->items[i]);
        if (dir && make_dirs(dir))
            return dir;
        free(dir);
    }
    return NULL;
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

static cdir *add_cdir(sh_regcache *c, const char *path)
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
    if (!(d->path = strdup(path)))
        return NULL;
    sh_buf_init(&d->fresh);
    c->ndirs++;
    return d;
}

static bool parse_body(sh_regcache *c, const uint8_t *body, size_t len)
{
    cur r = {body, body + len};
    char want[256];
    int wlen = key_string(c, want, sizeof want);
    const char *key;
    size_t klen;
    uint32_t count;
    if (!rd_str(&r, &key, &klen) || wlen < 0 || klen != (size_t)wlen || memcmp(key, want, klen) != 0 ||
        !rd_u32(&r, &count))
        return false;
    for (uint32_t i = 0; i < count; i++) {
        const char *path, *real;
        size_t plen, rlen;
        int64_t dev, ino, mtime, ctime, elen;
        uint32_t listed, n;
        const uint8_t *entries;
        if (!rd_str(&r, &path, &plen) || !rd_str(&r, &real, &rlen) || !rd_i64(&r, &dev) || !rd_i64(&r, &ino) ||
            !rd_i64(&r, &mtime) || !rd_i64(&r, &ctime) || !rd_u32(&r, &listed) || !rd_u32(&r, &n) ||
            !rd_i64(&r, &elen) || elen < 0 || !rd_bytes(&r, (size_t)elen, &entries) || n > (uint64_t)elen)
            return false;
        cdir *d = add_cdir(c, path);
        if (!d || !(d->real = strdup(real)))
            return false;
        d->dev = dev;
        d->ino = ino;
        d->mtime = mtime;
        d->ctime = ctime;
        d->listed = listed == 1;
        d->ent = entries;
        d->ent_len = (size_t)elen;
        d->ent_count = n;
    }
    return r.p == r.end;
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

sh_regcache *sh_regcache_open(const sh_env *env) { return sh_regcache_open_codec(env, SH_VALUE_CODEC_VERSION); }

sh_regcache *sh_regcache_open_codec(const sh_env *env, int codec)
{
    if (env->no_cache)
        return NULL;
    sh_regcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    c->start_ns = ns(now);
    c->codec = codec;
    c->dfd = -1;
    sh_buf_init(&c->fresh);
    if (!(c->dir = pick_dir(&env->cache_dirs)) || !(c->file = join(c->dir, CACHE_FILE))) {
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
    put_str(b, d->path);
    put_str(b, d->real);
    put_i64(b, d->dev);
    put_i64(b, d->ino);
    put_i64(b, d->mtime);
    put_i64(b, d->ctime);
    sh_buf_u32(b, d->listed);
    if (d->ent_count > UINT32_MAX)
        b->failed = 1;
    sh_buf_u32(b, (uint32_t)d->ent_count);
    put_i64(b, (int64_t)d->ent_len);
    sh_buf_append(b, d->ent, d->ent_len);
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
    if (key_string(c, key, sizeof key) < 0)
        return;
    put_str(&b, key);
    size_t count_at = b.len;
    sh_buf_u32(&b, 0);
    size_t written = 0;
    for (size_t i = 0; i < c->norder; i++, written++)
        put_section(&b, &c->dirs[c->order[i]]);
    for (size_t i = 0; i < c->ndirs && written < MAX_DIRS; i++)
        if (!c->dirs[i].scanned && c->dirs[i].real && still_there(&c->dirs[i])) {
            put_section(&b, &c->dirs[i]);
            written++;
        }
    patch_u32(&b, count_at, written);
    if (b.failed) {
        sh_buf_free(&b);
        return;
    }
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
        if (ok && rename(tmp, c->file) == 0) {
            stats.writes++;
            char *old = join(c->dir, OLD_CACHE_FILE);
            if (old)
                unlink(old);
            free(old);
        } else {
            unlink(tmp);
        }
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
    free(c->names);
    free(c->order);
    free(c->data);
    free(c->dir);
    free(c->file);
    free(c);
}

/* ---- scanning ---- */

typedef struct entry {
    const uint8_t *start;
    size_t len;
    const char *file;
    size_t file_len;
    int64_t size, mtime, ctime, ino;
    int32_t status;
    const uint8_t *payload;
    size_t payload_len;
} entry;

static bool read_entry(cur *r, entry *e)
{
    const uint8_t *start = r->p;
    uint32_t total, status, plen;
    cur in;
    if (!rd_u32(r, &total) || total < 4 || !rd_bytes(r, total - 4, &in.p))
        return false;
    in.end = in.p + (total - 4);
    if (!rd_str(&in, &e->file, &e->file_len) || !rd_i64(&in, &e->size) || !rd_i64(&in, &e->mtime) ||
        !rd_i64(&in, &e->ctime) || !rd_i64(&in, &e->ino) || !rd_u32(&in, &status) || !rd_u32(&in, &plen) ||
        !rd_bytes(&in, plen, &e->payload) || in.p != in.end)
        return false;
    e->status = (int32_t)status;
    e->payload_len = plen;
    e->start = start;
    e->len = total;
    return true;
}

/* The listing recorded in a section, as NUL-terminated names inside the loaded file; NULL when an entry is
 * unreadable (cannot happen past the checksum) or memory runs out. */
static const char **listing(const cdir *d)
{
    const char **names = malloc((d->ent_count ? d->ent_count : 1) * sizeof *names);
    cur r = {d->ent, d->ent + d->ent_len};
    for (uint64_t i = 0; names && i < d->ent_count; i++) {
        entry e;
        if (!read_entry(&r, &e)) {
            free(names);
            return NULL;
        }
        names[i] = e.file;
    }
    return names;
}

long sh_regcache_begin_dir(sh_regcache *c, const char *dir, int dfd, const char *real, const char *const **names)
{
    if (names)
        *names = NULL;
    if (!c)
        return -1;
    c->active = false;
    c->dfd = dfd;
    sh_buf_reset(&c->fresh);
    c->fresh.failed = 0;
    c->fresh_count = 0;
    c->old_left = 0;
    c->mirror = true;
    c->old_base = c->mirror_end = NULL;
    c->cur_dirty = false;
    c->complete = true;
    free(c->cur_real);
    c->cur_real = NULL;
    free(c->names);
    c->names = NULL;
    struct stat st;
    if (!real || fstat(dfd, &st) != 0 || !(c->cur_real = strdup(real)))
        return -1;
    size_t i = 0;
    while (i < c->ndirs && strcmp(c->dirs[i].path, dir) != 0)
        i++;
    if (i < c->ndirs && c->dirs[i].scanned)
        return -1; /* the same directory twice in one run: the first scan's section stands */
    if (i == c->ndirs) {
        if (!add_cdir(c, dir))
            return -1;
        c->cur_dirty = true;
    }
    cdir *d = &c->dirs[i];
    c->cur = i;
    c->cur_dev = (int64_t)st.st_dev;
    c->cur_ino = (int64_t)st.st_ino;
    c->cur_mtime = ns(st.st_mtim);
    c->cur_ctime = ns(st.st_ctim);
    bool same_dir = d->ent && d->dev == c->cur_dev && d->ino == c->cur_ino && d->real && strcmp(d->real, real) == 0;
    if (same_dir) {
        c->old = (cur){d->ent, d->ent + d->ent_len};
        c->old_left = d->ent_count;
        c->old_base = c->mirror_end = d->ent;
    } else if (d->ent) {
        c->cur_dirty = true; /* a different directory now goes by this path: nothing of it applies */
    }
    bool unchanged = d->mtime == c->cur_mtime && d->ctime == c->cur_ctime;
    c->cur_dirty = c->cur_dirty || !unchanged;
    c->active = true;
    /* Creating, removing or renaming an entry sets the directory's mtime and ctime; nobody can set a ctime
     * back, and the section was only marked listed if that ctime was already old when it was recorded. */
    if (!names || !same_dir || !d->listed || !unchanged || d->ent_count > LONG_MAX || !(c->names = listing(d)))
        return -1;
    stats.listings++;
    *names = c->names;
    return (long)d->ent_count;
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
    c->dfd = -1;
    if (c->old_left)
        c->cur_dirty = true; /* entries for files that are gone */
    cdir *d = &c->dirs[c->cur];
    /* A listing read within the racy window could miss an entry created in the same tick, after it. */
    bool listed = c->complete && c->cur_ctime < c->start_ns - RACY_NS;
    c->cur_dirty = c->cur_dirty || listed != d->listed;
    if (c->cur_dirty)
        unmirror(c);
    size_t *order = realloc(c->order, (c->norder + 1) * sizeof *order);
    if (order)
        c->order = order;
    if (!order || c->fresh.failed)
        return; /* out of memory: keep the old section, which the next run checks entry by entry anyway */
    c->order[c->norder++] = c->cur;
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
    d->ctime = c->cur_ctime;
    d->listed = listed;
    d->scanned = true;
    c->dirty = c->dirty || c->cur_dirty;
}

/* Byte order, as discovery sorts names (strcmp compares unsigned bytes too). */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
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
        cur save = c->old;
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

/* A cached valid descriptor, if its library is still there: a library that vanished must make the descriptor
 * invalid exactly as a parse would (the caller then parses, for the exact message). */
static sh_descriptor *use_valid(sh_regcache *c, const entry *e, const char *path, sh_descriptor_dir *dir)
{
    sh_descriptor *d = sh_descriptor_blob_get(e->payload, e->payload_len, path, c->cur_real);
    int ignored;
    if (d && !sh_descriptor_library_regular(dir, d->library_path, &ignored)) {
        sh_descriptor_free(d);
        d = NULL;
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

/* Records the file's entry after a parse: the result when it may be reused, else LISTED. `old` is the file's
 * previous entry with the same key, if any. */
static void store(sh_regcache *c, const char *path, const char *file, const struct stat *st, sh_status rc,
                  const sh_descriptor *d, const char *name, const sh_error *err, const entry *old)
{
    if (rc == SH_S_NOMEM) {
        c->complete = false;
        return;
    }
    /* A refusal that names the plugin came late enough to be about the library, which may appear anywhere
     * later: such refusals are parsed again each time (they are rare). */
    bool reuse = ns(st->st_mtim) < c->start_ns - RACY_NS && (rc == SH_S_OK || (!name && err)) &&
                 self_contained(path);
    if (!reuse && old && old->status == LISTED) {
        keep(c, old);
        return;
    }
    unmirror(c);
    sh_buf *b = &c->fresh;
    size_t at = b->len;
    sh_buf_u32(b, 0);
    put_str(b, file);
    put_i64(b, (int64_t)st->st_size);
    put_i64(b, ns(st->st_mtim));
    put_i64(b, ns(st->st_ctim));
    put_i64(b, (int64_t)st->st_ino);
    size_t status_at = b->len;
    sh_buf_u32(b, (uint32_t)(reuse ? (int32_t)rc : LISTED));
    size_t payload_at = b->len;
    sh_buf_u32(b, 0);
    if (reuse && rc == SH_S_OK && !sh_descriptor_blob_put(b, d)) {
        /* Cannot be recorded (out of memory): listed only. */
        if (!b->failed) {
            b->len = payload_at + 4;
            patch_u32(b, status_at, (uint32_t)LISTED);
        }
    } else if (reuse && rc != SH_S_OK) {
        sh_buf_append(b, err->message, strlen(err->message));
    }
    patch_u32(b, payload_at, b->len - payload_at - 4);
    patch_u32(b, at, b->len - at);
    if (b->failed)
        c->complete = false;
    c->fresh_count++;
    c->cur_dirty = true;
}

sh_status sh_regcache_load(sh_regcache *c, const char *path, const char *file, sh_descriptor_dir *dir,
                           sh_descriptor **out, char **name, sh_error *err)
{
    struct stat st;
    if (!c || !c->active)
        return sh_descriptor_load_in(path, dir, out, name, err);
    if (fstatat(c->dfd, file, &st, 0) != 0) {
        c->complete = false; /* gone since the listing: the next run reads the directory again */
        return sh_descriptor_load_in(path, dir, out, name, err);
    }
    entry e;
    bool have = find_old(c, file, &e) && same_key(&e, &st);
    if (have && e.status == SH_S_OK) {
        sh_descriptor *d = use_valid(c, &e, path, dir);
        if (d) {
            *out = d;
            if (name)
                *name = NULL;
            keep(c, &e);
            stats.hits++;
            return SH_S_OK;
        }
    } else if (have && e.status > SH_S_OK && e.status <= SH_S_NOMEM && e.payload_len < SH_ERROR_MESSAGE_MAX &&
               !memchr(e.payload, '\0', e.payload_len)) {
        *out = NULL;
        if (name)
            *name = NULL;
        keep(c, &e);
        stats.hits++;
        return sh_error_set(err, (sh_status)e.status, "%.*s", (int)e.payload_len, (const char *)e.payload);
    }
    if (!have || e.status != LISTED)
        c->cur_dirty = true; /* a stale entry, or none: replaced below */
    stats.misses++;
    /* Whether a refusal named the plugin decides whether it may be reused, so ask even if the caller does not. */
    char *local = NULL;
    char **np = name ? name : &local;
    sh_status rc = sh_descriptor_load_in(path, dir, out, np, err);
    store(c, path, file, &st, rc, *out, *np, err, have ? &e : NULL);
    free(local);
    return rc;
}
