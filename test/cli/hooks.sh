# Hooks: hookspec files, implementations in descriptors, every dispatch rule and its errors, in-process and in
# workers, middleware (governance, quota, audit), function stages, plugin configuration sections, determinism.
. "$(dirname "$0")/lib.sh"

H="$T/h"
mkdir -p "$H"
cat >"$H/doc.hooks" <<'SPEC'
kind = "doc";
api = "1.0";
hooks = (
  { name = "render"; dispatch = "singleton"; args = ( "string" ); returns = "string"; description = "One answer."; },
  { name = "validate"; dispatch = "broadcast-collect"; args = ( "string" ); returns = "string"; },
  { name = "check"; dispatch = "broadcast-collect"; args = ( "string" ); returns = "string"; best_effort = true; },
  { name = "changed"; dispatch = "broadcast-notify"; args = ( "string", "string" ); },
  { name = "transform"; dispatch = "chain"; args = ( "string" ); returns = "string"; },
  { name = "parse"; dispatch = "capability"; args = ( "string" ); returns = "string"; },
  { name = "add"; dispatch = "singleton"; args = ( "i64", "i64" ); returns = "i64"; },
  { name = "types"; dispatch = "singleton"; args = ( "i32", "u32", "u64", "double", "bool", "bytes" ); returns = "double"; },
  { name = "context"; dispatch = "singleton"; args = ( "string" ); returns = "string"; },
  { name = "none"; dispatch = "singleton"; args = ( "string" ); returns = "string"; }
);
SPEC

# hook_plugin LETTER EXTRA-DESCRIPTOR-KEYS HOOK-GROUPS: test/hook-LETTER in $H.
hook_plugin() {
    link_lib "$H" "libhook_$1.so"
    cat >"$H/hook-$1.plugin" <<DESC
format = 1; name = "test/hook-$1"; version = "1.0.0"; library = "libhook_$1.so"; abi = "1.0";
stages = ( { type = "numbers"; }, { type = "ctx"; } );
$2
hooks = ( $3 );
DESC
}

NONE='isolation = "none";'
hook_plugin a "$NONE" '{ hook = "doc.render"; symbol = "h_tag"; priority = 5; },
  { hook = "doc.validate"; symbol = "h_tag"; priority = 1; }, { hook = "doc.check"; symbol = "h_fail"; priority = 9; },
  { hook = "doc.changed"; symbol = "h_notify_fail"; }, { hook = "doc.transform"; symbol = "h_append"; priority = 3; },
  { hook = "doc.parse"; symbol = "h_tag"; priority = 1; supports = ( "json", "yaml" ); },
  { hook = "doc.add"; symbol = "h_add"; }, { hook = "doc.types"; symbol = "h_types"; },
  { hook = "doc.context"; symbol = "h_context"; }'
hook_plugin b "$NONE" '{ hook = "doc.render"; symbol = "h_tag"; priority = 2; },
  { hook = "doc.validate"; symbol = "h_tag"; priority = 1; }, { hook = "doc.check"; symbol = "h_tag"; },
  { hook = "doc.changed"; symbol = "h_notify"; }, { hook = "doc.transform"; symbol = "h_append"; priority = 2; },
  { hook = "doc.parse"; symbol = "h_tag"; priority = 5; supports = ( "yaml" ); }'
hook_plugin c "$NONE" '{ hook = "doc.validate"; symbol = "h_tag"; priority = 7; }, { hook = "doc.check"; symbol = "h_tag"; },
  { hook = "doc.changed"; symbol = "h_notify"; }, { hook = "doc.transform"; symbol = "h_append"; priority = 1; },
  { hook = "doc.parse"; symbol = "h_tag"; fallback = true; }'
HC=("$SH" hooks call --plugins-dir "$H")

