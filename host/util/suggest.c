#include "util/suggest.h"

#include <string.h>

size_t sh_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 254)
        la = 254;
    if (lb > 254)
        lb = 254;
    size_t row[256];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 255 ? 255 : row[lb];
}

const char *sh_suggest(const char *word, const char *const *candidates, size_t count)
{
    /* A word that starts a candidate ("ttl" for "ttl_s") is a truncation, however far apart they are. */
    for (size_t i = 0; *word && i < count; i++)
        if (strncmp(candidates[i], word, strlen(word)) == 0)
            return candidates[i];
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < count; i++) {
        size_t d = sh_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* A third of the word's length, at least 1, counts as a typo; more is a different word. */
    size_t limit = strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    return best && best_d <= limit ? best : NULL;
}
