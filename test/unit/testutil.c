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
