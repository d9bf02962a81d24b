#include "registry/discovery.h"
#include "registry/cache.h"
#include "util/dirlist.h"
#include "sh_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One directory, answered from the registry cache where its descriptors are unchanged (cache may be NULL). */
static sh_status discover_dir(sh_registry *reg, const char *dir, sh_regcache *cache, sh_error *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sh_error_set(err, SH_S_CONFIG, "cannot read plugins directory %s: %s", dir, strerror(errno));
    /* Once per directory: every descriptor records it, and realpath costs a few syscalls (NULL: each load works
     * it out, as it would alone). */
    char *real = realpath(dir, NULL);
    /* The cache looks at the directory before anything reads it, so a listing it keeps is never newer than the
     * directory times it records. */
    const char *const *listed = NULL;
    long n = sh_regcache_begin_dir(cache, dir, dfd, real, &listed);
    sh_strlist names = {0};
    if (n < 0) {
        sh_status rc = sh_dirlist_at(dfd, dir, ".plugin", &names, err);
        if (rc == SH_S_IO)
            rc = sh_error_set(err, SH_S_CONFIG, "cannot read plugins directory %s: %s", dir, strerror(errno));
        if (rc != SH_S_OK) {
            free(real);
            close(dfd);
            return rc;
        }
        n = (long)names.len;
    }
    sh_descriptor_dir info = {.real = real};
    size_t dlen = strlen(dir), cap = dlen + 64;
    char *path = malloc(cap);
    sh_status rc = path ? SH_S_OK : sh_error_set(err, SH_S_NOMEM, "out of memory scanning %s", dir);
    if (path) {
        memcpy(path, dir, dlen);
        path[dlen] = '/';
    }
    for (long i = 0; i < n && rc == SH_S_OK; i++) {
        const char *file = listed ? listed[i] : names.items[i];
        size_t flen = strlen(file);
        if (dlen + flen + 2 > cap) {
            char *p = realloc(path, cap = dlen + flen + 64);
            if (!p) {
                rc = sh_error_set(err, SH_S_NOMEM, "out of memory scanning %s", dir);
                break;
            }
            path = p;
        }
        memcpy(path + dlen + 1, file, flen + 1);
        sh_descriptor *d = NULL;
        char *name = NULL;
        sh_error derr;
        sh_error_clear(&derr);
        sh_status drc = sh_regcache_load(cache, path, file, &info, &d, &name, &derr);
        if (drc == SH_S_NOMEM)
            rc = sh_error_set(err, SH_S_NOMEM, "%s", derr.message);
        else
            rc = sh_registry_add(reg, path, d, name, drc == SH_S_OK ? NULL : derr.message, err);
        free(name);
    }
    /* A scan cut short would record a partial directory. */
    if (rc == SH_S_OK)
        sh_regcache_end_dir(cache);
    sh_strlist_clear(&names);
    free(path);
    sh_descriptor_dir_release(&info);
    free(real);
    close(dfd);
    return rc;
}

sh_status sh_discover_dir(sh_registry *reg, const sh_env *env, const char *dir, sh_error *err)
{
    sh_regcache *cache = sh_regcache_open(env);
    sh_status rc = discover_dir(reg, dir, cache, err);
    sh_regcache_close(cache);
    return rc;
}

static sh_status add_dir(sh_registry *reg, const char *dir, size_t len, sh_error *err)
{
    char **p = realloc(reg->dirs, (reg->dir_count + 1) * sizeof *p);
    if (!p)
        return sh_error_set(err, SH_S_NOMEM, "out of memory building the plugin search path");
    reg->dirs = p;
    if (!(reg->dirs[reg->dir_count] = strndup(dir, len)))
        return sh_error_set(err, SH_S_NOMEM, "out of memory building the plugin search path");
    reg->dir_count++;
    return SH_S_OK;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds each existing directory of a colon-separated list; empty elements are ignored. */
static sh_status add_path_list(sh_registry *reg, const char *list, sh_error *err)
{
    while (list && *list) {
        const char *colon = strchr(list, ':');
        size_t len = colon ? (size_t)(colon - list) : strlen(list);
        if (len) {
            char *dir = strndup(list, len);
            if (!dir)
                return sh_error_set(err, SH_S_NOMEM, "out of memory building the plugin search path");
            bool ok = is_dir(dir);
            free(dir);
            if (ok && add_dir(reg, list, len, err) != SH_S_OK)
                return SH_S_NOMEM;
        }
        list = colon ? colon + 1 : NULL;
    }
    return SH_S_OK;
}

sh_status sh_discover(sh_registry *reg, const sh_env *env, const char *const *cli_dirs, size_t cli_count,
                      const sh_strlist *config_dirs, sh_error *err)
{
    for (size_t i = 0; i < cli_count; i++) {
        if (!is_dir(cli_dirs[i]))
            return sh_error_set(err, SH_S_CONFIG,
                                "--plugins-dir %s: not a directory (%s); pass a directory holding *.plugin files",
                                cli_dirs[i], strerror(errno ? errno : ENOTDIR));
        if (add_dir(reg, cli_dirs[i], strlen(cli_dirs[i]), err) != SH_S_OK)
            return SH_S_NOMEM;
    }
    if (add_path_list(reg, env->plugin_path, err) != SH_S_OK)
        return SH_S_NOMEM;
    for (size_t i = 0; config_dirs && i < config_dirs->len; i++)
        if (add_path_list(reg, config_dirs->items[i], err) != SH_S_OK)
            return SH_S_NOMEM;
    const char *system = env->system_plugin_path;
    if (add_path_list(reg, system ? system : SH_DEFAULT_PLUGIN_DIR, err) != SH_S_OK)
        return SH_S_NOMEM;

    /* One cache for the whole search path: read once, written once. */
    sh_regcache *cache = sh_regcache_open(env);
    sh_status rc = SH_S_OK;
    for (size_t i = 0; i < reg->dir_count && rc == SH_S_OK; i++) {
        /* The same directory twice on the path would only shadow itself. */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(reg->dirs[k], reg->dirs[i]) == 0;
        if (!seen)
            rc = discover_dir(reg, reg->dirs[i], cache, err);
    }
    sh_regcache_close(cache);
    return rc;
}
