# core/embed: the feature-hashing embedding is deterministic, unit length, of the configured dimension, puts
# texts that share words closer than texts that do not, and says clearly what is wrong with its input.
. "$(dirname "$0")/lib.sh"

cat >"$T/texts.jsonl" <<'JSON'
{"text": "Four score and seven years ago our fathers brought forth a new nation"}
{"text": "our fathers brought forth upon this continent a new nation, four score and seven years ago"}
{"text": "SQLite full text search ranks documents with bm25"}
{"text": "  ... !!! "}
{"text": "Four score and seven years ago our fathers brought forth a new nation"}
JSON
embed_run() { # OUT CONFIG
    pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"texts.jsonl\"; }; },
      { name = \"p\"; type = \"core/json.parse\"; },
      { name = \"e\"; type = \"embed\"; config = { $2 }; },
      { name = \"w\"; type = \"write\"; config = { path = \"$1\"; }; }"
    run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
}

embed_run a.jsonl ""
expect_rc 0 "embed with defaults"
embed_run b.jsonl ""
cmp -s "$T/a.jsonl" "$T/b.jsonl" || fail "two runs give different vectors"
python3 - "$T/a.jsonl" <<'PY' || fail "default embedding"
import json, math, sys
items = [json.loads(l) for l in open(sys.argv[1])]
v = [i["embedding"] for i in items]
assert all(len(x) == 256 for x in v), [len(x) for x in v]
dot = lambda a, b: sum(p * q for p, q in zip(a, b))
for x in (v[0], v[1], v[2]):
    assert abs(math.sqrt(dot(x, x)) - 1) < 1e-9, dot(x, x)
assert v[0] == v[4], "same text, different vectors"
assert all(c == 0 for c in v[3]), "a text without words is not the zero vector"
close, far = dot(v[0], v[1]), dot(v[0], v[2])
assert close > 0.5 and far < 0.2 and close > far, (close, far)
assert items[0]["text"].startswith("Four score"), "the input fields are not kept"
PY

embed_run c.jsonl 'dimensions = 32; output = "vec"; bigrams = false;'
expect_rc 0 "embed with 32 dimensions"
python3 - "$T/c.jsonl" <<'PY' || fail "configured embedding"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert all(len(i["vec"]) == 32 and "embedding" not in i for i in items), items[0]
PY

# Case: lowercase (default) maps "Four" and "four" together; lowercase = false does not.
printf '{"text": "Nation"}\n{"text": "nation"}\n' >"$T/texts.jsonl"
embed_run d.jsonl ''
embed_run e.jsonl 'lowercase = false;'
python3 - "$T/d.jsonl" "$T/e.jsonl" <<'PY' || fail "lowercase"
import json, sys
d = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
e = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert d[0] == d[1] and e[0] != e[1]
PY

# Input and configuration errors.
embed_run f.jsonl 'field = "body";'
expect_rc 1 "embed of a missing field"
expect_in err "item 1 has no text field 'body' to embed" "missing field message"
embed_run f.jsonl 'dimensions = 1;'
expect_rc 1 "embed with 1 dimension"
expect_in err "config: 'dimensions' must be from 2 to 65536, got 1" "dimensions range message"
embed_run f.jsonl 'dimensions = "many";'
expect_rc 1 "embed with a string for dimensions"
expect_in err "config: 'dimensions' must be an integer from 2 to 65536, got a string" "dimensions type message"

finish
