/*
 * core/sqlite: a full-text (and vector) index in an SQLite file, with FTS5.
 *
 *   index   write items into an FTS5 table (text indexed; other fields and an embedding stored) and pass them on
 *   search  rank what the index holds for a query: bm25, vector cosine, or both fused
 *
 * Paths are relative to the pipeline's directory, as the built-in read and write stages resolve theirs.
 */
#include "core_sqlite.h"

static const sh_sdk_stage stages[] = {
    {.type = "index", .input = "any", .output = "any",
     .description = "write items into an SQLite FTS5 table: db, table, field, vector_field, mode",
     .create = index_create, .process = index_process, .destroy = index_destroy},
    {.type = "search", .input = "any", .output = "any",
     .description = "ranked results from an index: db, table, query or query_field, mode, limit, syntax",
     .create = search_create, .process = search_process, .destroy = search_destroy},
};

SH_SDK_PLUGIN(.name = "core/sqlite", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
