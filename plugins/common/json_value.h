/*
 * Items as JSON, with jansson: the JSON data model is the items' data model, plus byte strings, which travel as
 * {"$bytes": "BASE64"} exactly as the built-in `write` stage writes them, so files written by `write` parse back
 * losslessly.
 */
#ifndef STAGEHOST_JSON_VALUE_H
#define STAGEHOST_JSON_VALUE_H

#include <stagehost/sdk.h>

#include <jansson.h>

/* A new JSON value for `v`; NULL with a reason in `why` (a NaN or infinite double, out of memory). */
json_t *jv_from_value(const sh_value *v, char *why, size_t len);

/* A new item value for `j` (`bytes_objects`: turn {"$bytes": "..."} back into bytes); NULL with `why`. */
sh_value *jv_to_value(const json_t *j, int bytes_objects, char *why, size_t len);

/* The item as compact (or indented) JSON text, malloc'd; NULL with `why`. */
char *jv_dump(const sh_value *v, int pretty, int sort_keys, char *why, size_t len);

#endif
