/* Unit tests for the registry cache: a cached discovery must give exactly what a parse gives, and any change to a
 * descriptor, its directory, its library or the cache file itself must be noticed. Hits and parses are told apart
 * by the cache's counters. Descriptor files get explicit past mtimes: the cache refuses files modified in the last
 * seconds, whose next change could keep the same timestamp. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "worker/spawn_request.h"
#include "registry/discovery.h"
#include "registry/cache.h"
#include "registry/registry.h"
#include "registry/version.h"
#include "testutil.h"
#include "value/codec.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    char root[PATH_MAX];
    char plugins[PATH_MAX + 16];
    char cache_dir[PATH_MAX + 16];
    char cache_file[PATH_MAX + 64];
} fixture;

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static time_t stamp = 1600000000; /* every backdated file gets its own second */

/* Gives `path` an mtime in the past, with nanoseconds, distinct from any earlier one. */
static void backdate(const char *path)
{
    ++stamp;
    struct timespec ts[2] = {{.tv_sec = stamp, .tv_nsec = 123456789}, {.tv_sec = stamp, .tv_nsec = 123456789}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void write_old(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    tu_write_file(path, text);
    backdate(path);
}

/* A valid descriptor of plugin `name`, with `extra` lines. */
static void write_plugin(const char *dir, const char *file, const char *name, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "format = 1;\n"
             "name = \"%s\";\n"
             "version = \"1.2.3\";\n"
             "library = \"libdummy.so\";\n"
             "abi = \"1.0\";\n"
             "isolation = \"call\";\n"
             "%s\n"
             "limits = { timeout_ms = 5000; memory_mb = 64; };\n"
             "permissions = { network = true; read = [ \"/etc\" ]; env = [ \"LANG\" ]; };\n"
             "stages = (\n"
             "  { type = \"chunk\"; input = \"document\"; output = \"chunk\"; description = \"splits\"; },\n"
             "  { type = \"upper\"; }\n"
             ");\n",
             name, extra);
    write_old(dir, file, text);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (!tu_mkdtemp(fx->root, sizeof fx->root, "sh-regcache")) {
        free(fx);
        return -1;
    }
    snprintf(fx->plugins, sizeof fx->plugins, "%s/plugins", fx->root);
    snprintf(fx->cache_dir, sizeof fx->cache_dir, "%s/cache", fx->root);
    snprintf(fx->cache_file, sizeof fx->cache_file, "%s/registry-v2.cache", fx->cache_dir);
    if (mkdir(fx->plugins, 0755) != 0)
        return -1;
    char lib[PATH_MAX + 64];
    snprintf(lib, sizeof lib, "%s/libdummy.so", fx->plugins);
    tu_write_file(lib, "not a library: discovery never loads it\n");
    setenv("STAGEHOST_CACHE_DIR", fx->cache_dir, 1);
    unsetenv("STAGEHOST_NO_CACHE");
    sh_regcache_reset_stats();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = tu_remove_tree(fx->root);
    unsetenv("STAGEHOST_CACHE_DIR");
    unsetenv("STAGEHOST_NO_CACHE");
    free(fx);
    return rc;
}

/* The environment as it is now: the host reads it once, when it starts, and each discovery here stands for a
 * start after the test's setenv calls. Valid until the next call. */
static const sh_env *env_now(void)
{
    static sh_env env;
    sh_env_free(&env);
    assert_int_equal(sh_env_capture(&env, NULL), SH_S_OK);
    return &env;
}

static sh_regcache_stats discover(sh_registry *reg, const char *dir)
{
    sh_regcache_reset_stats();
    sh_registry_init(reg);
    sh_error err;
    sh_error_clear(&err);
    sh_status rc = sh_discover_dir(reg, env_now(), dir, &err);
    if (rc != SH_S_OK)
        print_error("%s\n", err.message);
    assert_int_equal(rc, SH_S_OK);
    sh_regcache_stats s;
    sh_regcache_get_stats(&s);
    return s;
}

static void discover_uncached(sh_registry *reg, const char *dir)
{
    setenv("STAGEHOST_NO_CACHE", "1", 1);
    sh_regcache_stats s = discover(reg, dir);
    unsetenv("STAGEHOST_NO_CACHE");
    assert_int_equal(s.hits + s.misses + s.loads + s.writes, 0);
}

static void same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void same_list(const sh_strlist *a, const sh_strlist *b)
{
    assert_int_equal(a->len, b->len);
    for (size_t i = 0; i < a->len; i++)
        assert_string_equal(a->items[i], b->items[i]);
}

/* Every entry alike: path, name, status, reason, and the descriptor both as a value and in the fields the value
 * form does not carry (yet). */
static void assert_same_registry(const sh_registry *a, const sh_registry *b)
{
    assert_int_equal(a->len, b->len);
    for (size_t i = 0; i < a->len; i++) {
        const sh_registry_entry *x = &a->entries[i], *y = &b->entries[i];
        assert_string_equal(x->path, y->path);
        same_str(x->name, y->name);
        assert_int_equal(x->status, y->status);
        same_str(x->reason, y->reason);
        assert_true((x->desc == NULL) == (y->desc == NULL));
        if (!x->desc)
            continue;
        sh_value *vx = sh_descriptor_to_value(x->desc), *vy = sh_descriptor_to_value(y->desc);
        assert_non_null(vx);
        assert_non_null(vy);
        assert_true(sh_value_equal(vx, vy));
        sh_value_free(vx);
        sh_value_free(vy);
        assert_int_equal(x->desc->format, y->desc->format);
        same_str(x->desc->description, y->desc->description);
        assert_int_equal(x->desc->priority, y->desc->priority);
        same_list(&x->desc->requires, &y->desc->requires);
    }
}

/* Discovers `dir` with the cache and without it; they must agree. Returns the cached run's counters. */
static sh_regcache_stats check_dir(const char *dir)
{
    sh_registry cached, plain;
    sh_regcache_stats s = discover(&cached, dir);
    discover_uncached(&plain, dir);
    assert_same_registry(&cached, &plain);
    sh_registry_free(&cached);
    sh_registry_free(&plain);
    return s;
}

static void five_plugins(fixture *fx)
{
    write_plugin(fx->plugins, "a.plugin", "acme/a", "");
    write_plugin(fx->plugins, "b.plugin", "acme/b", "entry = \"acme_b_entry\";");
    write_plugin(fx->plugins, "c.plugin", "acme/c", "");
    write_plugin(fx->plugins, "d.plugin", "acme/a", ""); /* refused: a.plugin has the name in this directory */
    write_plugin(fx->plugins, "e.plugin", "acme/e", "");
}

static void test_cold_writes_warm_hits(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    struct stat st;
    assert_int_not_equal(stat(fx->cache_file, &st), 0);

    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 0);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 5);
    assert_int_equal(s.writes, 1);
    assert_int_equal(stat(fx->cache_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Warm: every descriptor from the cache, and nothing to write back. */
    s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 1);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.writes, 0);

    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 5);
    assert_int_equal(reg.entries[3].status, SH_PLUGIN_UNAVAILABLE);
    assert_non_null(strstr(reg.entries[3].reason, "same directory"));
    assert_string_equal(reg.entries[1].desc->entry, "acme_b_entry");
    assert_int_equal(reg.entries[0].desc->stage_count, 2);
    assert_string_equal(reg.entries[0].desc->stages[0].description, "splits");
    assert_null(reg.entries[0].desc->stages[1].description);
    sh_registry_free(&reg);
}

