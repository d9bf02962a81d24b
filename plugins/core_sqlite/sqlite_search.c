/*
 * search: queries an index built by `index` and emits ranked results.
 *
 * The query is the config's `query` (the stage then ignores its input: put it first), or else each input
 * item's `query_field`, one result list per item. `mode`:
 *   "bm25"   (default) full-text relevance: FTS5's bm25, best first; score = -bm25 (higher is better)
 *   "vector" cosine similarity between the query item's `vector_field` (e.g. from core/embed) and the stored
 *            vectors; score = the cosine
 *   "hybrid" both, fused by reciprocal rank (score = sum of 1 / (60 + rank) over the two lists), which needs no
 *            tuning of the two scores' scales
 * With syntax = "words" (default) the query is free text: its words are searched for, any of them (OR), so a
 * question typed by a person never trips over FTS5's query syntax; syntax = "fts5" passes it as an FTS5 query.
 * Each result: the stored fields of the indexed item, plus query, rank (1 = best), score, text and snippet
 * (matching words in [brackets]), and bm25 / similarity when computed.
 */
#include "core_sqlite.h"
#include "json_value.h"
#include "plugin_config.h"

#include <math.h>
#include <stdbool.h>

enum { MODE_BM25, MODE_VECTOR, MODE_HYBRID };
enum { RRF_K = 60 };

typedef struct search_state {
    const char *db_path, *table, *query, *query_field, *vector_field;
    int64_t limit, candidates, snippet_words;
    size_t mode;
    int fts5_syntax;
    sqlite3 *db;
} search_state;

int search_create(sh_call *call, const sh_stage_def *def, void **user)
{
    static const char *const known[] = {"db", "table", "query", "query_field", "vector_field", "limit",
                                        "candidates", "snippet_words", "mode", "syntax"};
    static const char *const modes[] = {"bm25", "vector", "hybrid", NULL};
    static const char *const syntaxes[] = {"words", "fts5", NULL};
    search_state s = {0};
    size_t syntax = 0;
    int rc = db_check_fts5(call);
    if (rc == SH_OK)
        rc = pc_check_keys(call, def->config, known, SH_SDK_COUNT(known));
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "db", NULL, &s.db_path);
    if (rc == SH_OK && !s.db_path)
        rc = sh_failf(call, "config: 'db' is required: the SQLite file an index stage wrote, relative to the "
                            "pipeline's directory, e.g. db = \"out/index.db\"");
    if (rc == SH_OK)
        rc = pc_identifier(call, def->config, "table", "documents", &s.table);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "query", NULL, &s.query);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "query_field", "query", &s.query_field);
    if (rc == SH_OK)
        rc = pc_string(call, def->config, "vector_field", "embedding", &s.vector_field);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "limit", 10, 1, 10000, &s.limit);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "candidates", 100, 1, 100000, &s.candidates);
    if (rc == SH_OK)
        rc = pc_int(call, def->config, "snippet_words", 16, 1, 64, &s.snippet_words);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "mode", modes, MODE_BM25, &s.mode);
    if (rc == SH_OK)
        rc = pc_choice(call, def->config, "syntax", syntaxes, 0, &syntax);
    if (rc != SH_OK)
        return rc;
    if (s.query && s.mode != MODE_BM25)
        return sh_failf(call, "config: mode \"%s\" needs the query's vector, which a 'query' in the config does not "
                              "have: feed query items through core/embed (field = \"%s\") into this stage instead, "
                              "or use mode = \"bm25\"", modes[s.mode], s.query_field);
    s.fts5_syntax = syntax == 1;
    if (s.candidates < s.limit)
        s.candidates = s.limit;
    search_state *p = malloc(sizeof *p);
    if (!p)
        return sh_failf(call, "out of memory");
    *p = s;
    *user = p;
    return SH_OK;
}

void search_destroy(void *user)
{
    search_state *s = user;
    sqlite3_close(s->db);
    free(s);
}

