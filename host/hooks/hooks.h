/* Hooks: extension points other than stages. Hookspec files (registry/hookspec.h) declare hooks; plugin descriptors
 * declare implementations (`hooks = ( { hook = "KIND.NAME"; symbol = ...; priority = N; } )`); this table links
 * them, orders implementations, checks the dispatch rules at startup, and calls implementations through libffi:
 * directly for in-process plugins (isolation "none"), in the plugin's worker otherwise.
 *
 * Dispatch classes:
 *  - singleton: the highest priority implementation answers. Equal top priorities are a startup error naming
 *    both plugins, unless STAGEHOST_ACTIVE_<KIND>=<plugin> or the host configuration's hooks.active.<kind>
 *    chooses (which also overrides priorities). No implementation: an error when called.
 *  - broadcast-collect: every implementation, results in priority order (ties by plugin name) as an array.
 *    Fail-fast: the first failure aborts the call and is returned; with best_effort the failures are logged and
 *    skipped. No implementation: an empty array.
 *  - broadcast-notify: every implementation is called; a failure is logged as "plugin=NAME error=..." and never
 *    propagates. Nothing is returned.
 *  - chain: each implementation's output is the next one's first argument, in priority order; the last output
 *    is returned. An implementation returning SH_HOOK_STOP stops the chain: the value passed into it is returned.
 *  - capability: the implementations whose `supports` tags include one of the call's tags are candidates; the
 *    highest priority wins (ties by plugin name). No candidate: the one `fallback` implementation; two
 *    fallbacks are a startup error; no candidate and no fallback: an error when called.
 *
 * Middleware (middleware.h) runs before every implementation: governance, then quota.
 */
#ifndef SH_HOOKS_H
#define SH_HOOKS_H

#include "registry/hookspec.h"
#include "runtime/runtime.h"

typedef struct sh_hooks sh_hooks;
typedef struct sh_hook sh_hook;

/* The host's own hookspec: kind "stagehost", hook run_finished(string pipeline, string status), broadcast-notify,
 * called by the engine when a run ends. */
#define SH_HOOK_RUN_FINISHED "stagehost.run_finished"

/* Builds the hook table of `rt`: the host's hookspec and every *.hooks file on the plugin search path (a kind
 * found earlier on the path shadows later ones), linked with the hook implementations of every usable plugin.
 * Reads files only: no plugin code runs until a hook is called. Startup problems (singleton ties, two
 * capability fallbacks, implementations of unknown hooks) do not stop the build: see sh_hooks_problems().
 * Fails for a hookspec file that does not parse (file:line), an unreadable audit log, or no memory. */
sh_status sh_hooks_build(sh_runtime *rt, sh_hooks **out, sh_error *err);

/* The startup problems of the table, one per line, or NULL when there are none. */
const char *sh_hooks_problems(const sh_hooks *h);

/* The table in *table, built there on first use. A front end (run, serve, hooks call) owns the slot and frees it
 * with sh_hooks_free before sh_runtime_stop, since the table holds in-process instances from the runtime's pool;
 * the runtime never holds a table. SH_S_CONFIG with every startup problem when the table has any: the hook
 * system refuses to start rather than pick an implementation arbitrarily. */
sh_status sh_hooks_get(sh_runtime *rt, sh_hooks **table, sh_error *err);

/* Releases in-process instances held for direct calls and frees the table. NULL is fine. */
void sh_hooks_free(sh_hooks *h);

/* The hook named "KIND.NAME", or NULL. */
sh_hook *sh_hooks_find(sh_hooks *h, const char *name);
const sh_hookspec_hook *sh_hook_spec(const sh_hook *hk);

/* Calls hook `hk` with `args` (values of the declared types; checked) and, for capability hooks, the call's
 * `tags`. *result: singleton, chain, capability: the answer (NULL for void); broadcast-collect: an array;
 * broadcast-notify: NULL. The caller owns it. An implementation's failure is SH_S_STAGE naming the plugin;
 * "permission denied" and "quota exceeded" come from the middleware; bad arguments are SH_S_CONFIG. */
sh_status sh_hooks_call(sh_hooks *h, sh_hook *hk, const sh_value *const *args, size_t nargs,
                        const char *const *tags, size_t ntags, sh_value **result, sh_error *err);

/* For the engine. At the start of a run: the per-run quota counters start again (nothing to do without a table). */
void sh_hooks_run_started(sh_hooks *table);
/* When a run ends (`status` such as "succeeded" or "failed"): notifies every implementation of
 * stagehost.run_finished, building *table only when some plugin of the registry declares one. Never fails:
 * problems are logged. */
void sh_hooks_run_finished(sh_runtime *rt, sh_hooks **table, const char *pipeline, const char *status);

/* Walks the table for listing: each hook in order (kind file order, then declaration order), and its
 * implementations in dispatch order. */
typedef struct sh_hook_impl_info {
    const char *plugin;
    const sh_hook_decl *decl;
    sh_isolation isolation;
    bool denied; /* by the governance policy */
} sh_hook_impl_info;

size_t sh_hooks_count(const sh_hooks *h);
sh_hook *sh_hooks_at(sh_hooks *h, size_t i);
const char *sh_hook_spec_path(const sh_hook *hk);
size_t sh_hook_impl_count(const sh_hook *hk);
void sh_hook_impl_at(const sh_hook *hk, size_t i, sh_hook_impl_info *out);

#endif
