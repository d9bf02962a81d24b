# Discovery reads descriptors only: it never loads plugin code. Search order, sorting, shadowing, and refused
# descriptors that fail alone.
. "$(dirname "$0")/lib.sh"

# The marker plugin writes its marker from inside its sandbox: it must ask for, and be granted, the variable
# naming the file and the directory holding it.
mkdir -p "$T/markers"
chmod 777 "$T/markers"
export SH_TEST_MARKER="$T/markers/loaded"
GRANTS=(--grant "test/marker:env=SH_TEST_MARKER" --grant "test/marker:write=$T/markers")
plugin_dir marker libmarker.so "
format = 1; name = \"test/marker\"; version = \"0.1.0\"; library = \"@LIB@\"; abi = \"1.0\";
stages = ( { type = \"mark\"; output = \"document\"; } );
permissions = { env = ( \"SH_TEST_MARKER\" ); write = ( \"$T/markers\" ); };"

run "$SH" plugins list --plugins-dir "$T/marker"
expect_rc 0 "plugins list"
expect_in out "test/marker" "plugins list shows the plugin"
expect_in out "available" "plugins list shows the status"
expect_in out "$T/marker/marker.plugin" "plugins list shows the descriptor path"
[ ! -e "$SH_TEST_MARKER" ] || fail "plugins list loaded the plugin library (marker exists)"

run "$SH" resolve mark --plugins-dir "$T/marker"
expect_rc 0 "resolve"
[ ! -e "$SH_TEST_MARKER" ] || fail "resolve loaded the plugin library"

pipeline "$T/p.cfg" '{ name = "m"; type = "mark"; }, { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/marker" "${GRANTS[@]}"
expect_rc 0 "run a marker stage"
[ -e "$SH_TEST_MARKER" ] || fail "run did not load the plugin library"
grep -q '"marked":true' "$T/out.jsonl" || fail "the marker stage's output was not written"

# STAGEHOST_PLUGIN_PATH is searched too, after --plugins-dir.
rm -f "$SH_TEST_MARKER"
STAGEHOST_PLUGIN_PATH="$T/nonexistent:$T/marker" run "$SH" resolve mark
expect_rc 0 "STAGEHOST_PLUGIN_PATH is searched"
expect_in out "test/marker" "STAGEHOST_PLUGIN_PATH plugin resolves"

# A broken descriptor is refused alone, with file:line, and the rest still works.
mkdir -p "$T/mixed"
link_lib "$T/mixed" libmarker.so
cp "$T/marker/marker.plugin" "$T/mixed/b_marker.plugin"
printf 'format = 1;\nname = "test/broken";\nversion = "1.x";\n' >"$T/mixed/a_broken.plugin"
printf 'format = 1;\nname = "test/syntax";\nversion = ;\n' >"$T/mixed/c_syntax.plugin"
run "$SH" plugins list --plugins-dir "$T/mixed"
expect_rc 0 "plugins list with broken descriptors"
expect_in out "$T/mixed/a_broken.plugin:3: version '1.x' is not a semantic version" "invalid version, file:line"
expect_in out "$T/mixed/c_syntax.plugin:3: syntax error" "syntax error, file:line"
expect_in out "unavailable" "broken descriptor status"
run "$SH" run "$T/p.cfg" --plugins-dir "$T/mixed" "${GRANTS[@]}"
expect_rc 0 "run next to broken descriptors"
expect_in err "warning: ignoring plugin: $T/mixed/a_broken.plugin:3" "run warns about the broken descriptor"

# Sorted order, whatever order the files were created in; and shadowing by the earlier directory.
link_lib "$T/sorted" libmarker.so
link_lib "$T/later" libmarker.so
for n in zeta alpha mid; do
    printf 'format = 1; name = "test/%s"; version = "1.0.0"; library = "libmarker.so"; abi = "1.0"; stages = ( { type = "%s_t"; } );\n' \
        "$n" "$n" >"$T/sorted/$n.plugin"
done
printf 'format = 1; name = "test/alpha"; version = "9.0.0"; library = "libmarker.so"; abi = "1.0"; stages = ( { type = "alpha_t"; } );\n' \
    >"$T/later/alpha.plugin"
run "$SH" plugins list --plugins-dir "$T/sorted" --plugins-dir "$T/later"
expect_rc 0 "plugins list, two dirs"
order=$(grep -o 'test/[a-z]*' "$T/out" | tr '\n' ' ')
[ "$order" = "test/alpha test/mid test/zeta test/alpha " ] || fail "discovery order: got '$order'"
expect_in out "shadowed" "the later test/alpha is shadowed"
expect_in out "shadowed by $T/sorted/alpha.plugin" "shadowing names the winner"
run "$SH" resolve test/alpha.alpha_t --plugins-dir "$T/sorted" --plugins-dir "$T/later"
expect_in out "test/alpha 1.0.0" "the earlier directory wins"

run "$SH" plugins list --json --plugins-dir "$T/mixed"
expect_rc 0 "plugins list --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [p["status"] for p in d] == ["unavailable","available","unavailable"], d' "$T/out" \
    || fail "plugins list --json is not the expected JSON"

finish
