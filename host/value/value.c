#include "value/value.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool sh_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n > len - i - 1)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static sh_value *new_value(sh_type t)
{
    sh_value *v = calloc(1, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

sh_value *sh_value_null(void) { return new_value(SH_TYPE_NULL); }

sh_value *sh_value_bool(int b)
{
    sh_value *v = new_value(SH_TYPE_BOOL);
    if (v)
        v->u.b = b != 0;
    return v;
}

sh_value *sh_value_int(int64_t i)
{
    sh_value *v = new_value(SH_TYPE_INT);
    if (v)
        v->u.i = i;
    return v;
}

sh_value *sh_value_double(double d)
{
    sh_value *v = new_value(SH_TYPE_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

static sh_value *new_octets(sh_type t, const void *data, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    sh_value *v = new_value(t);
    if (!v)
        return NULL;
    v->u.s.data = malloc(len + 1);
    if (!v->u.s.data) {
        free(v);
        return NULL;
    }
    if (len)
        memcpy(v->u.s.data, data, len);
    v->u.s.data[len] = '\0';
    v->u.s.len = len;
    return v;
}

sh_value *sh_value_string(const char *text, size_t len)
{
    if ((!text && len) || (text && !sh_utf8_valid(text, len)))
        return NULL;
    return new_octets(SH_TYPE_STRING, text, len);
}

sh_value *sh_value_cstring(const char *text) { return text ? sh_value_string(text, strlen(text)) : NULL; }

sh_value *sh_value_bytes(const void *data, size_t len)
{
    if (!data && len)
        return NULL;
    return new_octets(SH_TYPE_BYTES, data, len);
}

sh_value *sh_value_array(void) { return new_value(SH_TYPE_ARRAY); }
sh_value *sh_value_map(void) { return new_value(SH_TYPE_MAP); }

void sh_value_free(sh_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        free(v->u.s.data);
        break;
    case SH_TYPE_ARRAY:
        for (size_t i = 0; i < v->u.a.len; i++)
            sh_value_free(v->u.a.items[i]);
        free(v->u.a.items);
        break;
    case SH_TYPE_MAP:
        for (size_t i = 0; i < v->u.m.len; i++) {
            free(v->u.m.entries[i].key);
            sh_value_free(v->u.m.entries[i].value);
        }
        free(v->u.m.entries);
        break;
    default:
        break;
    }
    free(v);
}

sh_value *sh_value_copy(const sh_value *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case SH_TYPE_NULL:
        return sh_value_null();
    case SH_TYPE_BOOL:
        return sh_value_bool(v->u.b);
    case SH_TYPE_INT:
        return sh_value_int(v->u.i);
    case SH_TYPE_DOUBLE:
        return sh_value_double(v->u.d);
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        return new_octets(v->type, v->u.s.data, v->u.s.len);
    case SH_TYPE_ARRAY: {
        sh_value *a = sh_value_array();
        for (size_t i = 0; a && i < v->u.a.len; i++) {
            sh_value *c = sh_value_copy(v->u.a.items[i]);
            if (!c || sh_value_array_push(a, c) != SH_OK) {
                sh_value_free(a);
                return NULL;
            }
        }
        return a;
    }
    case SH_TYPE_MAP: {
        sh_value *m = sh_value_map();
        for (size_t i = 0; m && i < v->u.m.len; i++) {
            sh_value *c = sh_value_copy(v->u.m.entries[i].value);
            char *k = strdup(v->u.m.entries[i].key);
            if (!c || !k || sh_value_map_append(m, k, c) != SH_OK) {
                if (!k)
                    sh_value_free(c);
                free(k);
                sh_value_free(m);
                return NULL;
            }
        }
        return m;
    }
    }
    return NULL;
}

static int grow(void **items, size_t *cap, size_t len, size_t elem)
{
    if (len < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    if (ncap > SIZE_MAX / elem)
        return -1;
    void *p = realloc(*items, ncap * elem);
    if (!p)
        return -1;
    *items = p;
    *cap = ncap;
    return 0;
}

int sh_value_array_push(sh_value *array, sh_value *item)
{
    if (!array || array->type != SH_TYPE_ARRAY || !item) {
        sh_value_free(item);
        return SH_ERR_INVALID;
    }
    if (grow((void **)&array->u.a.items, &array->u.a.cap, array->u.a.len, sizeof(sh_value *)) != 0) {
        sh_value_free(item);
        return SH_ERR_NOMEM;
    }
    array->u.a.items[array->u.a.len++] = item;
    return SH_OK;
}

/* A map with many keys carries a hash index of its entries, so that building, reading and copying a 100,000-key
 * object is linear, not quadratic. The index lives in the entries' own allocation, after `cap` entries (no field
 * added to every value): `index_slots(cap)` slots, each 0 (empty) or an entry's position plus one, linear
 * probing. Below INDEX_FROM entries of capacity a scan is as fast and there is no index. Entries are only ever
 * appended, and the first of two equal keys (a decoder may append both) is the one found, as a scan would. */
#define INDEX_FROM 16

static size_t index_slots(size_t cap) { return cap < INDEX_FROM ? 0 : cap * 2; } /* cap is a power of two */

static uint32_t *index_of(const sh_value *map)
{
    return map->u.m.cap < INDEX_FROM ? NULL : (uint32_t *)(map->u.m.entries + map->u.m.cap);
}

static uint64_t key_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return h ^ (h >> 29);
}

/* The position of `key`, or SIZE_MAX. */
static size_t map_find(const sh_value *map, const char *key)
{
    const uint32_t *index = index_of(map);
    if (!index) {
        for (size_t i = 0; i < map->u.m.len; i++)
            if (strcmp(map->u.m.entries[i].key, key) == 0)
                return i;
        return SIZE_MAX;
    }
    size_t mask = index_slots(map->u.m.cap) - 1;
    for (size_t s = key_hash(key) & mask;; s = (s + 1) & mask) {
        if (!index[s])
            return SIZE_MAX;
        if (strcmp(map->u.m.entries[index[s] - 1].key, key) == 0)
            return index[s] - 1;
    }
}

/* Puts entry `i` into the index unless an earlier entry has its key. */
static void index_add(sh_value *map, size_t i)
{
    uint32_t *index = index_of(map);
    size_t mask = index_slots(map->u.m.cap) - 1;
    for (size_t s = key_hash(map->u.m.entries[i].key) & mask;; s = (s + 1) & mask) {
        if (!index[s]) {
            index[s] = (uint32_t)(i + 1);
            return;
        }
        if (strcmp(map->u.m.entries[index[s] - 1].key, map->u.m.entries[i].key) == 0)
            return;
    }
}

/* Room for one more entry: the capacity doubles, and from INDEX_FROM on the index is laid out again behind
 * the entries. */
static int map_reserve(sh_value *map)
{
    size_t cap = map->u.m.cap;
    if (map->u.m.len < cap)
        return 0;
    size_t ncap = cap ? cap * 2 : 4;
    if (ncap > UINT32_MAX || ncap > SIZE_MAX / (sizeof(sh_map_entry) + 2 * sizeof(uint32_t)))
        return -1;
    size_t bytes = ncap * sizeof(sh_map_entry) + index_slots(ncap) * sizeof(uint32_t);
    sh_map_entry *p = realloc(map->u.m.entries, bytes);
    if (!p)
        return -1;
    map->u.m.entries = p;
    map->u.m.cap = ncap;
    uint32_t *index = index_of(map);
    if (index) {
        memset(index, 0, index_slots(ncap) * sizeof *index);
        for (size_t i = 0; i < map->u.m.len; i++)
            index_add(map, i);
    }
    return 0;
}

int sh_value_map_append(sh_value *map, char *key, sh_value *item)
{
    if (map_reserve(map) != 0) {
        free(key);
        sh_value_free(item);
        return SH_ERR_NOMEM;
    }
    map->u.m.entries[map->u.m.len].key = key;
    map->u.m.entries[map->u.m.len].value = item;
    if (index_of(map))
        index_add(map, map->u.m.len);
    map->u.m.len++;
    return SH_OK;
}

int sh_value_map_set(sh_value *map, const char *key, sh_value *item)
{
    if (!map || map->type != SH_TYPE_MAP || !key || !item || !sh_utf8_valid(key, strlen(key))) {
        sh_value_free(item);
        return SH_ERR_INVALID;
    }
    size_t i = map_find(map, key);
    if (i != SIZE_MAX) {
        sh_value_free(map->u.m.entries[i].value);
        map->u.m.entries[i].value = item;
        return SH_OK;
    }
    char *k = strdup(key);
    if (!k) {
        sh_value_free(item);
        return SH_ERR_NOMEM;
    }
    return sh_value_map_append(map, k, item);
}

sh_type sh_value_type(const sh_value *v) { return v ? v->type : SH_TYPE_NULL; }
int sh_value_get_bool(const sh_value *v) { return v && v->type == SH_TYPE_BOOL ? v->u.b : 0; }

int64_t sh_value_get_int(const sh_value *v)
{
    if (!v)
        return 0;
    if (v->type == SH_TYPE_INT)
        return v->u.i;
    if (v->type == SH_TYPE_DOUBLE) {
        /* Out-of-range conversion is undefined behaviour in C: clamp first. */
        if (!(v->u.d == v->u.d))
            return 0;
        if (v->u.d >= 9223372036854775807.0)
            return INT64_MAX;
        if (v->u.d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)v->u.d;
    }
    return 0;
}

double sh_value_get_double(const sh_value *v)
{
    if (!v)
        return 0.0;
    if (v->type == SH_TYPE_DOUBLE)
        return v->u.d;
    if (v->type == SH_TYPE_INT)
        return (double)v->u.i;
    return 0.0;
}

const char *sh_value_get_string(const sh_value *v, size_t *len)
{
    if (!v || v->type != SH_TYPE_STRING)
        return NULL;
    if (len)
        *len = v->u.s.len;
    return v->u.s.data;
}

const void *sh_value_get_bytes(const sh_value *v, size_t *len)
{
    if (!v || v->type != SH_TYPE_BYTES)
        return NULL;
    if (len)
        *len = v->u.s.len;
    return v->u.s.data;
}

size_t sh_value_count(const sh_value *v)
{
    if (!v)
        return 0;
    if (v->type == SH_TYPE_ARRAY)
        return v->u.a.len;
    if (v->type == SH_TYPE_MAP)
        return v->u.m.len;
    return 0;
}

const sh_value *sh_value_array_get(const sh_value *v, size_t index)
{
    if (!v || v->type != SH_TYPE_ARRAY || index >= v->u.a.len)
        return NULL;
    return v->u.a.items[index];
}

const sh_value *sh_value_map_get(const sh_value *v, const char *key)
{
    if (!v || v->type != SH_TYPE_MAP || !key)
        return NULL;
    size_t i = map_find(v, key);
    return i == SIZE_MAX ? NULL : v->u.m.entries[i].value;
}

const char *sh_value_map_entry(const sh_value *v, size_t index, const sh_value **value)
{
    if (!v || v->type != SH_TYPE_MAP || index >= v->u.m.len)
        return NULL;
    if (value)
        *value = v->u.m.entries[index].value;
    return v->u.m.entries[index].key;
}

bool sh_value_equal(const sh_value *a, const sh_value *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case SH_TYPE_NULL:
        return true;
    case SH_TYPE_BOOL:
        return a->u.b == b->u.b;
    case SH_TYPE_INT:
        return a->u.i == b->u.i;
    case SH_TYPE_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
    case SH_TYPE_STRING:
    case SH_TYPE_BYTES:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.data, b->u.s.data, a->u.s.len) == 0;
    case SH_TYPE_ARRAY:
        if (a->u.a.len != b->u.a.len)
            return false;
        for (size_t i = 0; i < a->u.a.len; i++)
            if (!sh_value_equal(a->u.a.items[i], b->u.a.items[i]))
                return false;
        return true;
    case SH_TYPE_MAP:
        if (a->u.m.len != b->u.m.len)
            return false;
        for (size_t i = 0; i < a->u.m.len; i++)
            if (strcmp(a->u.m.entries[i].key, b->u.m.entries[i].key) != 0 ||
                !sh_value_equal(a->u.m.entries[i].value, b->u.m.entries[i].value))
                return false;
        return true;
    }
    return false;
}

