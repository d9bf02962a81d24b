#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sh_buf_init(sh_buf *b) { memset(b, 0, sizeof *b); }

void sh_buf_free(sh_buf *b)
{
    free(b->data);
    sh_buf_init(b);
}

void sh_buf_reset(sh_buf *b)
{
    b->len = 0;
    b->failed = 0;
}

int sh_buf_reserve(sh_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void sh_buf_append(sh_buf *b, const void *data, size_t len)
{
    if (len == 0 || sh_buf_reserve(b, len) != 0)
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void sh_buf_putc(sh_buf *b, char c) { sh_buf_append(b, &c, 1); }

void sh_buf_puts(sh_buf *b, const char *s) { sh_buf_append(b, s, strlen(s)); }

void sh_buf_printf(sh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0 && sh_buf_reserve(b, (size_t)n + 1) == 0) {
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void sh_buf_u8(sh_buf *b, uint8_t v) { sh_buf_append(b, &v, 1); }

void sh_buf_u32(sh_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sh_buf_append(b, x, 4);
}

void sh_buf_u64(sh_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    sh_buf_append(b, x, 8);
}
