#include "engine/graph_dot.h"
#include "registry/descriptor.h"
#include "registry/registry.h"

/* A DOT string: quotes and backslashes escaped, so names and config can never break out of the quotes. */
static void quoted(sh_buf *b, const char *s)
{
    sh_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sh_buf_putc(b, '\\');
        if (*s == '\n')
            sh_buf_puts(b, "\\n");
        else
            sh_buf_putc(b, *s);
    }
    sh_buf_putc(b, '"');
}

void sh_graph_dot(const sh_pipeline *p, const sh_target *targets, sh_buf *out)
{
    sh_buf label;
    sh_buf_init(&label);
    sh_buf_puts(out, "digraph ");
    quoted(out, p->name);
    sh_buf_puts(out, " {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"monospace\"];\n");
    for (size_t i = 0; i < p->count; i++) {
        const sh_pipeline_stage *st = &p->stages[i];
        const sh_target *t = &targets[i];
        sh_buf_reset(&label);
        sh_buf_printf(&label, "%s\ntype: %s\n", st->name, st->type);
        if (!t->action)
            sh_buf_puts(&label, "source: unresolved");
        else if (t->plugin)
            sh_buf_printf(&label, "source: %s %s (%s)\n%s -> %s", t->plugin->desc->name, t->plugin->desc->version,
                          t->action, t->input, t->output);
        else
            sh_buf_printf(&label, "source: built-in %s\n%s -> %s", t->action, t->input, t->output);
        sh_buf_putc(&label, '\0');
        sh_buf_puts(out, "  ");
        quoted(out, st->name);
        sh_buf_puts(out, " [label=");
        quoted(out, label.failed ? st->name : (const char *)label.data);
        if (!t->action)
            sh_buf_puts(out, ", color=red");
        sh_buf_puts(out, "];\n");
    }
    for (size_t i = 0; i < p->count; i++) {
        const sh_pipeline_stage *st = &p->stages[i];
        for (size_t k = 0; k < st->dep_count; k++) {
            size_t up = p->deps[i][k];
            sh_buf_puts(out, "  ");
            quoted(out, p->stages[up].name);
            sh_buf_puts(out, " -> ");
            quoted(out, st->name);
            if (targets[up].action) {
                sh_buf_puts(out, " [label=");
                quoted(out, targets[up].output);
                sh_buf_puts(out, "]");
            }
            sh_buf_puts(out, ";\n");
        }
    }
    sh_buf_puts(out, "}\n");
    sh_buf_free(&label);
}
