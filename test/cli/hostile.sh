# The hostile-plugin suite: each plugin tries one attack. The attack must fail with the expected error, the host
# must survive, and the next stage in the pipeline (or the next run) must work.
. "$(dirname "$0")/lib.sh"

H="${HOSTILE_PLUGIN_DIR:?}"
plugin_dir faults libfaults.so "$(faults_descriptor)"
printf 'top secret\n' >"$T/secret"
chmod 644 "$T/secret"
mkdir -p "$T/open"
chmod 777 "$T/open"
cat >"$T/host.cfg" <<CFG
limits = { memory_mb = 256; cpu_seconds = 2; timeout_ms = 3000; output_mb = 16; open_files = 256; };
CFG
# For the CPU attack the deadline is far: on a loaded machine 2 s of CPU can take longer than 3 s of wall time,
# and the test is about the CPU limit, not the deadline.
sed 's/timeout_ms = 3000/timeout_ms = 30000/' "$T/host.cfg" >"$T/host_cpu.cfg"

attack() { # NAME: runs hostile/NAME.attack -> test/faults.echo -> write
    local dir="$T/h_$1" name=${1//_/-}
    mkdir -p "$dir"
    ln -sf "$H/libhostile_$1.so" "$dir/libhostile_$1.so"
    cat >"$dir/$1.plugin" <<DESC
format = 1; name = "hostile/$name"; version = "1.0.0"; library = "libhostile_$1.so"; abi = "1.0";
stages = ( { type = "attack"; } );
permissions = { env = ( "SH_HOSTILE_PATH" ); };
DESC
    pipeline "$T/p.cfg" "{ name = \"attack\"; type = \"hostile/$name.attack\"; },
      { name = \"next\"; type = \"test/faults.echo\"; },
      { name = \"out\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
    rm -f "$T/out.jsonl"
    run timeout 60 "$SH" run "$T/p.cfg" --plugins-dir "$dir" --plugins-dir "$T/faults" --config "${HOST_CFG:-$T/host.cfg}" \
        --grant "hostile/$name:env=SH_HOSTILE_PATH"
}

contained() { # NAME ERROR [MAX-COUNT]: the attack ran, failed with ERROR, and the next stage passed its report on
    expect_rc 0 "$1"
    python3 - "$T/out.jsonl" "$2" "${3:-0}" <<'PY' || fail "$1: the attack was not contained as expected"
import json, sys
[item] = [json.loads(l) for l in open(sys.argv[1])]
assert item["succeeded"] is False and item["error"] == sys.argv[2], item
assert int(sys.argv[3]) == 0 or item["count"] <= int(sys.argv[3]), item
PY
}

stopped() { # NAME MESSAGE: the attack was stopped and the stage failed with MESSAGE
    expect_rc 1 "$1"
    expect_in err "stage 'attack' (plugin 'hostile/${1//_/-}' 1.0.0, action 'attack') failed on attempt 1" "$1: names stage and plugin"
    expect_in err "$2" "$1: the cause"
    expect_in err "stages not run: 'next', 'out'" "$1: later stages are reported"
}

SH_HOSTILE_PATH="$T/secret" attack read_file
contained read_file "Permission denied"

SH_HOSTILE_PATH="$T/open/pwned" attack write_file
contained write_file "Permission denied"
[ ! -e "$T/open/pwned" ] || fail "write_file: the file was written"

attack connect
contained connect "Operation not permitted"

attack ptrace
contained ptrace "Operation not permitted"

attack kill
contained kill "Operation not permitted"

attack exec
contained exec "Operation not permitted"

# Workers are forks of this test's host, so their command line names this test's directory: other tests running
# workers as the same user at the same time are not counted.
before=$(pgrep -u nobody -f "$T" | wc -l)
attack fork_bomb
contained fork_bomb "Resource temporarily unavailable" 256
if [ "$(id -u)" = 0 ]; then
    sleep 0.2
    after=$(pgrep -u nobody -f "$T" | wc -l)
    [ "$after" -le "$before" ] || fail "fork_bomb: $((after - before)) processes of the worker user outlived the run"
fi

attack fd_exhaustion
contained fd_exhaustion "Too many open files" 256

attack memory_bomb
stopped memory_bomb "exceeded its memory limit of 256 MiB"

HOST_CFG="$T/host_cpu.cfg" attack cpu_spin
stopped cpu_spin "exceeded its CPU limit of 2 s per call"

attack sleep_forever
stopped sleep_forever "did not finish process within its 3000 ms deadline and was killed"

attack stack_overflow
stopped stack_overflow "killed by signal SIGSEGV"

attack big_output
stopped big_output "emitted more than its output cap of 16 MiB (limits.output_mb)"

attack garbage
stopped garbage "broke the protocol during process"

attack close_wire
stopped close_wire "exited without answering (it closed its channel or called exit(0))"

SH_SECRET=hunter2 attack environ
contained environ "Permission denied"

# A plugin cannot drive the serving host through its control socket.
attack ctl_socket # writes the descriptor; the run itself happens under serve below
SOCK="$T/s.sock"
"$SH" serve --socket "$SOCK" --plugins-dir "$T/h_ctl_socket" --plugins-dir "$T/faults" \
    --grant hostile/ctl-socket:env=SH_HOSTILE_PATH 2>>"$T/serve.err" &
server=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
rm -f "$T/out.jsonl"
SH_HOSTILE_PATH="$SOCK" run "$SH" ctl --socket "$SOCK" run "$T/p.cfg"
python3 - "$T/out.jsonl" <<'PY' || fail "ctl_socket: the plugin drove the server"
import json, sys
[item] = [json.loads(l) for l in open(sys.argv[1])]
assert item["succeeded"] is False, item
PY
run "$SH" ctl --socket "$SOCK" stats
expect_rc 0 "ctl_socket: the server is still serving"
kill -TERM "$server"
wait "$server"

# The same from a child that exits before the server looks at who connected: a worker cannot make a Unix socket
# at all, and the request of a client that is gone is not served either.
attack ctl_socket_fork
"$SH" serve --socket "$SOCK" --plugins-dir "$T/h_ctl_socket_fork" --plugins-dir "$T/faults" \
    --grant hostile/ctl-socket-fork:env=SH_HOSTILE_PATH 2>>"$T/serve.err" &
server=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
rm -f "$T/out.jsonl"
SH_HOSTILE_PATH="$SOCK" run "$SH" ctl --socket "$SOCK" run "$T/p.cfg"
contained ctl_socket_fork "Operation not permitted"
# A client that is gone by the time its request is read: while the server runs a slow pipeline, a process sends
# "shutdown" and exits at once.
pipeline "$T/slow.cfg" '{ name = "s"; type = "test/faults.sleep"; config = { ms = 1500; }; }'
"$SH" ctl --socket "$SOCK" run "$T/slow.cfg" >/dev/null 2>&1 &
slow=$!
sleep 0.3
python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(bytes([19, 0, 0, 0, 1, 7, 1, 0, 0, 0, 5, 8, 0, 0, 0]) + b"shutdown")
PY
wait "$slow"
run "$SH" ctl --socket "$SOCK" stats
expect_rc 0 "a request whose sender is gone is not served: the server is still serving"
expect_in serve.err "refused a request on $SOCK from a process that cannot be identified" \
    "the refusal is logged with its reason"
kill -TERM "$server"
wait "$server"

# Keystrokes pushed into the terminal of the shell that ran stagehost would run once it exits. Run under a
# terminal (script gives the host one), where a worker holding it as its own could push them.
attack tiocsti
rm -f "$T/out.jsonl"
script -qefc "'$SH' run '$T/p.cfg' --plugins-dir '$T/h_tiocsti' --plugins-dir '$T/faults' --config '$T/host.cfg' \
    --grant hostile/tiocsti:env=SH_HOSTILE_PATH" /dev/null >/dev/null 2>&1 </dev/null
python3 - "$T/out.jsonl" <<'PY' || fail "tiocsti: a worker pushed input into the host's terminal"
import json, sys
[item] = [json.loads(l) for l in open(sys.argv[1])]
assert item["succeeded"] is False and item["error"] in ("Operation not permitted", "Inappropriate ioctl for device"), item
PY

# Kernel objects that outlive the worker and the host: System V shared memory (and queues, semaphores) and
# POSIX message queues.
attack sysv_shm
contained sysv_shm "Operation not permitted"
attack mqueue
contained mqueue "Operation not permitted"

# A plugin's messages are data: a failure or log line cannot forge a host line or send the terminal an escape
# sequence, and a log line is capped, on the terminal and in the run store alike.
attack forge_output
expect_rc 1 "forge_output"
grep -q '^stagehost: error: forged' "$T/err" && fail "forge_output: a plugin forged a host line"
grep -q "$(printf '\033')" "$T/err" && fail "forge_output: an escape sequence reached the terminal"
expect_in err 'logged\nstagehost: error: forged by a log line\x1b[2J\u009b31m' "a log line is shown escaped, on one line"
expect_in err 'failed\nstagehost: error: forged by a failure\x1b]0;title\x07' "a failure message is shown escaped"
longest=$(awk '{ if (length > n) n = length } END { print n }' "$T/err")
[ "$longest" -lt 2000 ] || fail "forge_output: a log line of 200,000 bytes reached the terminal $longest bytes long"
run "$SH" runs show "$(sed -n "s/.*'stagehost runs show \([0-9a-f]*\)'.*/\1/p" "$T/err" | tail -n 1)" --json --store "$T/.stagehost/runs.db"
python3 - "$T/out" <<'PY' || fail "forge_output: the run store keeps the messages escaped and capped"
import json, sys
r = json.load(open(sys.argv[1]))
texts = [r["error"]] + [a["error"] for a in r["attempts"]] + [l["message"] for l in r["logs"]]
assert all(chr(10) not in t and chr(27) not in t and chr(0x9b) not in t for t in texts), texts
assert len(r["logs"]) == 2 and all(len(l["message"].encode()) < 1024 for l in r["logs"]), [len(l["message"]) for l in r["logs"]]
PY

# isolation = "call": the second call must not find what the first left in its working directory.
attack call_leftover
pipeline "$T/p.cfg" '{ name = "one"; type = "hostile/call-leftover.attack"; isolation = "call"; },
  { name = "two"; type = "hostile/call-leftover.attack"; isolation = "call"; depends_on = (); },
  { name = "out"; type = "write"; depends_on = ( "one", "two" ); config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/h_call_leftover" --jobs 1 --grant "hostile/call-leftover:env=SH_HOSTILE_PATH"
expect_rc 0 "call_leftover"
python3 - "$T/out.jsonl" <<'PY' || fail "call_leftover: a call found the file an earlier call left"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert len(items) == 2 and all(i["succeeded"] is False and i["count"] == 1 for i in items), items
PY

# A destroy() that hangs is the hanging stage's timeout, not the next stage's of the same plugin (same worker).
attack destroy_hang
pipeline "$T/p.cfg" '{ name = "hangs"; type = "hostile/destroy-hang.attack"; config = { hang = true; };
    on_failure = "continue"; },
  { name = "innocent"; type = "hostile/destroy-hang.attack"; depends_on = (); },
  { name = "out"; type = "write"; depends_on = ( "innocent" ); config = { path = "out.jsonl"; }; }'
sed 's/timeout_ms = 3000/timeout_ms = 1000/' "$T/host.cfg" >"$T/host_1s.cfg"
run timeout 60 "$SH" run "$T/p.cfg" --plugins-dir "$T/h_destroy_hang" --jobs 1 --config "$T/host_1s.cfg" \
    --grant "hostile/destroy-hang:env=SH_HOSTILE_PATH"
expect_rc 0 "destroy_hang (on_failure = continue)"
expect_in err "stage 'hangs' (plugin 'hostile/destroy-hang' 1.0.0, action 'attack') failed on attempt 1" \
    "destroy_hang: the stage whose destroy hangs fails"
[ -s "$T/out.jsonl" ] || fail "destroy_hang: the next stage of the same plugin did not run through"
expect_not_in err "stage 'innocent' (plugin 'hostile/destroy-hang' 1.0.0, action 'attack') failed" \
    "destroy_hang: the next stage of the same plugin is not blamed"

# The host's standard streams: what is piped into it is not the plugin's to read, and its log (a file here) is
# the plugin's to append to, not to truncate, rewind or overwrite.
attack stdin_read <"$T/secret"
contained stdin_read "No data available"
attack stderr_rewrite
contained stderr_rewrite "Operation not permitted"

# A plugin that crashes in stage after stage is quarantined after the third crash, and no later stage of the
# same run starts a worker for it.
pipeline "$T/crashes.cfg" "$(for i in 1 2 3 4 5 6; do
    printf '{ name = "c%d"; type = "test/faults.segv"; depends_on = (); on_failure = "continue"; }, ' "$i"
done) { name = \"end\"; type = \"passthrough\"; depends_on = (); }"
STAGEHOST_STATE_DIR="$T/.state-crashes" run "$SH" run "$T/crashes.cfg" --plugins-dir "$T/faults" --jobs 1
expect_rc 0 "crashing stages with on_failure = continue"
crashed=$(grep -c "failed on attempt 1: worker process [0-9]* of plugin 'test/faults' was killed" "$T/err")
[ "$crashed" -eq 3 ] || fail "quarantine inside a run: expected 3 crashed workers, got $crashed"
expect_in err "stage 'c4' (plugin 'test/faults' 1.0.0, action 'segv') failed on attempt 1: plugin 'test/faults' is quarantined: its worker crashed 3 times in a row" \
    "later stages are refused with the quarantine's reason"

# Checking a plugin (validate, inspect) runs its code confined too: its constructor cannot write outside.
rm -f /tmp/stagehost-hostile-ctor
attack ctor_write
rm -f /tmp/stagehost-hostile-ctor
run "$SH" plugins validate "$T/h_ctor_write"
expect_rc 0 "validate of a plugin that writes on load"
[ ! -e /tmp/stagehost-hostile-ctor ] || fail "validate ran the plugin's constructor unconfined"
run "$SH" plugins inspect hostile/ctor-write --plugins-dir "$T/h_ctor_write"
[ ! -e /tmp/stagehost-hostile-ctor ] || fail "inspect ran the plugin's constructor unconfined"

# After all of that, a plain run works.
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; }, { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults"
expect_rc 0 "a plain run after the attacks"

# Permissions beyond the defaults must be granted, and the refusal says exactly how.
mkdir -p "$T/net"
ln -sf "$H/libhostile_connect.so" "$T/net/libhostile_connect.so"
cat >"$T/net/net.plugin" <<DESC
format = 1; name = "hostile/connect"; version = "1.0.0"; library = "libhostile_connect.so"; abi = "1.0";
stages = ( { type = "attack"; } );
permissions = { network = true; read = ( "/srv/data", "/srv/more" ); };
DESC
pipeline "$T/p.cfg" '{ name = "net"; type = "hostile/connect.attack"; }, { name = "out"; type = "write"; config = { path = "out.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/net"
expect_rc 2 "permissions not granted"
expect_in err "plugin 'hostile/connect' asks for permissions it was not granted: network, read /srv/data" "missing grants listed"
expect_in err "--grant hostile/connect:network --grant hostile/connect:read=/srv/data" "how to grant on the command line"
expect_in err "grants = { network = true; read = ( \"/srv/data\", \"/srv/more\" ); }" "how to grant in the host configuration: one key per list"
expect_in err "--grant hostile/connect:read=/srv/more" "every missing path has its flag"
run "$SH" run "$T/p.cfg" --plugins-dir "$T/net" --grant hostile/connect:network --grant hostile/connect:read=/srv
expect_rc 0 "permissions granted"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); assert d["succeeded"] is True or d["error"] != "Operation not permitted", d' \
    "$T/out.jsonl" || fail "with a network grant, sockets are allowed"

# A kernel without Landlock or seccomp: isolated plugins are refused unless --allow-unconfined.
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; }'
STAGEHOST_PRETEND_MISSING=landlock run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults"
expect_rc 2 "no Landlock"
expect_in err "plugin 'test/faults' must run confined, but Landlock is not available on this system" "no Landlock: why"
expect_in err "--allow-unconfined" "no Landlock: what to do"
STAGEHOST_PRETEND_MISSING=landlock,seccomp run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --allow-unconfined
expect_rc 0 "--allow-unconfined"
STAGEHOST_PRETEND_MISSING=seccomp run "$SH" doctor
expect_rc 1 "doctor on a degraded kernel"
expect_in out "seccomp          MISSING" "doctor names the missing protection"
expect_in out "isolated plugins are refused unless --allow-unconfined" "doctor says what it means"
run "$SH" doctor
expect_rc 0 "doctor"
expect_in out "landlock         available" "doctor reports Landlock"

finish
