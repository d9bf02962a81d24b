/* Unit tests for values, the value codec (and its version, which digests depend on), frames (layout, socket I/O)
 * and JSON output. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/buf.h"
#include "value/json.h"
#include "testutil.h"
#include "value/value.h"
#include "util/clock.h"
#include "value/codec.h"
#include "value/digest.h"
#include "worker/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* Helpers                                                                                                       */

static sh_value *V(sh_value *v)
{
    assert_non_null(v);
    return v;
}

static void set(sh_value *map, const char *key, sh_value *v) { assert_int_equal(sh_value_map_set(map, key, V(v)), SH_OK); }
static void push(sh_value *a, sh_value *v) { assert_int_equal(sh_value_array_push(a, V(v)), SH_OK); }

static sh_value *dbl_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return V(sh_value_double(d));
}

static uint64_t bits_of(const sh_value *v)
{
    assert_int_equal(sh_value_type(v), SH_TYPE_DOUBLE);
    double d = sh_value_get_double(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* Encodes v, decodes it back and returns the copy (the caller frees it); asserts the whole input was consumed. */
static sh_value *round_trip(const sh_value *v)
{
    sh_buf b;
    sh_buf_init(&b);
    sh_codec_put_value(&b, v);
    assert_false(b.failed);
    sh_codec_reader r;
    sh_codec_reader_init(&r, b.data, b.len);
    sh_value *out = NULL;
    sh_error err;
    sh_error_clear(&err);
    sh_status st = sh_codec_get_value(&r, &out, &err);
    if (st != SH_S_OK)
        print_error("decode failed: %s\n", err.message);
    assert_int_equal(st, SH_S_OK);
    assert_non_null(out);
    assert_true(sh_codec_reader_done(&r));
    assert_int_equal(r.pos, b.len);
    sh_buf_free(&b);
    return out;
}

/* Decodes `len` bytes and asserts SH_S_PROTOCOL with `want` (if not NULL) in the message. */
static void expect_protocol_error(const void *data, size_t len, const char *want)
{
    sh_codec_reader r;
    sh_codec_reader_init(&r, data, len);
    sh_value *out = (sh_value *)(uintptr_t)1;
    sh_error err;
    sh_error_clear(&err);
    sh_status st = sh_codec_get_value(&r, &out, &err);
    if (st != SH_S_PROTOCOL)
        print_error("expected SH_S_PROTOCOL, got %d: %s\n", (int)st, err.message);
    assert_int_equal(st, SH_S_PROTOCOL);
    assert_int_equal(err.status, SH_S_PROTOCOL);
    assert_true(r.pos <= len);
    if (want)
        tu_expect_contains(err.message, want);
    /* The decoder must not hand back a half-built value: what it built is freed (ASan/valgrind check that). */
    assert_null(out);
}

/* A value exercising every type, nesting, empty containers and edge values. */
static sh_value *sample_value(void)
{
    sh_value *m = V(sh_value_map());
    set(m, "null", sh_value_null());
    set(m, "true", sh_value_bool(1));
    set(m, "false", sh_value_bool(0));
    set(m, "zero", sh_value_int(0));
    set(m, "min", sh_value_int(INT64_MIN));
    set(m, "max", sh_value_int(INT64_MAX));
    set(m, "neg", sh_value_int(-1));
    set(m, "pi", sh_value_double(3.141592653589793));
    set(m, "negzero", sh_value_double(-0.0));
    set(m, "nan", dbl_bits(UINT64_C(0xfff8000000abcdef)));
    set(m, "inf", sh_value_double(INFINITY));
    set(m, "tiny", sh_value_double(4.9406564584124654e-324));
    set(m, "empty string", sh_value_string("", 0));
    set(m, "text", sh_value_cstring("h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e"));
    set(m, "string with nul", sh_value_string("a\0b", 3));
    static const unsigned char raw[] = {0x00, 0xff, 0x00, 0x80, 0xc3, 0x28, 0x00};
    set(m, "bytes", sh_value_bytes(raw, sizeof raw));
    set(m, "empty bytes", sh_value_bytes(NULL, 0));
    set(m, "", sh_value_cstring("empty key"));
    set(m, "empty array", sh_value_array());
    set(m, "empty map", sh_value_map());
    sh_value *arr = V(sh_value_array());
    push(arr, sh_value_int(1));
    push(arr, sh_value_cstring("two"));
    push(arr, sh_value_null());
    sh_value *inner = V(sh_value_map());
    set(inner, "k\xc3\xa9y", sh_value_double(1.5));
    sh_value *deep = V(sh_value_array());
    push(deep, sh_value_array());
    push(deep, sh_value_bytes("\0", 1));
    set(inner, "deep", deep);
    push(arr, inner);
    set(m, "array", arr);
    return m;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Values                                                                                                        */

static void test_value_equal_is_discriminating(void **state)
{
    (void)state;
    /* The round-trip tests rely on sh_value_equal: check it tells apart what must differ. */
    struct {
        sh_value *a, *b;
    } pairs[] = {
        {V(sh_value_int(1)), V(sh_value_double(1.0))},
        {V(sh_value_double(0.0)), V(sh_value_double(-0.0))},
        {dbl_bits(UINT64_C(0x7ff8000000000001)), dbl_bits(UINT64_C(0x7ff8000000000002))},
        {V(sh_value_cstring("a")), V(sh_value_bytes("a", 1))},
        {V(sh_value_string("a\0b", 3)), V(sh_value_string("a\0c", 3))},
        {V(sh_value_string("a", 1)), V(sh_value_string("a\0", 2))},
        {V(sh_value_bool(0)), V(sh_value_null())},
        {V(sh_value_int(INT64_MIN)), V(sh_value_int(INT64_MAX))},
        {V(sh_value_array()), V(sh_value_map())},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_false(sh_value_equal(pairs[i].a, pairs[i].b));
        assert_true(sh_value_equal(pairs[i].a, pairs[i].a));
        sh_value_free(pairs[i].a);
        sh_value_free(pairs[i].b);
    }
    /* Maps compare in order; arrays by length and elements. */
    sh_value *m1 = V(sh_value_map()), *m2 = V(sh_value_map());
    set(m1, "a", sh_value_int(1));
    set(m1, "b", sh_value_int(2));
    set(m2, "b", sh_value_int(2));
    set(m2, "a", sh_value_int(1));
    assert_false(sh_value_equal(m1, m2));
    sh_value *c = V(sh_value_copy(m1));
    assert_true(sh_value_equal(m1, c));
    set(c, "a", sh_value_int(3)); /* replaces in place */
    assert_int_equal(sh_value_count(c), 2);
    assert_false(sh_value_equal(m1, c));
    sh_value_free(m1);
    sh_value_free(m2);
    sh_value_free(c);

    sh_value *a1 = V(sh_value_array()), *a2 = V(sh_value_array());
    push(a1, sh_value_int(1));
    assert_false(sh_value_equal(a1, a2));
    push(a2, sh_value_int(1));
    assert_true(sh_value_equal(a1, a2));
    push(a1, sh_value_null());
    push(a2, sh_value_bool(0));
    assert_false(sh_value_equal(a1, a2));
    sh_value_free(a1);
    sh_value_free(a2);
}

static void test_values_take_array(void **state)
{
    (void)state;
    sh_values list = {0};
    assert_int_equal(sh_values_push(&list, sh_value_int(0)), SH_OK);
    sh_value *a = sh_value_array();
    for (int i = 1; i <= 3; i++)
        assert_int_equal(sh_value_array_push(a, sh_value_int(i)), SH_OK);
    /* The items move (the array is freed); what was in the list stays first. */
    assert_true(sh_values_take_array(&list, a));
    assert_int_equal(list.len, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sh_value_get_int(list.items[i]), (int64_t)i);
    /* Not an array: refused, the value freed, the list cleared, nothing leaked. */
    assert_false(sh_values_take_array(&list, sh_value_cstring("x")));
    assert_int_equal(list.len, 0);
    assert_true(sh_values_take_array(&list, sh_value_array()));
    assert_int_equal(list.len, 0);
    sh_values_clear(&list);
}

static void test_value_constructors_refuse(void **state)
{
    (void)state;
    assert_null(sh_value_string("\xc3\x28", 2));
    assert_null(sh_value_string(NULL, 1));
    assert_null(sh_value_cstring(NULL));
    assert_null(sh_value_bytes(NULL, 1));
    sh_value *m = V(sh_value_map());
    assert_int_equal(sh_value_map_set(m, "\xff", V(sh_value_null())), SH_ERR_INVALID);
    assert_int_equal(sh_value_count(m), 0);
    assert_int_equal(sh_value_array_push(m, V(sh_value_null())), SH_ERR_INVALID);
    sh_value_free(m);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Codec: values                                                                                                 */

static void test_round_trip_scalars(void **state)
{
    (void)state;
    sh_value *vals[] = {
        V(sh_value_null()),
        V(sh_value_bool(1)),
        V(sh_value_bool(0)),
        V(sh_value_int(0)),
        V(sh_value_int(INT64_MIN)),
        V(sh_value_int(INT64_MAX)),
        V(sh_value_int(-2)),
        V(sh_value_double(0.0)),
        V(sh_value_double(-0.0)),
        V(sh_value_double(1e308)),
        V(sh_value_double(-INFINITY)),
        dbl_bits(UINT64_C(0x7ff8000000000000)),
        dbl_bits(UINT64_C(0xfff80000deadbeef)),
        V(sh_value_string("", 0)),
        V(sh_value_cstring("plain")),
        V(sh_value_string("\0\0", 2)),
        V(sh_value_bytes("", 0)),
        V(sh_value_bytes("\0\xff\0", 3)),
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        sh_value *back = round_trip(vals[i]);
        assert_int_equal(sh_value_type(back), sh_value_type(vals[i]));
        assert_true(sh_value_equal(back, vals[i]));
        sh_value_free(back);
        sh_value_free(vals[i]);
    }
}

static void test_round_trip_exact_fields(void **state)
{
    (void)state;
    sh_value *v = V(sh_value_int(INT64_MIN));
    sh_value *back = round_trip(v);
    assert_true(sh_value_get_int(back) == INT64_MIN);
    sh_value_free(back);
    sh_value_free(v);

    v = V(sh_value_int(INT64_MAX));
    back = round_trip(v);
    assert_true(sh_value_get_int(back) == INT64_MAX);
    sh_value_free(back);
    sh_value_free(v);

    v = V(sh_value_double(-0.0));
    back = round_trip(v);
    assert_true(signbit(sh_value_get_double(back)));
    assert_true(sh_value_get_double(back) == 0.0);
    sh_value_free(back);
    sh_value_free(v);

    /* A NaN keeps its exact bit pattern: sign and payload. */
    v = dbl_bits(UINT64_C(0xfff8000000abcdef));
    back = round_trip(v);
    assert_true(isnan(sh_value_get_double(back)));
    assert_true(bits_of(back) == UINT64_C(0xfff8000000abcdef));
    sh_value_free(back);
    sh_value_free(v);

    static const unsigned char raw[] = {0, 1, 0, 0xff, 0};
    v = V(sh_value_bytes(raw, sizeof raw));
    back = round_trip(v);
    size_t len = 0;
    const void *p = sh_value_get_bytes(back, &len);
    assert_int_equal(len, sizeof raw);
    assert_memory_equal(p, raw, sizeof raw);
    sh_value_free(back);
    sh_value_free(v);

    v = V(sh_value_string("a\0b", 3));
    back = round_trip(v);
    const char *s = sh_value_get_string(back, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4); /* and still NUL-terminated */
    sh_value_free(back);
    sh_value_free(v);
}

static void test_round_trip_nested(void **state)
{
    (void)state;
    sh_value *v = sample_value();
    sh_value *back = round_trip(v);
    assert_true(sh_value_equal(back, v));
    /* Spot checks independent of sh_value_equal. */
    assert_int_equal(sh_value_count(back), sh_value_count(v));
    const sh_value *e = NULL;
    assert_string_equal(sh_value_map_entry(back, 0, &e), "null");
    assert_int_equal(sh_value_type(e), SH_TYPE_NULL);
    assert_true(sh_value_get_int(sh_value_map_get(back, "min")) == INT64_MIN);
    assert_true(bits_of(sh_value_map_get(back, "nan")) == UINT64_C(0xfff8000000abcdef));
    assert_string_equal(sh_value_get_string(sh_value_map_get(back, ""), NULL), "empty key");
    const sh_value *inner = sh_value_array_get(sh_value_map_get(back, "array"), 3);
    assert_int_equal(sh_value_type(inner), SH_TYPE_MAP);
    assert_true(sh_value_get_double(sh_value_map_get(inner, "k\xc3\xa9y")) == 1.5);
    assert_int_equal(sh_value_type(sh_value_array_get(sh_value_map_get(inner, "deep"), 1)), SH_TYPE_BYTES);
    sh_value_free(back);
    sh_value_free(v);
}

static void test_encoding_bytes(void **state)
{
    (void)state;
    /* The exact encoding of a small map, as documented in codec.h. These bytes are codec version 1's: a change
     * here is a new codec version (bump SH_VALUE_CODEC_VERSION, then this assertion). */
    assert_int_equal(SH_VALUE_CODEC_VERSION, 1);
    sh_value *m = V(sh_value_map());
    set(m, "k", sh_value_int(-2));
    sh_value *a = V(sh_value_array());
    push(a, sh_value_bool(1));
    push(a, sh_value_string("hi", 2));
    set(m, "a", a);
    sh_buf b;
    sh_buf_init(&b);
    sh_codec_put_value(&b, m);
    static const unsigned char want[] = {
        SH_CODEC_MAP,   2,    0,    0,    0,    /* two entries */
        1,             0,    0,    0,    'k',  /* key "k" */
        SH_CODEC_INT,   0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* -2 */
        1,             0,    0,    0,    'a',  /* key "a" */
        SH_CODEC_ARRAY, 2,    0,    0,    0,    SH_CODEC_TRUE, SH_CODEC_STRING, 2, 0, 0, 0, 'h', 'i',
    };
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);

    sh_buf_reset(&b);
    sh_codec_put_string(&b, "xy");
    sh_codec_put_string(&b, NULL);
    sh_codec_put_int(&b, 258);
    static const unsigned char want2[] = {SH_CODEC_STRING, 2, 0, 0, 0, 'x', 'y', SH_CODEC_NULL,
                                          SH_CODEC_INT,    2, 1, 0, 0,   0,   0,  0,  0};
    assert_int_equal(b.len, sizeof want2);
    assert_memory_equal(b.data, want2, sizeof want2);

    /* Double: the IEEE bits, little-endian. */
    sh_buf_reset(&b);
    sh_value *d = V(sh_value_double(1.0));
    sh_codec_put_value(&b, d);
    static const unsigned char want3[] = {SH_CODEC_DOUBLE, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    assert_int_equal(b.len, sizeof want3);
    assert_memory_equal(b.data, want3, sizeof want3);
    sh_value_free(d);
    sh_buf_free(&b);
    sh_value_free(m);
}

static void test_frame_begin_end(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    size_t off1 = sh_frame_begin(&b, 7);
    assert_int_equal(off1, 0);
    sh_codec_put_string(&b, "hello");
    sh_frame_end(&b, off1);
    /* length counts the type byte and the payload: 1 + (1 + 4 + 5) */
    static const unsigned char want1[] = {11, 0, 0, 0, 7, SH_CODEC_STRING, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    assert_int_equal(b.len, sizeof want1);
    assert_memory_equal(b.data, want1, sizeof want1);

    /* A second frame after the first, with a payload over 256 bytes so every length byte matters. */
    size_t off2 = sh_frame_begin(&b, 0xab);
    assert_int_equal(off2, sizeof want1);
    char big[70000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sh_codec_put_string(&b, big);
    sh_frame_end(&b, off2);
    uint32_t len2 = 1 + 1 + 4 + (uint32_t)(sizeof big - 1);
    assert_int_equal(b.len, off2 + 4 + len2);
    assert_int_equal(b.data[off2 + 0], len2 & 0xff);
    assert_int_equal(b.data[off2 + 1], (len2 >> 8) & 0xff);
    assert_int_equal(b.data[off2 + 2], (len2 >> 16) & 0xff);
    assert_int_equal(b.data[off2 + 3], (len2 >> 24) & 0xff);
    assert_int_equal(b.data[off2 + 4], 0xab);
    assert_memory_equal(b.data, want1, sizeof want1); /* the first frame is untouched */

    /* An empty frame is just the type byte. */
    sh_buf_reset(&b);
    size_t off3 = sh_frame_begin(&b, 1);
    sh_frame_end(&b, off3);
    static const unsigned char want3[] = {1, 0, 0, 0, 1};
    assert_int_equal(b.len, sizeof want3);
    assert_memory_equal(b.data, want3, sizeof want3);
    sh_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Codec: the decoder refuses malformed input                                                                   */

static void test_truncated_every_prefix(void **state)
{
    (void)state;
    sh_value *v = sample_value();
    sh_buf b;
    sh_buf_init(&b);
    sh_codec_put_value(&b, v);
    assert_false(b.failed);
    assert_true(b.len > 100);
    for (size_t n = 0; n < b.len; n++) {
        /* A heap copy of exactly n bytes, so ASan catches any read past the prefix. */
        unsigned char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, n);
        expect_protocol_error(copy, n, NULL);
        free(copy);
    }
    /* The full encoding decodes. */
    sh_value *back = round_trip(v);
    assert_true(sh_value_equal(back, v));
    sh_value_free(back);
    sh_buf_free(&b);
    sh_value_free(v);
}

static void test_truncated_messages(void **state)
{
    (void)state;
    expect_protocol_error("", 0, "truncated value");
    static const unsigned char i[] = {SH_CODEC_INT, 1, 2, 3};
    expect_protocol_error(i, sizeof i, "truncated integer");
    static const unsigned char d[] = {SH_CODEC_DOUBLE, 1, 2, 3, 4, 5, 6, 7};
    expect_protocol_error(d, sizeof d, "truncated double");
    static const unsigned char s[] = {SH_CODEC_STRING, 1, 0};
    expect_protocol_error(s, sizeof s, "truncated string length");
    static const unsigned char a[] = {SH_CODEC_ARRAY, 2, 0, 0, 0, SH_CODEC_ARRAY, 0, 0, 0, 0};
    expect_protocol_error(a, sizeof a, "truncated value at byte 10");
    static const unsigned char m[] = {SH_CODEC_MAP, 1, 0, 0, 0, 1, 0, 0, 0, 'k'};
    expect_protocol_error(m, sizeof m, "truncated value at byte 10");
    static const unsigned char m2[] = {SH_CODEC_MAP, 2, 0, 0, 0, 1, 0, 0, 0, 'k', SH_CODEC_NULL};
    expect_protocol_error(m2, sizeof m2, "map of 2 entries cannot fit in the 6 bytes left");
}

static void test_unknown_tag(void **state)
{
    (void)state;
    static const unsigned char t9[] = {9};
    expect_protocol_error(t9, sizeof t9, "unknown value tag 9 at byte 0");
    static const unsigned char tff[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_protocol_error(tff, sizeof tff, "unknown value tag 255");
    /* Inside an array, the position is that of the bad tag. */
    static const unsigned char nested[] = {SH_CODEC_ARRAY, 2, 0, 0, 0, SH_CODEC_NULL, 42};
    expect_protocol_error(nested, sizeof nested, "unknown value tag 42 at byte 6");
}

static void test_lengths_past_end(void **state)
{
    (void)state;
    static const unsigned char s[] = {SH_CODEC_STRING, 10, 0, 0, 0, 'a', 'b', 'c'};
    expect_protocol_error(s, sizeof s, "a 10-byte string");
    static const unsigned char by[] = {SH_CODEC_BYTES, 4, 0, 0, 0, 1, 2, 3};
    expect_protocol_error(by, sizeof by, "a 4-byte bytes value");
    static const unsigned char huge[] = {SH_CODEC_STRING, 0xff, 0xff, 0xff, 0xff, 'a'};
    expect_protocol_error(huge, sizeof huge, "runs past the end");
    /* An array count larger than the bytes left is refused before anything is allocated. */
    static const unsigned char arr[] = {SH_CODEC_ARRAY, 0xff, 0xff, 0xff, 0xff, SH_CODEC_NULL, SH_CODEC_NULL};
    expect_protocol_error(arr, sizeof arr, "array of 4294967295 elements cannot fit in the 2 bytes left");
    static const unsigned char arr2[] = {SH_CODEC_ARRAY, 3, 0, 0, 0, SH_CODEC_NULL, SH_CODEC_NULL};
    expect_protocol_error(arr2, sizeof arr2, "array of 3 elements");
    static const unsigned char map[] = {SH_CODEC_MAP, 0, 0, 0, 0x80, 0, 0, 0, 0, SH_CODEC_NULL};
    expect_protocol_error(map, sizeof map, "map of 2147483648 entries cannot fit");
    static const unsigned char key[] = {SH_CODEC_MAP, 1, 0, 0, 0, 9, 0, 0, 0, 'k', SH_CODEC_NULL, 0, 0, 0};
    expect_protocol_error(key, sizeof key, "a 9-byte map key");
}

static void test_invalid_utf8_string(void **state)
{
    (void)state;
    static const unsigned char s[] = {SH_CODEC_STRING, 2, 0, 0, 0, 0xc3, 0x28};
    expect_protocol_error(s, sizeof s, "not valid UTF-8");
    static const unsigned char sur[] = {SH_CODEC_STRING, 3, 0, 0, 0, 0xed, 0xa0, 0x80};
    expect_protocol_error(sur, sizeof sur, "not valid UTF-8");
    /* The same octets are fine as bytes. */
    static const unsigned char b[] = {SH_CODEC_BYTES, 2, 0, 0, 0, 0xc3, 0x28};
    sh_codec_reader r;
    sh_codec_reader_init(&r, b, sizeof b);
    sh_value *out = NULL;
    sh_error err;
    assert_int_equal(sh_codec_get_value(&r, &out, &err), SH_S_OK);
    assert_int_equal(sh_value_type(out), SH_TYPE_BYTES);
    sh_value_free(out);
    /* A bad string deep inside a map inside an array: everything built so far is freed (ASan/valgrind). */
    static const unsigned char deep[] = {SH_CODEC_ARRAY, 2, 0, 0, 0, SH_CODEC_STRING, 1, 0, 0, 0, 'a',
                                         SH_CODEC_MAP,   2, 0, 0, 0, 1, 0, 0, 0, 'x', SH_CODEC_INT, 1, 0, 0, 0, 0, 0, 0, 0,
                                         1, 0, 0, 0, 'y', SH_CODEC_STRING, 1, 0, 0, 0, 0xff};
    expect_protocol_error(deep, sizeof deep, "not valid UTF-8");
}

static void test_bad_map_keys(void **state)
{
    (void)state;
    static const unsigned char nul[] = {SH_CODEC_MAP, 1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b', SH_CODEC_NULL};
    expect_protocol_error(nul, sizeof nul, "map key at byte 9 is not NUL-free UTF-8");
    static const unsigned char bad[] = {SH_CODEC_MAP, 1, 0, 0, 0, 1, 0, 0, 0, 0x80, SH_CODEC_NULL};
    expect_protocol_error(bad, sizeof bad, "not NUL-free UTF-8");
    /* A good first entry, then a bad key: the first entry is freed. */
    static const unsigned char second[] = {SH_CODEC_MAP, 2, 0, 0, 0, 1, 0, 0, 0, 'a', SH_CODEC_STRING, 1, 0, 0, 0, 'v',
                                           1, 0, 0, 0, 0};
    expect_protocol_error(second, sizeof second, "not NUL-free UTF-8");
    /* A good key whose value is bad: the key is freed. */
    static const unsigned char val[] = {SH_CODEC_MAP, 1, 0, 0, 0, 2, 0, 0, 0, 'o', 'k', 77};
    expect_protocol_error(val, sizeof val, "unknown value tag 77");
}

/* `depth` nested containers (arrays, or maps with key "k") around a null. */
static unsigned char *nested_encoding(int depth, bool maps, size_t *len)
{
    size_t per = maps ? 10 : 5;
    *len = (size_t)depth * per + 1;
    unsigned char *p = malloc(*len);
    assert_non_null(p);
    unsigned char *q = p;
    for (int i = 0; i < depth; i++) {
        *q++ = maps ? SH_CODEC_MAP : SH_CODEC_ARRAY;
        *q++ = 1;
        *q++ = 0;
        *q++ = 0;
        *q++ = 0;
        if (maps) {
            *q++ = 1;
            *q++ = 0;
            *q++ = 0;
            *q++ = 0;
            *q++ = 'k';
        }
    }
    *q++ = SH_CODEC_NULL;
    assert_int_equal((size_t)(q - p), *len);
    return p;
}

static void test_nesting_limit(void **state)
{
    (void)state;
    for (int maps = 0; maps <= 1; maps++) {
        size_t len;
        /* SH_CODEC_MAX_DEPTH levels of nesting are fine... */
        unsigned char *ok = nested_encoding(SH_CODEC_MAX_DEPTH, maps, &len);
        sh_codec_reader r;
        sh_codec_reader_init(&r, ok, len);
        sh_value *out = NULL;
        sh_error err;
        sh_error_clear(&err);
        assert_int_equal(sh_codec_get_value(&r, &out, &err), SH_S_OK);
        assert_true(sh_codec_reader_done(&r));
        const sh_value *v = out;
        for (int i = 0; i < SH_CODEC_MAX_DEPTH; i++) {
            assert_int_equal(sh_value_type(v), maps ? SH_TYPE_MAP : SH_TYPE_ARRAY);
            assert_int_equal(sh_value_count(v), 1);
            v = maps ? sh_value_map_get(v, "k") : sh_value_array_get(v, 0);
        }
        assert_non_null(v);
        assert_int_equal(sh_value_type(v), SH_TYPE_NULL);
        sh_value_free(out);
        free(ok);

        /* ...one more is refused, and so are many more (no stack exhaustion). */
        unsigned char *deep = nested_encoding(SH_CODEC_MAX_DEPTH + 1, maps, &len);
        expect_protocol_error(deep, len, "nested deeper than 128 levels");
        free(deep);
        deep = nested_encoding(100000, maps, &len);
        expect_protocol_error(deep, len, "nested deeper than");
        free(deep);
    }
}

static void test_get_typed(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    sh_codec_put_string(&b, "abc");
    sh_codec_put_int(&b, 5);
    sh_codec_reader r;
    sh_codec_reader_init(&r, b.data, b.len);
    sh_value *out = NULL;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_codec_get_typed(&r, SH_TYPE_STRING, "the name", &out, &err), SH_S_OK);
    assert_string_equal(sh_value_get_string(out, NULL), "abc");
    sh_value_free(out);
    assert_int_equal(sh_codec_get_typed(&r, SH_TYPE_STRING, "the name", &out, &err), SH_S_PROTOCOL);
    assert_null(out);
    assert_non_null(strstr(err.message, "the name should be a string"));
    assert_non_null(strstr(err.message, "integer"));
    assert_true(sh_codec_reader_done(&r));
    assert_int_equal(sh_codec_get_typed(&r, SH_TYPE_INT, "the count", &out, &err), SH_S_PROTOCOL);
    assert_null(out);
    assert_non_null(strstr(err.message, "reading the count: truncated value"));
    sh_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Codec version                                                                                                 */

static void digest_of(sh_digest *d, const sh_value *v, char hex[SH_DIGEST_HEX])
{
    assert_non_null(d);
    sh_digest_string(d, "domain");
    sh_digest_value(d, v);
    assert_true(sh_digest_hex(d, hex));
    sh_digest_free(d);
}

/* Digests hash codec bytes, so they are only comparable within one codec version: version 1 gives the digests
 * written before the codec had a version (plain XXH3-128 of the encodings), any other version gives others. */
static void test_digest_depends_on_codec_version(void **state)
{
    (void)state;
    sh_value *v = sample_value();
    char now[SH_DIGEST_HEX], cur[SH_DIGEST_HEX], v1[SH_DIGEST_HEX], v2[SH_DIGEST_HEX], v3[SH_DIGEST_HEX];
    digest_of(sh_digest_new(), v, now);
    digest_of(sh_digest_new_codec(SH_VALUE_CODEC_VERSION), v, cur);
    digest_of(sh_digest_new_codec(1), v, v1);
    digest_of(sh_digest_new_codec(2), v, v2);
    digest_of(sh_digest_new_codec(3), v, v3);
    assert_string_equal(now, cur);
    assert_string_not_equal(v1, v2);
    assert_string_not_equal(v2, v3);

    sh_buf b;
    sh_buf_init(&b);
    sh_codec_put_string(&b, "domain");
    sh_codec_put_value(&b, v);
    assert_false(b.failed);
    XXH128_hash_t h = XXH3_128bits(b.data, b.len);
    char plain[SH_DIGEST_HEX];
    snprintf(plain, sizeof plain, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    assert_string_equal(v1, plain);
    sh_buf_free(&b);
    sh_value_free(v);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Frames: socket I/O                                                                                            */

typedef struct pair {
    int fd[2];
} pair;

static int setup_pair(void **state)
{
    pair *p = malloc(sizeof *p);
    if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->fd) != 0) {
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown_pair(void **state)
{
    pair *p = *state;
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    free(p);
    return 0;
}

static void close_fd(pair *p, int i)
{
    assert_int_equal(close(p->fd[i]), 0);
    p->fd[i] = -1;
}

static void write_raw(int fd, const void *data, size_t len)
{
    assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static void test_send_recv_round_trip(void **state)
{
    pair *p = *state;
    sh_value *v = sample_value();
    sh_buf out;
    sh_buf_init(&out);
    size_t off = sh_frame_begin(&out, 3);
    sh_codec_put_value(&out, v);
    sh_frame_end(&out, off);
    size_t first_len = out.len;
    off = sh_frame_begin(&out, 4); /* a second, empty frame in the same write */
    sh_frame_end(&out, off);
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_send(p->fd[0], &out, &err), SH_S_OK);

    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, SH_FRAME_DEFAULT_MAX, 0, &eof, &err), SH_S_OK);
    assert_false(eof);
    assert_int_equal(type, 3);
    assert_int_equal(in.len, first_len - 5);
    assert_memory_equal(in.data, out.data + 5, in.len);
    sh_codec_reader r;
    sh_codec_reader_init(&r, in.data, in.len);
    sh_value *back = NULL;
    assert_int_equal(sh_codec_get_value(&r, &back, &err), SH_S_OK);
    assert_true(sh_codec_reader_done(&r));
    assert_true(sh_value_equal(back, v));
    sh_value_free(back);

    /* The second frame, read with a deadline that is not reached. */
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 64, sh_monotonic_ns() + INT64_C(5000000000), &eof, &err),
                     SH_S_OK);
    assert_int_equal(type, 4);
    assert_int_equal(in.len, 0);
    assert_false(eof);

    /* Then the peer closes: end of stream before a frame. */
    close_fd(p, 0);
    type = 99;
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 64, 0, &eof, &err), SH_S_IO);
    assert_true(eof);
    assert_string_equal(err.message, "end of stream");
    assert_int_equal(in.len, 0);

    sh_buf_free(&in);
    sh_buf_free(&out);
    sh_value_free(v);
}

static void test_recv_frame_exactly_max(void **state)
{
    pair *p = *state;
    /* A frame of exactly max_frame bytes (type + payload) is accepted. */
    unsigned char frame[4 + 16] = {16, 0, 0, 0, 9};
    for (int i = 5; i < 20; i++)
        frame[i] = (unsigned char)i;
    write_raw(p->fd[0], frame, sizeof frame);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 16, 0, &eof, &err), SH_S_OK);
    assert_int_equal(type, 9);
    assert_int_equal(in.len, 15);
    assert_memory_equal(in.data, frame + 5, 15);
    sh_buf_free(&in);
}

static void test_recv_eof_before_frame(void **state)
{
    pair *p = *state;
    close_fd(p, 0);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = false;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, 0, &eof, &err), SH_S_IO);
    assert_true(eof);
    assert_string_equal(err.message, "end of stream");
    /* With a deadline too. */
    eof = false;
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, sh_monotonic_ns() + INT64_C(1000000000), &eof, &err),
                     SH_S_IO);
    assert_true(eof);
    sh_buf_free(&in);
}

