/* Unit tests for util/env: what is read from the environment and what is derived from it once: the XDG rules of
 * the cache and state directories (STAGEHOST_* over XDG over HOME, absolute paths only), empty values, lookups,
 * and the snapshot that later setenv calls do not change. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/env.h"

#include <stdlib.h>
#include <string.h>

/* Captures `vars` (NULL-terminated) into a fresh env. */
static sh_env *capture(sh_env *env, const char *const *vars)
{
    sh_error err;
    assert_int_equal(sh_env_capture_from(env, vars, &err), SH_S_OK);
    return env;
}

static void expect_dirs(const sh_strlist *l, const char *first, const char *second)
{
    assert_int_equal(l->len, (size_t)(first != NULL) + (second != NULL));
    if (first)
        assert_string_equal(l->items[0], first);
    if (second)
        assert_string_equal(l->items[1], second);
}

static void cache_dir_precedence(void **state)
{
    (void)state;
    sh_env env;
    /* STAGEHOST_CACHE_DIR alone, even relative: an explicit choice is never second-guessed. */
    const char *explicit_dir[] = {"HOME=/home/u", "XDG_CACHE_HOME=/xdg", "STAGEHOST_CACHE_DIR=rel/cache", NULL};
    expect_dirs(&capture(&env, explicit_dir)->cache_dirs, "rel/cache", NULL);
    sh_env_free(&env);
    /* XDG first, then HOME. */
    const char *both[] = {"HOME=/home/u", "XDG_CACHE_HOME=/xdg", NULL};
    expect_dirs(&capture(&env, both)->cache_dirs, "/xdg/stagehost", "/home/u/.cache/stagehost");
    sh_env_free(&env);
    /* Relative XDG and HOME are ignored, as the XDG specification says. */
    const char *rel_xdg[] = {"HOME=/home/u", "XDG_CACHE_HOME=xdg", NULL};
    expect_dirs(&capture(&env, rel_xdg)->cache_dirs, "/home/u/.cache/stagehost", NULL);
    sh_env_free(&env);
    const char *rel_home[] = {"HOME=home/u", NULL};
    expect_dirs(&capture(&env, rel_home)->cache_dirs, NULL, NULL);
    sh_env_free(&env);
    /* Nothing at all. */
    expect_dirs(&capture(&env, (const char *const[]){NULL})->cache_dirs, NULL, NULL);
    sh_env_free(&env);
}

static void state_dir_precedence(void **state)
{
    (void)state;
    sh_env env;
    const char *explicit_dir[] = {"STAGEHOST_STATE_DIR=/state", "XDG_STATE_HOME=/xdg", "HOME=/home/u", NULL};
    assert_string_equal(capture(&env, explicit_dir)->state_dir, "/state");
    expect_dirs(&env.state_dirs, "/state", NULL);
    sh_env_free(&env);
    const char *both[] = {"XDG_STATE_HOME=/xdg", "HOME=/home/u", NULL};
    assert_string_equal(capture(&env, both)->state_dir, "/xdg/stagehost");
    expect_dirs(&env.state_dirs, "/xdg/stagehost", "/home/u/.local/state/stagehost");
    sh_env_free(&env);
    const char *home[] = {"XDG_STATE_HOME=relative", "HOME=/home/u", NULL};
    assert_string_equal(capture(&env, home)->state_dir, "/home/u/.local/state/stagehost");
    sh_env_free(&env);
    /* The cache's variables do not leak into the state directory, nor the other way round. */
    const char *cache_only[] = {"STAGEHOST_CACHE_DIR=/c", "XDG_CACHE_HOME=/xc", NULL};
    assert_null(capture(&env, cache_only)->state_dir);
    expect_dirs(&env.cache_dirs, "/c", NULL);
    sh_env_free(&env);
    const char *state_only[] = {"STAGEHOST_STATE_DIR=/s", NULL};
    expect_dirs(&capture(&env, state_only)->cache_dirs, NULL, NULL);
    sh_env_free(&env);
}

