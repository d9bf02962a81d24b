/* Unit tests for the worker channel's own pieces: the frame reader both its ends share (worker/frame), and in
 * worker/protocol the binary call header with its cache of invocation strings, names, and the SHM announcement. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "worker/frame.h"
#include "worker/protocol.h"

#include <string.h>

/* Appends bytes to what the reader has "received", as a read would. */
static void arrive(sh_frame_in *in, const void *data, size_t len)
{
    assert_int_equal(sh_buf_reserve(&in->buf, len), 0);
    memcpy(in->buf.data + in->buf.len, data, len);
    in->buf.len += len;
}

static void test_frames_whole_split_and_many(void **state)
{
    (void)state;
    sh_buf out;
    sh_buf_init(&out);
    size_t f = sh_frame_begin(&out, SH_MSG_LOG);
    sh_buf_append(&out, "abc", 3);
    sh_frame_end(&out, f);
    f = sh_frame_begin(&out, SH_MSG_HEALTH);
    sh_frame_end(&out, f);
    sh_frame_in in = {0};
    uint8_t type = 0;
    const uint8_t *pl = NULL;
    size_t len = 0;
    /* Nothing yet, then one byte at a time: a frame only once it is whole. */
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_MORE);
    assert_true(in.buf.cap - in.buf.len >= 64 * 1024);
    for (size_t i = 0; i < 7; i++) {
        arrive(&in, out.data + i, 1);
        assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_MORE);
        assert_int_equal(sh_frame_pending(&in), i + 1);
    }
    /* The rest of the first frame and the whole second one in one read: both come out, in order. */
    arrive(&in, out.data + 7, out.len - 7);
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_READY);
    assert_int_equal(type, SH_MSG_LOG);
    assert_int_equal(len, 3);
    assert_memory_equal(pl, "abc", 3);
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_READY);
    assert_int_equal(type, SH_MSG_HEALTH);
    assert_int_equal(len, 0);
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_MORE);
    assert_int_equal(sh_frame_pending(&in), 0);
    assert_int_equal(in.start, 0); /* what was read was dropped from the front */
    sh_frame_in_free(&in);
    sh_buf_free(&out);
}

static void test_frame_headers_refused(void **state)
{
    (void)state;
    sh_frame_in in = {0};
    uint8_t type = 0;
    const uint8_t *pl = NULL;
    size_t len = 0;
    /* Over the limit: refused from the header alone, with the length it claimed. */
    arrive(&in, (const uint8_t[]){0xe9, 0x03, 0, 0, 1}, 5);
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_OVER);
    assert_int_equal(len, 1001);
    /* Exactly at the limit: waits for its payload. */
    assert_int_equal(sh_frame_take(&in, 1001, &type, &pl, &len), SH_FRAME_MORE);
    assert_true(in.buf.cap - in.buf.len >= 1001 - 4);
    sh_frame_in_free(&in);
    /* 4 GiB - 1. */
    arrive(&in, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 1}, 5);
    assert_int_equal(sh_frame_take(&in, 256u << 20, &type, &pl, &len), SH_FRAME_OVER);
    sh_frame_in_free(&in);
    /* Length 0 cannot hold the type byte. */
    arrive(&in, (const uint8_t[]){0, 0, 0, 0, 1}, 5);
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_EMPTY);
    sh_frame_in_free(&in);
}

static void test_header_sends_only_changes(void **state)
{
    (void)state;
    sh_inv_cache sent = {0}, have = {0};
    sh_invocation inv = {.execution_id = "e1", .task_id = NULL, .pipeline = "p", .stage = "s", .plugin = "pl",
                         .base_dir = "/b", .attempt = 3, .deterministic = true, .seed = 42};
    sh_buf b;
    sh_buf_init(&b);
    sh_protocol_put_header(&b, &sent, &inv, SH_CALL_FORK);
    size_t first = b.len;
    sh_codec_reader r;
    sh_codec_reader_init(&r, b.data, b.len);
    sh_invocation got;
    uint8_t flags = 0;
    assert_true(sh_protocol_get_header(&r, &have, &got, &flags));
    assert_true(sh_codec_reader_done(&r));
    assert_int_equal(flags, SH_CALL_FORK | SH_CALL_DETERMINISTIC);
    assert_string_equal(got.execution_id, "e1");
    assert_null(got.task_id);
    assert_string_equal(got.base_dir, "/b");
    assert_int_equal(got.attempt, 3);
    assert_true(got.deterministic);
    assert_int_equal(got.seed, 42);

    /* The same again but for the stage: only the stage travels. */
    inv.stage = "t";
    inv.deterministic = false;
    sh_buf_reset(&b);
    sh_protocol_put_header(&b, &sent, &inv, 0);
    assert_int_equal(b.len, 1 + 4 + 8 + 1 + 4 + 1);
    assert_true(b.len < first);
    sh_codec_reader_init(&r, b.data, b.len);
    assert_true(sh_protocol_get_header(&r, &have, &got, &flags));
    assert_string_equal(got.stage, "t");
    assert_string_equal(got.pipeline, "p");
    assert_false(got.deterministic);
    assert_int_equal(got.seed, 0);

    /* Cut short anywhere: malformed. */
    for (size_t n = 0; n < b.len; n++) {
        sh_codec_reader_init(&r, b.data, n);
        assert_false(sh_protocol_get_header(&r, &have, &got, &flags));
    }
    sh_buf_free(&b);
    sh_inv_cache_free(&sent);
    sh_inv_cache_free(&have);
}

static void test_names(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    sh_protocol_put_name(&b, "echo");
    sh_codec_reader r;
    sh_codec_reader_init(&r, b.data, b.len);
    const char *name = NULL;
    assert_true(sh_protocol_get_name(&r, &name));
    assert_string_equal(name, "echo");
    assert_true(sh_codec_reader_done(&r));
    /* Without its NUL, or with a length past the frame: malformed. */
    sh_codec_reader_init(&r, b.data, b.len - 1);
    assert_false(sh_protocol_get_name(&r, &name));
    b.data[b.len - 1] = 'x';
    sh_codec_reader_init(&r, b.data, b.len);
    assert_false(sh_protocol_get_name(&r, &name));
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0};
    sh_codec_reader_init(&r, huge, sizeof huge);
    assert_false(sh_protocol_get_name(&r, &name));
    sh_buf_free(&b);
}

static void test_shm_announcement(void **state)
{
    (void)state;
    sh_buf b;
    sh_buf_init(&b);
    sh_protocol_put_shm(&b, UINT64_C(0x0102030405060708));
    sh_frame_in in = {0};
    arrive(&in, b.data, b.len);
    uint8_t type = 0;
    const uint8_t *pl = NULL;
    size_t len = 0;
    assert_int_equal(sh_frame_take(&in, 1000, &type, &pl, &len), SH_FRAME_READY);
    assert_int_equal(type, SH_MSG_SHM);
    uint64_t size = 0;
    sh_codec_reader r;
    sh_codec_reader_init(&r, pl, len);
    assert_true(sh_protocol_get_u64(&r, &size));
    assert_true(sh_codec_reader_done(&r));
    assert_int_equal(size, UINT64_C(0x0102030405060708));
    sh_frame_in_free(&in);
    sh_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_whole_split_and_many),
        cmocka_unit_test(test_frame_headers_refused),
        cmocka_unit_test(test_header_sends_only_changes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_shm_announcement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