static void test_recv_truncated_header(void **state)
{
    pair *p = *state;
    static const unsigned char hdr[] = {10, 0, 0};
    write_raw(p->fd[0], hdr, sizeof hdr);
    close_fd(p, 0);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, 0, &eof, &err), SH_S_PROTOCOL);
    assert_false(eof);
    assert_non_null(strstr(err.message, "truncated frame header (3 of 5 bytes"));
    sh_buf_free(&in);
}

static void test_recv_truncated_payload(void **state)
{
    pair *p = *state;
    static const unsigned char frame[] = {10, 0, 0, 0, 1, 'a', 'b', 'c', 'd'};
    write_raw(p->fd[0], frame, sizeof frame);
    close_fd(p, 0);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, 0, &eof, &err), SH_S_PROTOCOL);
    assert_false(eof);
    assert_non_null(strstr(err.message, "truncated frame: 4 of 9 payload bytes"));
    sh_buf_free(&in);
}

static void test_recv_oversized_and_empty_frames(void **state)
{
    pair *p = *state;
    /* Length 1001 with a limit of 1000: refused from the header alone, nothing else needs to arrive. */
    static const unsigned char big[] = {0xe9, 0x03, 0, 0, 1};
    write_raw(p->fd[0], big, sizeof big);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1000, sh_monotonic_ns() + INT64_C(2000000000), &eof, &err),
                     SH_S_PROTOCOL);
    assert_false(eof);
    assert_non_null(strstr(err.message, "frame of 1001 bytes exceeds the limit of 1000 bytes"));

    /* 4 GiB - 1 against the default limit. */
    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 1};
    write_raw(p->fd[0], huge, sizeof huge);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, SH_FRAME_DEFAULT_MAX, 0, &eof, &err), SH_S_PROTOCOL);
    assert_non_null(strstr(err.message, "exceeds the limit"));

    /* Length 0 cannot even hold the type byte. */
    static const unsigned char zero[] = {0, 0, 0, 0, 1};
    write_raw(p->fd[0], zero, sizeof zero);
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1000, 0, &eof, &err), SH_S_PROTOCOL);
    assert_non_null(strstr(err.message, "frame of length 0"));
    sh_buf_free(&in);
}

