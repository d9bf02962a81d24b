# A crashing, exiting, hanging or garbage-writing plugin fails its stage with a clear error (signal, stage,
# plugin, attempt); the host exits 1 cleanly, leaves no worker behind, and the next run works.
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"
# These crashes are on purpose and in a row: keep the quarantine (test/cli/quarantine.sh) out of the way.
printf 'workers = { quarantine_after = 1000; };\n' >"$T/host.cfg"
export STAGEHOST_CONFIG="$T/host.cfg"
plugin_dir slow libfaults.so "$(faults_descriptor 'limits = { timeout_ms = 300; };')"

run_fault() { # TYPE DIR: a pipeline echo -> TYPE -> write
    pipeline "$T/p.cfg" "{ name = \"src\"; type = \"test/faults.echo\"; },
      { name = \"bad\"; type = \"test/faults.$1\"; },
      { name = \"out\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
    run timeout 20 "$SH" run "$T/p.cfg" --plugins-dir "$T/$2"
}

no_leftover_workers() {
    if pgrep -f "$SH run $T/p.cfg" >/dev/null; then
        fail "$1: a stagehost process is still running"
    fi
}

run_fault segv faults
expect_rc 1 "segfaulting plugin"
expect_in err "stage 'bad' (plugin 'test/faults' 1.0.0, action 'segv') failed on attempt 1" "segv: stage, plugin, attempt"
expect_in err "killed by signal SIGSEGV (Segmentation fault)" "segv: signal named"
expect_in err "stages not run: 'out'" "segv: skipped stages listed"
[ ! -e "$T/out.jsonl" ] || fail "segv: the stage after the crash ran"
no_leftover_workers segv

run_fault abort faults
expect_rc 1 "aborting plugin"
expect_in err "killed by signal SIGABRT" "abort: signal named"

run_fault exit faults
expect_rc 1 "exiting plugin"
expect_in err "exited with status 3 during process" "exit: status named"

run_fault hang slow
expect_rc 1 "hanging plugin"
expect_in err "did not finish process within its 300 ms deadline and was killed" "hang: timeout named"
expect_in err "limits.timeout_ms" "hang: says how to raise the limit"
no_leftover_workers hang

run_fault garbage faults
expect_rc 1 "garbage on the wire"
expect_in err "broke the protocol during process" "garbage: protocol error named"

run_fault fail faults
expect_rc 1 "failing stage"
expect_in err "refusing 1 items on purpose" "fail: the plugin's own message"

run_fault badconfig faults
expect_rc 1 "stage creation fails"
expect_in err "cannot build stage 'bad'" "badconfig: the plugin's own message"

# After all that, the same plugin runs fine.
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; },
  { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults"
expect_rc 0 "a healthy run after the faults"
python3 - "$T/out.jsonl" <<'PY' || fail "echo output is wrong"
import json, sys
[item] = [json.loads(l) for l in open(sys.argv[1])]
assert item["stage"] == "src" and item["plugin"] == "test/faults" and item["attempt"] == 1, item
assert len(item["execution_id"]) == 32 and item["tmp_dir_exists"] is True, item
PY

# Isolation: a worker process by default, the host process with isolation "none", same results.
host_pid_check='import json,sys; item=json.loads(open(sys.argv[1]).readline()); print(item["pid"])'
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; },
  { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
"$SH" run "$T/p.cfg" --plugins-dir "$T/faults" -v 2>"$T/err" || fail "process isolation run"
grep -q "loaded in worker process" "$T/err" || fail "process isolation: no worker was started"
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; isolation = "none"; },
  { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
"$SH" run "$T/p.cfg" --plugins-dir "$T/faults" -v 2>"$T/err" || fail "isolation none run"
grep -q "in the host process (isolation none)" "$T/err" || fail "isolation none: not loaded in the host"
grep -q "loaded in worker process" "$T/err" && fail "isolation none: a worker was started"

# A failure message that is not UTF-8 reaches the user (and the run store) as valid UTF-8.
pipeline "$T/bytes.cfg" '{ name = "b"; type = "test/faults.failbytes"; }'
run "$SH" run "$T/bytes.cfg" --plugins-dir "$T/faults" --json
expect_rc 1 "a failure message with invalid UTF-8"
expect_in err "failed on attempt 1: bad ?? bytes, then a cut" "invalid bytes become '?', a cut character is dropped"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" || fail "the --json report is not valid JSON"

finish