# ---- listing -----------------------------------------------------------------------------------------------------
run "$SH" hooks list --plugins-dir "$H"
expect_rc 0 "hooks list"
expect_in out "doc.render  singleton  (string) -> string" "list shows dispatch and signature"
expect_in out "stagehost.run_finished  broadcast-notify  (string, string) -> void" "list shows the host hookspec"
python3 - "$T/out" <<'PY' || fail "list orders implementations by priority, ties by plugin name"
import sys
text = open(sys.argv[1]).read()
block = text.split("doc.validate")[1].split("doc.check")[0]
order = [l.split()[1] for l in block.splitlines() if l.strip()[:2] in ("1.", "2.", "3.")]
assert order == ["test/hook-c", "test/hook-a", "test/hook-b"], order
PY
run "$SH" hooks list --json --plugins-dir "$H"
expect_rc 0 "hooks list --json"
python3 - "$T/out" <<'PY' || fail "hooks list --json"
import json, sys
d = json.load(open(sys.argv[1]))
h = {x["hook"]: x for x in d["hooks"]}
assert h["doc.check"]["best_effort"] is True
assert [i["plugin"] for i in h["doc.transform"]["implementations"]] == ["test/hook-a", "test/hook-b", "test/hook-c"]
p = h["doc.parse"]["implementations"]
assert p[-1]["fallback"] is True and p[0]["supports"] == ["yaml"], p
assert d["problems"] == []
PY

# ---- singleton -----------------------------------------------------------------------------------------------------
run "${HC[@]}" doc.render hi
expect_rc 0 "singleton call"
expect_in out '"a:hi"' "singleton: the highest priority answers"
run "${HC[@]}" doc.add 2 40
expect_in out '42' "singleton with integers"
run "${HC[@]}" doc.types 1 2 3 0.5 true xyz
expect_in out '130.5' "every scalar type, bool and bytes cross the libffi call intact (1+2+3+0.5+1+3+'x')"
run "${HC[@]}" doc.none hi
expect_rc 1 "singleton without implementation"
expect_in err "singleton hook 'doc.none' has no implementation" "no implementation is an error"
run "${HC[@]}" doc.add 2 notanumber
expect_rc 2 "a mistyped argument"
expect_in err "'notanumber' is not an integer" "arguments are read as the declared type"

# A tie at the top: a startup error naming both plugins and the override.
cp -r "$H" "$T/tie"
sed -i 's/symbol = "h_tag"; priority = 2; }/symbol = "h_tag"; priority = 5; }/' "$T/tie/hook-b.plugin"
run "$SH" hooks call doc.add 1 1 --plugins-dir "$T/tie"
expect_rc 2 "singleton tie refuses the hook system"
expect_in err "singleton hook 'doc.render' has two implementations of equal top priority 5: plugin 'test/hook-a'" "tie names the first plugin"
expect_in err "plugin 'test/hook-b'" "tie names the second plugin"
expect_in err "STAGEHOST_ACTIVE_DOC=test/hook-a" "tie names the environment override"
expect_in err 'hooks = { active = { doc = "test/hook-a"; }; }' "tie names the host configuration override"
run "$SH" hooks list --plugins-dir "$T/tie"
expect_rc 2 "list reports the startup problem"
expect_in out "problems:" "list prints problems"
STAGEHOST_ACTIVE_DOC=test/hook-b run "$SH" hooks call doc.render x --plugins-dir "$T/tie"
expect_rc 0 "the environment override settles the tie"
expect_in out '"b:x"' "the chosen plugin answers"
printf 'hooks = { active = { doc = "test/hook-b"; }; };\n' >"$T/active.cfg"
run "$SH" hooks call doc.render x --plugins-dir "$T/tie" --config "$T/active.cfg"
expect_rc 0 "the host configuration settles the tie"
expect_in out '"b:x"' "the configured plugin answers"

# ---- broadcast-collect ---------------------------------------------------------------------------------------------
run "${HC[@]}" doc.validate v
expect_rc 0 "collect"
expect_in out '["c:v","a:v","b:v"]' "collect: priority order, ties by plugin name"
run "${HC[@]}" doc.check v
expect_rc 0 "best effort collect"
expect_in out '["b:v","c:v"]' "best_effort collects what succeeds"
expect_in err "plugin=test/hook-a error=" "best_effort logs the failure"
sed 's/best_effort = true; //' "$H/doc.hooks" >"$T/ff.hooks"
cp -r "$H" "$T/ff" && mv "$T/ff.hooks" "$T/ff/doc.hooks"
run "$SH" hooks call doc.check v --plugins-dir "$T/ff"
expect_rc 1 "fail-fast collect"
expect_in err "hook 'doc.check': plugin 'test/hook-a': plugin a refuses 'v'" "fail-fast returns the first error"
mkdir -p "$T/empty" && cp "$H/doc.hooks" "$T/empty/"
run "$SH" hooks call doc.validate v --plugins-dir "$T/empty"
expect_rc 0 "collect without implementations"
expect_in out '[]' "zero implementations: an empty list"

