#include "util/text.h"

#include <stdio.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at `s` (at most `len` bytes), or 0 when it is not one. Overlong forms,
 * surrogates and code points past U+10FFFF are not valid. */
static size_t utf8_length(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || n > len || c > 0xf4 || c == 0xc0 || c == 0xc1)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

size_t sh_text_safe(char *out, size_t size, const char *in, size_t len)
{
    if (size == 0)
        return 0;
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char piece[8];
        size_t n = 0, used = 1;
        unsigned c = s[i];
        if (c == '\n' || c == '\r' || c == '\t') {
            n = (size_t)snprintf(piece, sizeof piece, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(piece, sizeof piece, "\\x%02x", c);
        } else if (c < 0x80) {
            piece[n++] = (char)c;
        } else if ((used = utf8_length(s + i, len - i)) == 0) {
            used = 1;
            piece[n++] = '?';
        } else if (used == 2 && c == 0xc2 && s[i + 1] < 0xa0) {
            /* C1 controls (U+0080..U+009F): some terminals act on them as on ESC sequences. */
            n = (size_t)snprintf(piece, sizeof piece, "\\u%04x", s[i + 1]);
        } else {
            memcpy(piece, s + i, used);
            n = used;
        }
        if (o + n + 1 > size)
            break;
        memcpy(out + o, piece, n);
        o += n;
        i += used;
    }
    out[o] = '\0';
    return o;
}
