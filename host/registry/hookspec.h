/* Hookspec files (KIND.hooks, libconfig) on the plugin search path: a kind, an API version, and the hooks of
 * that kind with their dispatch class and native signature. Read like descriptors: no plugin code runs.
 *
 *   kind = "doc";
 *   api = "1.0";
 *   hooks = (
 *     { name = "validate"; dispatch = "broadcast-collect"; args = ( "string" ); returns = "bool";
 *       best_effort = true; description = "Checks a document."; }
 *   );
 */
#ifndef SH_HOOKSPEC_H
#define SH_HOOKSPEC_H

#include "util/error.h"
#include "value/ntype.h"

typedef enum sh_dispatch {
    SH_DISPATCH_SINGLETON,
    SH_DISPATCH_COLLECT,  /* broadcast-collect */
    SH_DISPATCH_NOTIFY,   /* broadcast-notify */
    SH_DISPATCH_CHAIN,
    SH_DISPATCH_CAPABILITY
} sh_dispatch;

const char *sh_dispatch_name(sh_dispatch d);
bool sh_dispatch_parse(const char *s, sh_dispatch *out);

typedef struct sh_hookspec_hook {
    char *name;        /* "validate" */
    char *full_name;   /* "doc.validate" */
    sh_dispatch dispatch;
    sh_signature sig;
    char *description; /* may be NULL */
    bool best_effort;  /* broadcast-collect: collect what succeeds instead of failing fast */
    int line;
} sh_hookspec_hook;

typedef struct sh_hookspec {
    char *path; /* the file, or "(built-in)" */
    char *kind;
    uint16_t api_major, api_minor;
    sh_hookspec_hook *hooks;
    size_t count;
} sh_hookspec;

/* Parses and validates a hookspec file; every problem is reported at once as "PATH:LINE: ..." (SH_S_CONFIG). */
sh_status sh_hookspec_load(const char *path, sh_hookspec **out, sh_error *err);
/* The same from text; `name` stands for the path in messages. */
sh_status sh_hookspec_parse_text(const char *text, const char *name, sh_hookspec **out, sh_error *err);
void sh_hookspec_free(sh_hookspec *s);

/* A hook kind or hook name: lowercase letters, digits, '_' and '-', starting with a letter. */
bool sh_hook_name_valid(const char *s);

#endif
