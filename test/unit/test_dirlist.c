/* Unit tests for sh_dirlist (util/dirlist.h): byte order whatever the creation order, the suffix and dot-name
 * filters, the fd variant leaving its descriptor usable, and the errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/dirlist.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[4096];

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(root, sizeof root, "sh-dirlist") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tu_remove_tree(root);
}

static void touch(const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, name);
    tu_write_file(path, "");
}

static void expect_names(const sh_strlist *l, const char *const *want, size_t n)
{
    assert_int_equal(l->len, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->items[i], want[i]);
    assert_null(l->items ? l->items[n] : NULL);
}

static void sorted_and_filtered(void **state)
{
    (void)state;
    /* Created out of order, with upper case (before lower case in byte order), a hidden file, a bare suffix and
     * a directory that ends in the suffix too (it is a name like any other). */
    const char *files[] = {"b.plugin", "a.plugin", "B.plugin", ".hidden.plugin", ".plugin", "c.hooks", "a.plugin~",
                           "é.plugin", "a-b.plugin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        touch(files[i]);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/d.plugin", root);
    assert_int_equal(mkdir(sub, 0700), 0);

    sh_strlist l;
    sh_error err;
    assert_int_equal(sh_dirlist(root, ".plugin", &l, &err), SH_S_OK);
    const char *want[] = {"B.plugin", "a-b.plugin", "a.plugin", "b.plugin", "d.plugin", "é.plugin"};
    expect_names(&l, want, sizeof want / sizeof want[0]);
    sh_strlist_clear(&l);

    assert_int_equal(sh_dirlist(root, NULL, &l, &err), SH_S_OK);
    const char *all[] = {"B.plugin", "a-b.plugin", "a.plugin", "a.plugin~", "b.plugin", "c.hooks", "d.plugin",
                         "é.plugin"};
    expect_names(&l, all, sizeof all / sizeof all[0]);
    sh_strlist_clear(&l);

    assert_int_equal(sh_dirlist(root, ".hooks", &l, &err), SH_S_OK);
    const char *hooks[] = {"c.hooks"};
    expect_names(&l, hooks, 1);
    sh_strlist_clear(&l);
}

static void empty_directory(void **state)
{
    (void)state;
    sh_strlist l;
    sh_error err;
    touch(".only-hidden");
    assert_int_equal(sh_dirlist(root, "", &l, &err), SH_S_OK);
    assert_int_equal(l.len, 0);
    sh_strlist_clear(&l);
}

static void at_keeps_the_descriptor(void **state)
{
    (void)state;
    touch("z.plugin");
    touch("y.plugin");
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    sh_strlist l;
    sh_error err;
    for (int round = 0; round < 2; round++) { /* twice: the first listing must not use up the descriptor */
        assert_int_equal(sh_dirlist_at(dfd, root, ".plugin", &l, &err), SH_S_OK);
        const char *want[] = {"y.plugin", "z.plugin"};
        expect_names(&l, want, 2);
        sh_strlist_clear(&l);
    }
    struct stat st;
    assert_int_equal(fstat(dfd, &st), 0);
    close(dfd);
}

static void errors(void **state)
{
    (void)state;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing", root);
    sh_strlist l;
    sh_error err;
    assert_int_equal(sh_dirlist(missing, ".plugin", &l, &err), SH_S_IO);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(l.len, 0);
    assert_null(l.items);
    tu_expect_contains(err.message, "cannot read directory ");
    tu_expect_contains(err.message, missing);
    tu_expect_contains(err.message, strerror(ENOENT));

    touch("file");
    char file[4200];
    snprintf(file, sizeof file, "%s/file", root);
    assert_int_equal(sh_dirlist(file, NULL, &l, &err), SH_S_IO);
    assert_int_equal(errno, ENOTDIR);
    tu_expect_contains(err.message, strerror(ENOTDIR));

    assert_int_equal(sh_dirlist_at(-1, "(closed)", NULL, &l, &err), SH_S_IO);
    assert_int_equal(errno, EBADF);
    tu_expect_contains(err.message, "cannot read directory (closed): ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sorted_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(at_keeps_the_descriptor, setup, teardown),
        cmocka_unit_test_setup_teardown(errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
