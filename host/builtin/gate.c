#include "builtin/builtins.h"
#include "util/buf.h"
#include "plugin/call.h"
#include "builtin/gate.h"
#include "value/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool read_ms(const sh_value *config, const char *key, int64_t fallback, int64_t *out, char *why,
                    size_t why_len)
{
    const sh_value *v = sh_value_map_get(config, key);
    *out = fallback;
    if (!v)
        return true;
    if (sh_value_type(v) != SH_TYPE_INT) {
        snprintf(why, why_len, "gate key '%s' must be a number of milliseconds from 1 to a week, got %s", key,
                 sh_type_name(sh_value_type(v)));
        return false;
    }
    if (sh_value_get_int(v) < 1 || sh_value_get_int(v) > 7 * 24 * 3600 * 1000LL) {
        snprintf(why, why_len, "gate key '%s' must be a number of milliseconds from 1 to a week (604800000), got "
                               "%lld", key, (long long)sh_value_get_int(v));
        return false;
    }
    *out = sh_value_get_int(v);
    return true;
}

bool sh_gate_parse(const sh_value *config, sh_gate *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    static const char *const known[] = {"field", "equals", "match", "poll_interval_ms", "timeout_ms"};
    const char *unknown = sh_value_unknown_key(config, known, sizeof known / sizeof known[0]);
    if (unknown) {
        snprintf(why, why_len, "unknown gate key '%s'; the keys are field, equals, match (\"all\" or \"any\"), "
                               "poll_interval_ms and timeout_ms", unknown);
        return false;
    }
    const char *field = sh_value_get_string(sh_value_map_get(config, "field"), NULL);
    const sh_value *equals = sh_value_map_get(config, "equals");
    if (!field || !*field) {
        snprintf(why, why_len, "a gate needs config key 'field' (the item field to check, e.g. \"status\")");
        return false;
    }
    if (!equals) {
        snprintf(why, why_len, "a gate needs config key 'equals' (the value '%s' must have, e.g. \"ready\")", field);
        return false;
    }
    const sh_value *match = sh_value_map_get(config, "match");
    const char *m = sh_value_get_string(match, NULL);
    if (match && (!m || (strcmp(m, "all") != 0 && strcmp(m, "any") != 0))) {
        snprintf(why, why_len, "gate key 'match' must be \"all\" (every item) or \"any\" (at least one item)");
        return false;
    }
    if (!read_ms(config, "poll_interval_ms", SH_GATE_DEFAULT_POLL_MS, &out->poll_interval_ms, why, why_len) ||
        !read_ms(config, "timeout_ms", SH_GATE_DEFAULT_TIMEOUT_MS, &out->timeout_ms, why, why_len))
        return false;
    out->any = m && strcmp(m, "any") == 0;
    out->field = strdup(field);
    out->equals = sh_value_copy(equals);
    if (!out->field || !out->equals) {
        sh_gate_free(out);
        snprintf(why, why_len, "out of memory reading the gate's configuration");
        return false;
    }
    return true;
}

void sh_gate_free(sh_gate *g)
{
    free(g->field);
    sh_value_free(g->equals);
    memset(g, 0, sizeof *g);
}

/* Follows a dotted path through nested maps; a key that itself contains a dot is found whole first. */
static const sh_value *lookup(const sh_value *item, const char *path)
{
    const sh_value *whole = sh_value_map_get(item, path);
    if (whole)
        return whole;
    const char *dot = strchr(path, '.');
    if (!dot)
        return NULL;
    char head[256];
    size_t n = (size_t)(dot - path);
    if (n >= sizeof head)
        return NULL;
    memcpy(head, path, n);
    head[n] = '\0';
    const sh_value *next = sh_value_map_get(item, head);
    return sh_value_type(next) == SH_TYPE_MAP ? lookup(next, dot + 1) : NULL;
}

static void value_text(const sh_value *v, char *out, size_t len)
{
    if (!v) {
        snprintf(out, len, "(missing)");
        return;
    }
    sh_buf b;
    sh_buf_init(&b);
    sh_json_write(&b, v);
    snprintf(out, len, "%.*s", b.failed ? 0 : (int)(b.len > 200 ? 200 : b.len), (const char *)b.data);
    sh_buf_free(&b);
}

bool sh_gate_holds(const sh_gate *g, const sh_value *const *items, size_t count, char *detail, size_t detail_len)
{
    size_t matching = 0, first_miss = count;
    for (size_t i = 0; i < count; i++) {
        if (sh_value_equal(lookup(items[i], g->field), g->equals))
            matching++;
        else if (first_miss == count)
            first_miss = i;
    }
    bool holds = g->any ? matching > 0 : count > 0 && matching == count;
    if (!holds) {
        if (count == 0) {
            snprintf(detail, detail_len, "no items arrived");
        } else {
            char seen[256];
            value_text(lookup(items[first_miss], g->field), seen, sizeof seen);
            snprintf(detail, detail_len, "%zu of %zu items match; item %zu has %s = %s", matching, count,
                     first_miss + 1, g->field, seen);
        }
    }
    return holds;
}

void sh_gate_describe(const sh_gate *g, char *out, size_t len)
{
    char want[256];
    value_text(g->equals, want, sizeof want);
    snprintf(out, len, "%s == %s (%s)", g->field, want, g->any ? "any item" : "every item");
}

/* Called directly (not through the engine's polling) the gate checks once: it passes its items on when the
 * condition holds and fails otherwise. */
int sh_builtin_gate(const sh_stage_def *def, sh_call *call, const sh_value *const *items, size_t count)
{
    sh_gate g;
    char why[512];
    if (!sh_gate_parse(def->config, &g, why, sizeof why))
        return sh_call_failf(call, SH_ERR_INVALID, "%s", why);
    char detail[512], cond[400];
    bool holds = sh_gate_holds(&g, items, count, detail, sizeof detail);
    sh_gate_describe(&g, cond, sizeof cond);
    sh_gate_free(&g);
    if (!holds)
        return sh_call_failf(call, SH_ERR_FAILED, "gate condition %s does not hold: %s", cond, detail);
    return sh_builtin_forward(call, items, count);
}