# ---- broadcast-notify ------------------------------------------------------------------------------------------------
run "${HC[@]}" doc.changed "$T/notified" doc1
expect_rc 0 "notify never fails"
expect_in out 'null' "notify returns nothing"
expect_in err "hook doc.changed: plugin=test/hook-a error=notify failed in plugin a" "notify logs the failure"
if [ "$(sort "$T/notified" | tr '\n' ' ')" != "b doc1 c doc1 " ]; then fail "notify calls every implementation: $(cat "$T/notified")"; fi

# ---- chain ------------------------------------------------------------------------------------------------------------
run "${HC[@]}" doc.transform x
expect_in out '"xabc"' "chain: each output feeds the next, in priority order"
cp -r "$H" "$T/stop"
sed -i 's/{ hook = "doc.transform"; symbol = "h_append"; priority = 2; }/{ hook = "doc.transform"; symbol = "h_stop"; priority = 2; }/' "$T/stop/hook-b.plugin"
run "$SH" hooks call doc.transform x --plugins-dir "$T/stop"
expect_rc 0 "chain stopped"
expect_in out '"xa"' "a stopping implementation returns the value passed into it"

# ---- capability ------------------------------------------------------------------------------------------------------
run "${HC[@]}" doc.parse p --tag yaml
expect_in out '"b:p"' "capability: the highest priority supporting implementation"
run "${HC[@]}" doc.parse p --tag json
expect_in out '"a:p"' "capability: only supporting implementations are candidates"
run "${HC[@]}" doc.parse p --tag toml
expect_in out '"c:p"' "capability: no match falls back"
cp -r "$H" "$T/nofb"
sed -i 's/symbol = "h_tag"; fallback = true; }/symbol = "h_tag"; }/' "$T/nofb/hook-c.plugin"
run "$SH" hooks call doc.parse p --tag toml --plugins-dir "$T/nofb"
expect_rc 1 "capability without a match or fallback"
expect_in err "no implementation supports the tags [toml] and none is the fallback" "capability: no candidate, no fallback"
cp -r "$H" "$T/twofb"
sed -i 's/supports = ( "yaml" ); }/supports = ( "yaml" ); fallback = true; }/' "$T/twofb/hook-b.plugin"
run "$SH" hooks call doc.parse p --plugins-dir "$T/twofb"
expect_rc 2 "two fallbacks"
expect_in err "capability hook 'doc.parse' has two fallback implementations: plugin 'test/hook-b'" "two fallbacks name both"
expect_in err "plugin 'test/hook-c'" "two fallbacks name the second"


# The dispatch rules of the dagstack dispatch table, each where stagehost used to depart from it:
# a capability call is answered by an implementation whose tags cover all of the call's tags (priority among
# those), a singleton by the first implementation with a non-empty result, and a chain needs an implementation.
C="$T/conf"
mkdir -p "$C"
cat >"$C/pick.hooks" <<'SPEC'
kind = "pick"; api = "1.0";
hooks = ( { name = "one"; dispatch = "singleton"; args = ( "string" ); returns = "value"; },
          { name = "through"; dispatch = "chain"; args = ( "string" ); returns = "string"; },
          { name = "parse"; dispatch = "capability"; args = ( "string" ); returns = "string"; } );
SPEC
for l in a b; do
    link_lib "$C" "libhook_$l.so"
    printf 'format = 1; name = "test/hook-%s"; version = "1.0.0"; library = "libhook_%s.so"; abi = "1.0";
' "$l" "$l" >"$C/hook-$l.plugin"
    printf 'isolation = "none"; stages = ( { type = "numbers"; }, { type = "ctx"; } );
' >>"$C/hook-$l.plugin"
done
printf 'hooks = ( { hook = "pick.one"; symbol = "h_null"; priority = 9; },
  { hook = "pick.parse"; symbol = "h_tag"; priority = 10; supports = ( "pdf" ); } );
' >>"$C/hook-a.plugin"
printf 'hooks = ( { hook = "pick.one"; symbol = "h_tag"; priority = 1; },
  { hook = "pick.parse"; symbol = "h_tag"; priority = 0; supports = ( "pdf", "ocr" ); } );
