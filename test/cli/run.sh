# Running pipelines: the demo end to end, the built-in stages, and configuration errors with file:line.
. "$(dirname "$0")/lib.sh"

# The demo, as the README runs it, on a copy so the test never writes into the source tree.
cp -r "$EXAMPLES" "$T/examples"
rm -f "$T/examples/out/chunks.jsonl"
run "$SH" run "$T/examples/demo.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "the demo pipeline"
python3 - "$T/examples/out/chunks.jsonl" <<'PY' || fail "demo output"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert len(items) >= 4, len(items)
paths = sorted({i["path"] for i in items})
assert paths == ["docs/declaration.txt", "docs/gettysburg.txt"], paths
for i in items:
    assert len(i["text"]) <= 400 and i["characters"] == len(i["text"]), i
    assert i["words"] == len(i["text"].split()), i
    assert "  " not in i["text"] and "\n" not in i["text"], i
PY

# Built-ins alone: read a directory (sorted, recursive, pattern), bytes survive, chunk with overlap.
mkdir -p "$T/in/sub"
printf 'abcdefghij' >"$T/in/b.txt"
printf 'second' >"$T/in/sub/a.txt"
printf '\377\000\001' >"$T/in/bin.dat"
printf 'skip me' >"$T/in/c.md"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in"; pattern = "*.txt"; }; },
  { name = "c"; type = "chunk"; config = { size = 4; overlap = 1; }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg"
expect_rc 0 "built-in read/chunk/write"
python3 - "$T/out.jsonl" <<'PY' || fail "built-in chunk output"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
texts = [(i["path"], i["index"], i["text"]) for i in items]
assert texts == [("in/b.txt", 0, "abcd"), ("in/b.txt", 1, "defg"), ("in/b.txt", 2, "ghij"),
                 ("in/sub/a.txt", 0, "seco"), ("in/sub/a.txt", 1, "ondx"[:3] + "")][:4] + texts[4:], texts
assert texts[4] == ("in/sub/a.txt", 1, "ond"), texts
PY
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in/bin.dat"; }; },
  { name = "w"; type = "write"; config = { path = "bin.jsonl"; }; }'
run "$SH" run "$T/p.cfg"
expect_rc 0 "read a binary file"
grep -qF '"content":{"$bytes":"/wAB"}' "$T/bin.jsonl" || fail "binary content is not kept as bytes"

# Stage failures from built-ins name the stage and pipeline line, and exit 1.
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "nowhere"; }; }'
run "$SH" run "$T/p.cfg"
expect_rc 1 "read of a missing path"
expect_in err "$T/p.cfg:1: stage 'r' (built-in 'read') failed on attempt 1: cannot read 'nowhere'" "missing path message"

# Configuration errors: file:line, exit 2, nothing runs.
printf 'pipeline = {\n  name = "t";\n  stages = (\n    { name = "a"; type = "read"; },\n    { name = "a"; type = "write"; }\n  );\n};\n' >"$T/dup.cfg"
run "$SH" run "$T/dup.cfg"
expect_rc 2 "duplicate stage names"
expect_in err "$T/dup.cfg:5: stage name 'a' is used twice (first at line 4)" "duplicate names message"
printf 'pipeline = { name = "t"; stages = ( { name = "a"; typo = "read"; } ); };\n' >"$T/typo.cfg"
run "$SH" run "$T/typo.cfg"
expect_rc 2 "unknown key"
expect_in err "unknown key 'typo' in a stage (did you mean 'type'?)" "unknown key suggests"
printf 'pipeline = { name = "t"; stages = ( { name = = "a"; } ); };\n' >"$T/syntax.cfg"
run "$SH" run "$T/syntax.cfg"
expect_rc 2 "syntax error"
expect_in err "$T/syntax.cfg:1: syntax error" "syntax error with file:line"

# Contracts between neighbours are checked before anything runs.
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "in"; }; },
  { name = "c1"; type = "chunk"; }, { name = "c2"; type = "chunk"; }'
run "$SH" run "$T/p.cfg"
expect_rc 2 "contract mismatch"
expect_in err "stage 'c2': contract mismatch: it takes 'document' but upstream stage 'c1' emits 'chunk'" \
    "contract mismatch message"

finish
