# The output cache: hits and misses, keys over input and configuration, idempotent descriptors, cache =
# false, and one store shared by pipelines in different directories.
. "$(dirname "$0")/engine_lib.sh"

# --- output cache -------------------------------------------------------------------------------------------
pipeline "$T/cache.cfg" '{ name = "src"; type = "read"; config = { path = "docs"; }; },
  { name = "s"; type = "test/faults.sleep"; config = { ms = 300; report = false; }; cache = true; },
  { name = "out"; type = "write"; config = { path = "cache.jsonl"; }; }'
run "$SH" run "$T/cache.cfg" $F -v
expect_rc 0 "first cached run"
expect_in err "stage 's': not in the cache" "a miss is logged with -v"
cp "$T/cache.jsonl" "$T/cache1.jsonl"
run "$SH" run "$T/cache.cfg" $F -v
expect_rc 0 "second cached run"
expect_in err "stage 's': output reused from the cache" "a hit is logged with -v"
expect_in err "s      cached" "the summary says cached"
cmp -s "$T/cache.jsonl" "$T/cache1.jsonl" || fail "the cached output differs from the computed one"
printf ' More.' >>"$T/docs/b.txt"
run "$SH" run "$T/cache.cfg" $F -v
expect_in err "stage 's': not in the cache" "changed input items miss the cache"
sed 's/ms = 300/ms = 301/' "$T/cache.cfg" >"$T/cache2.cfg"
run "$SH" run "$T/cache2.cfg" $F -v
expect_in err "stage 's': not in the cache" "a changed configuration misses the cache"
# Idempotency declared by the descriptor caches without `cache = true`; `cache = false` turns it off.
mkdir -p "$T/idem"
link_lib "$T/idem" libfaults.so
faults_descriptor | sed 's/{ type = "sleep"; }/{ type = "sleep"; idempotent = true; }/' |
    sed "s|@LIB@|libfaults.so|" >"$T/idem/faults.plugin"
sed 's/ cache = true;//' "$T/cache.cfg" >"$T/idem.cfg"
run "$SH" run "$T/idem.cfg" --plugins-dir "$T/idem" -v
run "$SH" run "$T/idem.cfg" --plugins-dir "$T/idem" -v
expect_in err "stage 's': output reused from the cache" "a stage its descriptor declares idempotent is cached"
sed 's/ cache = true;/ cache = false;/' "$T/cache.cfg" >"$T/nocache.cfg"
run "$SH" run "$T/nocache.cfg" --plugins-dir "$T/idem" -v
expect_not_in err "from the cache" "cache = false overrides the descriptor"

# --- one store, pipelines in two directories: the cache keys on the files' contents, not their names -------
mkdir -p "$T/d1/docs" "$T/d2/docs"
printf 'content of d1' >"$T/d1/docs/x.txt"
printf 'content of d2' >"$T/d2/docs/x.txt"
for d in d1 d2; do
    pipeline "$T/$d/p.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; }; cache = true; },
      { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
    run "$SH" run "$T/$d/p.cfg" --store "$T/shared.db"
done
grep -q "content of d2" "$T/d2/out.jsonl" || fail "the cache served another directory's files: $(cat "$T/d2/out.jsonl")"

finish
