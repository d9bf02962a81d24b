# Development mode: run --watch runs again on a change without restarting; serve --dev revalidates changed
# plugins between requests and keeps the working version when the new one is refused.
. "$(dirname "$0")/lib.sh"

# A failing check must not leave a host behind: it would hold the test's output open.
host= server=
trap 'kill -KILL $host $server 2>/dev/null; rm -rf "$T"' EXIT

# wait_until CMD...: polls CMD for up to 6 s; fails when it never succeeds.
wait_until() {
    for _ in $(seq 120); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# count FILE TEXT: how many lines of FILE hold TEXT.
count() { grep -cF -- "$2" "$1" 2>/dev/null || true; }
# seen FILE TEXT N: FILE holds TEXT on at least N lines.
seen() { [ "$(count "$1" "$2")" -ge "$3" ]; }
# counter FILE: "CALLS PID" from the counter stage's output in FILE.
counter() { python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d["calls"], d["pid"])' "$1"; }
# gone PID: the process has exited (and, as a child of ours, been reaped, or is not ours to reap).
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }
# expect_in_file FILE TEXT DESCRIPTION: like expect_in, for any file.
expect_in_file() { grep -qF -- "$2" "$1" || fail "$3: $(basename "$1") lacks '$2'"; }
# no_process TEXT: no process has TEXT in its command line (the zygote and workers keep the host's).
no_process() { ! pgrep -f -- "$1" >/dev/null; }

# A plugin directory of our own, with a copy of the library (not a link), so the test can replace it.
mkdir -p "$T/w" "$T/build"
chmod 755 "$T/w" "$T/build"
cp "$TEST_PLUGINS/libfaults.so" "$T/w/libfaults.so"
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/w/faults.plugin"

run "$SH" run --help
expect_in out "--watch" "run --help documents --watch"
run "$SH" serve --help
expect_in out "--dev" "serve --help documents --dev"
run "$SH" run "$T/none.cfg" --dev
expect_rc 2 "run --dev"
expect_in err "use --watch" "run --dev points at --watch"
run timeout 10 "$SH" serve --socket "$T/none.sock" --watch
expect_rc 2 "serve --watch"
expect_in err "use --dev" "serve --watch points at --dev"

# ---- run --watch ----
pipeline "$T/watch.cfg" '{ name = "c"; type = "test/faults.counter"; },
  { name = "w"; type = "write"; config = { path = "out1.jsonl"; }; }'
"$SH" run "$T/watch.cfg" --plugins-dir "$T/w" --watch >"$T/watch.out" 2>"$T/watch.err" &
host=$!

wait_until test -s "$T/out1.jsonl" || { fail "run --watch: the first run wrote nothing"; sed 's/^/    /' "$T/watch.err" >&2; finish; }
read -r c1 p1 <<<"$(counter "$T/out1.jsonl")"
[ "$c1" = 1 ] || fail "run --watch: the first run counted $c1 calls"
wait_until seen "$T/watch.err" "for changes" 1 || fail "run --watch does not say it is watching"

# The pipeline changes: a second run, on the same warm worker, writes the new output.
pipeline "$T/watch.cfg" '{ name = "c"; type = "test/faults.counter"; },
  { name = "w"; type = "write"; config = { path = "out2.jsonl"; }; }'
wait_until test -s "$T/out2.jsonl" || fail "run --watch: no run after the pipeline changed"
read -r c2 p2 <<<"$(counter "$T/out2.jsonl")"
[ "$c2 $p2" = "2 $p1" ] || fail "run --watch: the worker was not kept warm across runs: $c1/$p1 then $c2/$p2"
seen "$T/watch.err" "change detected (pipeline $T/watch.cfg changed)" 1 || fail "the re-run does not say what changed"

# The library is replaced in place: its worker is retired, and the next run starts afresh on the new code.
rm "$T/out2.jsonl"
cp "$TEST_PLUGINS/libfaults.so" "$T/w/libfaults.so"
wait_until test -s "$T/out2.jsonl" || fail "run --watch: no run after the library changed"
read -r c3 p3 <<<"$(counter "$T/out2.jsonl")"
[ "$c3" = 1 ] && [ "$p3" != "$p1" ] || fail "run --watch: after the library changed, $c3/$p3 (old worker $p1)"
wait_until gone "$p1" || fail "run --watch: the worker $p1 of the old library was not retired"
seen "$T/watch.err" "updated: library $T/w/libfaults.so changed" 1 || fail "the library change is not named"

# A broken descriptor fails that run, and watching goes on; fixing it runs again.
faults_descriptor | sed 's|@LIB@|libfaults.so|; s|version = "1.0.0"|version = "1.x"|' >"$T/w/faults.plugin"
wait_until seen "$T/watch.err" "plugin 'test/faults' is now invalid" 1 || fail "run --watch: the broken descriptor is not reported"
wait_until seen "$T/watch.err" "not a semantic version" 2 || fail "run --watch: the run does not say why the plugin is unusable"
kill -0 "$host" 2>/dev/null || fail "run --watch stopped after a failed run"
rm -f "$T/out2.jsonl"
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/w/faults.plugin"
wait_until test -s "$T/out2.jsonl" || fail "run --watch: no run after the descriptor was fixed"

