/* libFuzzer target: the value codec's decoder, which reads what untrusted workers send. Whatever decodes must
 * re-encode to bytes that decode to an equal value. */
#include "value/codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_codec_reader r;
    sh_codec_reader_init(&r, data, size);
    while (!sh_codec_reader_done(&r)) {
        sh_value *v = NULL;
        sh_error err;
        if (sh_codec_get_value(&r, &v, &err) != SH_S_OK) {
            if (v)
                abort(); /* a failed decode must not hand out a value */
            break;
        }
        sh_buf b;
        sh_buf_init(&b);
        sh_codec_put_value(&b, v);
        sh_codec_reader r2;
        sh_codec_reader_init(&r2, b.data, b.len);
        sh_value *again = NULL;
        if (b.failed || sh_codec_get_value(&r2, &again, &err) != SH_S_OK || !sh_codec_reader_done(&r2))
            abort();
        /* Maps may hold repeated keys from hostile input; equality still holds key by key, in order. */
        if (!sh_value_equal(v, again))
            abort();
        sh_value_free(again);
        sh_value_free(v);
        sh_buf_free(&b);
    }
    return 0;
}
