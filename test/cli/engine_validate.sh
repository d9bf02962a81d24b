# Validation before anything runs: every problem at once, contracts, pipeline validate and graph.
. "$(dirname "$0")/engine_lib.sh"

# --- validation: every problem at once, nothing runs ---------------------------------------------------
mkdir -p "$T/v"
cat >"$T/v/bad.cfg" <<'P'
pipeline = { name = "bad"; stages = (
  { name = "a"; type = "read"; depends_on = (); },
  { name = "b"; type = "chnk"; depends_on = ("a"); },
  { name = "c"; type = "core/text.chunk"; depends_on = ("a", "ghost"); },
  { name = "d"; type = "passthrough"; depends_on = ("e"); },
  { name = "e"; type = "passthrough"; depends_on = ("d"); }
); };
P
run "$SH" run "$T/v/bad.cfg" --plugins-dir "$PLUGINS"
expect_rc 2 "an invalid graph is refused"
expect_in err "bad.cfg:4: stage 'c' depends on 'ghost', but no stage has that name" "unknown depends_on"
expect_in err "stages depend on each other in a cycle (each depends on the next): d -> e -> d" "cycle as a path"
expect_in err "bad.cfg:3: stage 'b': Stage type 'chnk' not found" "unresolvable type, with the factory's message"
[ ! -e "$T/v/.stagehost" ] || fail "an invalid pipeline created a run store"
cat >"$T/v/contract.cfg" <<'P'
pipeline = { name = "contract"; stages = (
  { name = "a"; type = "read"; },
  { name = "c1"; type = "core/text.chunk"; },
  { name = "c2"; type = "core/text.chunk"; depends_on = ("a",
                                                         "c1"); }
); };
P
run "$SH" pipeline validate "$T/v/contract.cfg" --plugins-dir "$PLUGINS"
expect_rc 2 "a contract mismatch with one of two upstream stages"
expect_in err "contract.cfg:5: stage 'c2': contract mismatch: it takes 'document' but upstream stage 'c1' emits 'chunk'" \
    "the mismatching edge, at its line in depends_on"
expect_not_in err "upstream stage 'a'" "the matching edge is not reported"
run "$SH" pipeline validate "$T/dag.cfg" $F
expect_rc 0 "pipeline validate of a valid pipeline"
expect_in out "pipeline 'dag' is valid: 4 stages, 4 dependencies" "validate says what it checked"
run "$SH" pipeline graph "$T/dag.cfg" $F
expect_rc 0 "pipeline graph"
expect_in out 'digraph "dag" {' "DOT header"
expect_in out '"src" -> "slow" [label="document"];' "edges carry the upstream contract"
expect_in out '"fast" -> "join"' "fan-in edge"
expect_in out 'source: test/faults 1.0.0 (sleep)' "nodes carry the resolved source"
if command -v dot >/dev/null; then
    "$SH" pipeline graph "$T/dag.cfg" $F | dot -Tsvg >/dev/null || fail "dot cannot read the graph"
fi

# A misspelt key of a built-in stage is found before anything runs, with every other problem.
pipeline "$T/typo.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; patern = "*.txt"; }; },
  { name = "w"; type = "write"; config = { path = "o.jsonl"; pretty = true; }; }'
run "$SH" pipeline validate "$T/typo.cfg"
expect_rc 2 "validate with misspelt built-in keys"
expect_in err "stage 'r': config: unknown key 'patern' (did you mean 'pattern'?) for the built-in 'read'" \
    "validate names the misspelt key and the one meant"
expect_in err "stage 'w': config: unknown key 'pretty' for the built-in 'write'" "every misspelt key at once"
finish