/* description, priority and requires: whatever the value form carries, a cached discovery returns them. */
static void test_every_field_survives(void **state)
{
    fixture *fx = *state;
    write_plugin(fx->plugins, "full.plugin", "acme/full",
                 "description = \"all of it\"; priority = 7; requires = [ \"core/io >= 1.0\" ];");
    write_plugin(fx->plugins, "plain.plugin", "acme/plain", "");
    check_dir(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits + s.misses, 2);
    assert_true(s.hits >= 1);
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_string_equal(reg.entries[0].desc->description, "all of it");
    assert_int_equal(reg.entries[0].desc->priority, 7);
    assert_int_equal(reg.entries[0].desc->requires.len, 1);
    sh_registry_free(&reg);
}

static void test_changed_file_is_reparsed(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    check_dir(fx->plugins);

    /* A new mtime alone, same size and content. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/b.plugin", fx->plugins);
    backdate(path);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 4);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.writes, 1);

    /* Only the nanoseconds of the mtime differ. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct timespec ts[2] = {st.st_mtim, st.st_mtim};
    ts[0].tv_nsec = ts[1].tv_nsec = 987654321;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.misses, 1);

    /* Another size, with the old mtime put back (the ctime moves too: no user can keep it). */
    snprintf(path, sizeof path, "%s/c.plugin", fx->plugins);
    assert_int_equal(stat(path, &st), 0);
    write_plugin(fx->plugins, "c.plugin", "acme/c", "entry = \"other\";");
    ts[0] = ts[1] = st.st_mtim;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 4);
    assert_int_equal(s.misses, 1);
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_string_equal(reg.entries[2].desc->entry, "other");
    sh_registry_free(&reg);

    /* And settled again. */
    s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses + s.writes, 0);
}

