/* Unit tests for util/text: a plugin's message made one safe line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/text.h"

#include <string.h>

static void expect_safe(const char *in, size_t len, size_t size, const char *want)
{
    char out[256];
    assert_true(size <= sizeof out);
    size_t n = sh_text_safe(out, size, in, len);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void controls_are_escaped_onto_one_line(void **state)
{
    (void)state;
    const char in[] = "a\nb\rc\td\x1b[2J\x7f\x01";
    expect_safe(in, sizeof in - 1, 256, "a\\nb\\rc\\td\\x1b[2J\\x7f\\x01");
}

static void c1_controls_are_escaped_and_other_utf8_kept(void **state)
{
    (void)state;
    const char in[] = "\xc2\x9b" "31m \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    expect_safe(in, sizeof in - 1, 256, "\\u009b31m \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void invalid_bytes_become_question_marks(void **state)
{
    (void)state;
    const char in[] = "x\xff\xc3(\xe0\x80\x80\xed\xa0\x80y";
    expect_safe(in, sizeof in - 1, 256, "x?" "?(?" "?????y"); /* split: "??(" would be a trigraph */
}

static void a_nul_inside_is_escaped_too(void **state)
{
    (void)state;
    expect_safe("a\0b", 3, 256, "a\\x00b");
}

static void cut_at_a_character_or_an_escape_never_inside(void **state)
{
    (void)state;
    expect_safe("ab\xc3\xa9", 4, 4, "ab");     /* the two-byte character does not fit with the NUL */
    expect_safe("ab\xc3\xa9", 4, 5, "ab\xc3\xa9");
    expect_safe("ab\n", 3, 4, "ab");          /* nor does the two-character escape */
    expect_safe("abc", 3, 1, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(controls_are_escaped_onto_one_line),
        cmocka_unit_test(c1_controls_are_escaped_and_other_utf8_kept),
        cmocka_unit_test(invalid_bytes_become_question_marks),
        cmocka_unit_test(a_nul_inside_is_escaped_too),
        cmocka_unit_test(cut_at_a_character_or_an_escape_never_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
