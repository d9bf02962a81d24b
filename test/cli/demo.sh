# The search demo as scripts/demo runs it (examples/ingest.cfg, then examples/search.cfg), on a copy of the
# examples: the index is built from every text, running ingest twice does not double it, and each query's best
# result comes from the text that answers it, with ranks, scores and highlighted snippets.
. "$(dirname "$0")/lib.sh"

cp -r "$EXAMPLES" "$T/examples"
rm -f "$T/examples/out/"*.db "$T/examples/out/"*.jsonl
run "$SH" run "$T/examples/ingest.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "ingest"
run "$SH" run "$T/examples/ingest.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "ingest again"
run "$SH" run "$T/examples/search.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "search"
python3 - "$T/examples" <<'PY' || fail "demo results"
import json, os, sqlite3, sys
ex = sys.argv[1]
db = sqlite3.connect(os.path.join(ex, "out/index.db"))
paths = sorted({json.loads(i)["path"] for (i,) in db.execute("SELECT item FROM chunks")})
texts = sorted("docs/" + f for f in os.listdir(os.path.join(ex, "docs")) if f.endswith(".txt")) + \
        sorted("library/" + f for f in os.listdir(os.path.join(ex, "library")) if f.endswith(".txt"))
assert paths == sorted(texts), paths
rows = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
assert rows == len(set(r for (r,) in db.execute("SELECT text FROM chunks"))), "ingest twice doubled the index"

results = [json.loads(l) for l in open(os.path.join(ex, "out/results.jsonl"))]
queries = [json.loads(l)["query"] for l in open(os.path.join(ex, "queries.jsonl"))]
assert len(results) == 3 * len(queries), len(results)
best = {r["query"]: r for r in results if r["rank"] == 1}
expected = {
    "government of the people, by the people, for the people": "docs/gettysburg.txt",
    "freedom of speech and of the press": "library/bill-of-rights.txt",
    "with malice toward none, with charity for all": "library/second-inaugural.txt",
    "the right to a speedy trial by an impartial jury": "library/bill-of-rights.txt",
}
for q, path in expected.items():
    assert best[q]["path"] == path, (q, best[q])
assert "[malice] [toward] [none]" in best["with malice toward none, with charity for all"]["snippet"], best
for q in queries:
    ranked = [r for r in results if r["query"] == q]
    assert [r["rank"] for r in ranked] == [1, 2, 3], ranked
    assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"] > 0, ranked
    assert all({"query", "rank", "score", "similarity", "path", "index", "snippet"} <= set(r) for r in ranked), ranked
PY

finish
