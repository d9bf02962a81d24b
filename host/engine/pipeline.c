#include "engine/pipeline.h"
#include "value/cfgread.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool valid_stage_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}

static sh_status nomem(sh_cfg *c)
{
    return sh_error_set(c->err, SH_S_NOMEM, "out of memory reading %s", c->path);
}

static sh_status parse_depends(sh_cfg *c, config_setting_t *g, sh_pipeline_stage *st)
{
    config_setting_t *s = config_setting_get_member(g, "depends_on");
    if (!s)
        return SH_S_OK;
    st->explicit_deps = true;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY)
        return sh_cfg_fail(c, s, "key 'depends_on' of stage '%s' must be a list of stage names like ( \"a\", \"b\" ), "
                                 "got %s", st->name ? st->name : "?", sh_cfg_type_word(s));
    int n = config_setting_length(s);
    st->depends_on = calloc((size_t)n + 1, sizeof *st->depends_on);
    st->depends_line = calloc((size_t)n + 1, sizeof *st->depends_line);
    if (!st->depends_on || !st->depends_line)
        return nomem(c);
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            sh_cfg_fail(c, e, "element %d of 'depends_on' must be a stage name in quotes, got %s", i + 1,
                        sh_cfg_type_word(e));
            continue;
        }
        if (!(st->depends_on[st->dep_count] = strdup(config_setting_get_string(e))))
            return nomem(c);
        st->depends_line[st->dep_count++] = sh_cfg_line(e);
    }
    return SH_S_OK;
}

static sh_status parse_retry(sh_cfg *c, config_setting_t *g, sh_pipeline_stage *st)
{
    st->retry = (sh_retry){.max = 0, .backoff_ms = 100, .multiplier = 2.0};
    config_setting_t *r = config_setting_get_member(g, "retry");
    if (!r)
        return SH_S_OK;
    if (config_setting_type(r) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, r, "key 'retry' must be a group { max = 3; backoff_ms = 100; multiplier = 2.0; }, got %s",
                           sh_cfg_type_word(r));
    static const char *const known[] = {"max", "backoff_ms", "multiplier"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(c, r, "'retry'", known, sizeof known / sizeof known[0]));
    SH_CFG_KEEP_GOING(sh_cfg_int(c, r, "max", "the number of retries after the first attempt", false, 0,
                                 &st->retry.max));
    SH_CFG_KEEP_GOING(sh_cfg_int(c, r, "backoff_ms", "milliseconds to wait before the first retry", false, 0,
                          &st->retry.backoff_ms));
    config_setting_t *m = config_setting_get_member(r, "multiplier");
    if (m) {
        int t = config_setting_type(m);
        double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                   : (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) ? (double)config_setting_get_int64(m)
                                                                      : -1;
        if (v < 1.0 || v > 100.0)
            sh_cfg_fail(c, m, "key 'multiplier' must be a number from 1.0 to 100.0 (each wait is the one before "
                              "times it), got %s", v < 0 && t != CONFIG_TYPE_FLOAT ? sh_cfg_type_word(m) : "a number "
                              "out of that range");
        else
            st->retry.multiplier = v;
    }
    /* Bounded so that a typo cannot keep a run alive for days: beyond this a retry is a new run. */
    if (st->retry.max > 100)
        sh_cfg_fail(c, config_setting_get_member(r, "max"), "key 'max' is %lld: at most 100 retries are allowed",
                    (long long)st->retry.max);
    if (st->retry.backoff_ms > 3600 * 1000)
        sh_cfg_fail(c, config_setting_get_member(r, "backoff_ms"), "key 'backoff_ms' is more than an hour");
    return SH_S_OK;
}

