# Resume: after SIGKILL (finished stages reused, the rest run, the same output), checks on the run resumed,
# a resume after a stage that emitted nothing, and refusing a run that is still running.
. "$(dirname "$0")/engine_lib.sh"

# wait_for_run PIPELINE EXPR: polls (for up to 15 s) the newest run of PIPELINE in its store until the Python
# expression EXPR holds over its `runs show --json` (as `d`), and prints its id; prints nothing if it never does.
wait_for_run() {
    local id _
    for _ in $(seq 300); do
        sleep 0.05
        "$SH" runs list "$1" --json >"$T/wl.json" 2>/dev/null || continue
        id=$(json "$T/wl.json" 'd[0]["id"] if d else ""')
        [ -n "$id" ] || continue
        "$SH" runs show "$id" "$1" --json >"$T/ws.json" 2>/dev/null || continue
        [ "$(json "$T/ws.json" "bool($2)")" = True ] && { echo "$id"; return; }
    done
}

# --- resume after SIGKILL -----------------------------------------------------------------------------------
mkdir -p "$T/r/docs" "$T/u/docs"
printf 'Original text. Two sentences.' >"$T/r/docs/a.txt"
cp "$T/r/docs/a.txt" "$T/u/docs/a.txt"
cat >"$T/r/p.cfg" <<'P'
pipeline = { name = "resumable"; stages = (
  { name = "a"; type = "read"; config = { path = "docs"; }; },
  { name = "b"; type = "test/faults.sleep"; config = { ms = 5000; report = false; }; },
  { name = "c"; type = "test/faults.echo"; },
  { name = "d"; type = "write"; config = { path = "out.jsonl"; }; }
); };
P
cp "$T/r/p.cfg" "$T/u/p.cfg"
"$SH" run "$T/u/p.cfg" $F >/dev/null 2>&1 || fail "uninterrupted run"
"$SH" run "$T/r/p.cfg" $F >/dev/null 2>"$T/killed.err" &
host=$!
rid=$(wait_for_run "$T/r/p.cfg" '[s["status"] for s in d["stage_list"]][:2] == ["succeeded", "running"]')
kill -KILL "$host"
wait "$host" 2>/dev/null
[ -n "$rid" ] || fail "resume: the run never showed up in the store with stage a done and b running"
run "$SH" runs list "$T/r/p.cfg" --json
[ "$(json "$T/out" 'd[0]["status"]')" = interrupted ] || fail "a killed run is listed as interrupted: $(cat "$T/out")"
[ ! -e "$T/r/out.jsonl" ] || fail "the killed run got to its last stage"
# Were stage a run again, it would read this instead of the original text.
printf 'Changed after the kill.' >"$T/r/docs/a.txt"
run "$SH" run "$T/r/p.cfg" $F --resume "${rid:0:10}" --json
expect_rc 0 "resume"
cmp -s "$T/r/out.jsonl" "$T/u/out.jsonl" || fail "the resumed run's output differs from an uninterrupted run's"
python3 - "$T/out" "$rid" <<'PY' || fail "resume: finished stages were reused, the rest ran"
import json, sys
d = json.load(open(sys.argv[1]))
st = {s["name"]: s for s in d["stages"]}
assert d["run_id"] == sys.argv[2] and d["status"] == "succeeded", d
assert st["a"]["status"] == "reused" and st["a"]["attempts"] == 1, st
assert st["b"]["status"] == "succeeded" and st["b"]["attempts"] == 2, st
assert st["c"]["status"] == "succeeded" and st["d"]["status"] == "succeeded", st
PY
run "$SH" runs show "$rid" "$T/r/p.cfg" --json
[ "$(json "$T/out" 'd["status"], d["resumes"]')" = "('succeeded', 1)" ] || fail "runs show after resume: $(cat "$T/out")"
run "$SH" run "$T/dag.cfg" $F --resume "${rid:0:10}" --store "$T/r/.stagehost/runs.db"
expect_rc 2 "resuming a run with another pipeline"
expect_in err "that run is of pipeline 'resumable', not 'dag'" "resume checks the pipeline"
run "$SH" run "$T/r/p.cfg" $F --resume 12
expect_rc 2 "a malformed run id"
expect_in err "'12' is not a run id" "malformed run id message"

# --- a resume after a stage that emitted nothing; a run still running -----------------------------------
mkdir -p "$T/e/empty"
pipeline "$T/e/p.cfg" '{ name = "a"; type = "read"; config = { path = "empty"; }; },
  { name = "b"; type = "test/faults.flaky"; config = { fail_times = 1; }; },
  { name = "c"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/e/p.cfg" $F --json
expect_rc 1 "a stage fails after one that emitted nothing"
eid=$(json "$T/out" 'd["run_id"]')
run "$SH" run "$T/e/p.cfg" $F --resume "$eid" --json
expect_rc 0 "resume after the failure"
[ "$(json "$T/out" '[(s["name"], s["status"], s["attempts"]) for s in d["stages"]]')" = \
  "[('a', 'reused', 1), ('b', 'succeeded', 2), ('c', 'succeeded', 1)]" ] || fail "resume: an empty output is reused too: $(cat "$T/out")"

pipeline "$T/e/long.cfg" '{ name = "s"; type = "test/faults.sleep"; config = { ms = 20000; }; }'
"$SH" run "$T/e/long.cfg" $F >/dev/null 2>&1 &
long=$!
lid=$(wait_for_run "$T/e/long.cfg" 'd["status"] == "running"')
[ -n "$lid" ] || fail "the long run never showed up in the store as running"
run "$SH" run "$T/e/long.cfg" $F --resume "$lid"
expect_rc 2 "resuming a run that is still running"
expect_in err "is still running in process $long" "the running process is named"
kill -KILL "$long"
wait "$long" 2>/dev/null

finish
