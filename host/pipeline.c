#include "pipeline.h"
#include "cfgread.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
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

static sh_status parse_stage(sh_cfg *c, config_setting_t *g, size_t index, sh_pipeline *p)
{
    sh_pipeline_stage *st = &p->stages[index];
    st->line = sh_cfg_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, g, "element %zu of 'stages' must be a group { name = ...; type = ...; }, got %s",
                           index + 1, sh_cfg_type_word(g));
    static const char *const known[] = {"name", "type", "config", "isolation", "timeout_ms"};
    sh_status rc = sh_cfg_check_keys(c, g, "a stage", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(c, g, "name", "the stage's name: letters, digits, '_' and '-'", true, &st->name);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(c, g, "type", "a stage type such as \"chunk\" or \"core/text.chunk\"", true, &st->type);
    if (rc != SH_S_OK)
        return rc;
    if (!valid_stage_name(st->name))
        return sh_cfg_fail(c, config_setting_get_member(g, "name"),
                           "stage name '%s' is invalid: use letters, digits, '_' and '-' only", st->name);
    if (!*st->type)
        return sh_cfg_fail(c, config_setting_get_member(g, "type"), "stage '%s' has an empty type", st->name);
    for (size_t k = 0; k < index; k++)
        if (strcmp(p->stages[k].name, st->name) == 0)
            return sh_cfg_fail(c, g, "stage name '%s' is used twice (first at line %d): stage names must be unique",
                               st->name, p->stages[k].line);

    config_setting_t *cs = config_setting_get_member(g, "config");
    if (cs && config_setting_type(cs) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, cs, "key 'config' of stage '%s' must be a group { key = value; ... }, got %s",
                           st->name, sh_cfg_type_word(cs));
    if (cs) {
        char what[300];
        snprintf(what, sizeof what, "config of stage '%s'", st->name);
        rc = sh_cfg_value(c, cs, what, &st->config);
        if (rc != SH_S_OK)
            return rc;
    } else if (!(st->config = sh_value_map())) {
        return sh_error_set(c->err, SH_S_NOMEM, "out of memory reading %s", c->path);
    }

    char *iso = NULL;
    rc = sh_cfg_string(c, g, "isolation", "\"process\", \"call\" or \"none\"", false, &iso);
    if (rc == SH_S_OK && iso && !sh_isolation_parse(iso, &st->isolation))
        rc = sh_cfg_fail(c, config_setting_get_member(g, "isolation"),
                         "isolation '%s' of stage '%s' is not one of \"process\", \"call\" or \"none\"", iso,
                         st->name);
    free(iso);
    if (rc == SH_S_OK)
        rc = sh_cfg_int(c, g, "timeout_ms", "a number of milliseconds", false, 1, &st->timeout_ms);
    return rc;
}

static sh_status parse_pipeline(sh_cfg *c, config_setting_t *root, sh_pipeline *p)
{
    static const char *const top[] = {"pipeline"};
    sh_status rc = sh_cfg_check_keys(c, root, "the pipeline file", top, 1);
    if (rc != SH_S_OK)
        return rc;
    config_setting_t *pg = config_setting_get_member(root, "pipeline");
    if (!pg)
        return sh_cfg_fail(c, root, "missing the 'pipeline' group: pipeline = { name = \"...\"; stages = ( ... ); };");
    if (config_setting_type(pg) != CONFIG_TYPE_GROUP)
        return sh_cfg_fail(c, pg, "'pipeline' must be a group { name = ...; stages = ( ... ); }, got %s",
                           sh_cfg_type_word(pg));
    static const char *const known[] = {"name", "stages"};
    rc = sh_cfg_check_keys(c, pg, "'pipeline'", known, sizeof known / sizeof known[0]);
    if (rc == SH_S_OK)
        rc = sh_cfg_string(c, pg, "name", "the pipeline's name", true, &p->name);
    if (rc != SH_S_OK)
        return rc;
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
        return sh_error_set(c->err, SH_S_NOMEM, "out of memory reading %s", c->path);
    for (int i = 0; i < n; i++) {
        p->count = (size_t)i + 1;
        rc = parse_stage(c, config_setting_get_elem(stages, (unsigned)i), (size_t)i, p);
        if (rc != SH_S_OK)
            return rc;
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
    sh_status rc = sh_cfg_read_file(&cfg, path, "pipeline", err);
    if (rc == SH_S_OK)
        rc = parse_pipeline(&c, config_root_setting(&cfg), p);
    config_destroy(&cfg);
    if (rc != SH_S_OK) {
        sh_pipeline_free(p);
        return rc;
    }
    *out = p;
    return SH_S_OK;
}

void sh_pipeline_free(sh_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        free(p->stages[i].name);
        free(p->stages[i].type);
        sh_value_free(p->stages[i].config);
    }
    free(p->stages);
    free(p->path);
    free(p->dir);
    free(p->name);
    free(p);
}
