# core/sqlite: index writes items into an FTS5 table (relative to the pipeline, replace vs append, one
# transaction per batch) and search gives ranked results (bm25, vector, hybrid) with scores and snippets;
# errors name the database and what to do; confined with a declared and granted write path it works too.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/work/docs"
cat >"$T/work/docs/items.jsonl" <<'JSON'
{"id": "a", "text": "The quick brown fox jumps over the lazy dog."}
{"id": "b", "text": "A fox and a dog became friends; the fox was quick to trust."}
{"id": "c", "text": "SQLite is a small, fast, self-contained SQL database engine."}
{"id": "d", "text": "Full-text search in SQLite uses the FTS5 extension and bm25 ranking."}
JSON
cat >"$T/work/ingest.cfg" <<'CFG'
pipeline = { name = "ingest"; stages = (
  { name = "r"; type = "read"; config = { path = "docs/items.jsonl"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "e"; type = "embed"; config = { dimensions = 64; }; },
  { name = "i"; type = "index"; config = { db = "out/index.db"; table = "notes"; mode = "replace"; }; }
); };
CFG
run "$SH" run "$T/work/ingest.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "index"
[ -f "$T/work/out/index.db" ] || fail "the database is not relative to the pipeline's directory"
run "$SH" run "$T/work/ingest.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "index again (replace)"
[ "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM notes").fetchone()[0])' "$T/work/out/index.db")" = 4 ] ||
    fail "mode = replace indexed the items twice"

search() { # CONFIG (inside the search stage's config group)
    pipeline "$T/work/search.cfg" "{ name = \"s\"; type = \"search\"; config = { db = \"out/index.db\"; table = \"notes\"; $1 }; },
      { name = \"w\"; type = \"write\"; config = { path = \"results.jsonl\"; }; }"
    run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
}

# bm25: the two fox documents, best first, with scores, snippets and the stored fields.
search 'query = "quick fox"; limit = 5;'
expect_rc 0 "search bm25"
python3 - "$T/work/results.jsonl" <<'PY' || fail "bm25 results"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["id"] for x in r] in (["a", "b"], ["b", "a"]), r
assert [x["rank"] for x in r] == [1, 2] and r[0]["score"] >= r[1]["score"] > 0, r
assert all(x["query"] == "quick fox" and "[fox]" in x["snippet"].lower() for x in r), r
assert r[0]["text"] in ("The quick brown fox jumps over the lazy dog.",
                        "A fox and a dog became friends; the fox was quick to trust."), r[0]
assert "embedding" not in r[0], "the stored vector leaked into results"
PY
# Punctuation in a free-text query is harmless; FTS5 syntax is available on request.
search 'query = "SQLite: bm25?"; limit = 1;'
expect_rc 0 "search with punctuation"
grep -qF '"id":"d"' "$T/work/results.jsonl" || fail "bm25 best hit for 'SQLite: bm25?': $(cat "$T/work/results.jsonl")"
search 'query = "fox NOT lazy"; syntax = "fts5";'
expect_rc 0 "search with FTS5 syntax"
[ "$(grep -c '"id"' "$T/work/results.jsonl")" = 1 ] && grep -qF '"id":"b"' "$T/work/results.jsonl" ||
    fail "FTS5 query 'fox NOT lazy': $(cat "$T/work/results.jsonl")"
search 'query = "fox AND (";  syntax = "fts5";'
expect_rc 1 "search with a broken FTS5 query"
expect_in err "the FTS5 query \"fox AND (\" failed:" "broken FTS5 query message"

# A free-text query of many one-letter words: its FTS5 form is longer than three bytes per input byte, and must
# still fit (an undersized buffer here crashed the host, where core/sqlite runs).
search 'query = "a b c d e f g h i j k l m n o p q r s t u v w x y z fox"; limit = 1;'
expect_rc 0 "search with many short words"
grep -qF '"rank":1' "$T/work/results.jsonl" || fail "many short words: $(cat "$T/work/results.jsonl")"