/* One candidate row and what each ranking said about it. */
typedef struct hit {
    sqlite3_int64 rowid;
    double bm25, similarity, score;
    int64_t bm25_rank, vector_rank; /* 1-based; 0 when that ranking did not list it */
} hit;

typedef struct hits {
    hit *v;
    size_t len, cap;
} hits;

static hit *hit_for(hits *h, sqlite3_int64 rowid)
{
    for (size_t i = 0; i < h->len; i++)
        if (h->v[i].rowid == rowid)
            return &h->v[i];
    if (h->len == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        hit *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return NULL;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->len] = (hit){.rowid = rowid};
    return &h->v[h->len++];
}

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Free text as an FTS5 query: each word quoted (so no word is an operator), any of them. Empty when the text has
 * no words. */
static char *words_query(const char *text)
{
    /* Each word of w bytes becomes ` OR "w"` (w + 6 bytes) and words are at least two bytes apart, so the worst
     * case, one-letter words, is 4 bytes per input byte: "a b" -> "\"a\" OR \"b\"". */
    size_t len = strlen(text), cap = 4 * len + 8, used = 0;
    char *q = malloc(cap);
    if (!q)
        return NULL;
    for (size_t i = 0; i < len;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t start = i;
        while (i < len && word_byte((unsigned char)text[i]))
            i++;
        if (i > start)
            used += (size_t)snprintf(q + used, cap - used, "%s\"%.*s\"", used ? " OR " : "", (int)(i - start),
                                     text + start);
    }
    q[used] = '\0';
    return q;
}

static int rank_bm25(sh_call *call, search_state *s, const char *match, hits *h)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT rowid, bm25(\"%s\") FROM \"%s\" WHERE \"%s\" MATCH ? ORDER BY 2, rowid LIMIT ?",
             s->table, s->table, s->table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(call, s->db, s->db_path, "preparing the full-text query (was the table made by an index stage?)");
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->candidates);
    int step, rc = SH_OK;
    int64_t rank = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        hit *x = hit_for(h, sqlite3_column_int64(st, 0));
        if (!x) {
            rc = sh_failf(call, "out of memory ranking results");
            break;
        }
        x->bm25 = sqlite3_column_double(st, 1);
        x->bm25_rank = ++rank;
    }
    if (rc == SH_OK && step != SQLITE_DONE)
        rc = s->fts5_syntax ? sh_failf(call, "the FTS5 query \"%s\" failed: %s; fix the query, or set syntax = "
                                             "\"words\" for free text", match, sqlite3_errmsg(s->db))
                            : db_fail(call, s->db, s->db_path, "searching");
    sqlite3_finalize(st);
    return rc;
}

static int by_similarity(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->similarity != y->similarity)
        return x->similarity < y->similarity ? 1 : -1;
    return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

static int rank_vector(sh_call *call, search_state *s, const double *q, size_t dims, hits *h)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT rowid, vector FROM \"%s\" WHERE vector IS NOT NULL", s->table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(call, s->db, s->db_path, "reading the stored vectors");
    double qn = 0;
    for (size_t d = 0; d < dims; d++)
        qn += q[d] * q[d];
    qn = sqrt(qn);
    hits all = {0};
    int step, rc = SH_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 1) / sizeof(double);
        if (n != dims) {
            rc = sh_failf(call, "row %lld of '%s' has a %zu-dimensional vector, the query one of %zu: embed the "
                                "queries as the documents were (same 'dimensions')", (long long)sqlite3_column_int64(st, 0),
                          s->db_path, n, dims);
            break;
        }
        const double *v = sqlite3_column_blob(st, 1);
        double dot = 0, vn = 0;
        for (size_t d = 0; d < dims; d++) {
            double x;
            memcpy(&x, v + d, sizeof x); /* the blob need not be aligned for double */
            dot += x * q[d];
            vn += x * x;
        }
        hit *x = hit_for(&all, sqlite3_column_int64(st, 0));
        if (!x) {
            rc = sh_failf(call, "out of memory ranking results");
            break;
        }
        x->similarity = qn > 0 && vn > 0 ? dot / (qn * sqrt(vn)) : 0;
    }
    if (rc == SH_OK && step != SQLITE_DONE)
        rc = db_fail(call, s->db, s->db_path, "reading the stored vectors");
    sqlite3_finalize(st);
    if (all.len)
        qsort(all.v, all.len, sizeof *all.v, by_similarity);
    for (size_t i = 0; rc == SH_OK && i < all.len && (int64_t)i < s->candidates; i++) {
        hit *x = hit_for(h, all.v[i].rowid);
        if (!x) {
            rc = sh_failf(call, "out of memory ranking results");
            break;
        }
        x->similarity = all.v[i].similarity;
        x->vector_rank = (int64_t)i + 1;
    }
    free(all.v);
    return rc;
}

