/* Pipeline-relative paths and parent directories; see plugin_path.h. */
#define _POSIX_C_SOURCE 200809L
#include "plugin_path.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

char *pp_resolve(sh_call *call, const char *path)
{
    sh_context ctx = sh_get_context(call);
    const char *base = ctx.base_dir && *ctx.base_dir ? ctx.base_dir : ".";
    size_t n = strlen(base) + strlen(path) + 2;
    char *full = malloc(n);
    if (!full) {
        sh_failf(call, "out of memory resolving '%s'", path);
        return NULL;
    }
    if (path[0] == '/')
        snprintf(full, n, "%s", path);
    else
        snprintf(full, n, "%s/%s", base, path);
    return full;
}

int pp_make_parents(const char *path, char *failed, size_t len)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(failed, len, "%s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    /* Walk down from the root, creating what is missing; an existing directory is fine. */
    for (char *p = dir + 1;; p++) {
        bool last = *p == '\0';
        if (*p == '/' || last) {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
                snprintf(failed, len, "%s", dir);
                return -1;
            }
            *p = saved;
        }
        if (last)
            break;
    }
    return 0;
}

const char *pp_access_hint(int err)
{
    if (err == EACCES || err == EPERM || err == EROFS)
        return "; if the plugin runs confined (isolation \"process\" or \"call\"), it may write only the paths its "
               "descriptor declares in permissions.write, granted with --grant PLUGIN:write=PATH";
    return "";
}
