/* Discovery: build the plugin search path and read every descriptor on it, in a deterministic order.
 * Discovery reads descriptor files only; it never loads a plugin library. */
#ifndef SH_DISCOVERY_H
#define SH_DISCOVERY_H

#include "registry/registry.h"
#include "util/env.h"

/* Search path, in order: each of `cli_dirs` (which must exist), then STAGEHOST_PLUGIN_PATH (env->plugin_path,
 * colon-separated), then `config_dirs` (the host configuration's plugin_path; may be NULL), then the installed
 * default (STAGEHOST_SYSTEM_PLUGIN_PATH overrides it; empty disables it). Missing directories other than the
 * CLI's are skipped. The registry cache is the one `env` names. */
sh_status sh_discover(sh_registry *reg, const sh_env *env, const char *const *cli_dirs, size_t cli_count,
                      const sh_strlist *config_dirs, sh_error *err);

/* Reads the descriptors of one directory, sorted by file name, into reg. */
sh_status sh_discover_dir(sh_registry *reg, const sh_env *env, const char *dir, sh_error *err);

#endif