static sh_status parse_stage(sh_cfg *c, config_setting_t *g, size_t index, sh_pipeline *p)
{
    sh_pipeline_stage *st = &p->stages[index];
    st->line = sh_cfg_line(g);
    st->cache = -1;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, g, "element %zu of 'stages' must be a group { name = ...; type = ...; }, got %s",
                           index + 1, sh_cfg_type_word(g));
    static const char *const known[] = {"name",    "type",  "config", "isolation",  "timeout_ms",
                                        "depends_on", "retry", "cache",  "on_failure"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(c, g, "a stage", known, sizeof known / sizeof known[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(c, g, "name", "the stage's name: letters, digits, '_' and '-'", true, &st->name));
    SH_CFG_KEEP_GOING(
        sh_cfg_string(c, g, "type", "a stage type such as \"chunk\" or \"core/text.chunk\"", true, &st->type));
    if (st->name && !valid_stage_name(st->name))
        sh_cfg_fail(c, config_setting_get_member(g, "name"),
                    "stage name '%s' is invalid: use letters, digits, '_' and '-' only", st->name);
    if (st->type && !*st->type)
        sh_cfg_fail(c, config_setting_get_member(g, "type"), "stage '%s' has an empty type",
                    st->name ? st->name : "?");

    config_setting_t *cs = config_setting_get_member(g, "config");
    if (cs && config_setting_type(cs) != CONFIG_TYPE_GROUP) {
        sh_cfg_fail(c, cs, "key 'config' of stage '%s' must be a group { key = value; ... }, got %s",
                    st->name ? st->name : "?", sh_cfg_type_word(cs));
        cs = NULL;
    }
    if (cs) {
        char what[300];
        snprintf(what, sizeof what, "config of stage '%s'", st->name ? st->name : "?");
        SH_CFG_KEEP_GOING(sh_cfg_value(c, cs, what, &st->config));
    }
    if (!st->config && !(st->config = sh_value_map()))
        return nomem(c);

    char *word = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(c, g, "isolation", "\"process\", \"call\" or \"none\"", false, &word));
    if (word && !sh_isolation_parse(word, &st->isolation))
        sh_cfg_fail(c, config_setting_get_member(g, "isolation"),
                    "isolation '%s' of stage '%s' is not one of \"process\", \"call\" or \"none\"", word,
                    st->name ? st->name : "?");
    free(word);
    word = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(c, g, "on_failure", "\"fail\" or \"continue\"", false, &word));
    if (word && strcmp(word, "continue") == 0)
        st->on_failure = SH_ON_FAILURE_CONTINUE;
    else if (word && strcmp(word, "fail") != 0)
        sh_cfg_fail(c, config_setting_get_member(g, "on_failure"),
                    "on_failure '%s' is not one of \"fail\" (the run fails) or \"continue\" (only this stage's "
                    "downstream branch stops)", word);
    free(word);
    SH_CFG_KEEP_GOING(sh_cfg_int(c, g, "timeout_ms", "a number of milliseconds", false, 1, &st->timeout_ms));
    /* A week: longer is a typo, and deadlines in nanoseconds must not overflow. */
    if (st->timeout_ms > 7 * 24 * 3600 * 1000LL)
        sh_cfg_fail(c, config_setting_get_member(g, "timeout_ms"), "key 'timeout_ms' is %lld: at most a week "
                    "(604800000) is allowed", (long long)st->timeout_ms);
    bool cache = false;
    if (config_setting_get_member(g, "cache")) {
        SH_CFG_KEEP_GOING(sh_cfg_bool(c, g, "cache", &cache));
        st->cache = cache;
    }
    SH_CFG_KEEP_GOING(parse_depends(c, g, st));
    return parse_retry(c, g, st);
}