static void test_new_and_deleted_files(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    check_dir(fx->plugins);

    write_plugin(fx->plugins, "bb.plugin", "acme/bb", "");
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.writes, 1);

    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/a.plugin", fx->plugins);
    assert_int_equal(unlink(path), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.writes, 1);

    /* d.plugin was refused for a.plugin's name; without it, d is the available acme/a. */
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 5);
    assert_string_equal(reg.entries[3].desc->name, "acme/a");
    assert_int_equal(reg.entries[3].status, SH_PLUGIN_AVAILABLE);
    sh_registry_free(&reg);

    /* Settled. */
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes, 0);
}

static void corrupt_and_check(fixture *fx, void (*damage)(const char *path))
{
    check_dir(fx->plugins);
    damage(fx->cache_file);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 0);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 5);
    assert_int_equal(s.writes, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 1);
    assert_int_equal(s.hits, 5);
}

static void flip_middle(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 100);
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    assert_int_equal(fclose(f), 0);
}

static void flip_header(const char *path)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, 17), 1);
    c ^= 1;
    assert_int_equal(pwrite(fd, &c, 1, 17), 1);
    close(fd);
}

static void flip_last(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, st.st_size - 1), 1);
    c ^= 0x80;
    assert_int_equal(pwrite(fd, &c, 1, st.st_size - 1), 1);
    close(fd);
}

static void truncate_half(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void truncate_tiny(const char *path) { assert_int_equal(truncate(path, 10), 0); }
static void truncate_empty(const char *path) { assert_int_equal(truncate(path, 0), 0); }
static void garbage(const char *path) { tu_write_file(path, "SHREGCAC but nothing a cache would hold\n"); }

/* Writable by others: not trusted, whatever it holds. */
static void group_writable(const char *path) { assert_int_equal(chmod(path, 0660), 0); }

static void test_corrupt_cache_is_rebuilt(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    void (*damages[])(const char *) = {flip_middle,   flip_header,    flip_last, truncate_half,
                                       truncate_tiny, truncate_empty, garbage,   group_writable};
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++)
        corrupt_and_check(fx, damages[i]);
}

/* A cache written by a stagehost with another value codec version is ignored and rebuilt: its records hold codec
 * values (function stages) that this codec may read otherwise. */
static void test_other_codec_version_is_rebuilt(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    check_dir(fx->plugins);

    /* This build's file, opened as another codec version: not loaded, and rewritten under that version. */
    sh_regcache_reset_stats();
    sh_regcache *c = sh_regcache_open_codec(env_now(), SH_VALUE_CODEC_VERSION + 1);
    assert_non_null(c);
    sh_regcache_close(c);
    sh_regcache_stats s;
    sh_regcache_get_stats(&s);
    assert_int_equal(s.loads, 0);
    assert_int_equal(s.writes, 1);
    sh_regcache_reset_stats();
    sh_regcache_close(sh_regcache_open_codec(env_now(), SH_VALUE_CODEC_VERSION + 1));
    sh_regcache_get_stats(&s);
    assert_int_equal(s.loads, 1); /* ...which that version accepts */

    /* And this build ignores that file: every descriptor parsed again, the file rewritten. */
    s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 0);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 5);
    assert_int_equal(s.writes, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.loads, 1);
    assert_int_equal(s.hits, 5);
}

