#include "registry/version.h"
#include "util/names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Reads MAJOR[.MINOR[.PATCH]] at *p, advancing it. */
static bool read_version(const char **p, sh_version *out)
{
    long parts[3] = {0, 0, 0};
    const char *s = *p;
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*s))
            return false;
        char *end;
        parts[i] = strtol(s, &end, 10);
        s = end;
        if (*s != '.' || i == 2)
            break;
        s++;
    }
    /* A pre-release or build suffix does not take part in the comparison. */
    if (*s == '-' || *s == '+')
        while (*s && *s != ',' && *s != ' ')
            s++;
    out->major = parts[0];
    out->minor = parts[1];
    out->patch = parts[2];
    *p = s;
    return true;
}

static int compare_versions(const sh_version *a, const sh_version *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}

bool sh_requirement_parse(const char *text, sh_requirement *out, char *why, size_t len)
{
    memset(out, 0, sizeof *out);
    const char *s = skip_space(text);
    size_t n = 0;
    while (s[n] && s[n] != ' ' && s[n] != '\t' && !strchr("<>=!", s[n]))
        n++;
    if (n == 0 || n >= sizeof out->name) {
        snprintf(why, len, "requirement \"%s\" must start with a plugin name, as in \"core/io >= 1.2, < 2\"", text);
        return false;
    }
    memcpy(out->name, s, n);
    out->name[n] = '\0';
    if (!sh_valid_plugin_name(out->name)) {
        snprintf(why, len, "requirement \"%s\" names '%s', which is not a plugin name \"namespace/name\"", text,
                 out->name);
        return false;
    }
    s = skip_space(s + n);
    while (*s) {
        static const struct {
            const char *text;
            sh_version_op op;
        } ops[] = {{">=", SH_OP_GE}, {"<=", SH_OP_LE}, {"==", SH_OP_EQ}, {"!=", SH_OP_NE},
                   {">", SH_OP_GT},  {"<", SH_OP_LT},  {"=", SH_OP_EQ}};
        size_t k = 0;
        while (k < sizeof ops / sizeof ops[0] && strncmp(s, ops[k].text, strlen(ops[k].text)) != 0)
            k++;
        if (k == sizeof ops / sizeof ops[0] || out->count == sizeof out->constraints / sizeof out->constraints[0]) {
            snprintf(why, len,
                     "requirement \"%s\": expected a comparison (>=, >, <=, <, =, !=) and a version at \"%s\"",
                     text, s);
            return false;
        }
        s = skip_space(s + strlen(ops[k].text));
        sh_constraint *c = &out->constraints[out->count];
        c->op = ops[k].op;
        if (!read_version(&s, &c->version)) {
            snprintf(why, len, "requirement \"%s\": expected a version such as 1.2 or 1.2.3 at \"%s\"", text, s);
            return false;
        }
        out->count++;
        s = skip_space(s);
        if (*s == ',')
            s = skip_space(s + 1);
        else if (*s) {
            snprintf(why, len, "requirement \"%s\": expected ',' between constraints at \"%s\"", text, s);
            return false;
        }
    }
    return true;
}

bool sh_requirement_satisfied(const sh_requirement *r, const char *version)
{
    sh_version v;
    const char *p = version;
    if (!read_version(&p, &v))
        return false;
    for (size_t i = 0; i < r->count; i++) {
        int c = compare_versions(&v, &r->constraints[i].version);
        bool ok = false;
        switch (r->constraints[i].op) {
        case SH_OP_EQ:
            ok = c == 0;
            break;
        case SH_OP_NE:
            ok = c != 0;
            break;
        case SH_OP_LT:
            ok = c < 0;
            break;
        case SH_OP_LE:
            ok = c <= 0;
            break;
        case SH_OP_GT:
            ok = c > 0;
            break;
        case SH_OP_GE:
            ok = c >= 0;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}