static sh_status parse_pipeline(sh_cfg *c, config_setting_t *root, sh_pipeline *p)
{
    static const char *const top[] = {"pipeline"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(c, root, "the pipeline file", top, 1));
    config_setting_t *pg = config_setting_get_member(root, "pipeline");
    if (!pg)
        return sh_cfg_fail(c, root, "missing the 'pipeline' group: pipeline = { name = \"...\"; stages = ( ... ); };");
    if (config_setting_type(pg) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, pg, "'pipeline' must be a group { name = ...; stages = ( ... ); }, got %s",
                           sh_cfg_type_word(pg));
    static const char *const known[] = {"name", "version", "metadata", "keep_outputs", "stages"};
    SH_CFG_KEEP_GOING(sh_cfg_check_keys(c, pg, "'pipeline'", known, sizeof known / sizeof known[0]));
    SH_CFG_KEEP_GOING(sh_cfg_string(c, pg, "name", "the pipeline's name", true, &p->name));
    SH_CFG_KEEP_GOING(sh_cfg_string(c, pg, "version", "the pipeline's version, a string such as \"1.2\"", false,
                             &p->version));
    config_setting_t *md = config_setting_get_member(pg, "metadata");
    if (md && config_setting_type(md) != CONFIG_TYPE_GROUP)
        sh_cfg_fail(c, md, "key 'metadata' must be a group { owner = \"...\"; ... }, got %s", sh_cfg_type_word(md));
    else if (md)
        SH_CFG_KEEP_GOING(sh_cfg_value(c, md, "the pipeline's metadata", &p->metadata));
    if (!p->metadata && !(p->metadata = sh_value_map()))
        return nomem(c);
    char *keep = NULL;
    SH_CFG_KEEP_GOING(sh_cfg_string(c, pg, "keep_outputs", "\"resume\" or \"all\"", false, &keep));
    if (keep && strcmp(keep, "all") == 0)
        p->keep_outputs = SH_KEEP_OUTPUTS_ALL;
    else if (keep && strcmp(keep, "resume") != 0)
        sh_cfg_fail(c, config_setting_get_member(pg, "keep_outputs"),
                    "keep_outputs '%s' is not one of \"resume\" (the run store keeps stage outputs until the run "
                    "succeeds, for a resume) or \"all\" (it keeps them all)", keep);
    free(keep);

    config_setting_t *stages = config_setting_get_member(pg, "stages");
    if (!stages)
        return sh_cfg_fail(c, pg, "missing required key 'stages' (a list of groups: ( { name = ...; type = ...; } ))");
    if (config_setting_type(stages) != CONFIG_TYPE_LIST)
        return sh_cfg_fail(c, stages, "key 'stages' must be a list ( { ... }, { ... } ), got %s",
                           sh_cfg_type_word(stages));
    int n = config_setting_length(stages);
    if (n == 0)
        return sh_cfg_fail(c, stages, "the pipeline has no stages");
    p->stages = calloc((size_t)n, sizeof *p->stages);
    if (!p->stages)
        return nomem(c);
    for (int i = 0; i < n; i++) {
        p->count = (size_t)i + 1;
        SH_CFG_KEEP_GOING(parse_stage(c, config_setting_get_elem(stages, (unsigned)i), (size_t)i, p));
    }
    return SH_S_OK;
}

sh_status sh_pipeline_load(const char *path, sh_pipeline **out, sh_error *err)
{
    *out = NULL;
    sh_pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading %s", path);
    }
    char resolved[PATH_MAX];
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    /* An absolute base keeps stage paths valid whatever directory a worker runs in. */
    p->dir = dir && realpath(dir, resolved) ? strdup(resolved) : (dir ? strdup(dir) : NULL);
    free(dir);
    if (!p->dir) {
        sh_pipeline_free(p);
        return sh_error_set(err, SH_S_NOMEM, "out of memory reading %s", path);
    }
    config_t cfg;
    sh_cfg c = {.path = path, .err = err};
    sh_status rc = sh_cfg_read_file(&cfg, path, "pipeline", SH_CFG_MAX_DOCUMENT, err);
    if (rc == SH_S_OK) {
        rc = parse_pipeline(&c, config_root_setting(&cfg), p);
        if (rc == SH_S_OK && c.errors)
            rc = SH_S_CONFIG;
    }
    config_destroy(&cfg);
    if (rc != SH_S_OK) {
        sh_pipeline_free(p);
        return rc;
    }
    *out = p;
    return SH_S_OK;
}