' >>"$C/hook-b.plugin"
run "$SH" hooks call pick.parse p --tag pdf --tag ocr --plugins-dir "$C"
expect_rc 0 "capability with two tags"
expect_in out '"b:p"' "capability: the implementation covering every tag answers, not a higher priority one sharing one"
run "$SH" hooks call pick.parse p --tag pdf --plugins-dir "$C"
expect_in out '"a:p"' "capability: among the implementations covering the tags, priority decides"
run "$SH" hooks call pick.one x --plugins-dir "$C"
expect_rc 0 "singleton whose top implementation has nothing to say"
expect_in out '"b:x"' "singleton: the first non-empty result answers"
run "$SH" hooks call pick.through x --plugins-dir "$C"
expect_rc 1 "a chain with no implementation"
expect_in err "chain hook 'pick.through' has no implementation" "a chain with no implementation is an error, not its input"
# ---- hookspec and descriptor errors ------------------------------------------------------------------------------------
mkdir -p "$T/bad"
cat >"$T/bad/x.hooks" <<'SPEC'
kind = "x";
api = "1.0";
hooks = (
  { name = "a"; dispatch = "sometimes"; args = ( "string" ); },
  { name = "b"; dispatch = "singleton"; args = ( "float" ); returns = "i32"; },
  { name = "a"; dispatch = "chain"; args = ( "i32" ); returns = "i32"; }
);
SPEC
run "$SH" hooks list --plugins-dir "$T/bad"
expect_rc 2 "a broken hookspec"
expect_in err "x.hooks:4: dispatch 'sometimes' is not one of singleton" "bad dispatch name with file:line"
expect_in err "x.hooks:5: unknown type 'float'" "unknown type with file:line"
expect_in err "x.hooks:6: hook 'a' is declared twice (first at line 4)" "duplicate name with file:line"

cp -r "$H" "$T/nosym"
sed -i 's/symbol = "h_add"/symbol = "h_missing"/' "$T/nosym/hook-a.plugin"
run "$SH" hooks call doc.render x --plugins-dir "$T/nosym"
expect_rc 2 "a missing symbol refuses the plugin (a load error)"
expect_in err "plugin 'test/hook-a' is refused:" "a missing symbol refuses the plugin"
expect_in err "declares hook 'doc.add' implemented by symbol 'h_missing'" "the error names hook and symbol"

cp -r "$H" "$T/reserved"
sed -i 's/symbol = "h_tag"; priority = 5; }/symbol = "h_tag"; priority = 1000; }/' "$T/reserved/hook-a.plugin"
run "$SH" plugins list --plugins-dir "$T/reserved"
expect_in out "priority 1000 is reserved" "a reserved priority refuses the plugin"
run "$SH" hooks call doc.render x --plugins-dir "$T/reserved"
expect_in out '"b:x"' "the refused plugin implements nothing"

cp -r "$H" "$T/unknown"
sed -i 's/hook = "doc.add"/hook = "doc.nope"/' "$T/unknown/hook-a.plugin"
run "$SH" hooks list --plugins-dir "$T/unknown"
expect_rc 2 "an implementation of an undeclared hook"
expect_in out "implements hook 'doc.nope', which no hookspec on the plugin search path declares" "undeclared hook named"

# ---- workers: the same answers when implementations run isolated -------------------------------------------------------
cp -r "$H" "$T/iso"
sed -i 's/^isolation = "none";$//' "$T/iso/hook-a.plugin" "$T/iso/hook-b.plugin"
sed -i 's/^isolation = "none";$/isolation = "call";/' "$T/iso/hook-c.plugin"
ISO=("$SH" hooks call --plugins-dir "$T/iso" --allow-unconfined)
run "${ISO[@]}" doc.validate v
expect_in out '["c:v","a:v","b:v"]' "collect across a worker, a call-mode worker and arguments over the wire"
run "${ISO[@]}" doc.transform x
expect_in out '"xabc"' "chain across workers"
run "${ISO[@]}" doc.types 1 2 3 0.5 true xyz
expect_in out '130.5' "every type over the wire"
run "${ISO[@]}" doc.check v
expect_in out '["b:v","c:v"]' "best effort across workers"
run "$SH" hooks call doc.transform x --plugins-dir "$T/stop"
sed -i 's/^isolation = "none";$//' "$T/stop/hook-b.plugin"
run "$SH" hooks call doc.transform x --plugins-dir "$T/stop" --allow-unconfined
expect_in out '"xa"' "a worker implementation stops the chain"

