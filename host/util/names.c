#include "util/names.h"

#include <ctype.h>
#include <string.h>

static bool name_part(const char *s, size_t len)
{
    if (len == 0 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(islower(c) || isdigit(c) || c == '-'))
            return false;
    }
    return true;
}

bool sh_valid_library_path(const char *s)
{
    if (!*s || s[0] == '/')
        return false;
    /* No ".." component: the library must not reach out of the plugin's directory. */
    for (const char *p = s; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n + (slash != NULL);
    }
    return true;
}

bool sh_valid_plugin_name(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash && name_part(s, (size_t)(slash - s)) && name_part(slash + 1, strlen(slash + 1));
}

bool sh_valid_stage_type(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool digits(const char **p)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return false;
    if (*s == '0' && isdigit((unsigned char)s[1]))
        return false; /* semver forbids leading zeros */
    while (isdigit((unsigned char)*s))
        s++;
    *p = s;
    return true;
}

bool sh_valid_semver(const char *s)
{
    if (!digits(&s) || *s++ != '.' || !digits(&s) || *s++ != '.' || !digits(&s))
        return false;
    if (*s == '-' || *s == '+') {
        s++;
        if (!*s)
            return false;
        for (; *s; s++)
            if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '-' || *s == '+'))
                return false;
    }
    return *s == '\0';
}

bool sh_valid_c_identifier(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

bool sh_valid_contract_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}
