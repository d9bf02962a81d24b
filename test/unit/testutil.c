/* Fixture helpers shared by the unit tests; see testutil.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

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
