#include "builtin/builtins.h"
#include "sh_config.h"
#include "plugin/call.h"
#include "util/suggest.h"
#include "value/value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef int (*process_fn)(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);

typedef struct builtin {
    sh_stage_type type;
    process_fn process;              /* a built-in that sees each batch on its own, */
    const sh_builtin_stream *stream; /* or one whose work spans batches */
} builtin;

static int passthrough(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count);

static const builtin builtins[] = {
    {{sizeof(sh_stage_type), "read", "any", "document",
      "read files or a directory into items {path, content}, or one item per line {path, line, content} with "
      "split = \"lines\"; input items pass through"},
     NULL, &sh_builtin_read},
    {{sizeof(sh_stage_type), "chunk", "document", "chunk",
      "split a text field into fixed-size, overlapping chunks (size, overlap in characters)"},
     sh_builtin_chunk, NULL},
    {{sizeof(sh_stage_type), "write", "any", "any", "write items as JSON Lines to a file; items pass through"},
     NULL, &sh_builtin_write},
    {{sizeof(sh_stage_type), "passthrough", "any", "any", "emit every input item unchanged"},
     passthrough, NULL},
    {{sizeof(sh_stage_type), "gate", "any", "any",
      "wait until a field of the input items equals a value (the engine polls the stages before it), then pass "
      "them on"},
     sh_builtin_gate, NULL},
    {{sizeof(sh_stage_type), "hook", "any", "any",
      "call a hook for each item (hook = \"KIND.NAME\", args = item fields) and add its answer to the item"},
     sh_builtin_hook, NULL},
};

#define NBUILTINS (sizeof builtins / sizeof builtins[0])

static const sh_stage_type *type_ptrs[NBUILTINS];

typedef struct builtin_stage {
    sh_stage stage;
    const builtin *b;
    const sh_stage_def *def; /* borrowed until destroy(), as the ABI promises */
    bool opened;             /* a stream built-in's open() succeeded: close() is owed */
    void *state;
} builtin_stage;

static int stage_process(sh_stage *stage, sh_call *call, const sh_value *const *items, size_t count)
{
    builtin_stage *s = stage->user;
    const sh_builtin_stream *f = s->b->stream;
    if (!f)
        return s->b->process(s->def, call, items, count);
    if (!s->opened) {
        int rc = f->open(s->def, call, &s->state);
        if (rc != SH_OK)
            return rc;
        s->opened = true;
    }
    int rc = f->batch(s->state, call, items, count);
    /* ABI 1.0 has no end-of-stream call: this call was the whole input (see sh_builtin_stream). */
    return rc == SH_OK ? f->finish(s->state, call) : rc;
}

static void stage_destroy(sh_stage *stage)
{
    builtin_stage *s = stage->user;
    if (s->opened)
        s->b->stream->close(s->state);
    free(s);
}

static int b_init(const sh_host *host, sh_call *call, const sh_value *config, void **state)
{
    (void)host;
    (void)call;
    (void)config;
    *state = NULL;
    return SH_OK;
}

static int b_create(void *state, sh_call *call, const sh_stage_def *def, sh_stage **out)
{
    (void)state;
    for (size_t i = 0; i < NBUILTINS; i++) {
        if (strcmp(builtins[i].type.type, def->type) != 0)
            continue;
        builtin_stage *s = calloc(1, sizeof *s);
        if (!s) {
            sh_host_table()->fail(call, "out of memory");
            return SH_ERR_NOMEM;
        }
        s->b = &builtins[i];
        s->def = def;
        s->stage = (sh_stage){.size = sizeof(sh_stage), .user = s, .process = stage_process, .destroy = stage_destroy};
        *out = &s->stage;
        return SH_OK;
    }
    sh_host_table()->fail(call, "no such built-in stage");
    return SH_ERR_INVALID;
}

static sh_plugin plugin = {
    .size = sizeof(sh_plugin),
    .name = SH_BUILTIN_PLUGIN_NAME,
    .version = SH_VERSION,
    .stage_types = type_ptrs,
    .stage_type_count = NBUILTINS,
    .init = b_init,
    .create_stage = b_create,
};

const sh_plugin *sh_builtin_plugin(void)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        type_ptrs[i] = &builtins[i].type;
    return &plugin;
}

const sh_stage_type *sh_builtin_find(const char *type)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strcmp(builtins[i].type.type, type) == 0)
            return &builtins[i].type;
    return NULL;
}

char *sh_builtin_resolve_path(sh_call *call, const char *path)
{
    const char *base = call->inv && call->inv->base_dir ? call->inv->base_dir : ".";
    if (path[0] == '/')
        return strdup(path);
    size_t n = strlen(base) + strlen(path) + 2;
    char *full = malloc(n);
    if (full)
        snprintf(full, n, "%s/%s", base, path);
    return full;
}

bool sh_builtin_check_config(const char *type, const sh_value *config, char *why, size_t why_len)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (strcmp(builtins[i].type.type, type) == 0 && builtins[i].stream)
            return builtins[i].stream->check(config, why, why_len);
    return true;
}

bool sh_builtin_known_keys(const sh_value *config, const char *type, const char *const *known, size_t count,
                           char *why, size_t why_len)
{
    const char *key = sh_value_unknown_key(config, known, count);
    if (!key)
        return true;
    const char *hint = sh_suggest(key, known, count);
    if (hint) {
        snprintf(why, why_len, "config: unknown key '%s' (did you mean '%s'?) for the built-in '%s'", key, hint, type);
        return false;
    }
    char list[256] = "";
    for (size_t j = 0, used = 0; j < count && used < sizeof list; j++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", known[j]);
    snprintf(why, why_len, "config: unknown key '%s' for the built-in '%s', which knows: %s", key, type, list);
    return false;
}

int sh_builtin_forward(sh_call *call, const sh_value *const *items, size_t count)
{
    const sh_host *h = sh_host_table();
    for (size_t i = 0; i < count; i++) {
        sh_value *copy = sh_value_copy(items[i]);
        if (!copy) {
            h->fail(call, "out of memory copying an item");
            return SH_ERR_NOMEM;
        }
        int rc = h->emit(call, copy);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}

static int passthrough(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)def;
    return sh_builtin_forward(call, items, count);
}