/* Appends "PATH:LINE: message" to err, which may already hold errors of an earlier check. */
#define add_error(err, errors, path, line, fmt, ...)                                                              \
    (sh_error_append((err), SH_S_CONFIG, "%s:%d: " fmt, (path), (line), __VA_ARGS__), (*(errors))++)

static size_t find_stage(const sh_pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->stages[i].name && strcmp(p->stages[i].name, name) == 0)
            return i;
    return p->count;
}

/* Depth-first search for cycles; `state` is 0 unvisited, 1 on the current path, 2 done. Reports each cycle once,
 * from the first stage of it reached, as "a -> b -> a". */
static void find_cycles(const sh_pipeline *p, size_t at, int *state, size_t *path, size_t depth, sh_error *err,
                        size_t *errors)
{
    state[at] = 1;
    path[depth] = at;
    for (size_t k = 0; k < p->stages[at].dep_count; k++) {
        size_t up = p->deps[at][k];
        if (up == p->count)
            continue;
        if (state[up] == 1) {
            char text[1024] = "";
            size_t from = depth;
            while (from > 0 && path[from] != up)
                from--;
            for (size_t i = from; i <= depth; i++) {
                size_t used = strlen(text);
                snprintf(text + used, sizeof text - used, "%s -> ", p->stages[path[i]].name);
            }
            size_t used = strlen(text);
            snprintf(text + used, sizeof text - used, "%s", p->stages[up].name);
            /* Edges point upstream; the path reads better in the direction data flows. */
            add_error(err, errors, p->path, p->stages[up].line,
                      "stages depend on each other in a cycle (each depends on the next): %s; remove one of these "
                      "dependencies", text);
        } else if (state[up] == 0) {
            find_cycles(p, up, state, path, depth + 1, err, errors);
        }
    }
    state[at] = 2;
}