static void empty_values_are_unset(void **state)
{
    (void)state;
    sh_env env;
    const char *empty[] = {"STAGEHOST_CACHE_DIR=", "XDG_CACHE_HOME=", "STAGEHOST_STATE_DIR=", "XDG_STATE_HOME=",
                           "HOME=/h", "TMPDIR=", "STAGEHOST_CONFIG=", "STAGEHOST_PLUGIN_PATH=",
                           "STAGEHOST_PRETEND_MISSING=", "STAGEHOST_NO_CACHE=", "STAGEHOST_SYSTEM_PLUGIN_PATH=",
                           NULL};
    capture(&env, empty);
    expect_dirs(&env.cache_dirs, "/h/.cache/stagehost", NULL);
    assert_string_equal(env.state_dir, "/h/.local/state/stagehost");
    assert_string_equal(env.tmpdir, "/tmp");
    assert_null(env.config);
    assert_null(env.plugin_path);
    assert_null(env.pretend_missing);
    assert_false(env.no_cache);
    /* The one exception: an empty system plugin path turns the installed default off. */
    assert_non_null(env.system_plugin_path);
    assert_string_equal(env.system_plugin_path, "");
    /* Lookups still see an empty value as set. */
    assert_string_equal(sh_env_get(&env, "TMPDIR"), "");
    sh_env_free(&env);
    const char *empty_home[] = {"HOME=", NULL};
    capture(&env, empty_home);
    expect_dirs(&env.cache_dirs, NULL, NULL);
    assert_null(env.state_dir);
    sh_env_free(&env);
}

static void values(void **state)
{
    (void)state;
    sh_env env;
    const char *unset[] = {"HOME=/h", NULL};
    capture(&env, unset);
    assert_string_equal(env.tmpdir, "/tmp");
    assert_null(env.system_plugin_path);
    assert_null(env.config);
    assert_false(env.no_cache);
    sh_env_free(&env);
    const char *set[] = {"TMPDIR=/var/tmp", "STAGEHOST_CONFIG=/etc/sh.cfg", "STAGEHOST_PLUGIN_PATH=/a::/b",
                         "STAGEHOST_SYSTEM_PLUGIN_PATH=/sys", "STAGEHOST_PRETEND_MISSING=seccomp,landlock",
                         "STAGEHOST_NO_CACHE=1", NULL};
    capture(&env, set);
    assert_string_equal(env.tmpdir, "/var/tmp");
    assert_string_equal(env.config, "/etc/sh.cfg");
    assert_string_equal(env.plugin_path, "/a::/b");
    assert_string_equal(env.system_plugin_path, "/sys");
    assert_string_equal(env.pretend_missing, "seccomp,landlock");
    assert_true(env.no_cache);
    sh_env_free(&env);
    /* STAGEHOST_NO_CACHE: anything but "0" (or empty) turns the cache off. */
    const char *zero[] = {"STAGEHOST_NO_CACHE=0", NULL};
    assert_false(capture(&env, zero)->no_cache);
    sh_env_free(&env);
    const char *yes[] = {"STAGEHOST_NO_CACHE=yes", NULL};
    assert_true(capture(&env, yes)->no_cache);
    sh_env_free(&env);
}

static void lookups(void **state)
{
    (void)state;
    sh_env env;
    /* The first of two entries counts (as getenv's); an entry without '=' is no variable; a name is matched
     * whole, not as a prefix of a longer one; values may hold '='. */
    const char *vars[] = {"STAGEHOST_ACTIVE_DOC=acme/a", "NOEQUALS", "STAGEHOST_ACTIVE_DOC=acme/b",
                          "HOMEX=/nope", "OPTS=a=b", NULL};
    capture(&env, vars);
    assert_int_equal(env.vars.len, 4);
    assert_string_equal(sh_env_get(&env, "STAGEHOST_ACTIVE_DOC"), "acme/a");
    assert_null(sh_env_get(&env, "NOEQUALS"));
    assert_null(sh_env_get(&env, "HOME"));
    assert_null(sh_env_get(&env, "STAGEHOST_ACTIVE"));
    assert_string_equal(sh_env_get(&env, "OPTS"), "a=b");
    expect_dirs(&env.cache_dirs, NULL, NULL);
    sh_env_free(&env);
    /* A freed env is empty, and freeing it again is harmless. */
    assert_int_equal(env.vars.len, 0);
    sh_env_free(&env);
}

static void capture_is_a_snapshot(void **state)
{
    (void)state;
    assert_int_equal(setenv("STAGEHOST_CACHE_DIR", "/before", 1), 0);
    assert_int_equal(setenv("STAGEHOST_ENV_TEST", "one", 1), 0);
    sh_env env;
    sh_error err;
    assert_int_equal(sh_env_capture(&env, &err), SH_S_OK);
    assert_int_equal(setenv("STAGEHOST_CACHE_DIR", "/after", 1), 0);
    assert_int_equal(unsetenv("STAGEHOST_ENV_TEST"), 0);
    expect_dirs(&env.cache_dirs, "/before", NULL);
    assert_string_equal(sh_env_get(&env, "STAGEHOST_ENV_TEST"), "one");
    sh_env_free(&env);
    unsetenv("STAGEHOST_CACHE_DIR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cache_dir_precedence),   cmocka_unit_test(state_dir_precedence),
        cmocka_unit_test(empty_values_are_unset), cmocka_unit_test(values),
        cmocka_unit_test(lookups),                cmocka_unit_test(capture_is_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
