# `stagehost new-plugin`: the installed binary scaffolds a plugin, which builds out of tree with meson against
# the installed SDK (pkg-config), loads from a plugins directory and runs in a pipeline; bad names, missing
# arguments and existing files are refused with exit status 2, and nothing is ever overwritten.
. "$(dirname "$0")/lib.sh"

: "${MESON:?}" "${BUILD_ROOT:?}"
command -v ninja >/dev/null || { echo "ninja is not installed" >&2; exit 77; }
dest="$T/dest"
"$MESON" install -C "$BUILD_ROOT" --destdir "$dest" --no-rebuild --quiet >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "meson install --destdir"; finish; }
pc=$(find "$dest" -name stagehost-sdk.pc | head -n 1)
[ -n "$pc" ] || { fail "stagehost-sdk.pc is not installed"; finish; }
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
sh_bin=$(find "$dest" -type f -name stagehost -perm -u+x | head -n 1)
[ -n "$sh_bin" ] || { fail "the stagehost binary is not installed"; finish; }

# --- the happy path: scaffold, build out of tree, run -----------------------------------------------------------
run "$sh_bin" new-plugin --help
expect_rc 0 "new-plugin --help"
expect_in out "Usage: stagehost new-plugin NAMESPACE/NAME [DIR]" "new-plugin --help prints its usage"

run "$sh_bin" new-plugin acme/shout "$T/shout"
expect_rc 0 "new-plugin acme/shout DIR"
expect_in out "Created plugin acme/shout" "new-plugin says what it created"
for f in shout.c shout.plugin meson.build meson_options.txt README.md example.cfg example/hello.txt; do
    [ -f "$T/shout/$f" ] || fail "the scaffold lacks $f"
done
grep -q '@[A-Z_]*@' "$T/shout/shout.c" "$T/shout/shout.plugin" "$T/shout/meson.build" "$T/shout/README.md" \
    && fail "a template placeholder was left unexpanded"
grep -qF 'name = "acme/shout";' "$T/shout/shout.plugin" || fail "the descriptor names the plugin"
grep -qF "dependency('stagehost-sdk'" "$T/shout/meson.build" || fail "meson.build uses the SDK's pkg-config file"

# Without DIR, the scaffold lands in ./NAME.
(cd "$T" && "$sh_bin" new-plugin acme/default-dir >/dev/null 2>&1) || fail "new-plugin without DIR"
[ -f "$T/default-dir/default-dir.plugin" ] || fail "new-plugin without DIR writes into ./NAME"

# Warnings are errors: the scaffold must build cleanly for an author who turns them on.
(cd "$T/shout" && "$MESON" setup build --werror) >"$T/setup.log" 2>&1 \
    || { cat "$T/setup.log" >&2; fail "meson setup of the scaffold against the installed SDK"; finish; }
ninja -C "$T/shout/build" >"$T/ninja.log" 2>&1 || { cat "$T/ninja.log" >&2; fail "ninja builds the scaffold"; finish; }
[ -f "$T/shout/build/libshout.so" ] && [ -f "$T/shout/build/shout.plugin" ] \
    || fail "the build directory holds the library and its descriptor"
# Installs nothing by default.
"$MESON" install -C "$T/shout/build" --destdir "$T/shout-dest" --quiet >"$T/minstall.log" 2>&1
[ -z "$(find "$T/shout-dest" -type f 2>/dev/null)" ] || fail "the scaffold installs nothing unless asked"

