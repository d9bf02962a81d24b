/*
 * Typed, checked reads of a stage's `config` map, shared by the bundled plugins (compiled into each one: nothing
 * here is part of the SDK). Every function that fails has already called sh_failf() with a message naming the
 * key, what it must be and what was given, and returns that status, so callers can `return` it directly.
 */
#ifndef STAGEHOST_PLUGIN_CONFIG_H
#define STAGEHOST_PLUGIN_CONFIG_H

#include <stagehost/sdk.h>

/* Refuses keys outside `known` (a typo must not silently fall back to a default), listing the known ones. */
int pc_check_keys(sh_call *call, const sh_value *cfg, const char *const *known, size_t n);

/* A string under `key`, or `fallback` (which may be NULL) when absent. Borrowed from `cfg`. */
int pc_string(sh_call *call, const sh_value *cfg, const char *key, const char *fallback, const char **out);

/* An integer in [min, max] under `key`, or `fallback` when absent. */
int pc_int(sh_call *call, const sh_value *cfg, const char *key, int64_t fallback, int64_t min, int64_t max,
           int64_t *out);

int pc_bool(sh_call *call, const sh_value *cfg, const char *key, int fallback, int *out);

/* One of `choices` (NULL-terminated) under `key`, or `fallback`; *index is the position of the choice. */
int pc_choice(sh_call *call, const sh_value *cfg, const char *key, const char *const *choices, size_t fallback,
              size_t *index);

/* A list of strings under `key`: NULL (count 0) when absent; otherwise the array value itself, every element
 * checked to be a non-empty string. */
int pc_string_list(sh_call *call, const sh_value *cfg, const char *key, const sh_value **list, size_t *count);

/* A string that is an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 characters), safe to put between double
 * quotes. */
int pc_identifier(sh_call *call, const sh_value *cfg, const char *key, const char *fallback, const char **out);

#endif
