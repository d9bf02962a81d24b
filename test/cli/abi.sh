# ABI 1.1 through the real binary: a plugin compiled against ABI 1.0 runs as its 1.1 build does, finish() emits
# after the last batch in every isolation mode, and a C++ plugin built with the SDK loads and runs.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/docs"
printf 'alpha' >"$T/docs/a.txt"
printf 'beta!' >"$T/docs/b.txt"
printf 'gamma gamma' >"$T/docs/c.txt"

# ---- a 1.0 plugin on a 1.1 host ----------------------------------------------------------------------------------
for v in 1_0 current; do
    plugin_dir "stamp_$v" "libabi_$v.so" 'format = 1; name = "test/stamp"; version = "1.0.0"; library = "@LIB@";
abi = "1.0"; stages = ( { type = "stamp"; } );'
done
run "$SH" plugins inspect test/stamp --plugins-dir "$T/stamp_1_0"
expect_rc 0 "inspect the 1.0 plugin"
expect_in out "the plugin uses ABI 1.0" "the 1.0 plugin negotiates 1.0"
for iso in process none call; do
    for v in 1_0 current; do
        pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"docs\"; }; },
          { name = \"s\"; type = \"test/stamp.stamp\"; isolation = \"$iso\"; },
          { name = \"w\"; type = \"write\"; config = { path = \"stamp_$v.jsonl\"; }; }"
        run "$SH" run "$T/p.cfg" --plugins-dir "$T/stamp_$v"
        expect_rc 0 "the $v build runs ($iso)"
    done
    cmp -s "$T/stamp_1_0.jsonl" "$T/stamp_current.jsonl" \
        || fail "the 1.0 build's output differs from the 1.1 build's ($iso)"
    grep -qF '"stamp":2,"batch":3' "$T/stamp_1_0.jsonl" || fail "the 1.0 build stamped nothing ($iso)"
    rm -f "$T/stamp_1_0.jsonl" "$T/stamp_current.jsonl"
done

# ---- finish() in every isolation mode ---------------------------------------------------------------------------
plugin_dir finish libfinish.so 'format = 1; name = "test/finish"; version = "1.1.0"; library = "@LIB@"; abi = "1.1";
stages = ( { type = "total"; } );'
for iso in none process call; do
    pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"docs\"; }; },
      { name = \"t\"; type = \"test/finish.total\"; isolation = \"$iso\"; config = { pass = true; }; },
      { name = \"w\"; type = \"write\"; config = { path = \"total.jsonl\"; }; }"
    run "$SH" run "$T/p.cfg" --plugins-dir "$T/finish"
    expect_rc 0 "finish ($iso)"
    python3 - "$T/total.jsonl" <<'PY' || fail "finish ($iso): the items, then the total"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l.get("path", "").rsplit("/", 1)[-1] for l in lines[:3]] == ["a.txt", "b.txt", "c.txt"], lines
assert lines[3:] == [{"items": 3, "bytes": 21, "batches": 1}], lines
PY
    rm -f "$T/total.jsonl"

    # A source stage gets one empty batch, then finish().
    pipeline "$T/p.cfg" "{ name = \"t\"; type = \"test/finish.total\"; isolation = \"$iso\"; },
      { name = \"w\"; type = \"write\"; config = { path = \"source.jsonl\"; }; }"
    run "$SH" run "$T/p.cfg" --plugins-dir "$T/finish"
    expect_rc 0 "finish of a source stage ($iso)"
    grep -qxF '{"items":0,"bytes":0,"batches":1}' "$T/source.jsonl" 2>/dev/null \
        || fail "finish of a source stage ($iso): $(cat "$T/source.jsonl" 2>&1)"

    # A failing finish() fails the stage with its message; what it emitted goes nowhere.
    pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"docs\"; }; },
      { name = \"t\"; type = \"test/finish.total\"; isolation = \"$iso\"; config = { pass = true; fail = true; }; },
      { name = \"w\"; type = \"write\"; config = { path = \"failed.jsonl\"; }; }"
    run "$SH" run "$T/p.cfg" --plugins-dir "$T/finish"
    expect_rc 1 "a failing finish ($iso)"
    expect_in err "finish failed on purpose after 3 items" "a failing finish names its reason ($iso)"
    [ ! -e "$T/failed.jsonl" ] || fail "a failing finish's items were written ($iso)"
done

# ---- a C++ plugin ---------------------------------------------------------------------------------------------------
if [ -e "$TEST_PLUGINS/libcxx_plugin.so" ]; then
    plugin_dir cxx libcxx_plugin.so 'format = 1; name = "test/cxx"; version = "1.0.0"; library = "@LIB@"; abi = "1.1";
stages = ( { type = "shout"; input = "document"; output = "document"; }, { type = "count"; } );'
    for iso in none process; do
        pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"docs\"; }; },
          { name = \"s\"; type = \"test/cxx.shout\"; isolation = \"$iso\"; },
          { name = \"w\"; type = \"write\"; config = { path = \"shout.jsonl\"; }; },
          { name = \"c\"; type = \"test/cxx.count\"; isolation = \"$iso\"; },
          { name = \"w2\"; type = \"write\"; config = { path = \"count.jsonl\"; }; }"
        run "$SH" run "$T/p.cfg" --plugins-dir "$T/cxx"
        expect_rc 0 "the C++ plugin runs ($iso)"
        grep -qF '"content":"GAMMA GAMMA"' "$T/shout.jsonl" 2>/dev/null || fail "the C++ stage's output ($iso)"
        grep -qxF '{"count":3,"by":"c++"}' "$T/count.jsonl" 2>/dev/null || fail "the C++ stage's finish ($iso)"
        rm -f "$T/shout.jsonl" "$T/count.jsonl"
    done
else
    echo "no C++ compiler: the C++ plugin was not built, its checks are skipped"
fi

finish
