# The registry: dependencies, pins, quarantine, health, and the plugin CLI (list --json, inspect, validate, reset).
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/markers"
chmod 777 "$T/markers"
export SH_TEST_MARKER="$T/markers/loaded"

dep_plugin() { # DIR NAME VERSION REQUIRES...: a descriptor of libmarker.so under another name
    local dir=$1 name=$2 version=$3
    shift 3
    local req=""
    for r in "$@"; do req="$req${req:+, }\"$r\""; done
    link_lib "$dir" libmarker.so
    cat >"$dir/${name//\//_}.plugin" <<DESC
format = 1; name = "$name"; version = "$version"; library = "libmarker.so"; abi = "1.0";
stages = ( { type = "mark"; output = "document"; } );
requires = ( $req );
DESC
}

# --- dependencies: missing, unsatisfied, transitive, cycles -------------------------------------------------
mkdir -p "$T/deps"
dep_plugin "$T/deps" test/base 1.4.0
dep_plugin "$T/deps" test/ok 1.0.0 "test/base >= 1.2, < 2"
dep_plugin "$T/deps" test/old 1.0.0 "test/base >= 2"
dep_plugin "$T/deps" test/lost 1.0.0 "test/nowhere"
dep_plugin "$T/deps" test/chain 1.0.0 "test/old"
dep_plugin "$T/deps" test/cyc-a 1.0.0 "test/cyc-b"
dep_plugin "$T/deps" test/cyc-b 1.0.0 "test/cyc-a"
run "$SH" plugins list --json --plugins-dir "$T/deps"
expect_rc 0 "plugins list with dependencies"
python3 - "$T/out" <<'PY' || fail "dependency statuses are wrong"
import json, sys
p = {e["name"]: e for e in json.load(open(sys.argv[1]))}
assert p["test/ok"]["status"] == "available", p["test/ok"]
assert p["test/base"]["status"] == "available"
assert p["test/old"]["status"] == "unavailable" and 'requires "test/base >= 2", but \'test/base\' is version 1.4.0' in p["test/old"]["reason"], p["test/old"]
assert p["test/lost"]["status"] == "unavailable" and "no plugin 'test/nowhere'" in p["test/lost"]["reason"], p["test/lost"]
assert p["test/chain"]["status"] == "unavailable" and "'test/old' is unavailable" in p["test/chain"]["reason"], p["test/chain"]
for n in ("test/cyc-a", "test/cyc-b"):
    assert p[n]["status"] == "unavailable" and "dependency cycle: " in p[n]["reason"], p[n]
assert "test/cyc-a \u2192 test/cyc-b \u2192 test/cyc-a" in p["test/cyc-a"]["reason"], p["test/cyc-a"]
assert p["test/ok"]["directory"].endswith("/deps"), p["test/ok"]
PY
pipeline "$T/p.cfg" '{ name = "m"; type = "test/chain.mark"; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/deps"
expect_rc 2 "a stage of an unavailable plugin"
expect_in err "Plugin 'test/chain' is unavailable: requires \"test/old\"" "the reason reaches the user"

