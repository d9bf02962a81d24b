# The run store through the real binary: a stage output larger than one row of the store, reused byte for byte by a
# resume; outputs dropped once a run succeeds unless keep_outputs = "all"; `runs prune`; and runs.db alone being
# the whole store once the host exited.
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"
F="--plugins-dir $T/faults"
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# stages FILE: each stage's name and stored output rows (None: no output stored), from `runs show --json`.
stored() { json "$1" '[(s["name"], s["stored_rows"]) for s in d["stage_list"]]'; }

# About 14 MB to read: text files and binary ones (bytes items), several times the store's row bound (4 MiB).
mkdir -p "$T/r/docs" "$T/u"
python3 - "$T/r/docs" <<'PY'
import os, random, sys
rnd = random.Random(7)
for i in range(12):
    with open(os.path.join(sys.argv[1], "doc%02d.txt" % i), "w") as f:
        f.write("".join(rnd.choice("abcdefghij klmnop\n") for _ in range(1 << 20)))
for i in range(2):
    with open(os.path.join(sys.argv[1], "blob%d.bin" % i), "wb") as f:
        f.write(bytes(rnd.getrandbits(8) for _ in range(1 << 20)))
PY
cp -r "$T/r/docs" "$T/u/docs"
cat >"$T/r/p.cfg" <<'P'
pipeline = { name = "big"; stages = (
  { name = "a"; type = "read"; config = { path = "docs"; }; },
  { name = "b"; type = "test/faults.flaky"; config = { fail_times = 1; }; },
  { name = "c"; type = "write"; config = { path = "out.jsonl"; }; }
); };
P
# The same pipeline, uninterrupted: its second attempt of b succeeds within the run.
sed 's/config = { fail_times = 1; }; }/config = { fail_times = 1; }; retry = { max = 1; backoff_ms = 0; }; }/' \
    "$T/r/p.cfg" >"$T/u/p.cfg"
run "$SH" run "$T/u/p.cfg" $F
expect_rc 0 "the uninterrupted run"

# --- a failed run keeps its outputs, in several rows; a resume reuses them byte for byte ---------------------------
run "$SH" run "$T/r/p.cfg" $F --json
expect_rc 1 "b fails on its first attempt"
rid=$(json "$T/out" 'd["run_id"]')
run "$SH" runs show "$rid" "$T/r/p.cfg" --json
expect_rc 0 "runs show of the failed run"
[ "$(json "$T/out" '(lambda a: a["stored_rows"] >= 3 and a["stored_bytes"] > 14e6)(d["stage_list"][0])')" = True ] ||
    fail "stage a's output (14 MB) is stored in several rows: $(stored "$T/out")"
[ "$(json "$T/out" '[s["stored_rows"] for s in d["stage_list"]][1:]')" = "[None, None]" ] ||
    fail "the failed and the skipped stage have no output stored: $(stored "$T/out")"
# Were stage a run again, it would read this instead.
printf 'changed after the failure' >"$T/r/docs/doc00.txt"
run "$SH" run "$T/r/p.cfg" $F --resume "$rid" --json
expect_rc 0 "resume"
[ "$(json "$T/out" '[(s["name"], s["status"]) for s in d["stages"]]')" = \
  "[('a', 'reused'), ('b', 'succeeded'), ('c', 'succeeded')]" ] || fail "resume reuses a: $(cat "$T/out")"
cmp -s "$T/r/out.jsonl" "$T/u/out.jsonl" || fail "the resumed run's output differs from the uninterrupted run's"
[ "$(wc -c <"$T/r/out.jsonl")" -gt 14000000 ] || fail "out.jsonl holds all the documents"

# --- once the run succeeded its outputs are dropped, and the space given back; it cannot be resumed -----------------
run "$SH" runs show "$rid" "$T/r/p.cfg" --json
[ "$(stored "$T/out")" = "[('a', None), ('b', None), ('c', None)]" ] ||
    fail "a run that succeeded keeps no outputs: $(stored "$T/out")"
[ "$(json "$T/out" 'd["stage_list"][0]["items_out"]')" = 14 ] || fail "the stage records stay: $(cat "$T/out")"
[ ! -s "$T/r/.stagehost/runs.db-wal" ] || fail "the WAL was not checkpointed when the host exited"
size=$(wc -c <"$T/r/.stagehost/runs.db")
[ "$size" -lt 2000000 ] || fail "the store is $size bytes after its outputs were dropped"
run "$SH" run "$T/r/p.cfg" $F --resume "$rid"
expect_rc 2 "resuming a run that succeeded"
expect_in err "succeeded: there is nothing left to resume; run the pipeline again without --resume" "resume refusal"
run "$SH" runs show "$rid" "$T/r/p.cfg"
expect_in out "stored" "runs show has a column for the stored output"