static void test_unwritable_cache_dir(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    /* Under a regular file: not creatable, even by root. */
    char blocker[PATH_MAX + 32], dir[PATH_MAX + 64];
    snprintf(blocker, sizeof blocker, "%s/blocker", fx->root);
    tu_write_file(blocker, "a file, not a directory\n");
    snprintf(dir, sizeof dir, "%s/cache", blocker);
    setenv("STAGEHOST_CACHE_DIR", dir, 1);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.writes + s.loads + s.hits, 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes + s.loads + s.hits, 0);

    /* The cache directory is a file itself. */
    setenv("STAGEHOST_CACHE_DIR", blocker, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes + s.loads + s.hits, 0);

    /* Defaults: no XDG_CACHE_HOME and a HOME that cannot hold .cache. */
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    unsetenv("STAGEHOST_CACHE_DIR");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", blocker, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes + s.loads + s.hits, 0);
    /* A relative XDG_CACHE_HOME is ignored, as the XDG specification says; HOME is used instead. */
    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    setenv("HOME", fx->root, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes, 1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/.cache/stagehost/registry-v2.cache", fx->root);
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    /* An absolute one wins. */
    char xdg_dir[PATH_MAX + 16];
    snprintf(xdg_dir, sizeof xdg_dir, "%s/xdg", fx->root);
    setenv("XDG_CACHE_HOME", xdg_dir, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.writes, 1);
    snprintf(want, sizeof want, "%s/xdg/stagehost/registry-v2.cache", fx->root);
    assert_int_equal(stat(want, &st), 0);

    if (home)
        setenv("HOME", home, 1);
    else
        unsetenv("HOME");
    if (xdg)
        setenv("XDG_CACHE_HOME", xdg, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(home);
    free(xdg);
}

static void test_no_cache_bypasses(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    setenv("STAGEHOST_NO_CACHE", "1", 1);
    sh_registry reg;
    sh_regcache_stats s = discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 5);
    sh_registry_free(&reg);
    assert_int_equal(s.hits + s.misses + s.loads + s.writes, 0);
    struct stat st;
    assert_int_not_equal(stat(fx->cache_dir, &st), 0);

    /* With a cache in place, it is not even read. */
    unsetenv("STAGEHOST_NO_CACHE");
    check_dir(fx->plugins);
    setenv("STAGEHOST_NO_CACHE", "1", 1);
    s = discover(&reg, fx->plugins);
    sh_registry_free(&reg);
    assert_int_equal(s.hits + s.misses + s.loads + s.writes, 0);
    /* "0" and "" mean no. */
    setenv("STAGEHOST_NO_CACHE", "0", 1);
    s = discover(&reg, fx->plugins);
    sh_registry_free(&reg);
    assert_int_equal(s.hits, 5);
    setenv("STAGEHOST_NO_CACHE", "", 1);
    s = discover(&reg, fx->plugins);
    sh_registry_free(&reg);
    assert_int_equal(s.hits, 5);
}

static void test_invalid_descriptors(void **state)
{
    fixture *fx = *state;
    write_plugin(fx->plugins, "a.plugin", "acme/a", "");
    write_old(fx->plugins, "b.plugin", "format = 1;\nname = \"acme/b\"\nversion = ;\n");       /* syntax */
    write_old(fx->plugins, "c.plugin", "format = 2;\nname = \"acme/c\";\n");                   /* format */
    write_old(fx->plugins, "d.plugin", "format = 1;\nname = \"Bad Name\";\n");                 /* name */
    write_old(fx->plugins, "e.plugin", "format = 1;\nnmae = \"acme/e\";\n");                   /* unknown key */
    write_old(fx->plugins, "f.plugin", "format = 1;\nname = \"acme/f\";\nversion = \"x\";\n"); /* named */
    write_old(fx->plugins, "h.plugin",
              "format = 1;\nname = \"acme/h\";\nversion = \"1.0.0\";\nlibrary = \"libmissing.so\";\nabi = \"1.0\";\n"
              "stages = ( { type = \"t\"; } );\n");
    check_dir(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    /* Refusals that happen before the name is known depend on the file alone, and are cached with their message;
     * later ones may be about the library, which can appear at any time: parsed again. Which refusals know the
     * name is the parser's business, so count them. */
    sh_registry reg;
    discover_uncached(&reg, fx->plugins);
    unsigned long unnamed = 0;
    for (size_t i = 0; i < reg.len; i++)
        unnamed += !reg.entries[i].desc && !reg.entries[i].name;
    sh_registry_free(&reg);
    assert_true(unnamed >= 2); /* the syntax error and the bad name at least */
    assert_int_equal(s.hits, 1 + unnamed);
    assert_int_equal(s.misses, 6 - unnamed);
    assert_int_equal(s.writes, 0);

    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 7);
    for (size_t i = 1; i < 7; i++)
        assert_int_equal(reg.entries[i].status, SH_PLUGIN_UNAVAILABLE);
    assert_non_null(strstr(reg.entries[1].reason, "syntax error"));
    assert_non_null(strstr(reg.entries[2].reason, "format 2"));
    assert_null(reg.entries[3].name);
    assert_string_equal(reg.entries[5].name, "acme/f");
    assert_non_null(strstr(reg.entries[6].reason, "libmissing.so"));
    assert_string_equal(reg.entries[6].name, "acme/h");
    sh_registry_free(&reg);

    /* The missing library appears: h becomes valid at once. */
    char lib[PATH_MAX + 64];
    snprintf(lib, sizeof lib, "%s/libmissing.so", fx->plugins);
    tu_write_file(lib, "x\n");
    check_dir(fx->plugins);
    discover(&reg, fx->plugins);
    assert_int_equal(reg.entries[6].status, SH_PLUGIN_AVAILABLE);
    sh_registry_free(&reg);
}

