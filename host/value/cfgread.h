/* Reading libconfig files (descriptors, pipelines) with errors that name file:line, the key, what was expected,
 * and what was found. */
#ifndef SH_CFGREAD_H
#define SH_CFGREAD_H

#include "util/error.h"
#include "util/strlist.h"
#include "value/value.h"

#include <libconfig.h>
#include <stdbool.h>

/* Where errors go: the file being read and the error object. Errors accumulate, one "PATH:LINE: ..." line
 * each, so a parser that carries on after an error reports everything at once. */
typedef struct sh_cfg {
    const char *path;
    sh_error *err;
    int errors;
} sh_cfg;


/* For parsers that carry on after a malformed key so that one run reports every problem: a configuration error
 * is already recorded in the sh_cfg, and parsing goes on; only running out of memory returns at once. */
#define SH_CFG_KEEP_GOING(expr)                                                                                   \
    do {                                                                                                          \
        sh_status kg_ = (expr);                                                                                   \
        if (kg_ == SH_S_NOMEM)                                                                                    \
            return kg_;                                                                                           \
    } while (0)

/* config_init + reading the file, with "PATH:LINE: syntax error: ..." on failure. `what` names the kind of file.
 * A file larger than `max_bytes` is refused before it is parsed (every command reads every descriptor), and so is
 * anything but a regular file. The caller always calls config_destroy(). */
sh_status sh_cfg_read_file(config_t *cfg, const char *path, const char *what, size_t max_bytes, sh_error *err);

/* The size caps: a descriptor or hookspec is read by every command that discovers plugins; a pipeline or host
 * configuration may carry data (items, sections passed to plugins). */
#define SH_CFG_MAX_DESCRIPTOR (1024u * 1024u)
#define SH_CFG_MAX_DOCUMENT (16u * 1024u * 1024u)

/* config_setting_get_member(group, key) for a key without path separators, without its per-character cost.
 * NULL when group is NULL or not a group. */
config_setting_t *sh_cfg_member(const config_setting_t *group, const char *key);
int sh_cfg_line(const config_setting_t *s);
const char *sh_cfg_type_word(const config_setting_t *s);
__attribute__((format(printf, 3, 4))) sh_status sh_cfg_fail(sh_cfg *p, const config_setting_t *at, const char *fmt,
                                                             ...);
/* Refuses keys of `group` not in `known`, suggesting the closest known key. `where` names the group. */
sh_status sh_cfg_check_keys(sh_cfg *p, const config_setting_t *group, const char *where, const char *const *known,
                            size_t nknown);
/* Typed getters: `what` describes the expected value in errors. Absent optional keys leave *out unchanged. */
sh_status sh_cfg_string(sh_cfg *p, const config_setting_t *group, const char *key, const char *what, bool required,
                        char **out);
sh_status sh_cfg_int(sh_cfg *p, const config_setting_t *group, const char *key, const char *what, bool required,
                     int64_t min, int64_t *out);
sh_status sh_cfg_bool(sh_cfg *p, const config_setting_t *group, const char *key, bool *out);
sh_status sh_cfg_strlist(sh_cfg *p, const config_setting_t *group, const char *key, sh_strlist *out);

/* For each element of `list` (groups), the index of the first earlier element whose string `key` is the same,
 * or SIZE_MAX; elements without a string `key` match nothing. *out (list-length entries) is the caller's to
 * free. In n log n (util/strlist.h: sh_find_duplicates), so a long list is checked as fast as it is read. */
sh_status sh_cfg_first_duplicates(sh_cfg *p, const config_setting_t *list, const char *key, size_t **out);

/* sh_cfg_to_value with errors: PATH:LINE for a string that is not UTF-8 (`what` names the setting). */
sh_status sh_cfg_value(sh_cfg *p, const config_setting_t *s, const char *what, sh_value **out);

#endif
