/* Items and configuration values: the host's representation behind the opaque sh_value of the ABI. */
#ifndef SH_VALUE_H
#define SH_VALUE_H

#include <stagehost/abi.h>
#include <stdbool.h>

typedef struct sh_map_entry {
    char *key;
    sh_value *value;
} sh_map_entry;

struct sh_value {
    sh_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *data; /* NUL-terminated (one extra byte) for strings and bytes alike */
            size_t len;
        } s;
        struct {
            sh_value **items;
            size_t len, cap;
        } a;
        struct {
            sh_map_entry *entries;
            size_t len, cap;
        } m;
    } u;
};

bool sh_utf8_valid(const char *s, size_t len);

sh_value *sh_value_null(void);
sh_value *sh_value_bool(int b);
sh_value *sh_value_int(int64_t i);
sh_value *sh_value_double(double d);
sh_value *sh_value_string(const char *text, size_t len); /* NULL on invalid UTF-8 or no memory */
sh_value *sh_value_cstring(const char *text);
sh_value *sh_value_bytes(const void *data, size_t len);
sh_value *sh_value_array(void);
sh_value *sh_value_map(void);
sh_value *sh_value_copy(const sh_value *v);
void sh_value_free(sh_value *v);

int sh_value_array_push(sh_value *array, sh_value *item); /* takes ownership of item */
int sh_value_map_set(sh_value *map, const char *key, sh_value *item); /* takes ownership of item */
/* Appends an entry without looking for an existing key; for decoders that build maps from trusted order. */
int sh_value_map_append(sh_value *map, char *key_owned, sh_value *item);

sh_type sh_value_type(const sh_value *v);
int sh_value_get_bool(const sh_value *v);
int64_t sh_value_get_int(const sh_value *v);
double sh_value_get_double(const sh_value *v);
const char *sh_value_get_string(const sh_value *v, size_t *len);
const void *sh_value_get_bytes(const sh_value *v, size_t *len);
size_t sh_value_count(const sh_value *v);
const sh_value *sh_value_array_get(const sh_value *v, size_t index);
const sh_value *sh_value_map_get(const sh_value *v, const char *key);
const char *sh_value_map_entry(const sh_value *v, size_t index, const sh_value **value);

bool sh_value_equal(const sh_value *a, const sh_value *b);
/* The first key of map `m` that is not in `known`, or NULL when all are known. */
const char *sh_value_unknown_key(const sh_value *m, const char *const *known, size_t count);

/* A growable list of owned values, used for batches of items. */
typedef struct sh_values {
    sh_value **items;
    size_t len, cap;
} sh_values;

int sh_values_push(sh_values *list, sh_value *item); /* takes ownership of item */
void sh_values_clear(sh_values *list);               /* frees every item and the list */
/* Moves the items of array value `array` to the end of `list` and frees the array. Returns false when out of
 * memory: then `list` is cleared and every item freed. */
bool sh_values_take_array(sh_values *list, sh_value *array);

const char *sh_type_name(sh_type t);

#endif
