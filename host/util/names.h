/* The grammars of the names the host reads from descriptors, pipelines, hookspecs and the command line, and
 * the string tables that name enum values (systemd's string-table.h): each written once, below everything that
 * parses or prints them. */
#ifndef SH_NAMES_H
#define SH_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* "namespace/name": lower-case letters, digits and '-', each part starting with a letter or digit. */
bool sh_valid_plugin_name(const char *s);
/* Relative, inside the descriptor's directory: no leading '/', no ".." component. */
bool sh_valid_library_path(const char *s);
/* Letters, digits, '_' and '-'. */
bool sh_valid_stage_type(const char *s);
/* MAJOR.MINOR.PATCH with an optional -pre or +build part; no leading zeros. */
bool sh_valid_semver(const char *s);
/* A C identifier: an exported symbol's name. */
bool sh_valid_c_identifier(const char *s);
/* A contract name ("document", "chunk"): lower-case letters, digits, '_' and '-'. */
bool sh_valid_contract_name(const char *s);

/* Defines PREFIX_name(TYPE) and PREFIX_parse(const char *, TYPE *) over TABLE, an array of names indexed by the
 * enum's values (designated initialisers; a NULL entry has no name and never parses). A value without a name
 * prints as FALLBACK. */
#define SH_DEFINE_STRING_TABLE(prefix, type, table, fallback)                                                     \
    const char *prefix##_name(type v)                                                                          \
    {                                                                                                          \
        return (size_t)v < sizeof table / sizeof table[0] && table[v] ? table[v] : (fallback);                 \
    }                                                                                                          \
    bool prefix##_parse(const char *s, type *out)                                                              \
    {                                                                                                          \
        for (size_t i_ = 0; i_ < sizeof table / sizeof table[0]; i_++)                                         \
            if (table[i_] && strcmp(s, table[i_]) == 0) {                                                      \
                *out = (type)i_;                                                                               \
                return true;                                                                                   \
            }                                                                                                  \
        return false;                                                                                          \
    }

#endif
