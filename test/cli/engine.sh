# The pipeline engine, driven through the real binary with real plugins: graphs with fan-out and fan-in,
# branches at once, deterministic output order, retries, on_failure, gates, the run store, resume after SIGKILL,
# the output cache, progress and the JSON report.
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"
F="--plugins-dir $T/faults"
mkdir -p "$T/docs"
printf 'First document. It has two sentences.' >"$T/docs/a.txt"
printf 'Second document.' >"$T/docs/b.txt"

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as `d`) and prints it.
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# --- fan-out, fan-in, branches at once, order by declaration not by timing ---------------------------------
cat >"$T/dag.cfg" <<'P'
pipeline = {
  name = "dag"; version = "1.2"; metadata = { owner = "tests"; };
  stages = (
    { name = "src"; type = "read"; config = { path = "docs"; }; },
    { name = "slow"; type = "test/faults.sleep"; depends_on = ("src"); config = { ms = 700; }; },
    { name = "fast"; type = "test/faults.sleep"; depends_on = ("src"); config = { ms = 500; }; },
    { name = "join"; type = "write"; depends_on = ("slow", "fast"); config = { path = "out.jsonl"; }; }
  );
};
P
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

# --jobs 1: the same result, one branch after the other.
rm -f "$T/out.jsonl"
start=$(date +%s%N)
run "$SH" run "$T/dag.cfg" $F --jobs 1
took=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 0 "DAG run with --jobs 1"
[ "$took" -ge 1200 ] || fail "--jobs 1 ran 700 and 500 ms branches in $took ms: they overlapped"

# --- the run store ----------------------------------------------------------------------------------------
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

# --- retries ------------------------------------------------------------------------------------------------
pipeline "$T/retry.cfg" '{ name = "src"; type = "read"; config = { path = "docs/a.txt"; }; },
  { name = "flaky"; type = "test/faults.flaky"; config = { fail_times = 2; };
    retry = { max = 2; backoff_ms = 100; multiplier = 2.0; }; },
  { name = "out"; type = "write"; config = { path = "retry.jsonl"; }; }'
start=$(date +%s%N)
run "$SH" run "$T/retry.cfg" $F
took=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 0 "a stage that fails twice succeeds on its third attempt"
grep -q '"attempt":3' "$T/retry.jsonl" || fail "the third attempt did not see attempt = 3 in its context"
expect_in err "stage 'flaky' attempt 1 failed: failing attempt 1 of the first 2 on purpose; retrying in 100 ms" \
    "the first retry is announced with its backoff"
expect_in err "retrying in 200 ms" "the backoff grows by the multiplier"
[ "$took" -ge 300 ] || fail "two retries with 100 and 200 ms backoff took only $took ms"
pipeline "$T/retry2.cfg" '{ name = "src"; type = "read"; config = { path = "docs/a.txt"; }; },
  { name = "flaky"; type = "test/faults.flaky"; config = { fail_times = 5; }; retry = { max = 1; backoff_ms = 1; }; },
  { name = "out"; type = "write"; config = { path = "retry2.jsonl"; }; }'
run "$SH" run "$T/retry2.cfg" $F
expect_rc 1 "retries exhausted"
expect_in err "stage 'flaky' (plugin 'test/faults' 1.0.0, action 'flaky') failed on attempt 2: failing attempt 2" \
    "the last attempt's number and cause"
expect_in err "stages not run: 'out'" "downstream stages are reported as not run"
pipeline "$T/crashy.cfg" '{ name = "boom"; type = "test/faults.segv"; retry = { max = 2; backoff_ms = 1; }; }'
# Three crashes in a row quarantine a plugin: this run keeps its crash history apart from the other tests'.
STAGEHOST_STATE_DIR="$T/.state-crash" run "$SH" run "$T/crashy.cfg" $F
expect_rc 1 "a crash is retried, then fails"
expect_in err "failed on attempt 3" "a crashing stage gets all its attempts"