static void test_recv_timeout(void **state)
{
    pair *p = *state;
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    sh_error err;
    sh_error_clear(&err);

    /* Nothing arrives: a 50 ms deadline passes. */
    int64_t start = sh_monotonic_ns();
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, start + INT64_C(50000000), &eof, &err), SH_S_TIMEOUT);
    int64_t elapsed = sh_monotonic_ns() - start;
    assert_false(eof);
    assert_true(elapsed >= INT64_C(50000000));
    assert_true(elapsed < INT64_C(2000000000));

    /* Half a frame arrives and the rest never does. */
    static const unsigned char part[] = {10, 0, 0, 0, 1, 'a'};
    write_raw(p->fd[0], part, sizeof part);
    start = sh_monotonic_ns();
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, start + INT64_C(50000000), &eof, &err), SH_S_TIMEOUT);
    elapsed = sh_monotonic_ns() - start;
    assert_true(elapsed >= INT64_C(50000000));
    assert_true(elapsed < INT64_C(2000000000));

    /* A deadline already past fails at once. */
    assert_int_equal(sh_frame_recv(p->fd[1], &in, &type, 1024, sh_monotonic_ns() - 1, &eof, &err), SH_S_TIMEOUT);
    sh_buf_free(&in);
}

static void test_send_to_closed_peer(void **state)
{
    pair *p = *state;
    close_fd(p, 1);
    /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
    sh_buf out;
    sh_buf_init(&out);
    size_t off = sh_frame_begin(&out, 1);
    sh_codec_put_string(&out, "anyone there?");
    sh_frame_end(&out, off);
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_send(p->fd[0], &out, &err), SH_S_IO);
    assert_non_null(strstr(err.message, "writing to the worker channel failed"));
    sh_buf_free(&out);

    /* A buffer whose encoding failed is never sent. */
    sh_buf bad;
    sh_buf_init(&bad);
    bad.failed = 1;
    assert_int_equal(sh_frame_send(p->fd[0], &bad, &err), SH_S_NOMEM);
}

