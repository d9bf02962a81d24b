#include "value/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void sh_json_write_string(sh_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sh_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            sh_buf_puts(b, "\\\"");
            break;
        case '\\':
            sh_buf_puts(b, "\\\\");
            break;
        case '\n':
            sh_buf_puts(b, "\\n");
            break;
        case '\r':
            sh_buf_puts(b, "\\r");
            break;
        case '\t':
            sh_buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sh_buf_append(b, esc, sizeof esc);
            } else {
                sh_buf_putc(b, (char)c);
            }
        }
    }
    sh_buf_putc(b, '"');
}

static void write_base64(sh_buf *b, const unsigned char *p, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sh_buf_putc(b, '"');
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        char q[4] = {tbl[p[i] >> 2], tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                     tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)], tbl[p[i + 2] & 63]};
        sh_buf_append(b, q, 4);
    }
    if (i < len) {
        char q[4] = {tbl[p[i] >> 2], '=', '=', '='};
        if (i + 1 < len) {
            q[1] = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
            q[2] = tbl[(p[i + 1] & 15) << 2];
        } else {
            q[1] = tbl[(p[i] & 3) << 4];
        }
        sh_buf_append(b, q, 4);
    }
    sh_buf_putc(b, '"');
}

void sh_json_write(sh_buf *b, const sh_value *v)
{
    switch (sh_value_type(v)) {
    case SH_TYPE_NULL:
        sh_buf_puts(b, "null");
        break;
    case SH_TYPE_BOOL:
        sh_buf_puts(b, v->u.b ? "true" : "false");
        break;
    case SH_TYPE_INT:
        sh_buf_printf(b, "%lld", (long long)v->u.i);
        break;
    case SH_TYPE_DOUBLE:
        if (!isfinite(v->u.d)) {
            sh_buf_puts(b, "null");
        } else {
            char tmp[40];
            snprintf(tmp, sizeof tmp, "%.17g", v->u.d);
            sh_buf_puts(b, tmp);
            /* Keep doubles recognisable as such when read back: 1.0 must not become the integer 1. */
            if (!strpbrk(tmp, ".eE"))
                sh_buf_puts(b, ".0");
        }
        break;
    case SH_TYPE_STRING:
        sh_json_write_string(b, v->u.s.data, v->u.s.len);
        break;
    case SH_TYPE_BYTES:
        sh_buf_puts(b, "{\"$bytes\":");
        write_base64(b, (const unsigned char *)v->u.s.data, v->u.s.len);
        sh_buf_putc(b, '}');
        break;
    case SH_TYPE_ARRAY:
        sh_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.a.len; i++) {
            if (i)
                sh_buf_putc(b, ',');
            sh_json_write(b, v->u.a.items[i]);
        }
        sh_buf_putc(b, ']');
        break;
    case SH_TYPE_MAP:
        sh_buf_putc(b, '{');
        for (size_t i = 0; i < v->u.m.len; i++) {
            if (i)
                sh_buf_putc(b, ',');
            sh_json_write_string(b, v->u.m.entries[i].key, strlen(v->u.m.entries[i].key));
            sh_buf_putc(b, ':');
            sh_json_write(b, v->u.m.entries[i].value);
        }
        sh_buf_putc(b, '}');
        break;
    }
}