# --- on_failure -------------------------------------------------------------------------------------------
cat >"$T/cont.cfg" <<'P'
pipeline = { name = "cont"; stages = (
  { name = "src"; type = "read"; config = { path = "docs/a.txt"; }; },
  { name = "bad"; type = "test/faults.fail"; depends_on = ("src"); on_failure = "continue"; },
  { name = "after_bad"; type = "write"; depends_on = ("bad"); config = { path = "never.jsonl"; }; },
  { name = "good"; type = "test/faults.echo"; depends_on = ("src"); },
  { name = "after_good"; type = "write"; depends_on = ("good"); config = { path = "good.jsonl"; }; }
); };
P
run "$SH" run "$T/cont.cfg" $F --json
expect_rc 0 "on_failure = continue: the run goes on"
[ -s "$T/good.jsonl" ] || fail "on_failure = continue: the other branch did not finish"
[ ! -e "$T/never.jsonl" ] || fail "on_failure = continue: the failed stage's downstream branch ran"
expect_in err "on_failure = \"continue\": only the stages downstream of it are skipped" "continue is announced"
python3 - "$T/out" <<'PY' || fail "on_failure = continue: report"
import json, sys
d = json.load(open(sys.argv[1]))
st = {s["name"]: s for s in d["stages"]}
assert d["status"] == "partial", d
assert st["bad"]["status"] == "failed" and "refusing 1 items on purpose" in st["bad"]["error"], st
assert st["after_bad"]["status"] == "skipped" and "upstream stage 'bad'" in st["after_bad"]["error"], st
assert st["after_good"]["status"] == "succeeded", st
PY
sed 's/ on_failure = "continue";//' "$T/cont.cfg" >"$T/stop.cfg"
run "$SH" run "$T/stop.cfg" $F --jobs 1
expect_rc 1 "without on_failure = continue, a failure fails the run"
expect_in err "stage 'bad' (plugin 'test/faults' 1.0.0, action 'fail') failed on attempt 1" "the failing stage"

# --- gates ------------------------------------------------------------------------------------------------
printf 'pending' >"$T/status.txt"
cat >"$T/gate.cfg" <<'P'
pipeline = { name = "gated"; stages = (
  { name = "status"; type = "read"; config = { path = "status.txt"; }; },
  { name = "wait"; type = "gate"; config = { field = "content"; equals = "ready"; poll_interval_ms = 100;
                                             timeout_ms = 10000; }; },
  { name = "out"; type = "write"; config = { path = "gate.jsonl"; }; }
); };
P
(sleep 0.8; printf 'ready' >"$T/status.txt.new"; mv "$T/status.txt.new" "$T/status.txt") &
start=$(date +%s%N)
run "$SH" run "$T/gate.cfg" -v
took=$(( ($(date +%s%N) - start) / 1000000 ))
wait
expect_rc 0 "a gate waits until its condition holds"
grep -q '"content":"ready"' "$T/gate.jsonl" || fail "the gate passed on the items that satisfied it"
[ "$took" -ge 700 ] || fail "the gate did not wait ($took ms)"
expect_in err "gate 'wait': waiting (0 of 1 items match; item 1 has content = \"pending\")" "the gate says why it waits"
printf 'pending' >"$T/status.txt"
sed 's/timeout_ms = 10000/timeout_ms = 300/' "$T/gate.cfg" >"$T/gate2.cfg"
run "$SH" run "$T/gate2.cfg"
expect_rc 1 "a gate whose condition never holds times out"
expect_in err "gate timed out after 300 ms" "gate timeout message"
expect_in err "condition content == \"ready\" (every item) did not hold; last check: 0 of 1 items match; item 1 has content = \"pending\"" \
    "the gate names the condition and what it last saw"
pipeline "$T/gate3.cfg" '{ name = "src"; type = "read"; config = { path = "status.txt"; }; },
  { name = "g"; type = "gate"; config = { equals = 1; poll_interval_ms = 0; }; }'
run "$SH" run "$T/gate3.cfg"
expect_rc 2 "a gate without a field is refused before anything runs"
expect_in err "gate3.cfg:2: stage 'g': a gate needs config key 'field'" "gate configuration error"

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

# --- output cache -------------------------------------------------------------------------------------------
pipeline "$T/cache.cfg" '{ name = "src"; type = "read"; config = { path = "docs"; }; },
  { name = "s"; type = "test/faults.sleep"; config = { ms = 300; report = false; }; cache = true; },
  { name = "out"; type = "write"; config = { path = "cache.jsonl"; }; }'