# A dependency is loaded (in the plugin's worker) before the plugin: the marker library's constructor runs.
plugin_dir faults libfaults.so "$(faults_descriptor "requires = ( \"test/marker >= 0.1\" );
permissions = { env = ( \"SH_TEST_MARKER\" ); write = ( \"$T/markers\" ); };")"
link_lib "$T/faults" libmarker.so
printf 'format = 1; name = "test/marker"; version = "0.1.0"; library = "libmarker.so"; abi = "1.0";\nstages = ( { type = "mark"; output = "document"; } );\n' >"$T/faults/marker.plugin"
pipeline "$T/p.cfg" '{ name = "e"; type = "test/faults.echo"; }'
rm -f "$SH_TEST_MARKER"
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --grant test/faults:env=SH_TEST_MARKER --grant "test/faults:write=$T/markers"
expect_rc 0 "a plugin with a dependency"
[ -e "$SH_TEST_MARKER" ] || fail "the dependency was not loaded in the plugin's worker"

# --- pins ---------------------------------------------------------------------------------------------------
mkdir -p "$T/pins"
dep_plugin "$T/pins" test/one 1.0.0
dep_plugin "$T/pins" test/two 1.0.0
run "$SH" resolve mark --plugins-dir "$T/pins"
expect_rc 2 "two providers"
expect_in err "pin one in the host configuration: pins = { mark = \"test/one\"; };" "the conflict says how to pin"
printf 'pins = { mark = "test/two"; };\n' >"$T/pins.cfg"
run "$SH" resolve mark -v --plugins-dir "$T/pins" --config "$T/pins.cfg"
expect_rc 0 "a pinned type"
expect_in out "plugin test/two 1.0.0" "the pin decides"
expect_in out "pinned by the host configuration" "-v says it was pinned"

# --- quarantine -----------------------------------------------------------------------------------------------
mkdir -p "$T/q"
cp "$TEST_PLUGINS/libfaults.so" "$T/q/libfaults.so" # a copy of its own, so the test can change it
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/q/faults.plugin"
pipeline "$T/crash.cfg" '{ name = "boom"; type = "test/faults.segv"; }'
for i in 1 2 3; do
    run "$SH" run "$T/crash.cfg" --plugins-dir "$T/q"
    expect_rc 1 "crash $i"
done
expect_in err "quarantined: its worker crashed 3 times in a row" "the third crash quarantines"
run "$SH" plugins list --plugins-dir "$T/q"
expect_in out "quarantined" "plugins list shows the quarantine"
expect_in out "run 'stagehost plugins reset test/faults'" "plugins list says how to clear it"
run "$SH" run "$T/crash.cfg" --plugins-dir "$T/q"
expect_rc 2 "a run while quarantined"
expect_in err "Plugin 'test/faults' is quarantined" "a quarantined plugin is refused with the reason"
run "$SH" plugins reset test/faults --plugins-dir "$T/q"
expect_rc 0 "plugins reset"
expect_in out "cleared 3 recorded crashes" "reset says what it cleared"
run "$SH" plugins list --plugins-dir "$T/q"
expect_not_in out "quarantined" "reset lifts the quarantine"
for i in 1 2 3; do run "$SH" run "$T/crash.cfg" --plugins-dir "$T/q"; done
cp "$TEST_PLUGINS/libfaults.so" "$T/q/libfaults.so.new" && mv "$T/q/libfaults.so.new" "$T/q/libfaults.so"
touch -d '+1 minute' "$T/q/libfaults.so"
run "$SH" plugins list --plugins-dir "$T/q"
expect_not_in out "quarantined" "a changed library clears the quarantine by itself"

# --- health ---------------------------------------------------------------------------------------------------
plugin_dir sick libfaults.so "$(faults_descriptor "permissions = { env = ( \"SH_FAULTS_UNHEALTHY\" ); read = ( \"$T/flags\" ); };")"
mkdir -p "$T/flags"
chmod 755 "$T/flags"
export SH_FAULTS_UNHEALTHY="$T/flags/unhealthy"
touch "$SH_FAULTS_UNHEALTHY"
pipeline "$T/p.cfg" '{ name = "e"; type = "test/faults.echo"; }, { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/sick" --grant test/faults:env=SH_FAULTS_UNHEALTHY --grant "test/faults:read=$T/flags"
expect_rc 0 "an unhealthy plugin still runs"
expect_in err "plugin 'test/faults' is degraded: its health check failed: plugin 'test/faults' is unhealthy: the flag file" "a failed health check degrades"

# --- inspect and validate ---------------------------------------------------------------------------------------
run "$SH" plugins inspect test/faults --plugins-dir "$T/faults" --grant test/faults:env=SH_TEST_MARKER --grant "test/faults:write=$T/markers"
expect_rc 0 "inspect"
expect_in out "the plugin uses ABI 1.1" "inspect reports the negotiation"
expect_in out "health           ok" "inspect reports health"
expect_in out "requires    test/marker >= 0.1" "inspect shows requirements"
mkdir -p "$T/abi"
link_lib "$T/abi" libabi_wrong_major.so
printf 'format = 1; name = "test/abi"; version = "1.0.0"; library = "libabi_wrong_major.so"; abi = "1.0"; stages = ( { type = "echo"; } );\n' >"$T/abi/abi.plugin"
run "$SH" plugins inspect test/abi --plugins-dir "$T/abi"
expect_rc 2 "inspect of a broken binary"
expect_in out "magic block      FAILED: " "inspect names the failing step"
expect_in out "field 'abi_major' is 2 in the plugin, 1 in the host" "inspect says why"
# Each load step is told by the error's kind, which crosses from the worker with its READY answer.
link_lib "$T/abi" libabi_refuse.so
sed 's/libabi_wrong_major.so/libabi_refuse.so/' "$T/abi/abi.plugin" >"$T/abi/refuse.plugin.tmp"
mkdir -p "$T/refuse" && mv "$T/abi/refuse.plugin.tmp" "$T/refuse/abi.plugin" && link_lib "$T/refuse" libabi_refuse.so
run "$SH" plugins inspect test/abi --plugins-dir "$T/refuse"
expect_in out "magic block      ok" "a refusing plugin passes the magic block"
expect_in out "ABI negotiation  FAILED: " "inspect names the negotiation as the failing step"
mkdir -p "$T/meta"
link_lib "$T/meta" libfaults.so
printf 'format = 1; name = "test/faults"; version = "1.0.0"; library = "libfaults.so"; abi = "1.0"; stages = ( { type = "echo"; } );\n' >"$T/meta/faults.plugin"
run "$SH" plugins inspect test/faults --plugins-dir "$T/meta"
expect_in out "ABI negotiation  ok" "a plugin whose descriptor differs negotiates"
expect_in out "metadata         FAILED: " "inspect names the metadata check as the failing step"
run "$SH" plugins validate "$TEST_PLUGINS/../../plugins"
expect_rc 0 "validate of the bundled plugins"
expect_in out "core_text.plugin: ok: core/text 1.0.0, 3 stage types, ABI 1.1" "validate says what it checked"
printf 'format = 1;\nname = "Bad";\nversion = "x";\n' >"$T/abi/bad.plugin"
run "$SH" plugins validate "$T/abi"
expect_rc 2 "validate with errors"
expect_in err "$T/abi/abi.plugin: magic block check failed" "validate runs the binary check"
expect_in err "$T/abi/bad.plugin:2: plugin name 'Bad'" "validate reports descriptor errors"
expect_in err "$T/abi/bad.plugin:3: version 'x'" "validate reports every descriptor error"

finish
