# What the engine's CLI tests (engine_*.sh, one per topic) share, besides lib.sh, which this sources: the
# test/faults plugin in $T/faults ($F passes it), two documents in $T/docs, the fan-out/fan-in pipeline
# $T/dag.cfg, and json().
. "$(dirname "$0")/lib.sh"

plugin_dir faults libfaults.so "$(faults_descriptor)"
F="--plugins-dir $T/faults"
mkdir -p "$T/docs"
printf 'First document. It has two sentences.' >"$T/docs/a.txt"
printf 'Second document.' >"$T/docs/b.txt"

# json FILE EXPR: evaluates a Python expression over the JSON in FILE (as `d`) and prints it.
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# src feeds two sleeping branches, slow (700 ms) and fast (500 ms), which join writes to out.jsonl.
cat >"$T/dag.cfg" <<'P'
pipeline = {
  name = "dag"; version = "1.2"; metadata = { owner = "tests"; };
  stages = (
    { name = "src"; type = "read"; config = { path = "docs"; }; },
    { name = "slow"; type = "test/faults.sleep"; depends_on = ("src"); config = { ms = 700; }; },
    { name = "fast"; type = "test/faults.sleep"; depends_on = ("src"); config = { ms = 500; }; },
    { name = "join"; type = "write"; depends_on = ("slow", "fast"); config = { path = "out.jsonl"; }; }
  );
};
P