run "$SH" run "$T/cache.cfg" $F -v
expect_rc 0 "first cached run"
expect_in err "stage 's': not in the cache" "a miss is logged with -v"
cp "$T/cache.jsonl" "$T/cache1.jsonl"
run "$SH" run "$T/cache.cfg" $F -v
expect_rc 0 "second cached run"
expect_in err "stage 's': output reused from the cache" "a hit is logged with -v"
expect_in err "s      cached" "the summary says cached"
cmp -s "$T/cache.jsonl" "$T/cache1.jsonl" || fail "the cached output differs from the computed one"
printf ' More.' >>"$T/docs/b.txt"
run "$SH" run "$T/cache.cfg" $F -v
expect_in err "stage 's': not in the cache" "changed input items miss the cache"
sed 's/ms = 300/ms = 301/' "$T/cache.cfg" >"$T/cache2.cfg"
run "$SH" run "$T/cache2.cfg" $F -v
expect_in err "stage 's': not in the cache" "a changed configuration misses the cache"
# Idempotency declared by the descriptor caches without `cache = true`; `cache = false` turns it off.
mkdir -p "$T/idem"
link_lib "$T/idem" libfaults.so
faults_descriptor | sed 's/{ type = "sleep"; }/{ type = "sleep"; idempotent = true; }/' |
    sed "s|@LIB@|libfaults.so|" >"$T/idem/faults.plugin"
sed 's/ cache = true;//' "$T/cache.cfg" >"$T/idem.cfg"
run "$SH" run "$T/idem.cfg" --plugins-dir "$T/idem" -v
run "$SH" run "$T/idem.cfg" --plugins-dir "$T/idem" -v
expect_in err "stage 's': output reused from the cache" "a stage its descriptor declares idempotent is cached"
sed 's/ cache = true;/ cache = false;/' "$T/cache.cfg" >"$T/nocache.cfg"
run "$SH" run "$T/nocache.cfg" --plugins-dir "$T/idem" -v
expect_not_in err "from the cache" "cache = false overrides the descriptor"

# --- progress on a terminal -------------------------------------------------------------------------------
script -qec "$SH run $T/dag.cfg $F" /dev/null >"$T/tty.txt" 2>&1
grep -q $'\033\[J' "$T/tty.txt" || fail "no live progress on a terminal"
grep -q 'attempt 1 ' "$T/tty.txt" || fail "progress lines show the attempt"
grep -q 'in 2 ' "$T/tty.txt" || fail "progress lines show the items in"

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
rid=""
for _ in $(seq 300); do
    sleep 0.05
    "$SH" runs list "$T/r/p.cfg" --json >"$T/rl.json" 2>/dev/null || continue
    rid=$(json "$T/rl.json" 'd[0]["id"] if d else ""')
    [ -n "$rid" ] || continue
    "$SH" runs show "$rid" "$T/r/p.cfg" --json >"$T/rs.json" 2>/dev/null || continue
    [ "$(json "$T/rs.json" '[s["status"] for s in d["stage_list"]][:2]')" = "['succeeded', 'running']" ] && break
done
kill -KILL "$host"
wait "$host" 2>/dev/null
[ -n "$rid" ] || fail "resume: the run never showed up in the store"
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

# A store that is not one is refused with the file named, and the run does not start.
mkdir -p "$T/junk/.stagehost"
printf 'not a database at all, just some text that is long enough' >"$T/junk/.stagehost/runs.db"
cp "$T/dag.cfg" "$T/junk/p.cfg"
run "$SH" run "$T/junk/p.cfg" $F
expect_rc 2 "a corrupt run store"
expect_in err "run store $T/junk/.stagehost/runs.db" "the store's path in the error"

# --- the hook stage: a hook per item, answers into a field; the quota counts its calls -------------------------
mkdir -p "$T/hk"
cat >"$T/hk/doc.hooks" <<'SPEC'
kind = "doc"; api = "1.0";
hooks = ( { name = "transform"; dispatch = "chain"; args = ( "string" ); returns = "string"; },
          { name = "validate"; dispatch = "broadcast-collect"; args = ( "string" ); returns = "string"; } );
SPEC
for l in a b; do
    link_lib "$T/hk" "libhook_$l.so"
    printf 'format = 1; name = "test/hook-%s"; version = "1.0.0"; library = "libhook_%s.so"; abi = "1.0";\n' "$l" "$l" >"$T/hk/hook-$l.plugin"
    printf 'isolation = "%s"; stages = ( { type = "numbers"; }, { type = "ctx"; } );\n' \
        "$([ $l = a ] && echo none || echo process)" >>"$T/hk/hook-$l.plugin"
    printf 'hooks = ( { hook = "doc.transform"; symbol = "h_append"; priority = %s; },\n' "$([ $l = a ] && echo 2 || echo 1)" >>"$T/hk/hook-$l.plugin"
    printf '          { hook = "doc.validate"; symbol = "h_tag"; } );\n' >>"$T/hk/hook-$l.plugin"