/* A cached descriptor whose library disappears is invalid exactly as without the cache; back when it returns. */
static void test_library_removed(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    check_dir(fx->plugins);
    char lib[PATH_MAX + 64], moved[PATH_MAX + 64];
    snprintf(lib, sizeof lib, "%s/libdummy.so", fx->plugins);
    snprintf(moved, sizeof moved, "%s/libdummy.so.away", fx->root);
    assert_int_equal(rename(lib, moved), 0);
    check_dir(fx->plugins);
    sh_registry reg;
    discover(&reg, fx->plugins);
    for (size_t i = 0; i < reg.len; i++) {
        assert_int_equal(reg.entries[i].status, SH_PLUGIN_UNAVAILABLE);
        assert_non_null(strstr(reg.entries[i].reason, "not found"));
    }
    sh_registry_free(&reg);

    /* A directory where the library was: not a regular file. */
    assert_int_equal(mkdir(lib, 0755), 0);
    check_dir(fx->plugins);
    assert_int_equal(rmdir(lib), 0);

    assert_int_equal(rename(moved, lib), 0);
    check_dir(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
}

/* A file modified just now could change again within the same timestamp tick: it is parsed until it ages. */
static void test_fresh_file_not_cached(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/z.plugin", fx->plugins);
    tu_write_file(path, "format = 1;\nname = \"acme/z\";\nversion = \"1.0.0\";\nlibrary = \"libdummy.so\";\n"
                     "abi = \"1.0\";\nstages = ( { type = \"t\"; } );\n");
    /* "Just now", however slow this machine is: a minute ahead (a clock ahead of ours counts as recent too). */
    struct timespec ts[2] = {{.tv_sec = time(NULL) + 60}, {.tv_sec = time(NULL) + 60}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    check_dir(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.writes, 0);
    backdate(path);
    check_dir(fx->plugins);
    s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 6);
}

/* Descriptors that @include other files depend on files the cache does not watch. */
static void test_include_not_cached(void **state)
{
    fixture *fx = *state;
    char inc[PATH_MAX + 64], text[PATH_MAX + 512];
    snprintf(inc, sizeof inc, "%s/common.inc", fx->root);
    tu_write_file(inc, "version = \"1.0.0\";\n");
    snprintf(text, sizeof text,
             "format = 1;\nname = \"acme/inc\";\n@include \"%s\"\nlibrary = \"libdummy.so\";\nabi = \"1.0\";\n"
             "stages = ( { type = \"t\"; } );\n",
             inc);
    write_old(fx->plugins, "inc.plugin", text);
    check_dir(fx->plugins);
    tu_write_file(inc, "version = \"2.0.0\";\n");
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 0);
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_string_equal(reg.entries[0].desc->version, "2.0.0");
    sh_registry_free(&reg);
}

/* One cache file for the whole search path, read once and written once; directories on it keep their sections
 * when another run scans other directories. */
