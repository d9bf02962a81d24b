# core/json: parse (JSON value, array, JSON Lines, auto, into/keep, $bytes), serialize, select, rename, and the
# errors each gives (which item, which line, what to do).
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/in"
printf '[{"id": 1, "name": "ada", "tags": ["x", "y"]}, {"id": 2, "name": "bob", "score": 2.5, "ok": null}]' \
    >"$T/in/a.json"
printf '{"id": 3, "name": "cy"}\n\n{"id": 4, "name": "dee", "nested": {"k": true}}\n' >"$T/in/b.jsonl"

# auto: one file is a JSON array, the other JSON Lines; keep copies the source path into each item.
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in"; }; },
  { name = "p"; type = "core/json.parse"; config = { keep = ( "path" ); }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "parse JSON and JSON Lines"
python3 - "$T/out.jsonl" <<'PY' || fail "parse output"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert [i["id"] for i in items] == [1, 2, 3, 4], items
assert items[0] == {"id": 1, "name": "ada", "tags": ["x", "y"], "path": "in/a.json"}, items[0]
assert items[1]["score"] == 2.5 and items[1]["ok"] is None, items[1]
assert items[3]["nested"] == {"k": True} and items[3]["path"] == "in/b.jsonl", items[3]
# keys keep the order of the JSON text
assert list(items[1]) == ["id", "name", "score", "ok", "path"], list(items[1])
PY

# format = "json" with explode = false keeps the array as one value; scalars become {value: ...}; into keeps
# the input item.
printf '[1, 2, 3]' >"$T/arr.json"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "arr.json"; }; },
  { name = "p"; type = "core/json.parse"; config = { format = "json"; explode = false; into = "data"; }; },
  { name = "q"; type = "core/json.parse"; config = { field = "path"; format = "lines"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "parsing a path as JSON Lines"
expect_in err "cannot parse field 'path' of item 1 (arr.json) as JSON Lines: line 1, column" "lines error names item and line"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "arr.json"; }; },
  { name = "p"; type = "core/json.parse"; config = { format = "json"; explode = false; into = "data"; }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "parse into a field"
grep -qF '"path":"arr.json","content":"[1, 2, 3]","data":[1,2,3]' "$T/out.jsonl" || fail "into: $(cat "$T/out.jsonl")"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "arr.json"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "parse an array of scalars"
[ "$(cat "$T/out.jsonl")" = $'{"value":1}\n{"value":2}\n{"value":3}' ] || fail "scalars: $(cat "$T/out.jsonl")"

# Round trip: what the built-in write wrote (bytes as {"$bytes": ...}) parses back to the same items.
printf '\377\000\001' >"$T/in/bin.dat"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/bin.dat"; }; },
  { name = "w"; type = "write"; config = { path = "first.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "first.jsonl"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "w"; type = "write"; config = { path = "second.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "parse what write wrote"
cmp -s "$T/first.jsonl" "$T/second.jsonl" || fail "bytes do not survive write -> parse: $(cat "$T/second.jsonl")"

# Bad JSON: the item, its path, the line and column, and both readings in auto mode.
printf '{"a": 1}\n{"b": }\n' >"$T/in/bad.jsonl"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/bad.jsonl"; }; },
  { name = "p"; type = "core/json.parse"; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "bad JSON"
expect_in err "cannot parse field 'content' of item 1 (in/bad.jsonl): as one JSON value, line 2" "auto error: JSON reading"
expect_in err "as JSON Lines, line 2, column" "auto error: JSON Lines reading"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/a.json"; }; },
  { name = "p"; type = "core/json.parse"; config = { field = "body"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "missing text field"
expect_in err "item 1 (in/a.json) has no text field 'body' to parse" "missing field message"

# serialize, select, rename together.
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/a.json"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "n"; type = "rename"; config = { fields = { name = "who"; id = "name"; }; }; },
  { name = "s"; type = "serialize"; config = { source = "tags"; field = "tags_json"; }; },
  { name = "t"; type = "serialize"; config = { sort_keys = true; }; },
  { name = "k"; type = "select"; config = { fields = ( "who", "name", "json", "missing" ); missing = "null"; }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "serialize of a missing source field"
expect_in err "item 2 has no field 'tags' to serialize" "serialize source message"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/a.json"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "n"; type = "rename"; config = { fields = { name = "who"; id = "name"; }; }; },
  { name = "t"; type = "serialize"; config = { sort_keys = true; }; },
  { name = "k"; type = "select"; config = { fields = ( "who", "name", "json", "missing" ); missing = "null"; }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "rename, serialize, select"
python3 - "$T/out.jsonl" <<'PY' || fail "rename/serialize/select output"
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
assert list(a) == ["who", "name", "json", "missing"] and a["missing"] is None, a
assert a["who"] == "ada" and a["name"] == 1, a
assert a["json"] == '{"name":1,"tags":["x","y"],"who":"ada"}', a["json"]
assert json.loads(b["json"]) == {"name": 2, "who": "bob", "score": 2.5, "ok": None}, b
PY

# Configuration errors name the key and what it must be.
pipeline "$T/p.cfg" '{ name = "k"; type = "select"; config = { fields = "id"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "select with a string for fields"
expect_in err "config: 'fields' must be a list of strings" "select fields message"
pipeline "$T/p.cfg" '{ name = "n"; type = "rename"; config = { field = { a = "b"; }; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "rename with a typo"
expect_in err "config: unknown key 'field'; this stage type knows: fields, missing" "rename unknown key"
pipeline "$T/p.cfg" '{ name = "p"; type = "core/json.parse"; config = { format = "yaml"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "parse with an unknown format"
expect_in err "config: 'format' must be one of \"auto\", \"json\", \"lines\", got \"yaml\"" "format message"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/a.json"; }; },
  { name = "p"; type = "core/json.parse"; },
  { name = "k"; type = "select"; config = { fields = ( "score" ); missing = "fail"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 1 "select of a missing field with missing = fail"
expect_in err "item 1 has no field 'score'; set missing = \"skip\" or \"null\"" "select missing message"

finish
