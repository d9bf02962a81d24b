# Retries (attempt numbers, backoff, exhaustion, crashes, quarantine while retrying, a retry cut short by
# a failure elsewhere) and on_failure.
. "$(dirname "$0")/engine_lib.sh"

# --- retries ------------------------------------------------------------------------------------------------
pipeline "$T/retry.cfg" '{ name = "src"; type = "read"; config = { path = "docs/a.txt"; }; },
  { name = "flaky"; type = "test/faults.flaky"; config = { fail_times = 2; };
    retry = { max = 2; backoff_ms = 100; multiplier = 2.0; }; },
  { name = "out"; type = "write"; config = { path = "retry.jsonl"; }; }'
run "$SH" run "$T/retry.cfg" $F --json
expect_rc 0 "a stage that fails twice succeeds on its third attempt"
retry_id=$(json "$T/out" 'd["run_id"]')
grep -q '"attempt":3' "$T/retry.jsonl" || fail "the third attempt did not see attempt = 3 in its context"
expect_in err "stage 'flaky' attempt 1 failed: failing attempt 1 of the first 2 on purpose; retrying in 100 ms" \
    "the first retry is announced with its backoff"
expect_in err "retrying in 200 ms" "the backoff grows by the multiplier"
run "$SH" runs show "$retry_id" "$T/retry.cfg" --json
python3 - "$T/out" <<'PY' || fail "the run store: three attempts, each retry after its backoff"
import json, sys
a = [x for x in json.load(open(sys.argv[1]))["attempts"] if x["stage"] == "flaky"]
assert [(x["attempt"], x["status"]) for x in a] == [(1, "failed"), (2, "failed"), (3, "succeeded")], a
assert a[1]["started_ns"] - a[0]["finished_ns"] >= 100e6 and a[2]["started_ns"] - a[1]["finished_ns"] >= 200e6, a
PY
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

# --- quarantine during retries, a retry cut short by a failure elsewhere ---------------------------------
mkdir -p "$T/e"
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

finish