static void test_search_path(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/other", fx->root);
    assert_int_equal(mkdir(other, 0755), 0);
    char lib[PATH_MAX + 64];
    snprintf(lib, sizeof lib, "%s/libdummy.so", other);
    tu_write_file(lib, "x\n");
    write_plugin(other, "a.plugin", "acme/a", ""); /* shadowed by the first directory's */
    write_plugin(other, "x.plugin", "acme/x", "");
    setenv("STAGEHOST_SYSTEM_PLUGIN_PATH", other, 1);
    const char *cli[] = {fx->plugins};
    sh_registry cached, plain;
    sh_error err;
    for (int round = 0; round < 2; round++) {
        sh_regcache_reset_stats();
        sh_registry_init(&cached);
        assert_int_equal(sh_discover(&cached, env_now(), cli, 1, NULL, &err), SH_S_OK);
        sh_regcache_stats s;
        sh_regcache_get_stats(&s);
        assert_int_equal(s.loads, (unsigned long)round);
        assert_int_equal(s.hits, round ? 7u : 0u);
        assert_int_equal(s.writes, round ? 0u : 1u);
        setenv("STAGEHOST_NO_CACHE", "1", 1);
        sh_registry_init(&plain);
        assert_int_equal(sh_discover(&plain, env_now(), cli, 1, NULL, &err), SH_S_OK);
        unsetenv("STAGEHOST_NO_CACHE");
        assert_same_registry(&cached, &plain);
        assert_int_equal(cached.len, 7);
        assert_int_equal(cached.entries[5].status, SH_PLUGIN_SHADOWED);
        sh_registry_free(&cached);
        sh_registry_free(&plain);
    }
    setenv("STAGEHOST_SYSTEM_PLUGIN_PATH", "", 1);

    /* A run over the first directory alone, which rewrites the cache, keeps the other's section. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/a.plugin", fx->plugins);
    backdate(path);
    assert_int_equal(check_dir(fx->plugins).writes, 1);
    sh_regcache_stats s = check_dir(other);
    assert_int_equal(s.hits, 2);
}

/* The same relative path names different directories from different working directories. */
static void test_relative_dir_identity(void **state)
{
    fixture *fx = *state;
    char a[PATH_MAX + 16], b[PATH_MAX + 16], sub[PATH_MAX + 32], lib[PATH_MAX + 64], cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(a, sizeof a, "%s/wa", fx->root);
    snprintf(b, sizeof b, "%s/wb", fx->root);
    const char *dirs[] = {a, b};
    const char *names[] = {"acme/a", "acme/b"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mkdir(dirs[i], 0755), 0);
        snprintf(sub, sizeof sub, "%s/plugins", dirs[i]);
        assert_int_equal(mkdir(sub, 0755), 0);
        snprintf(lib, sizeof lib, "%s/libdummy.so", sub);
        tu_write_file(lib, "x\n");
        write_plugin(sub, "p.plugin", names[i], "");
        /* The same mtime too: only the directory's (and file's) identity tells them apart. */
        snprintf(lib, sizeof lib, "%s/p.plugin", sub);
        struct timespec ts[2] = {{.tv_sec = 1500000000}, {.tv_sec = 1500000000}};
        assert_int_equal(utimensat(AT_FDCWD, lib, ts, 0), 0);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 2; i++) {
            assert_int_equal(chdir(dirs[i]), 0);
            sh_registry reg;
            discover(&reg, "plugins");
            assert_int_equal(reg.len, 1);
            assert_string_equal(reg.entries[0].desc->name, names[i]);
            assert_string_equal(reg.entries[0].path, "plugins/p.plugin");
            sh_registry_free(&reg);
        }
    assert_int_equal(chdir(cwd), 0);
}

/* The directory reached through a symbolic link: what the link points to now counts, even when the directory is
 * the same inode under another real path (descriptors record their directory's real path). */