mkdir -p "$T/plugins" "$T/docs"
cp "$T/shout/build/libshout.so" "$T/shout/build/shout.plugin" "$T/plugins/"
run "$sh_bin" plugins validate "$T/plugins/shout.plugin"
expect_rc 0 "the scaffolded plugin passes plugins validate"
printf 'hello, world' >"$T/docs/a.txt"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; }; },
  { name = "s"; type = "shout"; }, { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$sh_bin" run "$T/p.cfg" --plugins-dir "$T/plugins"
expect_rc 0 "a pipeline runs the scaffolded stage"
grep -qF '"content":"HELLO, WORLD"' "$T/out.jsonl" 2>/dev/null || fail "the scaffolded stage upper-cases content"
grep -qF '"processed_by":"acme/shout"' "$T/out.jsonl" 2>/dev/null || fail "the scaffolded stage annotates items"

# The scaffold's own example pipeline, run as its README says.
run "$sh_bin" run "$T/shout/example.cfg" --plugins-dir "$T/shout/build"
expect_rc 0 "the scaffold's example.cfg runs"
grep -qF 'HELLO FROM ACME/SHOUT' "$T/shout/out.jsonl" 2>/dev/null || fail "the example pipeline writes out.jsonl"

# The stage fails with a message when its field is missing.
pipeline "$T/bad.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; }; },
  { name = "s"; type = "shout"; config = { field = "nope"; }; }'
run "$sh_bin" run "$T/bad.cfg" --plugins-dir "$T/plugins"
expect_rc 1 "the scaffolded stage fails on a missing field"
expect_in err "has no string field 'nope'" "the scaffolded stage's failure says why"

# A name with '-' and a leading digit still makes a valid project, library and stage type.
run "$sh_bin" new-plugin acme/3d-text "$T/3d"
expect_rc 0 "new-plugin acme/3d-text"
(cd "$T/3d" && "$MESON" setup build --werror && ninja -C build) >"$T/3d.log" 2>&1 \
    || { cat "$T/3d.log" >&2; fail "the scaffold of acme/3d-text builds"; }
run "$sh_bin" plugins validate "$T/3d/build/3d-text.plugin"
expect_rc 0 "the scaffold of acme/3d-text passes plugins validate"

# --- refusals -----------------------------------------------------------------------------------------------------
run "$sh_bin" new-plugin
expect_rc 2 "new-plugin without a name"
expect_in err "expected NAMESPACE/NAME" "a missing name is explained"

for bad in Acme/shout shout acme/ /shout acme/sh_out acme/shout/x -acme/shout 'acme/sh out'; do
    run "$sh_bin" new-plugin -- "$bad" "$T/bad-name"   # -- so that -acme/shout is an argument
    expect_rc 2 "new-plugin '$bad'"
    expect_in err "is not a valid plugin name" "'$bad' is refused as a name"
done
[ -e "$T/bad-name" ] && fail "a refused name created its directory"

run "$sh_bin" new-plugin acme/read "$T/read"
expect_rc 2 "a plugin named after a built-in stage type"
expect_in err "built-in stage type" "the built-in clash is explained"

run "$sh_bin" new-plugin acme/x "$T/x" extra
expect_rc 2 "new-plugin with too many arguments"

# An existing scaffold: nothing overwritten, every clash named.
before=$(md5sum "$T/shout/shout.c")
run "$sh_bin" new-plugin acme/shout "$T/shout"
expect_rc 2 "new-plugin into an existing scaffold"
expect_in err "$T/shout/shout.c" "the clashing file is named"
expect_in err "never overwrites" "the refusal says nothing is overwritten"
expect_in err "OTHER-DIR" "the refusal says what to do"
[ "$(md5sum "$T/shout/shout.c")" = "$before" ] || fail "an existing file was overwritten"

# One clashing file in an otherwise empty directory: refused, and nothing else written.
mkdir -p "$T/partial"
echo mine >"$T/partial/meson.build"
run "$sh_bin" new-plugin acme/partial "$T/partial"
expect_rc 2 "new-plugin into a directory with a clashing file"
expect_in err "$T/partial/meson.build" "the one clashing file is named"
[ "$(cat "$T/partial/meson.build")" = mine ] || fail "the clashing file was overwritten"
[ -e "$T/partial/partial.c" ] && fail "new-plugin wrote files despite a clash"

# An existing directory without clashes is fine (scaffolding into a fresh checkout).
mkdir -p "$T/existing" && echo keep >"$T/existing/NOTES"
run "$sh_bin" new-plugin acme/existing "$T/existing"
expect_rc 0 "new-plugin into an existing directory without clashes"
[ "$(cat "$T/existing/NOTES")" = keep ] || fail "an unrelated file was touched"

# DIR is a file.
echo x >"$T/afile"
run "$sh_bin" new-plugin acme/afile "$T/afile"
expect_rc 2 "new-plugin with DIR a regular file"
expect_in err "is not a directory" "DIR being a file is explained"

finish