# The descriptor names a linked library; writing the link's target (a build directory elsewhere) is a change.
cp "$TEST_PLUGINS/libfaults.so" "$T/build/libfaults.so"
ln -s "$T/build/libfaults.so" "$T/w/liblinked.so"
read -r _ p4 <<<"$(counter "$T/out2.jsonl")"
rm "$T/out2.jsonl"
faults_descriptor | sed 's|@LIB@|liblinked.so|' >"$T/w/faults.plugin"
wait_until test -s "$T/out2.jsonl" || fail "run --watch: no run after the descriptor named a linked library"
read -r c5 p5 <<<"$(counter "$T/out2.jsonl")"
[ "$c5" = 1 ] && [ "$p5" != "$p4" ] || fail "run --watch: after the descriptor changed, $c5/$p5 (old worker $p4)"
rm "$T/out2.jsonl"
cp "$TEST_PLUGINS/libfaults.so" "$T/build/libfaults.so"
wait_until test -s "$T/out2.jsonl" || fail "run --watch: writing the linked library's target went unnoticed"
seen "$T/watch.err" "updated: library $T/w/liblinked.so changed" 1 || fail "the linked library's change is not named"
read -r c6 p6 <<<"$(counter "$T/out2.jsonl")"
[ "$c6" = 1 ] && [ "$p6" != "$p5" ] || fail "run --watch: after the linked library changed, $c6/$p6 (old worker $p5)"

# A burst of writes is one change: one re-run.
runs=$(count "$T/watch.err" "change detected")
for i in 1 2 3 4 5; do echo "# save $i" >>"$T/w/faults.plugin"; done # builtins: no gap a busy machine could widen
wait_until seen "$T/watch.err" "change detected" $((runs + 1)) || fail "run --watch: the burst caused no run"
sleep 0.6
[ "$(count "$T/watch.err" "change detected")" = $((runs + 1)) ] || fail "run --watch: a burst of writes ran more than once"

# A change to something else in a watched directory runs nothing.
runs=$(count "$T/watch.err" "change detected")
echo data >"$T/w/notes.txt"
echo data >"$T/unrelated.cfg"
sleep 0.6
[ "$(count "$T/watch.err" "change detected")" = "$runs" ] || fail "run --watch ran again for an unrelated file"

read -r _ plast <<<"$(counter "$T/out2.jsonl")"
kill -INT "$host"
wait_until gone "$host" || { fail "run --watch did not stop on SIGINT"; kill -KILL "$host"; }
wait "$host"
rc=$?
host=
[ "$rc" = 0 ] || fail "run --watch exited $rc on SIGINT, expected 0"
wait_until gone "$plast" || fail "run --watch left its worker $plast behind"
wait_until no_process "$T/watch.cfg" || fail "run --watch left processes behind: $(pgrep -af "$T/watch.cfg")"

# ---- serve --dev ----
mkdir -p "$T/d"
chmod 755 "$T/d"
cp "$TEST_PLUGINS/libfaults.so" "$T/d/libfaults.so"
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/d/faults.plugin"
S="$T/s.sock"
# test/marker requires test/faults: its worker loads test/faults too.
plugin_dir marker libmarker.so '
format = 1; name = "test/marker"; version = "0.1.0"; library = "@LIB@"; abi = "1.0";
stages = ( { type = "mark"; output = "document"; } ); requires = ( "test/faults >= 1.0" );'
pipeline "$T/mark.cfg" '{ name = "m"; type = "test/marker.mark"; }'
"$SH" serve --socket "$S" --plugins-dir "$T/d" --plugins-dir "$T/marker" --dev -v >"$T/serve.out" 2>"$T/serve.err" &
server=$!
wait_until test -S "$S" || { fail "serve --dev did not create its socket"; sed 's/^/    /' "$T/serve.err" >&2; finish; }
ctl() { run "$SH" ctl --socket "$S" "$@"; }
pipeline "$T/counter.cfg" '{ name = "c"; type = "test/faults.counter"; },
  { name = "w"; type = "write"; config = { path = "c.jsonl"; }; }'

ctl run "$T/counter.cfg"
read -r c1 p1 <<<"$(counter "$T/c.jsonl")"
ctl run "$T/counter.cfg"
read -r c2 p2 <<<"$(counter "$T/c.jsonl")"
[ "$c1 $c2" = "1 2" ] && [ "$p1" = "$p2" ] || fail "serve --dev: workers are not warm: $c1/$p1 then $c2/$p2"

ctl run "$T/mark.cfg"
expect_rc 0 "serve --dev: a plugin that requires test/faults"
ctl plugins
grep -q "^test/marker .* worker " "$T/out" || fail "serve --dev: the marker's worker is warm"

# A valid change: the entry is replaced and the old worker retired; the next run starts a new one. The worker of
# a plugin that requires it goes too.
faults_descriptor 'description = "second version";' | sed 's|@LIB@|libfaults.so|' >"$T/d/faults.plugin"
wait_until seen "$T/serve.err" "reload: plugin 'test/faults' updated: descriptor" 1 ||
    fail "serve --dev: the valid change was not applied"
