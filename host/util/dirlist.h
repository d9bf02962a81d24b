/* One way to list a directory: the names it holds, sorted by byte order, which every scanner of plugin, hookspec
 * and input directories uses so that the same tree gives the same order on every machine (not the locale's
 * collation, not readdir's order). */
#ifndef SH_DIRLIST_H
#define SH_DIRLIST_H

#include "util/strlist.h"

/* Fills `out` (empty on entry; free it with sh_strlist_clear) with the names in directory `dir` that end in
 * `suffix` and are longer than it (NULL or "": every name), leaving out names that start with '.', in byte
 * order. SH_S_IO "cannot read directory DIR: why" when the directory cannot be opened or read (errno still says
 * why, for callers that word it their own way), SH_S_NOMEM; `out` is empty after a failure. */
sh_status sh_dirlist(const char *dir, const char *suffix, sh_strlist *out, sh_error *err);

/* As sh_dirlist for a directory already open as `dfd` (left open, its position untouched); `dir` names it in
 * messages. */
sh_status sh_dirlist_at(int dfd, const char *dir, const char *suffix, sh_strlist *out, sh_error *err);

#endif
