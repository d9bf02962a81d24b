/*
 * The registry cache: descriptors parsed by earlier discoveries, kept on disk so that a host with thousands of
 * plugins does not re-parse every descriptor at each start.
 *
 * One file, $STAGEHOST_CACHE_DIR/registry-v1.cache (default $XDG_CACHE_HOME/stagehost, else
 * $HOME/.cache/stagehost), holds a section per plugin directory and, in it, an entry per descriptor file keyed by
 * the file's name, size, mtime and ctime (nanoseconds) and inode. An entry holds the descriptor as a value
 * (sh_descriptor_to_value) or, for a refused descriptor, its status and error message. The cache is advisory:
 * a missing, foreign, stale, truncated or corrupted file is ignored and rebuilt, and no cache failure ever fails
 * discovery. STAGEHOST_NO_CACHE=1 turns it off.
 */
#ifndef SH_REGCACHE_H
#define SH_REGCACHE_H

#include "descriptor.h"

/* The file layout; the file name carries it too (registry-v1.cache). */
#define SH_REGCACHE_FORMAT 1

/* Part of the cache key. Whoever changes the fields sh_descriptor_to_value() writes or sh_descriptor_from_value()
 * reads (descriptor_value.c), or what sh_descriptor_load() accepts or says in its errors (descriptor.c,
 * cfgread.c), must bump it: caches written before are then ignored and rebuilt. */
#define SH_REGCACHE_SCHEMA 4

typedef struct sh_regcache sh_regcache;

/* Opens the cache for one discovery run and loads the file if it is valid. NULL means "run without a cache":
 * disabled by STAGEHOST_NO_CACHE, or out of memory. Never an error. */
sh_regcache *sh_regcache_open(void);

/* Writes the cache back if this run changed it (atomically: temporary file, fsync, rename), then frees it.
 * Write failures are ignored: the next run parses again. NULL is fine. */
void sh_regcache_close(sh_regcache *c);

/* Starts the scan of directory `dir` (the string discovery uses to build descriptor paths). */
void sh_regcache_begin_dir(sh_regcache *c, const char *dir);

/* As sh_descriptor_load_named(path, out, name, err) for the file `file` (its name within the directory of the
 * last sh_regcache_begin_dir; path is DIR/FILE), answering from the cache when the file is unchanged, and
 * recording the result otherwise. Files must come in byte order of their names, as discovery lists them. With
 * c NULL, or outside a directory scan, it is sh_descriptor_load_named. */
sh_status sh_regcache_load(sh_regcache *c, const char *path, const char *file, sh_descriptor **out, char **name,
                           sh_error *err);

/* Completes the directory scan: its new section replaces the old one. A directory whose scan was not completed
 * (an error stopped discovery) keeps its old section. */
void sh_regcache_end_dir(sh_regcache *c);

/* Counters since the process started (or the last reset), so that tests and benchmarks can tell a cache hit from
 * a parse: `hits` answered from the cache, `misses` parsed with a cache open, `loads` cache files accepted,
 * `writes` cache files written. */
typedef struct sh_regcache_stats {
    unsigned long hits, misses, loads, writes;
} sh_regcache_stats;

void sh_regcache_get_stats(sh_regcache_stats *out);
void sh_regcache_reset_stats(void);

#endif
