#!/usr/bin/env bash
# The built-in `write`: JSON Lines through a temporary file renamed into place, made with the user's umask, with
# missing parent directories created; nothing is left behind when it fails.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/in"
printf 'one\ntwo\n' >"$T/in/a.txt"

# write_pipeline NAME WRITE-CONFIG: reads in/a.txt by lines and writes with WRITE-CONFIG.
write_pipeline() {
    pipeline "$T/$1.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"in/a.txt\"; split = \"lines\"; }; },
      { name = \"w\"; type = \"write\"; config = { $2 }; }"
}

# The file's mode is 0666 less the umask, as for a shell redirect; mkstemp's 0600 no longer shows through.
write_pipeline mode 'path = "mode.jsonl";'
(umask 027 && "$SH" run "$T/mode.cfg" >"$T/out" 2>"$T/err")
rc=$?
expect_rc 0 "write under umask 027"
[ "$(stat -c %a "$T/mode.jsonl")" = 640 ] || fail "umask 027: mode $(stat -c %a "$T/mode.jsonl"), expected 640"
[ "$(wc -l <"$T/mode.jsonl")" = 2 ] || fail "two items, two lines"
(umask 022 && "$SH" run "$T/mode.cfg" >"$T/out" 2>"$T/err")
[ "$(stat -c %a "$T/mode.jsonl")" = 644 ] || fail "umask 022 on a rewrite: mode $(stat -c %a "$T/mode.jsonl"), expected 644"

# Missing parent directories are made (0777 less the umask, as mkdir -p would).
write_pipeline deep 'path = "made/by/write/out.jsonl";'
(umask 027 && "$SH" run "$T/deep.cfg" >"$T/out" 2>"$T/err")
rc=$?
expect_rc 0 "write into missing directories"
[ -f "$T/made/by/write/out.jsonl" ] || fail "the output in new directories is missing"
[ "$(stat -c %a "$T/made/by")" = 750 ] || fail "a new directory has mode $(stat -c %a "$T/made/by"), expected 750"
grep -qxF '{"path":"in/a.txt","line":2,"content":"two"}' "$T/made/by/write/out.jsonl" || fail "content in new directories"

# A parent that is a file is named.
printf 'x' >"$T/plainfile"
write_pipeline notdir 'path = "plainfile/out.jsonl";'
run "$SH" run "$T/notdir.cfg"
expect_rc 1 "a parent that is a file"
expect_in err "cannot create $T/plainfile/out.jsonl: $T/plainfile is not a directory" "the file in the way is named"

# A failure at the rename (the target is a directory) leaves no temporary file beside it.
mkdir -p "$T/isdir.jsonl" "$T/keep"
write_pipeline isdir 'path = "isdir.jsonl";'
run "$SH" run "$T/isdir.cfg"
expect_rc 1 "writing onto a directory"
expect_in err "writing $T/isdir.jsonl failed: Is a directory" "rename failure message unchanged"
ls -a "$T" | grep -q '\.tmp-' && fail "a temporary file was left behind: $(ls -a "$T" | grep '\.tmp-')"

# An earlier output is replaced whole, never appended to; empty input gives an empty file.
printf 'old line\nold line\nold line\n' >"$T/keep/out.jsonl"
pipeline "$T/empty.cfg" '{ name = "r"; type = "read"; config = { path = "in/none.txt"; split = "lines"; }; },
  { name = "w"; type = "write"; config = { path = "keep/out.jsonl"; }; }'
: >"$T/in/none.txt"
run "$SH" run "$T/empty.cfg"
expect_rc 0 "write of no items"
[ -f "$T/keep/out.jsonl" ] && [ ! -s "$T/keep/out.jsonl" ] || fail "no items did not replace the file with an empty one"

# Items pass through, so a second write downstream gets the same lines.
pipeline "$T/chain.cfg" '{ name = "r"; type = "read"; config = { path = "in/a.txt"; split = "lines"; }; },
  { name = "w1"; type = "write"; config = { path = "one.jsonl"; }; },
  { name = "w2"; type = "write"; config = { path = "two.jsonl"; }; }'
run "$SH" run "$T/chain.cfg"
expect_rc 0 "two writes in a row"
cmp -s "$T/one.jsonl" "$T/two.jsonl" || fail "items did not pass through write unchanged"

# Configuration is checked strictly, as for the bundled plugins.
write_pipeline typo 'path = "t.jsonl"; pth = "u.jsonl";'
run "$SH" run "$T/typo.cfg"
expect_rc 2 "misspelt key, before anything runs"
expect_in err "$T/typo.cfg:2: stage 'w': config: unknown key 'pth' (did you mean 'path'?)" \
    "misspelt key names the closest, with file:line"
[ ! -e "$T/t.jsonl" ] || fail "a stage with a bad key still wrote"
write_pipeline other 'path = "t.jsonl"; append = true;'
run "$SH" run "$T/other.cfg"
expect_in err "unknown key 'append' for the built-in 'write', which knows: path" "unknown key lists the known ones"
write_pipeline nopath ''
run "$SH" run "$T/nopath.cfg"
expect_in err "config key 'path' is required: the JSON Lines file to write" "path still required, message unchanged"

finish
