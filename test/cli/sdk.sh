# An outside author's path: install stagehost into a staging prefix, build a minimal plugin out of tree with
# cc and pkg-config against it, drop it into a plugins directory, and run it.
. "$(dirname "$0")/lib.sh"

: "${MESON:?}" "${BUILD_ROOT:?}"
dest="$T/dest"
"$MESON" install -C "$BUILD_ROOT" --destdir "$dest" --no-rebuild --quiet >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "meson install --destdir"; finish; }
pc=$(find "$dest" -name stagehost-sdk.pc | head -n 1)
[ -n "$pc" ] || { fail "stagehost-sdk.pc is not installed"; finish; }
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
[ -n "$(find "$dest" -name abi.h -path '*stagehost*')" ] || fail "abi.h is not installed"
[ -n "$(find "$dest" -name libcore_text.so)" ] || fail "core/text is not installed"
[ -n "$(find "$dest" -name core_text.plugin)" ] || fail "core/text's descriptor is not installed"

mkdir -p "$T/plugins"
cat >"$T/upper.c" <<'C'
#include <stagehost/sdk.h>
#include <ctype.h>

static int upper(void *user, sh_call *call, const sh_value *const *items, size_t count)
{
    (void)user;
    for (size_t i = 0; i < count; i++) {
        const char *text = sh_get_string(items[i], "content", "");
        char *up = strdup(text);
        if (!up)
            return sh_failf(call, "out of memory");
        for (char *p = up; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        sh_value *out = sh_copy(items[i]);
        int rc = sh_set_string(out, "content", up);
        free(up);
        if (rc != SH_OK || sh_emit(call, out) != SH_OK)
            return sh_failf(call, "cannot emit");
    }
    return SH_OK;
}

static const sh_sdk_stage stages[] = {
    {.type = "upper", .input = "document", .output = "document", .process = upper},
};
SH_SDK_PLUGIN(.name = "example/upper", .version = "1.0.0", .stages = stages, .stage_count = SH_SDK_COUNT(stages));
C
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags stagehost-sdk) -o "$T/plugins/libupper.so" \
    "$T/upper.c" 2>"$T/cc.log" || { cat "$T/cc.log" >&2; fail "out-of-tree build with pkg-config"; finish; }
cat >"$T/plugins/upper.plugin" <<'D'
format = 1;
name = "example/upper";
version = "1.0.0";
library = "libupper.so";
abi = "1.0";
stages = ( { type = "upper"; input = "document"; output = "document"; } );
D
mkdir -p "$T/docs"
printf 'hello, world' >"$T/docs/a.txt"
pipeline "$T/p.cfg" '{ name = "r"; type = "read"; config = { path = "docs"; }; },
  { name = "u"; type = "upper"; }, { name = "w"; type = "write"; config = { path = "out.jsonl"; }; }'
sh_bin=$(find "$dest" -type f -name stagehost -perm -u+x | head -n 1)
[ -n "$sh_bin" ] || { fail "the stagehost binary is not installed"; finish; }
run "$sh_bin" run "$T/p.cfg" --plugins-dir "$T/plugins"
expect_rc 0 "the installed stagehost runs the out-of-tree plugin"
grep -qF '"content":"HELLO, WORLD"' "$T/out.jsonl" || fail "the out-of-tree plugin's output is missing"

finish