expect_in_file "$T/serve.err" "plugin 'test/marker' restarts too" "serve --dev: the dependent plugin is named"
ctl plugins
grep -q "^test/marker .* worker " "$T/out" && fail "serve --dev: the worker of a plugin requiring the changed one was retired"
wait_until gone "$p1" || fail "serve --dev: the old worker $p1 was not retired"
ctl run "$T/counter.cfg"
expect_rc 0 "serve --dev: the run after a valid change"
read -r c3 p3 <<<"$(counter "$T/c.jsonl")"
[ "$c3" = 1 ] && [ "$p3" != "$p1" ] || fail "serve --dev: after a valid change, $c3/$p3 (old worker $p1)"

# An invalid descriptor is refused and logged; the working version and its warm worker stay.
faults_descriptor | sed 's|@LIB@|libfaults.so|; s|version = "1.0.0"|version = "1.x"|' >"$T/d/faults.plugin"
wait_until seen "$T/serve.err" "refused the new version of plugin 'test/faults'" 1 ||
    fail "serve --dev: the invalid descriptor was not refused"
expect_in_file "$T/serve.err" "version '1.x' is not a semantic version" "serve --dev: the refusal says why"
expect_in_file "$T/serve.err" "keeping the loaded version 1.0.0" "serve --dev: the refusal says what stays"
ctl run "$T/counter.cfg"
expect_rc 0 "serve --dev: the run after a refused descriptor"
read -r c4 p4 <<<"$(counter "$T/c.jsonl")"
[ "$c4 $p4" = "2 $p3" ] || fail "serve --dev: the refused version replaced the working one: $c4/$p4, expected 2/$p3"

# A well-formed descriptor whose binary does not match it is refused by the throwaway worker's check.
faults_descriptor | sed 's|@LIB@|libfaults.so|; s|{ type = "failbytes"; }|{ type = "failbytes"; }, { type = "nosuch"; }|' \
    >"$T/d/faults.plugin"
wait_until seen "$T/serve.err" "refused the new version of plugin 'test/faults'" 2 ||
    fail "serve --dev: the mismatching binary was not refused"
expect_in_file "$T/serve.err" "does not match its descriptor" "serve --dev: the binary refusal says why"
ctl run "$T/counter.cfg"
read -r c5 p5 <<<"$(counter "$T/c.jsonl")"
[ "$c5 $p5" = "3 $p3" ] || fail "serve --dev: the refused binary replaced the working one: $c5/$p5, expected 3/$p3"

# Fixed again: the new version goes in.
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/d/faults.plugin"
wait_until seen "$T/serve.err" "reload: plugin 'test/faults' updated: descriptor" 2 ||
    fail "serve --dev: the fixed descriptor was not applied"
ctl run "$T/counter.cfg"
read -r c6 p6 <<<"$(counter "$T/c.jsonl")"
[ "$c6" = 1 ] && [ "$p6" != "$p3" ] || fail "serve --dev: after the fix, $c6/$p6 (old worker $p3)"

# A replaced library is checked, then swapped in.
cp "$TEST_PLUGINS/libfaults.so" "$T/d/libfaults.so"
wait_until seen "$T/serve.err" "updated: library $T/d/libfaults.so changed" 1 ||
    fail "serve --dev: the replaced library was not applied"
ctl run "$T/counter.cfg"
read -r c7 p7 <<<"$(counter "$T/c.jsonl")"
[ "$c7" = 1 ] && [ "$p7" != "$p6" ] || fail "serve --dev: after the library changed, $c7/$p7 (old worker $p6)"

# Deleted: the plugin disappears and its worker goes.
rm "$T/d/faults.plugin"
wait_until seen "$T/serve.err" "reload: plugin 'test/faults' removed" 1 || fail "serve --dev: the deletion was not applied"
wait_until gone "$p7" || fail "serve --dev: the worker $p7 of the deleted plugin was not unloaded"
ctl run "$T/counter.cfg"
expect_rc 2 "serve --dev: a run needing the deleted plugin"
expect_in err "Plugin not found: test/faults" "serve --dev: the deleted plugin is not found"

# Added back: found again.
faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/d/faults.plugin"
wait_until seen "$T/serve.err" "reload: plugin 'test/faults' added" 1 || fail "serve --dev: the new descriptor was not added"
ctl run "$T/counter.cfg"
expect_rc 0 "serve --dev: a run after the plugin was added back"

read -r _ plast <<<"$(counter "$T/c.jsonl")"
kill -TERM "$server"
wait_until gone "$server" || { fail "serve --dev did not stop on SIGTERM"; kill -KILL "$server"; }
wait "$server"
rc=$?
server=
[ "$rc" = 0 ] || fail "serve --dev exited $rc on SIGTERM, expected 0"
wait_until gone "$plast" || fail "serve --dev left its worker $plast behind"
wait_until no_process "$S" || fail "serve --dev left processes behind: $(pgrep -af "$S")"

finish
