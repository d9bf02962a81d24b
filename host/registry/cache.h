/*
 * The registry cache: descriptors parsed by earlier discoveries, kept on disk so that a host with thousands of
 * plugins does not re-parse every descriptor, nor even read its directories, at each start.
 *
 * One file, $STAGEHOST_CACHE_DIR/registry-v2.cache (default $XDG_CACHE_HOME/stagehost, else
 * $HOME/.cache/stagehost), holds a section per plugin directory and, in it, an entry per descriptor file. The
 * cache is advisory: a missing, foreign, stale, truncated or corrupted file is ignored and rebuilt, and no cache
 * failure ever fails discovery. STAGEHOST_NO_CACHE=1 turns it off.
 *
 * What may be answered from it (it must never answer with a descriptor that a parse would not give):
 *   - A directory's section applies while the directory's path leads to the same device and inode, with the
 *     same realpath.
 *   - Its listing (which *.plugin files there are) is reused without reading the directory while the
 *     directory's mtime and ctime (nanoseconds) are those recorded, and only if its ctime was more than 2 s old
 *     when recorded. Creating, removing or renaming a file sets both to the current time, and no one can set a
 *     ctime back; the 2 s stop a change within the same timestamp tick as the recording from going unseen.
 *   - Each file is still stat'ed every time, since editing a file in place leaves its directory alone: an entry
 *     is reused only while the file's size, mtime, ctime (nanoseconds) and inode are those recorded. Editing a
 *     file in place with the same size and its old mtime put back (touch -d, utimensat) still changes its
 *     ctime, so it is parsed again. A file modified less than 2 s before a scan is parsed, not cached, for the
 *     same timestamp-tick reason. A descriptor that uses @include depends on other files: always parsed.
 *   - A valid descriptor is reused only while its library is a regular file (stat'ed once per library per
 *     directory scan): a removed library makes it invalid with the message a parse gives. A library replaced by another
 *     file changes nothing a parse would say (the library is not opened during discovery).
 *   - Refusals are reused under the same rules, except refusals that name the plugin, which may concern its
 *     library or its dependencies: parsed each time.
 */
#ifndef SH_REGCACHE_H
#define SH_REGCACHE_H

#include "registry/descriptor.h"
#include "util/env.h"

/* The file layout; the file name carries it too (registry-v2.cache). */
#define SH_REGCACHE_FORMAT 2

/* Part of the cache key. Whoever changes the fields of sh_descriptor (and so its record, registry/cache_record.c), or
 * what sh_descriptor_load() accepts or says in its errors (descriptor.c, value/cfgread.c), must bump it: caches
 * written before are then ignored and rebuilt. */
#define SH_REGCACHE_SCHEMA 5

typedef struct sh_regcache sh_regcache;

/* Opens the cache for one discovery run, in the first usable of env->cache_dirs, and loads the file if it is
 * valid. NULL means "run without a cache": disabled by STAGEHOST_NO_CACHE (env->no_cache), no usable directory,
 * or out of memory. Never an error. */
sh_regcache *sh_regcache_open(const sh_env *env);
/* Tests only: as sh_regcache_open, for a stagehost whose value codec has version `codec`. */
sh_regcache *sh_regcache_open_codec(const sh_env *env, int codec);

/* Writes the cache back if this run changed it (atomically: temporary file, fsync, rename), then frees it.
 * Write failures are ignored: the next run parses again. NULL is fine. */
void sh_regcache_close(sh_regcache *c);

/* Starts the scan of directory `dir` (the string discovery uses to build descriptor paths), open as `dfd` (kept
 * open until sh_regcache_end_dir), whose realpath is `real` (NULL: unknown, and the cache stays out of this
 * directory). When the cache knows the directory's listing and the directory has not changed since (see above),
 * returns the number of descriptor files and sets *names to their names, in byte order, valid until the next
 * call: the caller need not read the directory. Otherwise -1 (names may be NULL: then always -1). */
long sh_regcache_begin_dir(sh_regcache *c, const char *dir, int dfd, const char *real, const char *const **names);

/* As sh_descriptor_load_in(path, dir, out, name, err) for the file `file` (its name within the directory of the
 * last sh_regcache_begin_dir; path is DIR/FILE), answering from the cache when the file is unchanged, and
 * recording the result otherwise. Files must come in byte order of their names, as discovery lists them. With
 * c NULL, or outside a directory scan, it is sh_descriptor_load_in. */
sh_status sh_regcache_load(sh_regcache *c, const char *path, const char *file, sh_descriptor_dir *dir,
                           sh_descriptor **out, char **name, sh_error *err);

/* Completes the directory scan: its new section replaces the old one. A directory whose scan was not completed
 * (an error stopped discovery) keeps its old section. */
void sh_regcache_end_dir(sh_regcache *c);

/* Counters since the process started (or the last reset), so that tests and benchmarks can tell a cache hit from
 * a parse: `hits` answered from the cache, `misses` parsed with a cache open, `loads` cache files accepted,
 * `writes` cache files written, `listings` directories whose listing came from the cache. */
typedef struct sh_regcache_stats {
    unsigned long hits, misses, loads, writes, listings;
} sh_regcache_stats;

void sh_regcache_get_stats(sh_regcache_stats *out);
void sh_regcache_reset_stats(void);

#endif
