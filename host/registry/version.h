/* Plugin dependencies: `requires = ( "core/io >= 1.2, < 2" )`, parsed, matched against versions, and resolved
 * across the registry (missing and unsatisfied dependencies, transitively, and cycles). */
#ifndef SH_REQUIRES_H
#define SH_REQUIRES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum sh_version_op { SH_OP_EQ, SH_OP_NE, SH_OP_LT, SH_OP_LE, SH_OP_GT, SH_OP_GE } sh_version_op;

typedef struct sh_version {
    long major, minor, patch;
} sh_version;

typedef struct sh_constraint {
    sh_version_op op;
    sh_version version; /* missing parts are 0: "< 2" means "< 2.0.0" */
} sh_constraint;

typedef struct sh_requirement {
    char name[128];
    sh_constraint constraints[8];
    size_t count;
} sh_requirement;

/* Parses "NAME [OP VERSION {, OP VERSION}]"; OP is one of = == != < <= > >=. Returns false with a reason. */
bool sh_requirement_parse(const char *text, sh_requirement *out, char *why, size_t len);

/* True when `version` (a semantic version string) meets every constraint. */
bool sh_requirement_satisfied(const sh_requirement *r, const char *version);

#endif
