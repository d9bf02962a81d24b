# core/http against a real HTTP server on 127.0.0.1: get (success, headers, 404, pass_status, timeout,
# per-item URLs, confined), download (http, file://, sha256 verified and cached, mismatch, 404), and the
# refusal without the network grant.
. "$(dirname "$0")/lib.sh"

python3 "$(dirname "$0")/http_server.py" "$T/port" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "FAIL: the test HTTP server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$T/port")"
GRANT=(--grant core/http:network)
SHA=f8cc61e539181eb9725fcc26efbcfee400f44c76d8bb5daaa45722ed4001af2a # of /artifact.bin

# Without the network grant nothing runs, and the refusal says how to grant it.
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/hello\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS"
expect_rc 2 "get without the network grant"
expect_in err "plugin 'core/http' asks for permissions it was not granted: network" "refusal names the permission"
expect_in err "--grant core/http:network" "refusal says how to grant it"

# get: body, status and content type.
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/hello\"; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "get /hello"
python3 - "$T/out.jsonl" "$URL" <<'PY' || fail "get output"
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
assert len(items) == 1, items
i = items[0]
assert i["content"] == "hello world\n" and i["status"] == 200, i
assert i["content_type"] == "text/plain" and i["url"] == sys.argv[2] + "/hello", i
PY

