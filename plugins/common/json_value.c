/* sh_value <-> jansson conversion; see json_value.h. Base64 comes from OpenSSL's libcrypto (EVP_EncodeBlock),
 * which the bundled plugins already link, rather than another hand-written codec. */
#include "json_value.h"

#include <math.h>
#include <openssl/evp.h>

static json_t *bytes_to_json(const unsigned char *data, size_t n)
{
    /* EVP_EncodeBlock takes an int length: byte strings past 1.5 GiB would not fit an item anyway. */
    if (n > (size_t)1 << 30)
        return NULL;
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *b64 = malloc(cap);
    if (!b64)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)b64, data, (int)n);
    json_t *s = json_stringn(b64, (size_t)len);
    free(b64);
    json_t *o = s ? json_object() : NULL;
    if (!o || json_object_set_new(o, "$bytes", s) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *jv_from_value(const sh_value *v, char *why, size_t len)
{
    const sh_host *h = sh_sdk_host;
    json_t *out = NULL;
    switch (h->value_type(v)) {
    case SH_TYPE_NULL: return json_null();
    case SH_TYPE_BOOL: return json_boolean(h->value_bool(v));
    case SH_TYPE_INT: return json_integer((json_int_t)h->value_int(v));
    case SH_TYPE_DOUBLE: {
        double d = h->value_double(v);
        if (!isfinite(d)) {
            snprintf(why, len, "the number %g has no JSON form (JSON has no NaN or infinity)", d);
            return NULL;
        }
        out = json_real(d);
        break;
    }
    case SH_TYPE_STRING: {
        size_t n;
        const char *s = h->value_string(v, &n);
        out = json_stringn(s, n);
        break;
    }
    case SH_TYPE_BYTES: {
        size_t n;
        const void *b = h->value_bytes(v, &n);
        out = bytes_to_json(b, n);
        break;
    }
    case SH_TYPE_ARRAY: {
        out = json_array();
        size_t n = h->value_count(v);
        for (size_t i = 0; out && i < n; i++) {
            json_t *e = jv_from_value(h->array_get(v, i), why, len);
            if (!e || json_array_append_new(out, e) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        break;
    }
    case SH_TYPE_MAP: {
        out = json_object();
        size_t n = h->value_count(v);
        for (size_t i = 0; out && i < n; i++) {
            const sh_value *ev;
            const char *key = h->map_entry(v, i, &ev);
            json_t *e = jv_from_value(ev, why, len);
            if (!e || json_object_set_new(out, key, e) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        break;
    }
    }
    if (!out && !*why)
        snprintf(why, len, "out of memory");
    return out;
}

/* {"$bytes": "BASE64"} with nothing else in it, and valid base64: the bytes; otherwise NULL (a plain map). */
static sh_value *json_to_bytes(const json_t *o)
{
    if (json_object_size(o) != 1)
        return NULL;
    const json_t *s = json_object_get(o, "$bytes");
    if (!json_is_string(s))
        return NULL;
    size_t n = json_string_length(s);
    if (n % 4 != 0 || n > (size_t)1 << 30)
        return NULL;
    unsigned char *raw = malloc(n / 4 * 3 + 1);
    if (!raw)
        return NULL;
    int got = EVP_DecodeBlock(raw, (const unsigned char *)json_string_value(s), (int)n);
    sh_value *out = NULL;
    if (got >= 0) {
        /* EVP_DecodeBlock counts the zero bytes that padding stands for: take them off. */
        size_t pad = n >= 1 && json_string_value(s)[n - 1] == '=' ? 1 + (n >= 2 && json_string_value(s)[n - 2] == '=')
                                                                    : 0;
        out = sh_sdk_host->new_bytes(raw, (size_t)got - pad);
    }
    free(raw);
    return out;
}

sh_value *jv_to_value(const json_t *j, int bytes_objects, char *why, size_t len)
{
    const sh_host *h = sh_sdk_host;
    sh_value *out = NULL;
    switch (json_typeof(j)) {
    case JSON_NULL: out = h->new_null(); break;
    case JSON_TRUE: out = h->new_bool(1); break;
    case JSON_FALSE: out = h->new_bool(0); break;
    case JSON_INTEGER: out = h->new_int((int64_t)json_integer_value(j)); break;
    case JSON_REAL: out = h->new_double(json_real_value(j)); break;
    case JSON_STRING: out = h->new_string(json_string_value(j), json_string_length(j)); break;
    case JSON_ARRAY: {
        out = h->new_array();
        for (size_t i = 0; out && i < json_array_size(j); i++) {
            sh_value *e = jv_to_value(json_array_get(j, i), bytes_objects, why, len);
            if (!e || h->array_push(out, e) != SH_OK) {
                h->value_free(out);
                return NULL;
            }
        }
        break;
    }
    case JSON_OBJECT: {
        if (bytes_objects && (out = json_to_bytes(j)) != NULL)
            break;
        out = h->new_map();
        const char *key;
        const json_t *e;
        /* jansson keeps keys in insertion order, so items keep the order their JSON text had. */
        json_object_foreach((json_t *)j, key, e) {
            sh_value *ev = jv_to_value(e, bytes_objects, why, len);
            if (!ev || h->map_set(out, key, ev) != SH_OK) {
                h->value_free(out);
                return NULL;
            }
        }
        break;
    }
    }
    if (!out && !*why)
        snprintf(why, len, "out of memory");
    return out;
}

char *jv_dump(const sh_value *v, int pretty, int sort_keys, char *why, size_t len)
{
    json_t *j = jv_from_value(v, why, len);
    if (!j)
        return NULL;
    size_t flags = JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT) | (sort_keys ? JSON_SORT_KEYS : 0);
    char *text = json_dumps(j, flags);
    json_decref(j);
    if (!text)
        snprintf(why, len, "out of memory");
    return text;
}
