# The run store: runs list and show (by id prefix, as text and JSON), --store, a missing or corrupt store,
# and the --json report.
. "$(dirname "$0")/engine_lib.sh"

# --- the run store ----------------------------------------------------------------------------------------
# Two runs of $T/dag.cfg to list and show.
for n in 1 2; do
    run "$SH" run "$T/dag.cfg" $F
    expect_rc 0 "DAG run $n"
done
run "$SH" runs list "$T/dag.cfg" --json
expect_rc 0 "runs list"
cp "$T/out" "$T/list.json"
[ "$(json "$T/list.json" 'len(d)')" = 2 ] || fail "runs list: expected 2 runs"
[ "$(json "$T/list.json" 'd[0]["status"], d[0]["pipeline"], d[0]["version"], d[0]["stages_done"]')" = \
  "('succeeded', 'dag', '1.2', 4)" ] || fail "runs list: $(cat "$T/list.json")"
id=$(json "$T/list.json" 'd[1]["id"]')
run "$SH" runs show "${id:0:8}" --store "$T/.stagehost/runs.db" --json
expect_rc 0 "runs show by prefix"
cp "$T/out" "$T/show.json"
python3 - "$T/show.json" <<'PY' || fail "runs show: stages, attempts with metrics, log lines"
import json, sys
d = json.load(open(sys.argv[1]))
st = {s["name"]: s for s in d["stage_list"]}
assert [s["name"] for s in d["stage_list"]] == ["src", "slow", "fast", "join"], d
assert all(s["status"] == "succeeded" and s["attempts"] == 1 for s in st.values()), st
assert st["join"]["items_in"] == 6 and st["join"]["items_out"] == 6, st
assert st["slow"]["source"] == "test/faults 1.0.0" and st["src"]["source"] == "built-in", st
a = [x for x in d["attempts"] if x["stage"] == "slow"]
assert len(a) == 1 and a[0]["status"] == "succeeded" and a[0]["finished_ns"] - a[0]["started_ns"] >= 700e6, a
assert any(l["stage"] == "slow" and l["message"] == "sleeping 700 ms" for l in d["logs"]), d["logs"]
PY
run "$SH" runs show "$id" "$T/dag.cfg"
expect_rc 0 "runs show as text"
expect_in out "sleeping 700 ms" "runs show prints the plugins' log lines"
expect_in out "status    succeeded" "runs show prints the run's status"
run "$SH" runs show ffff "$T/dag.cfg"
expect_rc 2 "runs show of an unknown id"
expect_in err "no run 'ffff' in run store" "unknown run id message"
run "$SH" runs list --store "$T/nowhere.db"
expect_rc 2 "runs list of a missing store"
expect_in err "does not exist" "missing store message"
[ ! -e "$T/nowhere.db" ] || fail "runs list created a store"
run "$SH" run "$T/dag.cfg" $F --store "$T/other/runs.db" --json
expect_rc 0 "--store PATH"
[ -f "$T/other/runs.db" ] || fail "--store: the store was not created where asked"
python3 - "$T/out" <<'PY' || fail "--json: the machine-readable report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "succeeded" and d["pipeline"] == "dag" and len(d["run_id"]) == 32, d
assert [(s["name"], s["status"], s["attempts"]) for s in d["stages"]] == \
    [("src", "succeeded", 1), ("slow", "succeeded", 1), ("fast", "succeeded", 1), ("join", "succeeded", 1)], d
assert d["stages"][3]["items_out"] == 6 and d["stages"][1]["source"] == "test/faults 1.0.0", d
PY

# --- a store that is not one is refused with the file named, and the run does not start ---------------------
mkdir -p "$T/junk/.stagehost"
printf 'not a database at all, just some text that is long enough' >"$T/junk/.stagehost/runs.db"
cp "$T/dag.cfg" "$T/junk/p.cfg"
run "$SH" run "$T/junk/p.cfg" $F
expect_rc 2 "a corrupt run store"
expect_in err "run store $T/junk/.stagehost/runs.db" "the store's path in the error"

finish