# Request headers from config reach the server (its echo parsed back with core/json).
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\";
    config = { url = \"$URL/echo-headers\"; headers = { X-Stagehost-Test = \"abc 123\"; Accept = \"application/json\"; }; }; },
  { name = \"p\"; type = \"core/json.parse\"; config = { into = \"echo\"; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "get with headers"
python3 - "$T/out.jsonl" <<'PY' || fail "headers were not sent"
import json, sys
[i] = [json.loads(l) for l in open(sys.argv[1])]
h = {k.lower(): v for k, v in i["echo"].items()}
assert h["x-stagehost-test"] == "abc 123" and h["accept"] == "application/json", h
assert h["user-agent"].startswith("stagehost-core-http/"), h
PY

# A long header value (a big bearer token) is sent whole.
LONG=$(printf 'x%.0s' $(seq 3000))
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\";
    config = { url = \"$URL/echo-headers\"; headers = { Authorization = \"Bearer $LONG\"; }; }; },
  { name = \"p\"; type = \"core/json.parse\"; config = { into = \"echo\"; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "get with a long header"
python3 - "$T/out.jsonl" <<'PY' || fail "a long header value was cut short"
import json, sys
[i] = [json.loads(l) for l in open(sys.argv[1])]
h = {k.lower(): v for k, v in i["echo"].items()}
assert h["authorization"] == "Bearer " + "x" * 3000, len(h["authorization"])
PY

# A 404 fails the stage naming the URL and the status; pass_status lets it through.
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/missing\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "get of a 404"
expect_in err "GET $URL/missing answered HTTP 404" "404 names URL and status"
expect_in err "pass_status = true" "404 says how to pass it through"
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/missing\"; pass_status = true; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "get of a 404 with pass_status"
grep -qF '"status":404' "$T/out.jsonl" || fail "pass_status: the 404 response is not emitted with its status"

# A server slower than timeout_ms fails with the deadline named.
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/slow\"; timeout_ms = 500; }; }"
start=$(date +%s%N)
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
elapsed=$((($(date +%s%N) - start) / 1000000))
expect_rc 1 "get of a slow server"
expect_in err "GET $URL/slow: timed out after 500 ms (timeout_ms)" "timeout message"
[ "$elapsed" -lt 4000 ] || fail "the timeout took ${elapsed} ms, expected about 500"

# Connection refused names the URL.
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"http://127.0.0.1:1/x\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "get of a closed port"
expect_in err "GET http://127.0.0.1:1/x failed:" "connection failure names the URL"

# URLs from items (url_field), redirects followed, binary bodies as bytes; confined in a worker (isolation
# "process" with the network grant) it works the same.
printf '{"u": "%s/redirect"}\n{"u": "%s/binary"}\n' "$URL" "$URL" >"$T/urls.jsonl"
pipeline "$T/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"urls.jsonl\"; }; },
  { name = \"p\"; type = \"core/json.parse\"; },
  { name = \"g\"; type = \"core/http.get\"; isolation = \"process\"; config = { url_field = \"u\"; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "get per item, confined"
python3 - "$T/out.jsonl" <<'PY' || fail "per-item get output"
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
assert a["content"] == "hello world\n" and a["u"].endswith("/redirect"), a
assert b["content"] == {"$bytes": "/wAB"}, b
PY

# download: a bare `download` resolves to core/http.
run "$SH" resolve download --plugins-dir "$PLUGINS"
expect_rc 0 "resolve download"
expect_in out "plugin core/http 1.0.0, action download" "bare download resolves to core/http"

# download over http with a checksum: written relative to the pipeline, then cached on the second run.
mkdir -p "$T/dl"
pipeline "$T/dl/p.cfg" "{ name = \"d\"; type = \"download\";
    config = { url = \"$URL/artifact.bin\"; path = \"artifacts/a.bin\"; sha256 = \"$SHA\"; }; },
  { name = \"w\"; type = \"write\"; config = { path = \"out.jsonl\"; }; }"
run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "download with sha256"
[ "$(sha256sum <"$T/dl/artifacts/a.bin" | cut -d' ' -f1)" = "$SHA" ] || fail "downloaded file has the wrong content"
grep -qF "\"sha256\":\"$SHA\",\"cached\":false" "$T/dl/out.jsonl" || fail "download result: $(cat "$T/dl/out.jsonl")"
grep -qF '"bytes":2400' "$T/dl/out.jsonl" || fail "download result lacks the size"
run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "download again"
grep -qF '"cached":true' "$T/dl/out.jsonl" || fail "a file with the expected checksum is downloaded again"

# A checksum mismatch fails, names both digests, and leaves neither the file nor a temporary behind.
BAD=0000000000000000000000000000000000000000000000000000000000000000
pipeline "$T/dl/p.cfg" "{ name = \"d\"; type = \"download\";
    config = { url = \"$URL/artifact.bin\"; path = \"artifacts/b.bin\"; sha256 = \"$BAD\"; }; }"
run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "download with a wrong sha256"
expect_in err "download $URL/artifact.bin: checksum mismatch: expected sha256 $BAD, got $SHA" "mismatch message"
[ ! -e "$T/dl/artifacts/b.bin" ] || fail "a download with a wrong checksum was kept"
ls "$T/dl/artifacts" | grep -q tmp && fail "a temporary file was left behind"

# A 404 writes nothing.
pipeline "$T/dl/p.cfg" "{ name = \"d\"; type = \"download\"; config = { url = \"$URL/nope\"; path = \"c.bin\"; }; }"
run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "download of a 404"
expect_in err "download $URL/nope answered HTTP 404; nothing was written to 'c.bin'" "download 404 message"
[ ! -e "$T/dl/c.bin" ] || fail "a 404 download left a file"

# file:// URLs, from items (url/path/sha256 fields).
printf 'local artifact\n' >"$T/src.txt"
LSHA=$(sha256sum <"$T/src.txt" | cut -d' ' -f1)
printf '{"url": "file://%s", "path": "copies/src.txt", "sha256": "%s"}\n' "$T/src.txt" "$LSHA" >"$T/dl/list.jsonl"
pipeline "$T/dl/p.cfg" "{ name = \"r\"; type = \"read\"; config = { path = \"list.jsonl\"; }; },
  { name = \"p\"; type = \"core/json.parse\"; },
  { name = \"d\"; type = \"download\"; }"
run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 0 "download of a file:// URL"
cmp -s "$T/src.txt" "$T/dl/copies/src.txt" || fail "file:// download has the wrong content"

# A destination from an item is data: it may not leave the pipeline's directory (absolute or '..').
for bad in "../escape.txt" "copies/../../escape.txt" "$T/escape.txt"; do
    printf '{"url": "file://%s", "path": "%s"}\n' "$T/src.txt" "$bad" >"$T/dl/list.jsonl"
    run "$SH" run "$T/dl/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
    expect_rc 1 "download to an item's path $bad"
    expect_in err "item 1: the destination '$bad' (field 'path') is absolute or has a '..' component" \
        "escaping destination message ($bad)"
    [ ! -e "$T/escape.txt" ] || fail "a download from an item wrote outside the pipeline's directory ($bad)"
done

# An http URL may not redirect to file://; a response over max_bytes and a connection closed early fail and
# leave neither the destination nor a temporary file behind.
mkdir -p "$T/dl2"
bad_download() { # ROUTE EXTRA-CONFIG MESSAGE
    pipeline "$T/dl2/p.cfg" "{ name = \"d\"; type = \"download\"; config = { url = \"$URL/$1\"; path = \"f.bin\"; $2 }; }"
    run "$SH" run "$T/dl2/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
    expect_rc 1 "download of /$1"
    expect_in err "$3" "download of /$1 message"
    [ -z "$(ls -A "$T/dl2" | grep -v -e '^p.cfg$' -e '^\.stagehost$')" ] || fail "download of /$1 left files: $(ls -A "$T/dl2")"
}
bad_download redirect-file "" "unsupported URL scheme"
bad_download artifact.bin "max_bytes = 100;" "the response is larger than max_bytes (100 bytes)"
bad_download truncated "" "download $URL/truncated failed:"

# Configuration mistakes are caught before anything is fetched.
pipeline "$T/p.cfg" "{ name = \"d\"; type = \"download\"; config = { url = \"$URL/a\"; path = \"x\"; sha256 = \"abc\"; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "download with a malformed sha256"
expect_in err "'sha256' must be 64 hexadecimal digits" "malformed sha256 message"
pipeline "$T/p.cfg" "{ name = \"g\"; type = \"core/http.get\"; config = { url = \"$URL/hello\"; timeout = 5; }; }"
run "$SH" run "$T/p.cfg" --plugins-dir "$PLUGINS" "${GRANT[@]}"
expect_rc 1 "get with an unknown key"
expect_in err "config: unknown key 'timeout'; this stage type knows:" "unknown key message"

finish
