/* The host configuration's `hooks` group, which configures the hook middleware (hooks/middleware.h):
 *
 *   hooks = {
 *     active = { doc = "team/render"; };                  # which plugin answers a kind's singleton hooks
 *     governance = { deny_plugins = ( "x/untrusted" );    # plugin, or hook ("doc.validate"), or
 *                    deny_hooks = ( "doc.export" );       #   "plugin:hook" ("x/y:doc.validate")
 *                    audit_log = "/var/log/stagehost-hooks.log"; };   # one line per allowed or denied call
 *     quota = { calls_per_plugin = 1000; };               # hook calls per plugin per run
 *   };
 *
 * governance (priority 1100) refuses a denied call with "permission denied"; quota (priority 1000) refuses a
 * plugin's calls past its allowance for the run with "quota exceeded". */
#ifndef SH_HOOKS_CONFIG_H
#define SH_HOOKS_CONFIG_H

#include "value/cfgread.h"

#include <stdint.h>

typedef struct sh_middleware_config {
    sh_value *active;       /* kind -> plugin name; NULL when absent */
    sh_strlist deny_plugins;
    sh_strlist deny_hooks;  /* "kind.name" or "plugin:kind.name" */
    char *audit_log;        /* NULL: no audit */
    int64_t calls_per_plugin; /* 0: no quota */
    int line;               /* of the `hooks` group */
} sh_middleware_config;

/* Parses the host configuration's `hooks` group (errors name file:line). */
sh_status sh_middleware_parse(sh_cfg *c, const config_setting_t *group, sh_middleware_config *out);
void sh_middleware_config_free(sh_middleware_config *m);

#endif