int sh_values_push(sh_values *list, sh_value *item)
{
    if (!item)
        return SH_ERR_INVALID;
    if (grow((void **)&list->items, &list->cap, list->len, sizeof(sh_value *)) != 0) {
        sh_value_free(item);
        return SH_ERR_NOMEM;
    }
    list->items[list->len++] = item;
    return SH_OK;
}

void sh_values_clear(sh_values *list)
{
    for (size_t i = 0; i < list->len; i++)
        sh_value_free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->len = list->cap = 0;
}

const char *sh_type_name(sh_type t)
{
    static const char *const names[] = {"null", "bool", "integer", "double", "string", "bytes", "array", "map"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

const char *sh_value_unknown_key(const sh_value *m, const char *const *known, size_t count)
{
    for (size_t i = 0; i < sh_value_count(m); i++) {
        const char *key = sh_value_map_entry(m, i, NULL);
        bool found = false;
        for (size_t k = 0; k < count && !found; k++)
            found = strcmp(key, known[k]) == 0;
        if (!found)
            return key;
    }
    return NULL;
}

bool sh_values_take_array(sh_values *list, sh_value *array)
{
    bool ok = array && array->type == SH_TYPE_ARRAY;
    size_t k = 0;
    for (; ok && k < array->u.a.len; k++)
        ok = sh_values_push(list, array->u.a.items[k]) == SH_OK; /* owns the item either way */
    for (; array && array->type == SH_TYPE_ARRAY && k < array->u.a.len; k++)
        sh_value_free(array->u.a.items[k]);
    if (array && array->type == SH_TYPE_ARRAY)
        array->u.a.len = 0;
    sh_value_free(array);
    if (!ok)
        sh_values_clear(list);
    return ok;
}
