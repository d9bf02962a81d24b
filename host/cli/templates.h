/* The `stagehost new-plugin` scaffold templates: the *.in files in sdk/template, compiled in by
 * sdk/template/embed.py. */
#ifndef SH_TEMPLATES_H
#define SH_TEMPLATES_H

#include <stddef.h>

typedef struct sh_template {
    const char *name;         /* the template's file name without ".in", e.g. "plugin.c" */
    const char *const *lines; /* its text, one line (with its newline) per string */
    size_t line_count;
} sh_template;

extern const sh_template sh_templates[];
extern const size_t sh_template_count;

#endif