# Queries from items, embedded, for vector and hybrid ranking.
printf '{"query": "the lazy dog and the quick fox"}\n{"query": "SQL database engine"}\n' >"$T/work/queries.jsonl"
for mode in vector hybrid; do
    pipeline "$T/work/search.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"queries.jsonl\"; }; },
      { name = \"p\"; type = \"core/json.parse\"; },
      { name = \"e\"; type = \"embed\"; config = { field = \"query\"; dimensions = 64; }; },
      { name = \"s\"; type = \"search\"; config = { db = \"out/index.db\"; table = \"notes\"; mode = \"$mode\"; limit = 2; }; },
      { name = \"w\"; type = \"write\"; config = { path = \"results.jsonl\"; }; }"
    run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
    expect_rc 0 "search $mode"
    python3 - "$T/work/results.jsonl" "$mode" <<'PY' || fail "$mode results"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 4, r
first = [x for x in r if x["rank"] == 1]
assert [x["id"] for x in first] == ["a", "c"], first
assert all("similarity" in x for x in first), first
if sys.argv[2] == "vector":
    assert all(abs(x["score"] - x["similarity"]) < 1e-12 for x in r), r
PY
done

# A result found only by its vector gets its opening words as the snippet: cut at a character, never inside
# one, even for text without spaces (600 bytes of 3-byte characters).
mkdir -p "$T/work/cjk"
python3 -c 'import json; print(json.dumps({"id": "k", "text": "\u65e5" * 200}))' >"$T/work/cjk/items.jsonl"
printf '{"query": "\346\227\245"}\n' >"$T/work/cjk/queries.jsonl"
sed -e 's|docs/items.jsonl|cjk/items.jsonl|' -e 's|out/index.db|out/cjk.db|' "$T/work/ingest.cfg" >"$T/work/cjk.cfg"
run "$SH" run "$T/work/cjk.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "index text without spaces"
pipeline "$T/work/search.cfg" '{ name = "r"; type = "read"; config = { path = "cjk/queries.jsonl"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "e"; type = "embed"; config = { field = "query"; dimensions = 64; }; },
  { name = "s"; type = "search"; config = { db = "out/cjk.db"; table = "notes"; mode = "vector"; }; },
  { name = "w"; type = "write"; config = { path = "results.jsonl"; }; }'
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "vector search of text without spaces"
python3 - "$T/work/results.jsonl" <<'PY' || fail "snippet of text without spaces"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["id"] == "k", r
s = r[0]["snippet"]
assert s.endswith("...") and set(s[:-3]) == {"\u65e5"} and 100 < len(s) - 3 < 200, s
PY

# Mistakes: a missing database, a missing query vector, a missing db key.
pipeline "$T/work/search.cfg" '{ name = "s"; type = "search"; config = { db = "out/none.db"; query = "fox"; }; }'
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "search of a missing database"
expect_in err "cannot open the index 'out/none.db'" "missing database message"
expect_in err "run the pipeline that builds it" "missing database advice"
pipeline "$T/work/search.cfg" '{ name = "s"; type = "search"; config = { db = "out/index.db"; query = "fox"; mode = "hybrid"; }; }'
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "hybrid search with a config query"
expect_in err "mode \"hybrid\" needs the query's vector" "hybrid without vector message"
pipeline "$T/work/search.cfg" '{ name = "i"; type = "index"; config = { table = "notes"; }; }'
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "index without db"
expect_in err "config: 'db' is required" "index without db message"
pipeline "$T/work/search.cfg" '{ name = "i"; type = "index"; config = { db = "x.db"; table = "no-tables; DROP"; }; }'
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "index with a table name that is not an identifier"
expect_in err "config: 'table' must be a name of letters, digits and '_'" "table name message"
pipeline "$T/work/search.cfg" "{ name = \"i\"; type = \"index\"; config = { db = \"x.db\"; table = \"$(printf 't%.0s' $(seq 200))\"; }; }"
run "$SH" run "$T/work/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "index with a table name too long for its SQL"
expect_in err "config: 'table' must be at most 64 characters, got 200" "long table name message"

# Confined: a copy of the descriptor that runs in a worker and declares the index directory; without the grant
# it is refused, with it the worker writes there (and nowhere else: another path fails with a hint).
mkdir -p "$T/confined" "$T/work/granted"
# Workers of a host running as root run as an unprivileged user: the granted directory must be theirs to write.
chmod 777 "$T/work/granted"
ln -s "$PLUGINS/libcore_sqlite.so" "$T/confined/libcore_sqlite.so"
sed -e 's/^isolation = "none";/isolation = "process";/' \
    -e "s|^stages = (|permissions = { write = ( \"$T/work/granted\" ); };\nstages = (|" \
    "$PLUGINS/core_sqlite.plugin" >"$T/confined/core_sqlite.plugin"
for p in core_json core_embed; do
    ln -s "$PLUGINS/lib$p.so" "$T/confined/lib$p.so"
    cp "$PLUGINS/$p.plugin" "$T/confined/"
done
sed -i 's|db = "out/index.db"|db = "granted/index.db"|' "$T/work/ingest.cfg"
run "$SH" run "$T/work/ingest.cfg" --plugins-dir "$T/confined"
expect_rc 2 "confined index without the write grant"
expect_in err "--grant core/sqlite:write=$T/work/granted" "refusal says how to grant the write"
run "$SH" run "$T/work/ingest.cfg" --plugins-dir "$T/confined" --grant "core/sqlite:write=$T/work/granted"
expect_rc 0 "confined index with the write grant"
[ -f "$T/work/granted/index.db" ] || fail "the confined index did not write the granted path"
sed -i 's|db = "granted/index.db"|db = "out/elsewhere.db"|' "$T/work/ingest.cfg"
run "$SH" run "$T/work/ingest.cfg" --plugins-dir "$T/confined" --grant "core/sqlite:write=$T/work/granted"
expect_rc 1 "confined index outside its grant"
expect_in err "SQLite database 'out/elsewhere.db' failed" "outside-the-grant failure names the database"
expect_in err "permissions.write" "outside-the-grant failure says what to do"
[ ! -e "$T/work/out/elsewhere.db" ] || fail "the confined worker wrote outside its grant"

finish