static void test_symlinked_dir(void **state)
{
    fixture *fx = *state;
    char x[PATH_MAX + 16], y[PATH_MAX + 16], link[PATH_MAX + 16], dir[PATH_MAX + 32], sub[PATH_MAX + 32],
        lib[PATH_MAX + 64];
    snprintf(x, sizeof x, "%s/x", fx->root);
    snprintf(y, sizeof y, "%s/y", fx->root);
    snprintf(link, sizeof link, "%s/link", fx->root);
    snprintf(dir, sizeof dir, "%s/plugins", link);
    assert_int_equal(mkdir(x, 0755), 0);
    snprintf(sub, sizeof sub, "%s/plugins", x);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(lib, sizeof lib, "%s/libdummy.so", sub);
    tu_write_file(lib, "x\n");
    write_plugin(sub, "p.plugin", "acme/p", "");
    assert_int_equal(symlink(x, link), 0);
    check_dir(dir);
    assert_int_equal(check_dir(dir).hits, 1);

    /* x becomes y (the same inodes), link follows it, and a new x holds a library where the old one was. */
    assert_int_equal(rename(x, y), 0);
    assert_int_equal(mkdir(x, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    tu_write_file(lib, "x\n");
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink(y, link), 0);
    sh_regcache_stats s = check_dir(dir);
    assert_int_equal(s.hits, 0);
    sh_registry reg;
    discover(&reg, dir);
    assert_non_null(strstr(reg.entries[0].desc->library_path, "/y/plugins/"));
    sh_registry_free(&reg);
}

/* A scan that discovery abandons (an error) leaves the cache as it was. */
static void test_unfinished_scan(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    char other[PATH_MAX + 16], path[PATH_MAX + 64];
    snprintf(other, sizeof other, "%s/other", fx->root);
    assert_int_equal(mkdir(other, 0755), 0);
    write_plugin(other, "a.plugin", "acme/a", "");
    snprintf(path, sizeof path, "%s/a.plugin", other);
    check_dir(fx->plugins);
    for (int damaged = 0; damaged < 2; damaged++) {
        if (damaged)
            truncate_half(fx->cache_file); /* so that closing writes */
        sh_regcache *c = sh_regcache_open(env_now());
        assert_non_null(c);
        int dfd = open(other, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char *real = realpath(other, NULL);
        assert_true(dfd >= 0 && real);
        sh_regcache_begin_dir(c, other, dfd, real, NULL);
        sh_descriptor_dir info = {.real = real};
        sh_descriptor *d = NULL;
        char *name = NULL;
        sh_error err;
        assert_int_equal(sh_regcache_load(c, path, "a.plugin", &info, &d, &name, &err), SH_S_CONFIG);
        sh_descriptor_free(d);
        free(name);
        sh_regcache_close(c);
        sh_descriptor_dir_release(&info);
        close(dfd);
        free(real);
        if (damaged)
            check_dir(fx->plugins);
        sh_regcache_stats s = check_dir(fx->plugins);
        assert_int_equal(s.hits, 5);
    }
}

/* Waits until the directory's last change (its ctime) is more than the cache's 2 s racy window old: only then
 * does the cache trust its listing. The ctime cannot be backdated. */
static void let_dir_settle(const char *dir)
{
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double age = (double)(now.tv_sec - st.st_ctim.tv_sec) + (double)(now.tv_nsec - st.st_ctim.tv_nsec) / 1e9;
        if (age > 2.2)
            return;
        usleep((useconds_t)((2.3 - age) * 1e6));
    }
}

/* The rule for a directory: its listing comes from the cache while its mtime and ctime are those recorded (and
 * the ctime was old then), and every file is still checked on its own. */
static void test_directory_listing(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    let_dir_settle(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 0);
    assert_int_equal(s.writes, 1);
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 1);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses + s.writes, 0);

    /* Edited in place, same size, its mtime put back: the directory does not change, the file's ctime does. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/b.plugin", fx->plugins);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    write_plugin(fx->plugins, "b.plugin", "acme/b", "entry = \"acme_b_other\";");
    struct timespec ts[2] = {before.st_mtim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(ns_of(after.st_mtim), ns_of(before.st_mtim));
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 1);
    assert_int_equal(s.hits, 4);
    assert_int_equal(s.misses, 1);
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_string_equal(reg.entries[1].desc->entry, "acme_b_other");
    sh_registry_free(&reg);

    /* A library replaced by another file: nothing a parse says changes, so the entries still answer. */
    char lib[PATH_MAX + 64], fresh[PATH_MAX + 64];
    snprintf(lib, sizeof lib, "%s/libdummy.so", fx->plugins);
    snprintf(fresh, sizeof fresh, "%s/libdummy.so.new", fx->root);
    tu_write_file(fresh, "another build of the library\n");
    assert_int_equal(rename(fresh, lib), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses, 0);

    /* A file created, the directory's mtime then put back: its ctime still moved, so the listing is read. */
    assert_int_equal(stat(fx->plugins, &before), 0);
    write_plugin(fx->plugins, "f.plugin", "acme/f", "");
    ts[0] = ts[1] = before.st_mtim;
    assert_int_equal(utimensat(AT_FDCWD, fx->plugins, ts, 0), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 0);
    assert_int_equal(s.misses, 1);
    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 6);
    assert_string_equal(reg.entries[5].name, "acme/f");
    sh_registry_free(&reg);

    /* Changed within the racy window: not trusted until a scan finds it settled. */
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 0);
    assert_int_equal(s.hits, 6);

    /* A file removed (its directory changes): gone from the registry at once. */
    snprintf(path, sizeof path, "%s/c.plugin", fx->plugins);
    assert_int_equal(unlink(path), 0);
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 0);
    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 5);
    for (size_t i = 0; i < reg.len; i++)
        assert_null(strstr(reg.entries[i].path, "c.plugin"));
    sh_registry_free(&reg);

    /* Settled again: read from the cache once more, and still what a parse gives. */
    let_dir_settle(fx->plugins);
    check_dir(fx->plugins);
    s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 1);
    assert_int_equal(s.hits, 5);
    assert_int_equal(s.misses + s.writes, 0);
}

