/* What a plugin load is allowed, decided in one place for every path that loads plugin code (a stage call, a hook,
 * a reload check, `plugins validate`): its effective isolation, limits and host-configuration section, the
 * permissions it asks for checked against what the host grants, and its confinement. */
#ifndef SH_POLICY_H
#define SH_POLICY_H

#include "runtime/runtime.h"

/* The confinement for a worker on this kernel: Landlock and seccomp when available, the unprivileged user when
 * the host runs as root. When either mechanism is missing the load is refused (SH_S_CONFIG naming `plugin`, what
 * is missing and what to do) unless `allow_unconfined`. Grants nothing: permissions are the caller's. */
sh_status sh_policy_confine(const sh_sandbox_support *support, bool allow_unconfined, const char *plugin,
                            sh_sandbox_policy *policy, sh_error *err);

/* Decides how plugin `d` may run with isolation `iso`: refuses it (SH_S_CONFIG) when it asks for permissions it
 * was not granted (host configuration and --grant), or when it needs confinement this kernel cannot give and
 * `allow_unconfined` is false (callers pass rt->allow_unconfined unless they decide otherwise, and say why). */
sh_status sh_runtime_policy(const sh_runtime *rt, const sh_descriptor *d, sh_isolation iso, bool allow_unconfined,
                            sh_sandbox_policy *policy, sh_error *err);

/* The effective isolation of plugin `d` for a stage that asks for `stage_iso` (SH_ISOLATION_DEFAULT: none
 * asked): the stage's, else the host configuration's, else the descriptor's, else "process". */
sh_isolation sh_runtime_isolation(const sh_runtime *rt, const sh_descriptor *d, sh_isolation stage_iso);

/* The effective limits of plugin `d`: the host configuration's settings for the plugin, else the descriptor's,
 * else the host configuration's defaults. */
void sh_runtime_limits(const sh_runtime *rt, const sh_descriptor *d, sh_limits *out);

/* The plugin's section of the host configuration (an empty map when it has none); NULL when no configuration. */
const sh_value *sh_runtime_plugin_config(const sh_runtime *rt, const char *name);

#endif
