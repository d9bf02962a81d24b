/* "Did you mean" suggestions for misspelled keys and stage types. */
#ifndef SH_SUGGEST_H
#define SH_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance between two strings (capped at 255). */
size_t sh_edit_distance(const char *a, const char *b);

/* The candidate closest to `word` if it is close enough to be a plausible typo, else NULL. */
const char *sh_suggest(const char *word, const char *const *candidates, size_t count);

#endif
