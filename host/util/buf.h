/* A growable byte buffer, used to build wire frames and JSON text. */
#ifndef SH_BUF_H
#define SH_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sh_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; further appends are ignored */
} sh_buf;

void sh_buf_init(sh_buf *b);
void sh_buf_free(sh_buf *b);
void sh_buf_reset(sh_buf *b);
/* Makes room for `extra` more bytes; returns 0, or -1 (and sets failed) when out of memory. */
int sh_buf_reserve(sh_buf *b, size_t extra);
void sh_buf_append(sh_buf *b, const void *data, size_t len);
void sh_buf_putc(sh_buf *b, char c);
void sh_buf_puts(sh_buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void sh_buf_printf(sh_buf *b, const char *fmt, ...);
void sh_buf_u8(sh_buf *b, uint8_t v);
void sh_buf_u32(sh_buf *b, uint32_t v); /* little-endian */
void sh_buf_u64(sh_buf *b, uint64_t v); /* little-endian */

#endif
