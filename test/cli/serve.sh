# Long-running mode: stagehost serve keeps workers warm across runs; stagehost ctl drives it.
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"
plugin_dir marker libmarker.so '
format = 1; name = "test/marker"; version = "0.1.0"; library = "@LIB@"; abi = "1.0";
stages = ( { type = "mark"; output = "document"; } );'
S="$T/s.sock"

start_server() { # CONFIG-BODY
    printf '%s\n' "$1" >"$T/host.cfg"
    "$SH" serve --socket "$S" --plugins-dir "$T/faults" --plugins-dir "$T/marker" --config "$T/host.cfg" -v \
        2>>"$T/serve.err" &
    server=$!
    for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
    [ -S "$S" ] || fail "the server did not create its socket"
}

ctl() { run "$SH" ctl --socket "$S" "$@"; }

counter_calls() { python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d["calls"], d["pid"])' "$T/c.jsonl"; }

pipeline "$T/counter.cfg" '{ name = "c"; type = "test/faults.counter"; },
  { name = "w"; type = "write"; config = { path = "c.jsonl"; }; }'
pipeline "$T/crash.cfg" '{ name = "boom"; type = "test/faults.segv"; }'
pipeline "$T/mark.cfg" '{ name = "m"; type = "test/marker.mark"; }'

start_server 'workers = { ttl_ms = 1500; max = 1; };'
[ "$(stat -c %a "$S")" = 600 ] || fail "the socket is not owner-only: $(stat -c %a "$S")"

ctl run "$T/counter.cfg"
expect_rc 0 "ctl run"
expect_in out "of pipeline 't': succeeded" "ctl run reports the run"
read -r calls1 pid1 <<<"$(counter_calls)"
ctl run "$T/counter.cfg"
read -r calls2 pid2 <<<"$(counter_calls)"
[ "$calls1 $calls2" = "1 2" ] && [ "$pid1" = "$pid2" ] || fail "workers are not warm across runs: $calls1/$pid1 then $calls2/$pid2"

ctl plugins
expect_rc 0 "ctl plugins"
expect_in out "test/faults" "ctl plugins lists the loaded plugin"
expect_in out "worker $pid1" "ctl plugins names the worker"

ctl unload test/faults
expect_rc 0 "ctl unload"
kill -0 "$pid1" 2>/dev/null && { sleep 0.2; kill -0 "$pid1" 2>/dev/null && fail "unload left worker $pid1 running"; }
ctl run "$T/counter.cfg"
read -r calls3 pid3 <<<"$(counter_calls)"
[ "$calls3" = 1 ] && [ "$pid3" != "$pid1" ] || fail "after unload the plugin was not loaded afresh: $calls3/$pid3"
ctl unload test/nothing
expect_rc 2 "ctl unload of a plugin not loaded"

# A crash fails that run; the next run gets a fresh worker and works.
ctl run "$T/crash.cfg"
expect_rc 1 "ctl run of a crashing stage"
expect_in err "killed by signal SIGSEGV" "the crash is reported to the client"
ctl run "$T/counter.cfg"
expect_rc 0 "the run after a crash"

# LRU: at most one worker; loading the marker evicts the faults worker.
ctl run "$T/mark.cfg"
expect_rc 0 "a second plugin"
ctl stats
expect_rc 0 "ctl stats"
python3 - "$T/out" <<'PY' || fail "ctl stats: the LRU eviction is not counted, or the JSON is wrong"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["cache"]["evictions"] >= 1 and s["live_workers"] == 1, s
assert s["stages"]["c"]["calls"] >= 3 and s["stages"]["boom"]["crashes"] == 1, s
PY

# TTL: an idle worker expires.
sleep 2.6
ctl plugins
expect_in out "(no plugin loaded)" "the idle worker expired after its TTL"

ctl frobnicate
expect_rc 2 "an unknown request"
expect_in err "unknown request 'frobnicate'" "the unknown request is named"

ctl shutdown
expect_rc 0 "ctl shutdown"
wait "$server"
[ $? = 0 ] || fail "the server did not exit 0 after shutdown"
[ ! -e "$S" ] || fail "the socket was left behind"

# SIGTERM: graceful, every worker reaped.
start_server 'workers = { ttl_s = 300; };'
ctl run "$T/counter.cfg"
read -r _ pid <<<"$(counter_calls)"
kill -TERM "$server"
wait "$server"
[ $? = 0 ] || fail "the server did not exit 0 on SIGTERM"
kill -0 "$pid" 2>/dev/null && fail "worker $pid outlived the server"
grep -q "received SIGTERM: shutting down" "$T/serve.err" || fail "SIGTERM was not logged"

# A second server on a live socket is refused; ctl to a missing server explains.
start_server ''
run "$SH" serve --socket "$S" --plugins-dir "$T/faults"
expect_rc 2 "a second server"
expect_in err "another stagehost serve is listening there" "the second server says why"
kill -TERM "$server"; wait "$server"
run "$SH" ctl --socket "$S" stats
expect_rc 2 "ctl without a server"
expect_in err "is 'stagehost serve --socket $S' running?" "ctl says what to do"

# Health in serve mode: checked every second here; one failure degrades, recovery restores, three in a row make
# the plugin unavailable and unload it.
mkdir -p "$T/flags"
chmod 755 "$T/flags"
export SH_FAULTS_UNHEALTHY="$T/flags/unhealthy"
plugin_dir sick libfaults.so "$(faults_descriptor "permissions = { env = ( \"SH_FAULTS_UNHEALTHY\" ); read = ( \"$T/flags\" ); };")"
cat >"$T/sick.cfg" <<CFG
workers = { health_interval_s = 1; };
plugins = ( { name = "test/faults"; grants = { env = ( "SH_FAULTS_UNHEALTHY" ); read = ( "$T/flags" ); }; } );
CFG
"$SH" serve --socket "$S" --plugins-dir "$T/sick" --config "$T/sick.cfg" 2>>"$T/serve.err" &
server=$!
for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
ctl run "$T/counter.cfg"
expect_rc 0 "a run before the health checks"
status_of() { "$SH" ctl --socket "$S" plugins | sed -n 's|^test/faults  *1.0.0  *\([a-z]*\).*|\1|p'; }
wait_status() { # STATUS: waits up to 5 s for test/faults to reach it
    for _ in $(seq 50); do [ "$(status_of)" = "$1" ] && return 0; sleep 0.1; done
    fail "test/faults did not become $1 (it is $(status_of))"
}
wait_status loaded
touch "$SH_FAULTS_UNHEALTHY"
wait_status degraded
rm -f "$SH_FAULTS_UNHEALTHY"
wait_status loaded
touch "$SH_FAULTS_UNHEALTHY"
wait_status unavailable
ctl plugins
expect_in out "its health check failed 3 times in a row" "unavailable says why"
expect_not_in out " worker " "an unavailable plugin is unloaded"
ctl run "$T/counter.cfg"
expect_rc 2 "a run on an unavailable plugin"
expect_in err "Plugin 'test/faults' is unavailable: its health check failed 3 times in a row" "the run says why"
kill -TERM "$server"
wait "$server"

# An error rate over half of at least 10 calls degrades a plugin.
start_server ''
pipeline "$T/fail.cfg" '{ name = "f"; type = "test/faults.fail"; }'
for _ in $(seq 10); do ctl run "$T/fail.cfg"; done
expect_rc 1 "a failing stage in serve mode"
ctl plugins
expect_in out "degraded: 10 of its 10 calls failed" "the error rate degrades the plugin"
kill -TERM "$server"
wait "$server"

finish