# --- keep_outputs = "all" keeps them; runs.db alone, copied after the host exited, is the whole store ---------------
mkdir -p "$T/k"
cp -r "$T/u/docs" "$T/k/docs"
sed 's/name = "big";/name = "kept"; keep_outputs = "all";/' "$T/u/p.cfg" >"$T/k/p.cfg"
run "$SH" run "$T/k/p.cfg" $F --json
expect_rc 0 "keep_outputs = all"
kid=$(json "$T/out" 'd["run_id"]')
mkdir -p "$T/copy"
cp "$T/k/.stagehost/runs.db" "$T/copy/runs.db"
run "$SH" runs show "$kid" --store "$T/copy/runs.db" --json
expect_rc 0 "runs show on a copy of runs.db alone"
[ "$(json "$T/out" 'all(s["stored_rows"] >= 3 for s in d["stage_list"]) and d["status"] == "succeeded"')" = True ] ||
    fail "keep_outputs = \"all\": every output kept, and in the copy: $(stored "$T/out")"

for v in '"some"' '3'; do
    sed "s/keep_outputs = \"all\";/keep_outputs = $v;/" "$T/k/p.cfg" >"$T/k/bad.cfg"
    run "$SH" run "$T/k/bad.cfg" $F
    expect_rc 2 "keep_outputs = $v is refused"
    expect_in err "$T/k/bad.cfg:1:" "keep_outputs = $v: the file and line"
done
expect_in err "keep_outputs" "a keep_outputs that is not a string"
sed "s/keep_outputs = \"all\";/keep_outputs = \"some\";/" "$T/k/p.cfg" >"$T/k/bad.cfg"
run "$SH" run "$T/k/bad.cfg" $F
expect_in err "keep_outputs 'some' is not one of \"resume\"" "keep_outputs: the accepted values"

# --- runs prune ----------------------------------------------------------------------------------------------------
mkdir -p "$T/pr"
pipeline "$T/pr/a.cfg" '{ name = "x"; type = "passthrough"; }'
printf 'pipeline = { name = "other"; stages = ( { name = "x"; type = "passthrough"; } ); };\n' >"$T/pr/b.cfg"
printf 'pipeline = { name = "slow"; stages = ( %s ); };\n' \
    '{ name = "s"; type = "test/faults.sleep"; config = { ms = 20000; }; }' >"$T/pr/slow.cfg"
for _ in 1 2 3; do "$SH" run "$T/pr/a.cfg" >/dev/null 2>&1 || fail "a run of a.cfg"; done
"$SH" run "$T/pr/b.cfg" >/dev/null 2>&1 || fail "a run of b.cfg"
"$SH" run "$T/pr/slow.cfg" $F >/dev/null 2>&1 &
slow=$!
for _ in $(seq 300); do
    sleep 0.05
    "$SH" runs list "$T/pr/a.cfg" --json >"$T/pl.json" 2>/dev/null || continue
    [ "$(json "$T/pl.json" 'sum(r["status"] == "running" for r in d)')" = 1 ] && break
done
run "$SH" runs prune "$T/pr/a.cfg"
expect_rc 2 "prune without saying what"
expect_in err "--older-than DURATION" "prune names its options"
run "$SH" runs prune "$T/pr/a.cfg" --older-than 7x
expect_rc 2 "a malformed duration"
expect_in err "such as 7d, 12h or 30m; got '7x'" "the duration's form"
run "$SH" runs prune "$T/pr/a.cfg" --keep -1
expect_rc 2 "a negative --keep"
run "$SH" runs list "$T/pr/a.cfg" --older-than 7d
expect_rc 2 "--older-than is for prune"
run "$SH" runs prune "$T/pr/a.cfg" --older-than 7d
expect_rc 0 "prune by age, nothing that old"
expect_in out "no run of pipeline 't' to prune" "nothing pruned"
run "$SH" runs prune "$T/pr/a.cfg" --keep 1 --json
expect_rc 0 "prune by count, of one pipeline"
[ "$(json "$T/out" 'd["runs"], d["stages"], d["kept"]')" = "(2, 2, 1)" ] ||
    fail "prune --keep 1 of a.cfg: $(cat "$T/out")"
run "$SH" runs list "$T/pr/a.cfg" --json
[ "$(json "$T/out" 'sorted(r["pipeline"] for r in d)')" = "['other', 'slow', 't']" ] ||
    fail "the newest run of t, the other pipeline's and the running one stay: $(cat "$T/out")"
run "$SH" runs prune --store "$T/pr/.stagehost/runs.db" --keep 0
expect_rc 0 "prune everything"
expect_in out "pruned 2 runs from $T/pr/.stagehost/runs.db" "the summary names what went"
expect_in out "kept 1 run (1 still running, never pruned)" "a running run is never pruned"
run "$SH" runs list "$T/pr/a.cfg" --json
[ "$(json "$T/out" '[r["status"] for r in d]')" = "['running']" ] ||
    fail "only the running run is left: $(cat "$T/out")"
kill -KILL "$slow"
wait "$slow" 2>/dev/null
sleep 1.1
run "$SH" runs prune "$T/pr/slow.cfg" --older-than 1s
expect_rc 0 "prune an interrupted run by age"
expect_in out "pruned 1 run of pipeline 'slow'" "an interrupted run is pruned"
expect_in out "cache entr" "the cache's entries by age too"

exit $((failures > 0))
