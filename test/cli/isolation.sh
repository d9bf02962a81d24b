# Worker isolation and lifecycle: warm reuse, "call" isolation, limits and protocol faults, a fresh context per
# invocation, metrics, and no orphans when the host is killed.
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"

# Two stages of one plugin share one warm worker ("process"): state survives between its calls.
pipeline "$T/p.cfg" '{ name = "one"; type = "test/faults.counter"; },
  { name = "w1"; type = "write"; config = { path = "one.jsonl"; }; },
  { name = "two"; type = "test/faults.counter"; },
  { name = "w2"; type = "write"; config = { path = "two.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults"
expect_rc 0 "process isolation"
python3 - "$T/one.jsonl" "$T/two.jsonl" <<'PY' || fail "process isolation: the worker was not reused"
import json, sys
one, two = (json.loads(open(f).readline()) for f in sys.argv[1:])
assert (one["calls"], two["calls"]) == (1, 2) and one["pid"] == two["pid"], (one, two)
PY
expect_in err "cache: 2 hits, 2 misses" "the summary counts the cache hits (the worker and the built-ins)"

# "call" isolation: every invocation runs in a fresh fork of the warm worker, so no state survives.
sed -i 's/type = "test\/faults.counter"; }/type = "test\/faults.counter"; isolation = "call"; }/g' "$T/p.cfg"
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults"
expect_rc 0 "call isolation"
python3 - "$T/one.jsonl" "$T/two.jsonl" <<'PY' || fail "call isolation: state survived a call"
import json, sys
one, two = (json.loads(open(f).readline()) for f in sys.argv[1:])
assert (one["calls"], two["calls"]) == (1, 1) and one["pid"] != two["pid"], (one, two)
PY

run_bad() { # TYPE EXTRA-DESCRIPTOR-LINES: echo -> TYPE -> write, with a plugin dir of its own
    plugin_dir "lim_$1" libfaults.so "$(faults_descriptor "$2")"
    pipeline "$T/bad.cfg" "{ name = \"src\"; type = \"test/faults.echo\"; },
      { name = \"bad\"; type = \"test/faults.$1\"; },
      { name = \"out\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
    run timeout 60 "$SH" run "$T/bad.cfg" --plugins-dir "$T/lim_$1"
}

run_bad truncate ''
expect_rc 1 "truncated frame"
expect_in err "broke the protocol during process (truncated frame" "truncated frame named"

run_bad flood 'limits = { output_mb = 8; };'
expect_rc 1 "output over the cap"
expect_in err "emitted more than its output cap of 8 MiB (limits.output_mb)" "output cap named"
expect_in err "raise limits.output_mb for the plugin" "output cap: says how to raise it"
expect_not_in err "a plugin must not write to the worker's channel" "output cap: the plugin is not blamed for a protocol breach"

run_bad membomb 'limits = { memory_mb = 128; };'
expect_rc 1 "memory bomb"
expect_in err "exceeded its memory limit of 128 MiB during process" "memory limit named"
expect_in err "raise limits.memory_mb" "memory limit: what to do"

run_bad cpuspin 'limits = { cpu_seconds = 1; timeout_ms = 30000; };'
expect_rc 1 "CPU spin"
expect_in err "exceeded its CPU limit of 1 s per call (limits.cpu_seconds)" "CPU limit named"

# A fresh context per invocation: distinct task ids, a private directory removed after each call.
pipeline "$T/p.cfg" '{ name = "a"; type = "test/faults.tmpfile"; },
  { name = "wa"; type = "write"; config = { path = "a.jsonl"; }; },
  { name = "b"; type = "test/faults.tmpfile"; },
  { name = "wb"; type = "write"; config = { path = "b.jsonl"; }; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --metrics "$T/metrics.prom"
expect_rc 0 "tmpfile stages"
python3 - "$T/a.jsonl" "$T/b.jsonl" <<'PY' || fail "the invocation context is not fresh"
import json, os, sys
a, b = (json.loads(open(f).readline()) for f in sys.argv[1:])
assert a["tmp_dir"] != b["tmp_dir"] and a["task_id"] != b["task_id"], (a, b)
assert not os.path.exists(a["tmp_dir"]) and not os.path.exists(b["tmp_dir"]), "a private directory outlived its call"
PY
grep -qx 'stagehost_stage_calls_total{stage="a"} 1' "$T/metrics.prom" || fail "--metrics: no call count for stage a"
grep -q '^# TYPE stagehost_stage_latency_seconds summary' "$T/metrics.prom" || fail "--metrics: no latency summary"
grep -qx 'stagehost_plugin_loads_total 2' "$T/metrics.prom" || fail "--metrics: loads are not counted"

# Host configuration: per-plugin isolation override and default limits.
cat >"$T/host.cfg" <<CFG
limits = { timeout_ms = 300; };
plugins = ( { name = "test/faults"; isolation = "none"; } );
CFG
pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; }'
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --config "$T/host.cfg" -v
expect_rc 0 "host configuration isolation override"
expect_in err "loaded in the host process (isolation none)" "the host configuration's isolation wins"
printf 'plugins = ( { name = "test/faults"; } );\nlimits = { timeout_ms = 300; };\n' >"$T/host.cfg"
pipeline "$T/p.cfg" '{ name = "h"; type = "test/faults.hang"; }'
run timeout 20 "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --config "$T/host.cfg"
expect_rc 1 "host default timeout"
expect_in err "within its 300 ms deadline" "the host configuration's default timeout applies"
printf 'workers = { ttl = 3; };\n' >"$T/host.cfg"
run "$SH" run "$T/p.cfg" --plugins-dir "$T/faults" --config "$T/host.cfg"
expect_rc 2 "bad host configuration"
expect_in err "$T/host.cfg:1: unknown key 'ttl' in 'workers' (did you mean 'ttl_s'?)" "host configuration error"

# A host running as root runs workers as an unprivileged user, yet plugins may live where only root can look
# (a clone under /root): the worker opens what it loads before it drops privileges.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$T/private/deep"
    chmod 700 "$T/private"
    cp "$TEST_PLUGINS/libfaults.so" "$T/private/deep/"
    faults_descriptor | sed 's|@LIB@|libfaults.so|' >"$T/private/deep/faults.plugin"
    pipeline "$T/p.cfg" '{ name = "src"; type = "test/faults.echo"; }'
    run "$SH" run "$T/p.cfg" --plugins-dir "$T/private/deep"
    expect_rc 0 "a plugin in a directory only root can reach"
fi

# Killing the host with SIGKILL leaves no zygote and no worker behind.
pipeline "$T/p.cfg" '{ name = "h"; type = "test/faults.hang"; }'
"$SH" run "$T/p.cfg" --plugins-dir "$T/faults" -v 2>"$T/kill.err" &
host=$!
for _ in $(seq 100); do grep -q "loaded in worker process" "$T/kill.err" && break; sleep 0.05; done
worker=$(sed -n 's/.*loaded in worker process \([0-9]*\).*/\1/p' "$T/kill.err")
zygote=$(pgrep -P "$host" | head -n 1)
[ -n "$worker" ] && [ -n "$zygote" ] || fail "SIGKILL test: no worker ($worker) or zygote ($zygote) found"
kill -9 "$host"
wait "$host" 2>/dev/null
gone=0
for _ in $(seq 100); do
    if ! kill -0 "$worker" 2>/dev/null && ! kill -0 "$zygote" 2>/dev/null; then gone=1; break; fi
    sleep 0.05
done
[ "$gone" = 1 ] || fail "SIGKILL test: worker $worker or zygote $zygote outlived the host"

finish
