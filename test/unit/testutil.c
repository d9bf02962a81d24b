/* Fixture helpers shared by the unit tests; see testutil.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_mkdtemp(char *buf, size_t size, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, size, "%s/%s-XXXXXX", tmp ? tmp : "/tmp", prefix);
    if (n < 0 || (size_t)n >= size)
        return NULL; /* truncated: mkdtemp() would not see the XXXXXX */
    return mkdtemp(buf);
}

void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int tu_remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_expect_contains(const char *message, const char *want)
{
    if (!strstr(message, want))
        print_error("expected '%s' in: %s\n", want, message);
    assert_non_null(strstr(message, want));
}

void tu_vexpect_at(const char *message, const char *path, int line, va_list wants)
{
    char prefix[PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    if (strncmp(message, prefix, strlen(prefix)) != 0)
        print_error("expected prefix '%s' in message: %s\n", prefix, message);
    assert_int_equal(strncmp(message, prefix, strlen(prefix)), 0);

    for (const char *want = va_arg(wants, const char *); want; want = va_arg(wants, const char *))
        tu_expect_contains(message, want);
}

int tu_children(int parent, int *live, int *first_live, int *last_zombie)
{
    int n = 0, alive = 0, first = 0, zombie = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* The command name may hold spaces and parentheses: the fields start after the last ')'. */
        const char *close_paren = strrchr(buf, ')');
        char state;
        int ppid;
        if (!close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2 || ppid != parent)
            continue;
        n++;
        if (state == 'Z') {
            zombie = atoi(e->d_name);
        } else {
            if (!alive)
                first = atoi(e->d_name);
            alive++;
        }
    }
    if (d)
        closedir(d);
    if (live)
        *live = alive;
    if (first_live)
        *first_live = first;
    if (last_zombie)
        *last_zombie = zombie;
    return n;
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!text)
        text = calloc(1, 1);
    assert_non_null(text);
    text[len] = '\0';
    return text;
}

const char *tu_plugin_dir(void)
{
    const char *d = getenv("SH_TEST_PLUGIN_DIR");
    return d && *d ? d : "build/test/plugins";
}

void tu_link_test_lib(const char *dir, const char *lib)
{
    char target[PATH_MAX], link[PATH_MAX];
    snprintf(target, sizeof target, "%s/%s", tu_plugin_dir(), lib);
    snprintf(link, sizeof link, "%s/%s", dir, lib);
    unlink(link);
    if (symlink(target, link) != 0)
        fail_msg("cannot link %s to %s", link, target);
}

void tu_faults_plugin(const char *dir, char *path, size_t size)
{
    char source[PATH_MAX];
    snprintf(source, sizeof source, "%s/faults.plugin", tu_plugin_dir());
    char *text = tu_read_file(source);
    tu_link_test_lib(dir, "libfaults.so");
    assert_true((size_t)snprintf(path, size, "%s/faults.plugin", dir) < size);
    tu_write_file(path, text);
    free(text);
}

const char *tu_faults_stages(void)
{
    static char body[4096];
    if (body[0])
        return body;
    char source[PATH_MAX];
    snprintf(source, sizeof source, "%s/faults.plugin", tu_plugin_dir());
    char *text = tu_read_file(source);
    /* From the list's opening parenthesis to the one that closes it: a stage's own groups may hold lists. */
    const char *open = strstr(text, "stages = (");
    if (!open)
        fail_msg("%s has no 'stages = (' list", source);
    const char *from = open + strlen("stages = ("), *p = from;
    int depth = 1;
    for (; *p && depth; p++)
        depth += (*p == '(') - (*p == ')');
    if (depth || (size_t)(p - 1 - from) >= sizeof body)
        fail_msg("%s: the stages list does not end, or is longer than %zu bytes", source, sizeof body);
    memcpy(body, from, (size_t)(p - 1 - from));
    body[p - 1 - from] = '\0';
    free(text);
    return body;
}

void tu_env(sh_env *env, const char *state_dir, const char *const *extra)
{
    char state[PATH_MAX + 32], cache[PATH_MAX + 32];
    snprintf(state, sizeof state, "STAGEHOST_STATE_DIR=%s", state_dir);
    snprintf(cache, sizeof cache, "STAGEHOST_CACHE_DIR=%s", state_dir);
    const char *vars[16] = {state, cache, "STAGEHOST_SYSTEM_PLUGIN_PATH="};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n + 1 < sizeof vars / sizeof vars[0]);
        vars[n++] = extra[i];
    }
    vars[n] = NULL;
    sh_error err;
    if (sh_env_capture_from(env, vars, &err) != SH_S_OK)
        fail_msg("%s", err.message);
}