size_t sh_pipeline_check(sh_pipeline *p, sh_error *err)
{
    size_t errors = 0;
    if (!p->deps && !(p->deps = calloc(p->count, sizeof *p->deps))) {
        sh_error_set(err, SH_S_NOMEM, "out of memory checking %s", p->path);
        return 1;
    }
    /* Duplicate names found by sorting (util/strlist.h), so a long pipeline is checked in n log n. */
    const char **stage_names = calloc(p->count ? p->count : 1, sizeof *stage_names);
    size_t *first = malloc((p->count ? p->count : 1) * sizeof *first);
    for (size_t i = 0; stage_names && i < p->count; i++)
        stage_names[i] = p->stages[i].name;
    sh_error derr;
    if (!stage_names || !first || sh_find_duplicates(stage_names, p->count, first, &derr) != SH_S_OK) {
        free(stage_names);
        free(first);
        sh_error_set(err, SH_S_NOMEM, "out of memory checking %s", p->path);
        return 1;
    }
    free(stage_names);
    for (size_t i = 0; i < p->count; i++) {
        sh_pipeline_stage *st = &p->stages[i];
        if (first[i] != SIZE_MAX)
            add_error(err, &errors, p->path, st->line,
                      "stage name '%s' is used twice (first at line %d): stage names must be unique", st->name,
                      p->stages[first[i]].line);
        if (!st->explicit_deps && i > 0 && st->dep_count == 0) {
            /* No depends_on: the stage before it in the list, as in a linear pipeline. (Set once: a second
             * check finds it in place.) */
            free(st->depends_on);
            free(st->depends_line);
            st->depends_on = calloc(2, sizeof *st->depends_on);
            st->depends_line = calloc(2, sizeof *st->depends_line);
            if (!st->depends_on || !st->depends_line || !(st->depends_on[0] = strdup(p->stages[i - 1].name))) {
                sh_error_set(err, SH_S_NOMEM, "out of memory checking %s", p->path);
                free(first);
                return errors + 1;
            }
            st->depends_line[0] = st->line;
            st->dep_count = 1;
        }
        free(p->deps[i]);
        if (!(p->deps[i] = calloc(st->dep_count + 1, sizeof *p->deps[i]))) {
            sh_error_set(err, SH_S_NOMEM, "out of memory checking %s", p->path);
            free(first);
            return errors + 1;
        }
        for (size_t k = 0; k < st->dep_count; k++) {
            const char *name = st->depends_on[k];
            size_t up = find_stage(p, name);
            p->deps[i][k] = up;
            if (up == p->count) {
                char names[512] = "";
                for (size_t j = 0; j < p->count; j++) {
                    size_t used = strlen(names);
                    if (j != i)
                        snprintf(names + used, sizeof names - used, "%s'%s'", used ? ", " : "", p->stages[j].name);
                }
                add_error(err, &errors, p->path, st->depends_line[k],
                          "stage '%s' depends on '%s', but no stage has that name; the stages are: %s", st->name,
                          name, names);
            } else if (up == i) {
                add_error(err, &errors, p->path, st->depends_line[k],
                          "stage '%s' depends on itself; remove it from its "
                                                             "own 'depends_on'", st->name);
                p->deps[i][k] = p->count;
            } else {
                for (size_t j = 0; j < k; j++)
                    if (p->deps[i][j] == up) {
                        add_error(err, &errors, p->path, st->depends_line[k],
                                  "stage '%s' lists '%s' twice in 'depends_on'; its output would be read twice",
                                  st->name, name);
                        break;
                    }
            }
        }
    }
    free(first);
    int *state = calloc(p->count, sizeof *state);
    size_t *path = calloc(p->count + 1, sizeof *path);
    if (!state || !path) {
        free(state);
        free(path);
        sh_error_set(err, SH_S_NOMEM, "out of memory checking %s", p->path);
        return errors + 1;
    }
    for (size_t i = 0; i < p->count; i++)
        if (state[i] == 0)
            find_cycles(p, i, state, path, 0, err, &errors);
    free(state);
    free(path);
    return errors;
}

void sh_pipeline_order(const sh_pipeline *p, size_t *order)
{
    bool *placed = calloc(p->count, sizeof *placed);
    size_t n = 0;
    /* Repeatedly take the first stage in declared order whose upstream stages are all placed: O(n^2) on the
     * number of stages, which stays small, and the order is the one a reader of the file expects. */
    while (placed && n < p->count) {
        size_t before = n;
        for (size_t i = 0; i < p->count; i++) {
            if (placed[i])
                continue;
            bool ready = true;
            for (size_t k = 0; k < p->stages[i].dep_count && ready; k++)
                ready = p->deps[i][k] < p->count && placed[p->deps[i][k]];
            if (ready) {
                placed[i] = true;
                order[n++] = i;
                break;
            }
        }
        if (n == before)
            break; /* a cycle: sh_pipeline_check reported it */
    }
    for (size_t i = 0; placed && i < p->count; i++)
        if (!placed[i])
            order[n++] = i;
    if (!placed)
        for (size_t i = 0; i < p->count; i++)
            order[i] = i;
    free(placed);
}

void sh_pipeline_free(sh_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        sh_pipeline_stage *st = &p->stages[i];
        free(st->name);
        free(st->type);
        sh_value_free(st->config);
        for (size_t k = 0; k < st->dep_count; k++)
            free(st->depends_on[k]);
        free(st->depends_on);
        free(st->depends_line);
        if (p->deps)
            free(p->deps[i]);
    }
    free(p->deps);
    free(p->stages);
    free(p->path);
    free(p->dir);
    free(p->name);
    free(p->version);
    sh_value_free(p->metadata);
    free(p);
}
