# Gates: waiting for a condition by running the upstream stages again, timeouts, configuration errors, a
# deadline shorter than the poll interval, a gate after a hook stage.
. "$(dirname "$0")/engine_lib.sh"

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
run "$SH" run "$T/gate.cfg" -v --json
wait
expect_rc 0 "a gate waits until its condition holds"
grep -q '"content":"ready"' "$T/gate.jsonl" || fail "the gate passed on the items that satisfied it"
[ "$(json "$T/out" '[s["attempts"] > 0 for s in d["stages"] if s["name"] == "wait"]')" = "[True]" ] ||
    fail "the gate did not poll: $(cat "$T/out")"
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

# --- a deadline shorter than the poll interval, a gate after a hook stage -----------------------------------
# The last poll comes at the deadline: a gate that waited for the next poll would be killed (exit 124) first.
mkdir -p "$T/e"
pipeline "$T/e/gate.cfg" '{ name = "s"; type = "read"; config = { path = "../status.txt"; }; },
  { name = "g"; type = "gate"; config = { field = "content"; equals = "ready"; poll_interval_ms = 600000;
                                           timeout_ms = 300; }; }'
printf 'pending' >"$T/status.txt"
run timeout 60 "$SH" run "$T/e/gate.cfg"
expect_rc 1 "a gate whose poll interval is longer than its timeout"
expect_in err "gate timed out after 300 ms" "the gate's own timeout is kept"

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

finish
