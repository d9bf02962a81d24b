/* Fixture helpers shared by the unit tests (and the stress test): temporary directories, small text files and
 * substring assertions. The asserting helpers use cmocka, so call them from inside a test (or a setup that may
 * fail the test). */
#ifndef SH_TESTUTIL_H
#define SH_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>

#include "util/env.h"

/* Creates a fresh directory "$TMPDIR/PREFIX-XXXXXX" ("/tmp" when TMPDIR is unset) and writes its path to `buf`.
 * Returns `buf`, or NULL if the path does not fit in `size` bytes or mkdtemp() fails. Does not assert, so that
 * setup functions can report the failure by their return value. */
char *tu_mkdtemp(char *buf, size_t size, const char *prefix);

/* Writes `text` to `path` (created or truncated), asserting that opening, writing and closing all succeed. */
void tu_write_file(const char *path, const char *text);

/* Removes `dir` and everything below it, without following symbolic links (nftw, FTW_DEPTH | FTW_PHYS).
 * Returns 0 on success, as nftw() does. */
int tu_remove_tree(const char *dir);

/* Asserts that `want` occurs in `message`; on failure, prints both first. */
void tu_expect_contains(const char *message, const char *want);

/* Asserts that `message` starts with "PATH:LINE: " and contains each string of `wants`, a list of
 * `const char *` ended by NULL (the caller's variadic arguments: it calls va_start and va_end). */
void tu_vexpect_at(const char *message, const char *path, int line, va_list wants);

/* The children of `parent`, read from /proc: returns how many (zombies included); *live (may be NULL) gets how many
 * are not zombies, *first_live (may be NULL) the first of those (0: none), *last_zombie (may be NULL) the last
 * zombie seen (0: none). */
int tu_children(int parent, int *live, int *first_live, int *last_zombie);

/* Fills `env` (util/env.h) for a host of the test's own, with nothing from the process environment: the crash
 * history and the registry cache in `state_dir`, no installed plugins, and `extra` (NAME=VALUE strings ended by
 * NULL; may be NULL). Asserts; sh_env_free it. */
void tu_env(sh_env *env, const char *state_dir, const char *const *extra);

/* Reads the whole of `path` (asserting that it can); the caller frees it. */
char *tu_read_file(const char *path);

/* The directory of the built test plugins: $SH_TEST_PLUGIN_DIR, else "build/test/plugins". */
const char *tu_plugin_dir(void);

/* Links the test library `lib` (libfaults.so, ...) of tu_plugin_dir() into `dir`: a descriptor's library must be
 * in the descriptor's directory. Asserts. */
void tu_link_test_lib(const char *dir, const char *lib);

/* Makes `dir` hold the test/faults plugin: libfaults.so linked in, and its descriptor (test/plugins/faults.plugin,
 * which the build copies beside the library) copied to DIR/faults.plugin, whose path goes to `path`. Asserts. */
void tu_faults_plugin(const char *dir, char *path, size_t size);

/* The body of test/faults' `stages` list as its descriptor has it (`{ type = "echo"; }, ...`), for tests that
 * write a descriptor of their own around it. That descriptor is the one place the stage types are listed. */
const char *tu_faults_stages(void);

#endif