# ---- determinism and configuration sections ---------------------------------------------------------------------------
printf 'plugins = ( { name = "test/hook-a"; config = { greeting = "hello"; }; } );\n' >"$T/greet.cfg"
run "${HC[@]}" doc.context q --deterministic --config "$T/greet.cfg"
expect_in out "now=946684800000000000" "deterministic clock"
expect_in out "greeting=hello" "the host configuration's plugin section reaches init"
cp "$T/out" "$T/ctx-none"
sed -i 's/^isolation = "none";$//' "$H/hook-a.plugin"
run "${HC[@]}" doc.context q --deterministic --config "$T/greet.cfg" --allow-unconfined
cmp -s "$T/out" "$T/ctx-none" || fail "deterministic context differs in a worker: $(cat "$T/out") vs $(cat "$T/ctx-none")"
sed -i 's/^format = 1;/format = 1; isolation = "call";/' "$H/hook-a.plugin"
run "${HC[@]}" doc.context q --deterministic --config "$T/greet.cfg" --allow-unconfined
cmp -s "$T/out" "$T/ctx-none" || fail "deterministic context differs in call mode: $(cat "$T/out")"
run "${HC[@]}" doc.context q --allow-unconfined
cmp -s "$T/out" "$T/ctx-none" && fail "without --deterministic the clock and random source are real"
sed -i 's/^format = 1; isolation = "call";/format = 1;/; 1a isolation = "none";' "$H/hook-a.plugin"

# ---- middleware ------------------------------------------------------------------------------------------------------
cat >"$T/gov.cfg" <<CFG
hooks = { governance = { deny_plugins = ( "test/hook-a" ); deny_hooks = ( "test/hook-c:doc.validate" );
                         audit_log = "$T/audit.log"; }; };
CFG
run "${HC[@]}" doc.render x --config "$T/gov.cfg"
expect_rc 1 "governance denies a plugin"
expect_in err "permission denied" "denied call says permission denied"
run "${HC[@]}" doc.check x --config "$T/gov.cfg"
expect_in out '["b:x","c:x"]' "best effort skips a denied plugin"
run "${HC[@]}" doc.validate x --config "$T/gov.cfg"
expect_rc 1 "a denied plugin:hook pair"
expect_in err "permission denied" "plugin:hook denial"
grep -q "denied plugin=test/hook-a hook=doc.render reason=governance" "$T/audit.log" || fail "audit log records the denial"
grep -q "allowed plugin=test/hook-b hook=doc.check" "$T/audit.log" || fail "audit log records allowed calls"
printf 'hooks = { quota = { calls_per_plugin = 2; }; };\n' >"$T/quota.cfg"
run "${HC[@]}" doc.transform x --config "$T/quota.cfg"
expect_rc 0 "within quota"
printf 'hooks = { quota = { calls_per_plugin = 1; }; };\n' >"$T/quota1.cfg"
run "${HC[@]}" doc.types 1 2 3 0.5 true xyz --config "$T/quota1.cfg"
expect_rc 0 "one call within a quota of one"
mkdir -p "$T/q" && cp "$H/doc.hooks" "$T/q/" && link_lib "$T/q" libhook_a.so
cat >"$T/q/hook-a.plugin" <<'DESC'
format = 1; name = "test/hook-a"; version = "1.0.0"; library = "libhook_a.so"; abi = "1.0"; isolation = "none";
stages = ( { type = "numbers"; }, { type = "ctx"; } );
hooks = ( { hook = "doc.validate"; symbol = "h_tag"; }, { hook = "doc.check"; symbol = "h_tag"; },
          { hook = "doc.transform"; symbol = "h_append"; } );
DESC
run "$SH" hooks call doc.validate x --plugins-dir "$T/q" --config "$T/quota1.cfg"
expect_rc 0 "first call of the run"

