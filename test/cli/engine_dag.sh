# The pipeline engine's graphs: fan-out and fan-in, branches at once, output in declared order, --jobs,
# the summary and progress lines, and the example DAG.
. "$(dirname "$0")/engine_lib.sh"

# --- fan-out, fan-in, branches at once, order by declaration not by timing ---------------------------------
# $T/dag.cfg (engine_lib.sh): src feeds slow (700 ms) and fast (500 ms), which join feeds on.
run "$SH" run "$T/dag.cfg" $F
expect_rc 0 "DAG run"
python3 - "$T/out.jsonl" <<'PY' || fail "fan-in: upstream outputs are concatenated in declared order, branches ran at once"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
reports = [i for i in items if "start_ms" in i]
docs = [i for i in items if "path" in i]
# slow's output (2 docs + its report) comes before fast's, although fast finished first.
assert [i.get("stage") for i in items if "stage" in i] == ["slow", "fast"], items
assert len(items) == 6 and len(docs) == 4, items
assert items[2]["stage"] == "slow" and items[5]["stage"] == "fast", items
slow, fast = reports
assert slow["start_ms"] < fast["end_ms"] and fast["start_ms"] < slow["end_ms"], ("did not overlap", slow, fast)
PY
expect_in err "run " "summary names the run"
expect_in err "slow   succeeded" "summary row per stage"
expect_in err "test/faults 1.0.0" "summary shows the plugin source and version"
expect_in err "built-in" "summary shows built-in sources"
expect_not_in err $'\033[' "no progress escape codes when stderr is not a terminal"

# --jobs 1: the same result, one branch after the other, as the stages' own clocks say.
cp "$T/out.jsonl" "$T/jobs0.jsonl"
rm -f "$T/out.jsonl"
run "$SH" run "$T/dag.cfg" $F --jobs 1
expect_rc 0 "DAG run with --jobs 1"
python3 - "$T/out.jsonl" "$T/jobs0.jsonl" <<'PY' || fail "--jobs 1: the branches overlapped, or the output changed"
import json, sys
items, before = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
strip = lambda xs: [{k: v for k, v in i.items() if k not in ("start_ms", "end_ms")} for i in xs]
assert strip(items) == strip(before), (items, before)
slow, fast = [i for i in items if "start_ms" in i]
assert slow["end_ms"] <= fast["start_ms"] or fast["end_ms"] <= slow["start_ms"], ("overlapped", slow, fast)
PY

# --- progress on a terminal -------------------------------------------------------------------------------
script -qec "$SH run $T/dag.cfg $F" /dev/null >"$T/tty.txt" 2>&1
grep -q $'\033\[J' "$T/tty.txt" || fail "no live progress on a terminal"
grep -q 'attempt 1 ' "$T/tty.txt" || fail "progress lines show the attempt"
grep -q 'in 2 ' "$T/tty.txt" || fail "progress lines show the items in"

# --- the example DAG ------------------------------------------------------------------------------------
cp -r "${EXAMPLES:?}/." "$T/ex"
run "$SH" run "$T/ex/dag.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "examples/dag.cfg runs"
run "$SH" pipeline validate "$T/ex/dag.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "examples/dag.cfg validates"

finish
