# The hook stage (a hook per item, the quota), the run-completion hook and --deterministic.
. "$(dirname "$0")/engine_lib.sh"

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

finish