# ---- hostile workers: the host checks every answer against the hookspec -------------------------------------------
mkdir -p "$T/forge" && link_lib "$T/forge" libhook_a.so
cat >"$T/forge/f.hooks" <<'SPEC'
kind = "f";
api = "1.0";
hooks = (
  { name = "s"; dispatch = "singleton"; args = ( "string" ); returns = "string"; },
  { name = "n"; dispatch = "singleton"; args = ( "string" ); returns = "i32"; },
  { name = "c"; dispatch = "chain"; args = ( "string" ); returns = "string"; }
);
SPEC
cat >"$T/forge/hook-a.plugin" <<'DESC'
format = 1; name = "test/hook-a"; version = "1.0.0"; library = "libhook_a.so"; abi = "1.0";
stages = ( { type = "numbers"; }, { type = "ctx"; } );
hooks = ( { hook = "f.s"; symbol = "h_forge"; }, { hook = "f.n"; symbol = "h_forge"; }, { hook = "f.c"; symbol = "h_forge"; } );
DESC
FG=("$SH" hooks call --plugins-dir "$T/forge" --allow-unconfined)
run "${FG[@]}" f.s int
expect_rc 1 "a worker answering a string hook with an integer"
expect_in err "answered hook 'f.s' with an integer, but its hookspec declares a string result" "a mistyped answer is refused"
expect_in err "and was killed" "a worker that forges an answer is stopped"
run "${FG[@]}" f.n big
expect_rc 1 "a worker answering an i32 hook with a number outside i32"
expect_in err "outside the range of i32" "an out-of-range answer is refused"
run "${FG[@]}" f.s none
expect_rc 1 "a worker answering success without a result"
expect_in err "answered hook 'f.s' with no result" "a missing answer is refused"
run "${FG[@]}" f.s two
expect_rc 1 "a worker answering with two results"
expect_in err "with 2 results" "two answers are refused"
run "${FG[@]}" f.c stopval
expect_rc 1 "a worker both answering and stopping the chain"
expect_in err "both stopped the chain and answered" "an answer with a stop is refused"

# A stop outside a chain: a singleton or capability hook must answer.
cp -r "$H" "$T/sstop"
sed -i 's/{ hook = "doc.render"; symbol = "h_tag"; priority = 5; }/{ hook = "doc.render"; symbol = "h_stop"; priority = 5; }/' "$T/sstop/hook-a.plugin"
run "$SH" hooks call doc.render x --plugins-dir "$T/sstop"
expect_rc 1 "a singleton implementation returning SH_HOOK_STOP"
expect_in err "returned SH_HOOK_STOP, which only a chain hook's implementation may return" "stop outside a chain is an error"
sed -i 's/^isolation = "none";$//' "$T/sstop/hook-a.plugin"
run "$SH" hooks call doc.render x --plugins-dir "$T/sstop" --allow-unconfined
expect_rc 1 "a singleton implementation in a worker returning SH_HOOK_STOP"
expect_in err "returned SH_HOOK_STOP, which only a chain hook's implementation may return" "stop outside a chain, in a worker"

# A hook symbol that only a library the plugin links defines (libc's puts) is not the plugin's implementation.
cp -r "$H" "$T/libcsym"
sed -i 's/symbol = "h_add"/symbol = "puts"/' "$T/libcsym/hook-a.plugin"
run "$SH" hooks call doc.render x --plugins-dir "$T/libcsym"
expect_rc 2 "a hook symbol resolved from a linked library"
expect_in err "declares hook 'doc.add' implemented by symbol 'puts'" "the foreign symbol is named"
expect_in err "not by $T/libcsym/libhook_a.so" "the error says the plugin's library does not define it"

# ---- function stages ---------------------------------------------------------------------------------------------------
mkdir -p "$T/fn" && link_lib "$T/fn" libfnstage.so && link_lib "$T/fn" libhook_a.so
cp "$H/hook-a.plugin" "$T/fn/"
cat >"$T/fn/fn.plugin" <<'DESC'
format = 1; name = "test/fn"; version = "1.0.0"; library = "libfnstage.so"; abi = "1.0";
stages = (
  { type = "hypot"; function = "hypot"; args = ( { type = "double"; field = "x"; }, { type = "double"; field = "y"; } );
    returns = { type = "double"; field = "h"; }; },
  { type = "pow2"; function = "pow"; args = ( { type = "double"; value = 2.0; }, { type = "double"; field = "x"; } );
    returns = { type = "double"; field = "p"; }; }
);
DESC
pipeline "$T/fn.cfg" '{ name = "n"; type = "numbers"; config = { items = ( { x = 3.0; y = 4.0; }, { x = 5; y = 12; } ); }; },
  { name = "h"; type = "hypot"; }, { name = "p"; type = "pow2"; isolation = "none"; },
  { name = "w"; type = "write"; config = { path = "fn.jsonl"; }; }'
