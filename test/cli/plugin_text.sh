# core/text: chunk, normalize and count read their config strictly (an unknown key or a wrongly typed value is an
# error naming it, never a silent default) and keep text valid UTF-8.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/work/docs"
printf 'Ünïcödé wörds here.   Second  sentence, with more words!\n\nThird one.\n' >"$T/work/docs/a.txt"

stage() { # STAGE-BODY: read docs/, one core/text stage, write out.jsonl
    pipeline "$T/work/t.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"docs\"; }; }, $1,
      { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
    run "$SH" run "$T/work/t.cfg" --plugins-dir "$PLUGINS"
}

stage '{ name = "c"; type = "core/text.chunk"; config = { sise = 10; }; }'
expect_rc 1 "chunk with a misspelt key"
expect_in err "config: unknown key 'sise'; this stage type knows: size, overlap, field" "misspelt key message"
stage '{ name = "c"; type = "core/text.chunk"; config = { size = "20"; }; }'
expect_rc 1 "chunk with a string size"
expect_in err "config: 'size' must be an integer" "string size message"
stage '{ name = "c"; type = "core/text.chunk"; config = { size = 20; overlap = 20; }; }'
expect_rc 1 "chunk with overlap = size"
expect_in err "'overlap' must be less than 'size'" "overlap message"
stage '{ name = "n"; type = "core/text.normalize"; config = { whitespace = "yes"; }; }'
expect_rc 1 "normalize with a string whitespace"
expect_in err "config: 'whitespace' must be true or false" "whitespace message"
stage '{ name = "n"; type = "core/text.normalize"; config = { case = "title"; }; }'
expect_rc 1 "normalize with an unknown case"
expect_in err "config: 'case' must be one of \"none\", \"lower\", \"upper\", got \"title\"" "case message"
stage '{ name = "n"; type = "core/text.count"; config = { fields = "content"; }; }'
expect_rc 1 "count with a misspelt key"
expect_in err "config: unknown key 'fields'" "count misspelt key message"

# Working stages: sentence-aware chunks that never split a character, Unicode case mapping, counts.
stage '{ name = "n"; type = "core/text.normalize"; config = { case = "upper"; }; },
  { name = "c"; type = "core/text.chunk"; config = { size = 12; }; }'
expect_rc 0 "normalize and chunk"
python3 - "$T/work/out.jsonl" <<'PY' || fail "chunks"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert r[0]["text"].startswith("ÜNÏCÖDÉ"), r
assert all(len(x["text"]) <= 12 for x in r), r
assert "".join(x["text"].replace(" ", "") for x in r) == "ÜNÏCÖDÉWÖRDSHERE.SECONDSENTENCE,WITHMOREWORDS!THIRDONE.", r
PY
stage '{ name = "n"; type = "core/text.count"; }'
expect_rc 0 "count"
grep -qF '"words":10' "$T/work/out.jsonl" && grep -qF '"characters":' "$T/work/out.jsonl" ||
    fail "counts: $(cat "$T/work/out.jsonl")"

finish
