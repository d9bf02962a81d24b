/* Unit tests for the map index of value/value.c: maps with many keys stay correct (and linear to build). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "value/value.h"

#include <stdio.h>
#include <string.h>

/* 100,000 keys set, then each read back, replaced, and the order kept: what a 100,000-key JSON object needs. */
static void a_map_with_many_keys_sets_gets_and_keeps_order(void **state)
{
    (void)state;
    enum { N = 100000 };
    sh_value *m = sh_value_map();
    assert_non_null(m);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(sh_value_map_set(m, key, sh_value_int(i)), SH_OK);
    }
    assert_int_equal(sh_value_count(m), N);
    for (int i = 0; i < N; i += 7) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(sh_value_get_int(sh_value_map_get(m, key)), i);
    }
    assert_null(sh_value_map_get(m, "k100000"));
    assert_int_equal(sh_value_map_set(m, "k5", sh_value_int(-5)), SH_OK); /* replaces, does not append */
    assert_int_equal(sh_value_count(m), N);
    assert_int_equal(sh_value_get_int(sh_value_map_get(m, "k5")), -5);
    const sh_value *v;
    assert_string_equal(sh_value_map_entry(m, N - 1, &v), "k99999");
    sh_value *c = sh_value_copy(m);
    assert_non_null(c);
    assert_true(sh_value_equal(c, m));
    assert_int_equal(sh_value_get_int(sh_value_map_get(c, "k77777")), 77777);
    sh_value_free(c);
    sh_value_free(m);
}

/* A decoder may append the same key twice: the first is the one found, with an index as without one. */
static void the_first_of_two_equal_keys_is_found(void **state)
{
    (void)state;
    for (int n = 2; n <= 64; n *= 2) {
        sh_value *m = sh_value_map();
        char key[16];
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "x%d", i);
            assert_int_equal(sh_value_map_append(m, strdup(key), sh_value_int(i)), SH_OK);
        }
        assert_int_equal(sh_value_map_append(m, strdup("x0"), sh_value_int(-1)), SH_OK);
        assert_int_equal(sh_value_get_int(sh_value_map_get(m, "x0")), 0);
        assert_int_equal(sh_value_count(m), (size_t)n + 1);
        sh_value_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_map_with_many_keys_sets_gets_and_keeps_order),
        cmocka_unit_test(the_first_of_two_equal_keys_is_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