static int by_score(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

/* The stored row as an output item. */
static int emit_hit(sh_call *call, search_state *s, const hit *x, int64_t rank, const char *query,
                    const char *match)
{
    char sql[512];
    /* snippet() needs the row to match; rows found only by their vector get the opening words instead. */
    snprintf(sql, sizeof sql,
             "SELECT text, item, CASE WHEN ?2 <> '' THEN (SELECT snippet(\"%s\", 0, '[', ']', '...', ?3) FROM \"%s\" "
             "WHERE \"%s\" MATCH ?2 AND rowid = ?1) END FROM \"%s\" WHERE rowid = ?1",
             s->table, s->table, s->table, s->table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(call, s->db, s->db_path, "reading a result");
    sqlite3_bind_int64(st, 1, x->rowid);
    sqlite3_bind_text(st, 2, match ? match : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, s->snippet_words);
    int rc = SH_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(call, s->db, s->db_path, "reading a result");
        sqlite3_finalize(st);
        return rc;
    }
    const char *text = (const char *)sqlite3_column_text(st, 0);
    const char *item = (const char *)sqlite3_column_text(st, 1);
    const char *snippet = (const char *)sqlite3_column_text(st, 2);
    char why[256] = "";
    json_error_t jerr;
    json_t *j = item ? json_loads(item, 0, &jerr) : json_object();
    sh_value *out = j ? jv_to_value(j, 1, why, sizeof why) : NULL;
    json_decref(j);
    if (!out || sh_sdk_host->value_type(out) != SH_TYPE_MAP) {
        sh_free(out);
        sqlite3_finalize(st);
        return sh_failf(call, "row %lld of '%s' has stored fields that are not a JSON object; index it again",
                        (long long)x->rowid, s->db_path);
    }
    char head[512];
    if (!snippet) {
        /* The opening words, cut at a word boundary. */
        size_t n = 0, words = 0, len = text ? strlen(text) : 0;
        while (n < len && words < (size_t)s->snippet_words) {
            while (n < len && text[n] == ' ')
                n++;
            while (n < len && text[n] != ' ')
                n++;
            words++;
        }
        if (n >= sizeof head - 4) {
            /* Back off to the start of a character: the host refuses a string cut inside one. */
            n = sizeof head - 4;
            while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
                n--;
        }
        snprintf(head, sizeof head, "%.*s%s", (int)n, text ? text : "", n < len ? "..." : "");
        snippet = head;
    }
    rc = sh_set_string(out, "query", query);
    if (rc == SH_OK)
        rc = sh_set_int(out, "rank", rank);
    if (rc == SH_OK)
        rc = sh_set_double(out, "score", x->score);
    if (rc == SH_OK && x->bm25_rank)
        rc = sh_set_double(out, "bm25", -x->bm25);
    if (rc == SH_OK && x->vector_rank)
        rc = sh_set_double(out, "similarity", x->similarity);
    if (rc == SH_OK)
        rc = sh_set_string(out, "snippet", snippet);
    if (rc == SH_OK)
        rc = sh_set_string(out, "text", text ? text : "");
    sqlite3_finalize(st);
    if (rc != SH_OK) {
        sh_free(out);
        return sh_failf(call, "out of memory building result %lld", (long long)rank);
    }
    if (sh_emit(call, out) != SH_OK)
        return sh_failf(call, "cannot emit result %lld: the host refused the output", (long long)rank);
    return SH_OK;
}

/* The query item's vector as doubles; fails naming the field when the mode needs it and it is missing. */
static int query_vector(sh_call *call, search_state *s, const sh_value *item, size_t i, double **out, size_t *n)
{
    const sh_value *v = item ? sh_get(item, s->vector_field) : NULL;
    size_t count = v && sh_sdk_host->value_type(v) == SH_TYPE_ARRAY ? sh_sdk_host->value_count(v) : 0;
    if (!count)
        return sh_failf(call, "query item %zu has no vector in '%s', which mode \"%s\" needs: put a core/embed stage "
                              "(field = \"%s\", with the dimensions used for the documents) before this one",
                        i + 1, s->vector_field, s->mode == MODE_VECTOR ? "vector" : "hybrid", s->query_field);
    double *d = malloc(count * sizeof *d);
    if (!d)
        return sh_failf(call, "out of memory");
    for (size_t k = 0; k < count; k++)
        d[k] = sh_sdk_host->value_double(sh_sdk_host->array_get(v, k));
    *out = d;
    *n = count;
    return SH_OK;
}

static int run_query(sh_call *call, search_state *s, const char *query, const sh_value *item, size_t i)
{
    char *match = NULL;
    if (s->mode != MODE_VECTOR) {
        match = s->fts5_syntax ? strdup(query) : words_query(query);
        if (!match)
            return sh_failf(call, "out of memory");
        if (!*match) {
            free(match);
            return sh_failf(call, "query %zu (\"%s\") has no words to search for", i + 1, query);
        }
    }
    hits h = {0};
    double *vec = NULL;
    size_t dims = 0;
    int rc = SH_OK;
    if (s->mode != MODE_BM25)
        rc = query_vector(call, s, item, i, &vec, &dims);
    if (rc == SH_OK && match)
        rc = rank_bm25(call, s, match, &h);
    if (rc == SH_OK && vec)
        rc = rank_vector(call, s, vec, dims, &h);
    for (size_t k = 0; rc == SH_OK && k < h.len; k++) {
        hit *x = &h.v[k];
        if (s->mode == MODE_BM25)
            x->score = -x->bm25;
        else if (s->mode == MODE_VECTOR)
            x->score = x->similarity;
        else
            x->score = (x->bm25_rank ? 1.0 / (double)(RRF_K + x->bm25_rank) : 0) +
                       (x->vector_rank ? 1.0 / (double)(RRF_K + x->vector_rank) : 0);
    }
    if (rc == SH_OK && h.len)
        qsort(h.v, h.len, sizeof *h.v, by_score);
    for (size_t k = 0; rc == SH_OK && k < h.len && (int64_t)k < s->limit; k++)
        rc = emit_hit(call, s, &h.v[k], (int64_t)k + 1, query, match);
    free(h.v);
    free(vec);
    free(match);
    return rc;
}

int search_process(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    search_state *s = user;
    if (!s->db) {
        int rc = db_open(call, s->db_path, 0, &s->db);
        if (rc != SH_OK)
            return rc;
    }
    if (s->query)
        return run_query(call, s, s->query, NULL, 0);
    if (count == 0)
        return sh_failf(call, "no query: set 'query' in the stage's config, or feed it items with a '%s' field",
                        s->query_field);
    for (size_t i = 0; i < count; i++) {
        const char *q = sh_get_string(items[i], s->query_field, NULL);
        if (!q)
            return sh_failf(call, "item %zu has no text field '%s' holding the query; name it with 'query_field', or "
                                  "set 'query' in the stage's config", i + 1, s->query_field);
        int rc = run_query(call, s, q, items[i], i);
        if (rc != SH_OK)
            return rc;
    }
    return SH_OK;
}
