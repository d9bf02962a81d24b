# The factory: qualified and bare types, plugins before built-ins, exact errors before anything runs.
. "$(dirname "$0")/lib.sh"

run "$SH" resolve chunk --plugins-dir "$PLUGINS"
expect_rc 0 "bare chunk with core/text"
expect_in out "chunk: plugin core/text 1.0.0, action chunk" "bare chunk resolves to core/text"
run "$SH" resolve chunk
expect_rc 0 "bare chunk without plugins"
expect_in out "chunk: built-in chunk" "bare chunk falls back to the built-in"
run "$SH" resolve core/text.normalize -v --plugins-dir "$PLUGINS"
expect_rc 0 "qualified type"
expect_in out "resolved by qualified type: plugin core/text 1.0.0" "-v shows the resolution path"

run "$SH" resolve unknown/nonexistent.x --plugins-dir "$PLUGINS"
expect_rc 2 "unknown plugin"
expect_in err "Plugin not found: unknown/nonexistent" "unknown plugin message"
run "$SH" resolve core/text.nonexistent --plugins-dir "$PLUGINS"
expect_rc 2 "unknown action"
expect_in err "Action 'nonexistent' not found in plugin 'core/text'" "unknown action message"
run "$SH" resolve chnk --plugins-dir "$PLUGINS"
expect_rc 2 "unknown bare type"
expect_in err "Stage type 'chnk' not found: no plugin and no built-in provides it" "unknown bare type message"
expect_in err "Closest known types: chunk" "closest types are listed"
expect_in err "core/text.chunk" "closest types include the qualified form"

# In a pipeline: -v prints each stage's source; with and without the plugin directory.
mkdir -p "$T/docs"
printf 'One sentence here. Another one there. And a third.\n' >"$T/docs/a.txt"
pipeline "$T/p.cfg" '{ name = "read"; type = "read"; config = { path = "docs"; }; },
  { name = "split"; type = "chunk"; config = { size = 20; }; },
  { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" -v --plugins-dir "$PLUGINS"
expect_rc 0 "run with core/text"
expect_in err "stage 'split' (type 'chunk') resolved by bare type: plugin core/text 1.0.0" "-v: chunk from core/text"
expect_in err "stage 'read' (type 'read') resolved by bare type: built-in" "-v: read is built-in"
# Sentence-aware: every chunk ends a sentence.
python3 - "$T/out.jsonl" <<'PY' || fail "core/text chunks are not whole sentences"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["text"] for l in lines] == ["One sentence here.", "Another one there.", "And a third."], lines
PY
run "$SH" run "$T/p.cfg" -v
expect_rc 0 "run without core/text"
expect_in err "stage 'split' (type 'chunk') resolved by bare type: built-in" "-v: chunk from the built-in"
python3 - "$T/out.jsonl" <<'PY' || fail "built-in chunks are not fixed windows of 20"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["text"] == "One sentence here. A", lines
assert all(len(l["text"]) <= 20 for l in lines)
PY

# Resolution errors stop everything before any stage runs, all at once, with file:line; exit 2.
rm -f "$T/out.jsonl"
pipeline "$T/bad.cfg" '{ name = "out"; type = "write"; config = { path = "out.jsonl"; }; },
  { name = "x"; type = "unknown/nonexistent.go"; },
  { name = "y"; type = "chnk"; }'
run "$SH" run "$T/bad.cfg" --plugins-dir "$PLUGINS"
expect_rc 2 "unresolvable stages"
expect_in err "$T/bad.cfg:2: stage 'x': Plugin not found: unknown/nonexistent" "first error with file:line"
expect_in err "stage 'y': Stage type 'chnk' not found" "second error reported too"
[ ! -e "$T/out.jsonl" ] || fail "a stage ran although validation failed"

# Two plugins providing the same bare type with equal priority: a conflict naming both.
link_lib "$T/conflict" libmarker.so
for n in one two; do
    printf 'format = 1; name = "test/%s"; version = "1.0.0"; library = "libmarker.so"; abi = "1.0"; stages = ( { type = "mark"; } );\n' \
        "$n" >"$T/conflict/$n.plugin"
done
run "$SH" resolve mark --plugins-dir "$T/conflict"
expect_rc 2 "conflict"
expect_in err "provided by two plugins of priority 0: 'test/one'" "conflict names the first"
expect_in err "'test/two'" "conflict names the second"
sed -i 's/abi = "1.0";/abi = "1.0"; priority = 5;/' "$T/conflict/two.plugin"
run "$SH" resolve mark --plugins-dir "$T/conflict"
expect_rc 0 "priority decides"
expect_in out "plugin test/two" "the higher priority wins"

finish
