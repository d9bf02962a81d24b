/* A valid descriptor as a flat record, for the registry cache (registry/cache.c): read back into one allocation with
 * no parsing, where the value form (worker/spawn_request.c) builds and walks a tree of values and makes an
 * allocation per string. */
#ifndef SH_DESCRIPTOR_BLOB_H
#define SH_DESCRIPTOR_BLOB_H

#include "util/buf.h"
#include "registry/descriptor.h"

/* Appends `d` to `b`, except for what the reader rebuilds: path, dir and library_path (dir/library). False,
 * with nothing useful appended, for a descriptor that cannot be recorded (dependencies attached). */
bool sh_descriptor_blob_put(sh_buf *b, const sh_descriptor *d);

/* The descriptor recorded in p[0..n), with `path` and `dir` (the realpath of its directory) put back, as
 * sh_descriptor_load_in(path, dir) gave it, packed (free it with sh_descriptor_free as any other). NULL when the
 * record is malformed or memory runs out. */
sh_descriptor *sh_descriptor_blob_get(const uint8_t *p, size_t n, const char *path, const char *dir);

#endif