static void test_send_recv_over_pipe(void **state)
{
    (void)state;
    /* Not a socket: sh_frame_send falls back to write(). */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    sh_buf out;
    sh_buf_init(&out);
    size_t off = sh_frame_begin(&out, 2);
    sh_codec_put_int(&out, -1);
    sh_frame_end(&out, off);
    sh_error err;
    sh_error_clear(&err);
    assert_int_equal(sh_frame_send(fds[1], &out, &err), SH_S_OK);
    close(fds[1]);
    sh_buf in;
    sh_buf_init(&in);
    uint8_t type = 0;
    bool eof = true;
    assert_int_equal(sh_frame_recv(fds[0], &in, &type, 1024, 0, &eof, &err), SH_S_OK);
    assert_int_equal(type, 2);
    assert_int_equal(in.len, 9);
    assert_memory_equal(in.data, out.data + 5, 9);
    assert_int_equal(sh_frame_recv(fds[0], &in, &type, 1024, 0, &eof, &err), SH_S_IO);
    assert_true(eof);
    close(fds[0]);
    sh_buf_free(&in);
    sh_buf_free(&out);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                                         */

static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        bool ok;
        const char *what;
    } cases[] = {
        {"", 0, true, "empty"},
        {"plain ascii", 11, true, "ascii"},
        {"a\0b", 3, true, "embedded NUL"},
        {"\x7f", 1, true, "U+007F"},
        {"\xc2\x80", 2, true, "U+0080"},
        {"\xdf\xbf", 2, true, "U+07FF"},
        {"\xe0\xa0\x80", 3, true, "U+0800"},
        {"\xed\x9f\xbf", 3, true, "U+D7FF"},
        {"\xee\x80\x80", 3, true, "U+E000"},
        {"\xef\xbf\xbf", 3, true, "U+FFFF"},
        {"\xf0\x90\x80\x80", 4, true, "U+10000"},
        {"\xf4\x8f\xbf\xbf", 4, true, "U+10FFFF"},
        {"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, true, "mixed"},
        /* overlong */
        {"\xc0\x80", 2, false, "overlong NUL (2 bytes)"},
        {"\xc1\xbf", 2, false, "overlong U+007F"},
        {"\xe0\x80\x80", 3, false, "overlong NUL (3 bytes)"},
        {"\xe0\x9f\xbf", 3, false, "overlong U+07FF"},
        {"\xf0\x80\x80\x80", 4, false, "overlong NUL (4 bytes)"},
        {"\xf0\x8f\xbf\xbf", 4, false, "overlong U+FFFF"},
        /* surrogates */
        {"\xed\xa0\x80", 3, false, "U+D800"},
        {"\xed\xaf\xbf", 3, false, "U+DBFF"},
        {"\xed\xb0\x80", 3, false, "U+DC00"},
        {"\xed\xbf\xbf", 3, false, "U+DFFF"},
        {"\xed\xa0\xbd\xed\xb8\x80", 6, false, "CESU-8 surrogate pair"},
        /* past U+10FFFF */
        {"\xf4\x90\x80\x80", 4, false, "U+110000"},
        {"\xf5\x80\x80\x80", 4, false, "lead F5"},
        {"\xf7\xbf\xbf\xbf", 4, false, "lead F7"},
        {"\xf8\x88\x80\x80\x80", 5, false, "5-byte form"},
        {"\xfc\x84\x80\x80\x80\x80", 6, false, "6-byte form"},
        {"\xfe", 1, false, "FE"},
        {"\xff", 1, false, "FF"},
        /* truncated sequences and stray continuation bytes */
        {"\xc3", 1, false, "truncated 2-byte"},
        {"\xe2\x82", 2, false, "truncated 3-byte"},
        {"\xf0\x9f\x98", 3, false, "truncated 4-byte"},
        {"\xe2\x82" "a", 3, false, "3-byte cut by ascii"},
        {"\xc3\xa9", 1, false, "length cuts a sequence"},
        {"\x80", 1, false, "lone continuation"},
        {"a\xbf" "b", 3, false, "stray continuation"},
        {"\xc3\xc3\xa9", 3, false, "lead followed by lead"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = sh_utf8_valid(cases[i].s, cases[i].len);
        if (got != cases[i].ok)
            print_error("sh_utf8_valid(%s) should be %s\n", cases[i].what, cases[i].ok ? "true" : "false");
        assert_int_equal(got, cases[i].ok);
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* JSON                                                                                                          */

/* Writes v as JSON, frees v, and compares with `want`. */
static void expect_json(sh_value *v, const char *want)
{
    assert_non_null(v);
    sh_buf b;
    sh_buf_init(&b);
    sh_json_write(&b, v);
    assert_false(b.failed);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        print_error("JSON\n  got:  %.*s\n  want: %s\n", (int)b.len, (const char *)b.data, want);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    sh_buf_free(&b);
    sh_value_free(v);
}

static void test_json_scalars(void **state)
{
    (void)state;
    expect_json(sh_value_null(), "null");
    expect_json(sh_value_bool(1), "true");
    expect_json(sh_value_bool(0), "false");
    expect_json(sh_value_int(0), "0");
    expect_json(sh_value_int(-42), "-42");
    expect_json(sh_value_int(INT64_MIN), "-9223372036854775808");
    expect_json(sh_value_int(INT64_MAX), "9223372036854775807");
    expect_json(sh_value_double(1.0), "1.0");
    expect_json(sh_value_double(-3.0), "-3.0");
    expect_json(sh_value_double(0.0), "0.0");
    expect_json(sh_value_double(-0.0), "-0.0");
    expect_json(sh_value_double(0.5), "0.5");
    expect_json(sh_value_double(0.1), "0.10000000000000001");
    expect_json(sh_value_double(1e21), "1e+21");
    expect_json(sh_value_double(123456789.0), "123456789.0");
    expect_json(sh_value_double(NAN), "null");
    expect_json(dbl_bits(UINT64_C(0xfff8000000abcdef)), "null");
    expect_json(sh_value_double(INFINITY), "null");
    expect_json(sh_value_double(-INFINITY), "null");
}

static void test_json_string_escaping(void **state)
{
    (void)state;
    expect_json(sh_value_cstring(""), "\"\"");
    expect_json(sh_value_cstring("say \"hi\""), "\"say \\\"hi\\\"\"");
    expect_json(sh_value_cstring("C:\\dir\\"), "\"C:\\\\dir\\\\\"");
    expect_json(sh_value_cstring("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
    expect_json(sh_value_cstring("\x01\x08\x0c\x1f"), "\"\\u0001\\u0008\\u000c\\u001f\"");
    expect_json(sh_value_string("nul\0here", 8), "\"nul\\u0000here\"");
    /* DEL, '/' and non-ASCII pass through unescaped (valid JSON). */
    expect_json(sh_value_cstring("\x7f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\x7f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");

    sh_buf b;
    sh_buf_init(&b);
    sh_json_write_string(&b, "x\"y", 3);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "\"x\\\"y\"", 6);
    sh_buf_free(&b);
}

static void test_json_bytes_base64(void **state)
{
    (void)state;
    expect_json(sh_value_bytes(NULL, 0), "{\"$bytes\":\"\"}");
    expect_json(sh_value_bytes("f", 1), "{\"$bytes\":\"Zg==\"}");
    expect_json(sh_value_bytes("fo", 2), "{\"$bytes\":\"Zm8=\"}");
    expect_json(sh_value_bytes("foo", 3), "{\"$bytes\":\"Zm9v\"}");
    expect_json(sh_value_bytes("foob", 4), "{\"$bytes\":\"Zm9vYg==\"}");
    expect_json(sh_value_bytes("fooba", 5), "{\"$bytes\":\"Zm9vYmE=\"}");
    expect_json(sh_value_bytes("foobar", 6), "{\"$bytes\":\"Zm9vYmFy\"}");
    expect_json(sh_value_bytes("\0", 1), "{\"$bytes\":\"AA==\"}");
    expect_json(sh_value_bytes("\xff", 1), "{\"$bytes\":\"/w==\"}");
    expect_json(sh_value_bytes("\xff\xff", 2), "{\"$bytes\":\"//8=\"}");
    expect_json(sh_value_bytes("\xfb\xff\xbf", 3), "{\"$bytes\":\"+/+/\"}");
    expect_json(sh_value_bytes("\0\0\0", 3), "{\"$bytes\":\"AAAA\"}");
}

static void test_json_containers(void **state)
{
    (void)state;
    expect_json(sh_value_array(), "[]");
    expect_json(sh_value_map(), "{}");

    /* Map keys keep insertion order (not sorted), and are escaped. */
    sh_value *m = V(sh_value_map());
    set(m, "z", sh_value_int(1));
    set(m, "a", sh_value_int(2));
    set(m, "m", sh_value_int(3));
    set(m, "q\"k", sh_value_null());
    set(m, "a", sh_value_int(20)); /* replacing keeps the original position */
    expect_json(m, "{\"z\":1,\"a\":20,\"m\":3,\"q\\\"k\":null}");

    sh_value *a = V(sh_value_array());
    push(a, sh_value_int(1));
    push(a, sh_value_double(2.0));
    push(a, sh_value_cstring("three"));
    push(a, sh_value_bytes("hi", 2));
    sh_value *inner = V(sh_value_map());
    set(inner, "x", sh_value_array());
    set(inner, "y", sh_value_bool(1));
    push(a, inner);
    push(a, sh_value_double(NAN));
    expect_json(a, "[1,2.0,\"three\",{\"$bytes\":\"aGk=\"},{\"x\":[],\"y\":true},null]");
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* make a missing MSG_NOSIGNAL fatal, not silently ignored */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_equal_is_discriminating),
        cmocka_unit_test(test_value_constructors_refuse),
        cmocka_unit_test(test_values_take_array),
        cmocka_unit_test(test_round_trip_scalars),
        cmocka_unit_test(test_round_trip_exact_fields),
        cmocka_unit_test(test_round_trip_nested),
        cmocka_unit_test(test_encoding_bytes),
        cmocka_unit_test(test_frame_begin_end),
        cmocka_unit_test(test_truncated_every_prefix),
        cmocka_unit_test(test_truncated_messages),
        cmocka_unit_test(test_unknown_tag),
        cmocka_unit_test(test_lengths_past_end),
        cmocka_unit_test(test_invalid_utf8_string),
        cmocka_unit_test(test_bad_map_keys),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_get_typed),
        cmocka_unit_test(test_digest_depends_on_codec_version),
        cmocka_unit_test_setup_teardown(test_send_recv_round_trip, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_frame_exactly_max, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_eof_before_frame, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_truncated_header, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_truncated_payload, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_oversized_and_empty_frames, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_recv_timeout, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_send_to_closed_peer, setup_pair, teardown_pair),
        cmocka_unit_test(test_send_recv_over_pipe),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_json_scalars),
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_json_bytes_base64),
        cmocka_unit_test(test_json_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