done
cat >"$T/hook.cfg" <<'P'
pipeline = { name = "hooked"; stages = (
  { name = "items"; type = "test/hook-a.numbers"; config = { items = ( { t = "x"; }, { t = "y"; }, { t = "z"; } ); }; },
  { name = "chain"; type = "hook"; config = { hook = "doc.transform"; args = ( "t" ); into = "chained"; }; },
  { name = "all"; type = "hook"; config = { hook = "doc.validate"; args = ( "chained" ); }; },
  { name = "out"; type = "write"; config = { path = "hook.jsonl"; }; }
); };
P
run "$SH" run "$T/hook.cfg" --plugins-dir "$T/hk"
expect_rc 0 "hook stages"
python3 - "$T/hook.jsonl" <<'PY' || fail "the hook stage calls the hook per item and adds its answer"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert [i["chained"] for i in items] == ["xab", "yab", "zab"], items
assert items[0]["result"] == ["a:xab", "b:xab"], items
PY
printf 'hooks = { quota = { calls_per_plugin = 4; }; };\n' >"$T/quota.cfg"
run "$SH" run "$T/hook.cfg" --plugins-dir "$T/hk" --config "$T/quota.cfg"
expect_rc 1 "six calls of each plugin in one run exceed a quota of four"
expect_in err "stage 'all' (built-in 'hook') failed on attempt 1: hook 'doc.validate' on item 2" "the item that hit the quota"
expect_in err "quota exceeded: plugin 'test/hook-a' already made the 4 hook calls allowed per run" "quota message"
pipeline "$T/hook2.cfg" '{ name = "h"; type = "hook"; config = { args = ( "t" ); }; }'
run "$SH" run "$T/hook2.cfg" --plugins-dir "$T/hk"
expect_rc 2 "a hook stage without a hook"
expect_in err "stage 'h': a hook stage needs config key 'hook'" "hook stage configuration error"

# --- edge cases: empty outputs on resume, a run still running, cache per directory, gate deadlines,
# quarantine during retries, a retry cut short by a failure elsewhere ----------------------------------------
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
lid=""
for _ in $(seq 300); do
    sleep 0.05
    "$SH" runs list "$T/e/long.cfg" --json >"$T/ll.json" 2>/dev/null || continue
    lid=$(json "$T/ll.json" '[r["id"] for r in d if r["status"] == "running"][0] if any(r["status"] == "running" for r in d) else ""')
    [ -n "$lid" ] && break
done
run "$SH" run "$T/e/long.cfg" $F --resume "$lid"
expect_rc 2 "resuming a run that is still running"
expect_in err "is still running in process $long" "the running process is named"
kill -KILL "$long"
wait "$long" 2>/dev/null