run "$SH" run "$T/fn.cfg" --plugins-dir "$T/fn" --allow-unconfined
expect_rc 0 "a pipeline of function stages (libm hypot in a worker, pow in-process)"
python3 - "$T/fn.jsonl" <<'PY' || fail "function stage output"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert [(i["h"], i["p"]) for i in items] == [(5.0, 8.0), (13.0, 32.0)], items
PY
pipeline "$T/fn2.cfg" '{ name = "n"; type = "numbers"; config = { items = ( { x = 3.0; } ); }; }, { name = "h"; type = "hypot"; }'
run "$SH" run "$T/fn2.cfg" --plugins-dir "$T/fn" --allow-unconfined
expect_rc 1 "a function stage on an item without the field"
expect_in err "item 1 has no field 'y' for argument 2 of hypot()" "the missing field is named"
sed -i 's/function = "pow"/function = "no_such_function"/' "$T/fn/fn.plugin"
run "$SH" run "$T/fn.cfg" --plugins-dir "$T/fn" --allow-unconfined
expect_rc 1 "a function stage whose symbol is missing"
expect_in err "symbol 'no_such_function'" "the missing function is named"
sed -i 's/returns = { type = "double"; field = "h"; };/returns = { type = "value"; field = "h"; };/' "$T/fn/fn.plugin"
run "$SH" plugins validate "$T/fn/fn.plugin"
expect_rc 2 "a function stage returning a value handle"
expect_in err "fn.plugin:4: a function stage returns a number, bool, string or void, not value" "return type checked with file:line"
cat >"$T/fn/const.plugin" <<'DESC'
format = 1; name = "test/fnc"; version = "1.0.0"; library = "libfnstage.so"; abi = "1.0";
stages = (
  { type = "p"; function = "pow";
    args = ( { type = "double"; value = "two"; }, { type = "i32"; value = 5000000000L; } );
    returns = { type = "double"; field = "p"; }; }
);
DESC
run "$SH" plugins validate "$T/fn/const.plugin"
expect_rc 2 "a function stage constant of the wrong type"
expect_in err "const.plugin:4: argument 1 of pow(): the constant: expected double, got string" "a mistyped constant is named with file:line"
expect_in err "const.plugin:4: argument 2 of pow(): the constant: expected i32, got integer out of range" "an out-of-range constant is named with file:line"

# ---- run --watch: a plugin changed between runs is linked again -------------------------------------------------------
# The hook table points into the plugin registry: a reload replaces the registry, so the table must go with it.
cp -r "$H" "$T/wh"
pipeline "$T/wh/p.cfg" '{ name = "n"; type = "test/hook-a.numbers"; config = { items = ( { s = "x"; } ); }; },
  { name = "h"; type = "hook"; config = { hook = "doc.render"; args = ( "s" ); }; },
  { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
"$SH" run "$T/wh/p.cfg" --plugins-dir "$T/wh" --watch >"$T/wh.out" 2>"$T/wh.err" &
watcher=$!
for _ in $(seq 120); do grep -qF "for changes" "$T/wh.err" && break; sleep 0.05; done
expect_in "../$(basename "$T")/wh/out.jsonl" '"result":"a:x"' "run --watch: the first run's hook answer"
rm -f "$T/wh/out.jsonl"
sed -i 's/{ hook = "doc.render"; symbol = "h_tag"; priority = 2; }/{ hook = "doc.render"; symbol = "h_tag"; priority = 9; }/' "$T/wh/hook-b.plugin"
for _ in $(seq 120); do [ -s "$T/wh/out.jsonl" ] && break; sleep 0.05; done
kill -TERM $watcher 2>/dev/null
wait $watcher 2>/dev/null
expect_in "../$(basename "$T")/wh/out.jsonl" '"result":"b:x"' "after a reload the changed priority decides"

# ---- the stage's own config and the plugin's section ------------------------------------------------------------------
pipeline "$T/ctx.cfg" '{ name = "c"; type = "test/hook-a.ctx"; }, { name = "w"; type = "write"; config = { path = "ctx.jsonl"; }; }'
run "$SH" run "$T/ctx.cfg" --plugins-dir "$H" --config "$T/greet.cfg"
expect_rc 0 "ctx stage"
expect_in "../$(basename "$T")/ctx.jsonl" '"greeting":"hello"' "a stage sees its plugin's host configuration section"

finish
