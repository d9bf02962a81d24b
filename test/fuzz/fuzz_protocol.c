/* libFuzzer target: the worker channel's frame reader (sh_frame_take), which reads what untrusted workers send,
 * fed in pieces of every size, and the binary request fields decoded from the frames it finds. A frame comes out
 * only when it is whole, and lies inside the bytes that arrived. */
#include "worker/frame.h"
#include "worker/protocol.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte says how the rest arrives: in pieces of 1 to 256 bytes. */
    size_t piece = (size_t)data[0] + 1;
    data++, size--;
    sh_frame_in in = {0};
    sh_inv_cache have = {0};
    size_t fed = 0, taken = 0;
    for (;;) {
        uint8_t type;
        const uint8_t *payload = NULL;
        size_t len = 0;
        sh_frame_status fs = sh_frame_take(&in, 1u << 20, &type, &payload, &len);
        if (fs == SH_FRAME_READY) {
            if (payload < in.buf.data || payload + len > in.buf.data + in.buf.len)
                abort();
            taken += len + 5;
            sh_codec_reader r;
            sh_codec_reader_init(&r, payload, len);
            sh_invocation inv;
            uint8_t flags;
            const char *name;
            if (sh_protocol_get_header(&r, &have, &inv, &flags) && sh_protocol_get_name(&r, &name) &&
                (name < (const char *)r.data || name + strlen(name) >= (const char *)r.data + r.len))
                abort();
            continue;
        }
        if (fs != SH_FRAME_MORE || fed == size)
            break;
        size_t n = size - fed < piece ? size - fed : piece;
        if (n > in.buf.cap - in.buf.len)
            abort(); /* MORE promised room for at least the rest of the frame, and 64 KiB */
        memcpy(in.buf.data + in.buf.len, data + fed, n);
        in.buf.len += n;
        fed += n;
    }
    if (taken > fed)
        abort();
    sh_frame_in_free(&in);
    sh_inv_cache_free(&have);
    return 0;
}