mkdir -p "$T/d1/docs" "$T/d2/docs"
printf 'content of d1' >"$T/d1/docs/x.txt"
printf 'content of d2' >"$T/d2/docs/x.txt"
for d in d1 d2; do
    pipeline "$T/$d/p.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; }; cache = true; },
      { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
    run "$SH" run "$T/$d/p.cfg" --store "$T/shared.db"
done
grep -q "content of d2" "$T/d2/out.jsonl" || fail "the cache served another directory's files: $(cat "$T/d2/out.jsonl")"

pipeline "$T/e/gate.cfg" '{ name = "s"; type = "read"; config = { path = "../status.txt"; }; },
  { name = "g"; type = "gate"; config = { field = "content"; equals = "ready"; poll_interval_ms = 3000;
                                           timeout_ms = 300; }; }'
printf 'pending' >"$T/status.txt"
start=$(date +%s%N)
run "$SH" run "$T/e/gate.cfg"
took=$(( ($(date +%s%N) - start) / 1000000 ))
expect_rc 1 "a gate whose poll interval is longer than its timeout"
[ "$took" -lt 2500 ] || fail "the gate waited $took ms for a poll past its 300 ms timeout"
expect_in err "gate timed out after 300 ms" "the gate's own timeout is kept"

pipeline "$T/e/q.cfg" '{ name = "boom"; type = "test/faults.segv"; retry = { max = 5; backoff_ms = 1; }; }'
STAGEHOST_STATE_DIR="$T/.state-q" run "$SH" run "$T/e/q.cfg" $F
expect_rc 1 "a plugin quarantined while its stage retries"
expect_in err "failed on attempt 3: no more retries: plugin 'test/faults' is now quarantined" \
    "retries stop once the plugin is quarantined"

cat >"$T/e/cut.cfg" <<'P'
pipeline = { name = "cut"; stages = (
  { name = "flaky"; type = "test/faults.flaky"; depends_on = (); config = { fail_times = 5; };
    retry = { max = 5; backoff_ms = 2000; }; },
  { name = "wait"; type = "test/faults.sleep"; depends_on = (); config = { ms = 500; report = false; }; },
  { name = "bad"; type = "test/faults.fail"; depends_on = ("wait"); }
); };
P
# flaky fails at once and waits 2 s to retry; bad fails half a second in and stops the run meanwhile.
run "$SH" run "$T/e/cut.cfg" $F --json
expect_rc 1 "a failure while another stage waits to retry"
python3 - "$T/out" <<'PY' || fail "the stage waiting to retry keeps its own error"
import json, sys
d = json.load(open(sys.argv[1]))
st = {s["name"]: s for s in d["stages"]}
assert st["flaky"]["status"] == "failed" and st["flaky"]["attempts"] == 1, st
assert "failing attempt 1" in st["flaky"]["error"] and "no further attempt: the run stopped" in st["flaky"]["error"], st
PY

cat >"$T/e/hg.cfg" <<'P'
pipeline = { name = "hg"; stages = (
  { name = "s"; type = "read"; config = { path = "empty"; }; },
  { name = "h"; type = "hook"; config = { hook = "doc.validate"; args = ( "path" ); }; },
  { name = "g"; type = "gate"; config = { field = "result"; equals = "x"; }; }
); };
P
run "$SH" pipeline validate "$T/e/hg.cfg"
expect_rc 2 "a gate right after a hook stage"
expect_in err "a gate runs the stages it depends on again while it waits, which it cannot do for the hook stage 'h'" \
    "gate after hook message"

# --- run-completion hook and --deterministic -------------------------------------------------------------
# test/hook-b's h_notify(path, what) appends "b WHAT" to the file PATH: as stagehost.run_finished(pipeline,
# status) it is told the run's status, here with a pipeline named after a file.
mkdir -p "$T/hb"
link_lib "$T/hb" libhook_b.so
cat >"$T/hb/hook-b.plugin" <<'D'
format = 1; name = "test/hook-b"; version = "1.0.0"; library = "libhook_b.so"; abi = "1.0"; isolation = "none";
stages = ( { type = "numbers"; }, { type = "ctx"; } );
hooks = ( { hook = "stagehost.run_finished"; symbol = "h_notify"; } );
D
printf 'pipeline = { name = "%s"; stages = ( { name = "c"; type = "test/hook-b.ctx"; },\n' "$T/notified.txt" >"$T/det.cfg"
printf '  { name = "w"; type = "write"; config = { path = "det.jsonl"; }; } ); };\n' >>"$T/det.cfg"
run "$SH" run "$T/det.cfg" --plugins-dir "$T/hb"
expect_rc 0 "a run with a run_finished hook"
[ "$(cat "$T/notified.txt" 2>/dev/null)" = "b succeeded" ] || fail "stagehost.run_finished was not told: $(cat "$T/notified.txt" 2>&1)"
cp "$T/det.jsonl" "$T/det0.jsonl"
for iso in none process call; do
    sed "s/type = \"test\/hook-b.ctx\";/type = \"test\/hook-b.ctx\"; isolation = \"$iso\";/" "$T/det.cfg" >"$T/det-$iso.cfg"
    for n in 1 2; do
        run "$SH" run "$T/det-$iso.cfg" --plugins-dir "$T/hb" --deterministic --allow-unconfined
        expect_rc 0 "--deterministic run $n with isolation $iso"
        cp "$T/det.jsonl" "$T/det-$iso-$n.jsonl"
    done
    cmp -s "$T/det-$iso-1.jsonl" "$T/det-$iso-2.jsonl" || fail "two --deterministic runs ($iso) differ"
done
cmp -s "$T/det-none-1.jsonl" "$T/det-process-1.jsonl" || fail "--deterministic: in-process and worker results differ"
cmp -s "$T/det-none-1.jsonl" "$T/det-call-1.jsonl" || fail "--deterministic: in-process and call-mode results differ"
grep -q '"now":946684800000000000' "$T/det-process-1.jsonl" || fail "--deterministic: the clock is not the fixed one"
run "$SH" run "$T/det.cfg" --plugins-dir "$T/hb"
cmp -s "$T/det.jsonl" "$T/det0.jsonl" && fail "without --deterministic two runs gave identical clock and random values"

# --- the example DAG ------------------------------------------------------------------------------------
cp -r "${EXAMPLES:?}/." "$T/ex"
run "$SH" run "$T/ex/dag.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "examples/dag.cfg runs"
run "$SH" pipeline validate "$T/ex/dag.cfg" --plugins-dir "$PLUGINS"
expect_rc 0 "examples/dag.cfg validates"

finish