/* A file that is listed but not cached (modified too recently) is parsed each time, also when the listing comes
 * from the cache. */
static void test_listed_but_fresh(void **state)
{
    fixture *fx = *state;
    five_plugins(fx);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/e.plugin", fx->plugins);
    write_plugin(fx->plugins, "e.plugin", "acme/e", "");
    let_dir_settle(fx->plugins);
    struct timespec now[2];
    clock_gettime(CLOCK_REALTIME, &now[0]);
    now[1] = now[0];
    assert_int_equal(utimensat(AT_FDCWD, path, now, 0), 0); /* modified "just now" */
    check_dir(fx->plugins);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.listings, 1);
    assert_int_equal(s.hits, 4);
    assert_int_equal(s.misses, 1);
    /* Edited again within the same second, same size: parsed, so seen. */
    write_plugin(fx->plugins, "e.plugin", "acme/e", "entry = \"e_two\";");
    assert_int_equal(utimensat(AT_FDCWD, path, now, 0), 0);
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_string_equal(reg.entries[4].desc->entry, "e_two");
    sh_registry_free(&reg);
}

/* Every field of the record (descriptor_blob.c), set to something other than its default, comes back as a parse
 * gives it: hooks, a function stage, permissions, every limit, requirements. */
static void test_record_round_trip(void **state)
{
    fixture *fx = *state;
    write_old(fx->plugins, "rich.plugin",
              "format = 1;\n"
              "name = \"acme/rich\";\n"
              "version = \"2.3.4-beta.1\";\n"
              "library = \"libdummy.so\";\n"
              "entry = \"rich_entry\";\n"
              "abi = \"1.7\";\n"
              "description = \"r\\u00e9ch \\\"quoted\\\"\";\n"
              "priority = -3;\n"
              "isolation = \"none\";\n"
              "requires = [ \"core/io >= 1.0, < 2.0\", \"core/text\" ];\n"
              "limits = { memory_mb = 1; cpu_seconds = 2; timeout_ms = 3; open_files = 17; processes = 5;\n"
              "           file_size_mb = 6; output_mb = 7; };\n"
              "permissions = { network = true; exec = true; read = [ \"/etc\", \"/usr\" ]; write = [ \"/tmp\" ];\n"
              "                env = [ \"LANG\", \"HOME\" ]; };\n"
              "stages = (\n"
              "  { type = \"chunk\"; input = \"document\"; output = \"chunk\"; description = \"\"; idempotent = true; },\n"
              "  { type = \"hypot\"; function = \"hypot\";\n"
              "    args = ( { type = \"double\"; field = \"x\"; }, { type = \"double\"; value = 2.0; } );\n"
              "    returns = { type = \"double\"; field = \"h\"; }; }\n"
              ");\n"
              "hooks = ( { hook = \"doc.parse\"; symbol = \"h_parse\"; priority = 5; supports = ( \"json\", \"yaml\" );\n"
              "            fallback = true; },\n"
              "          { hook = \"doc.validate\"; symbol = \"h_validate\"; } );\n");
    sh_registry reg;
    discover(&reg, fx->plugins);
    assert_int_equal(reg.len, 1);
    if (!reg.entries[0].desc)
        print_error("%s\n", reg.entries[0].reason);
    assert_non_null(reg.entries[0].desc);
    sh_registry_free(&reg);
    sh_regcache_stats s = check_dir(fx->plugins);
    assert_int_equal(s.hits, 1);
    discover(&reg, fx->plugins);
    const sh_descriptor *d = reg.entries[0].desc;
    assert_int_equal(d->hook_count, 2);
    assert_int_equal(d->hooks[0].supports_count, 2);
    assert_true(d->hooks[0].fallback);
    assert_non_null(d->stages[1].function);
    assert_true(d->stages[0].idempotent);
    assert_int_equal(d->limits.output_mb, 7);
    assert_int_equal(d->abi_minor, 7);
    assert_int_equal(d->requires.len, 2);
    assert_int_equal(d->requirements[0].count, 2);
    sh_registry_free(&reg);
}

int main(void)
{
    setenv("STAGEHOST_SYSTEM_PLUGIN_PATH", "", 1);
    unsetenv("STAGEHOST_PLUGIN_PATH");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cold_writes_warm_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_field_survives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_file_is_reparsed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_and_deleted_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cache_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_codec_version_is_rebuilt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_cache_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache_bypasses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_library_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_file_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_dir_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listed_but_fresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
