# doc/stagehost.1 renders without warnings, names every command main.c dispatches, every subcommand of every
# usage synopsis and every option the commands' help texts list (so it cannot drift from the binary), and is
# installed with the completion script.
. "$(dirname "$0")/lib.sh"

: "${SOURCE_ROOT:?}" "${MESON:?}" "${BUILD_ROOT:?}"
page="$SOURCE_ROOT/doc/stagehost.1"
[ -f "$page" ] || { fail "$page is missing"; finish; }

# --- renders cleanly ------------------------------------------------------------------------------------------
rendered=0
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww -z "$page" 2>"$T/groff.err" || fail "groff cannot render the man page"
    [ -s "$T/groff.err" ] && { fail "groff warns about the man page"; sed 's/^/    /' "$T/groff.err" >&2; }
    rendered=1
fi
if command -v mandoc >/dev/null; then
    mandoc -T lint -W warning "$page" >"$T/mandoc.out" 2>&1 || {
        fail "mandoc -T lint warns about the man page"
        sed 's/^/    /' "$T/mandoc.out" >&2
    }
    rendered=1
fi
if command -v man >/dev/null; then
    MANWIDTH=80 man --warnings -l "$page" >"$T/man.txt" 2>"$T/man.err" || fail "man -l cannot render the man page"
    [ -s "$T/man.err" ] && { fail "man -l warns about the man page"; sed 's/^/    /' "$T/man.err" >&2; }
    rendered=1
fi
[ "$rendered" = 1 ] || { fail "neither groff, mandoc nor man is installed (scripts/deps installs groff-base)"; finish; }

# Plain text to search: roff's \- and font escapes gone.
if command -v groff >/dev/null; then
    groff -man -Tutf8 -P-cbou "$page" 2>/dev/null >"$T/page.txt"
else
    sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page" >"$T/page.txt"
fi
# Hyphenation at the end of a line would hide words: join the text into one line of single spaces.
tr '\n' ' ' <"$T/page.txt" | sed 's/‐ *//g; s/- \{1,\}\([a-z]\)/-\1/g; s/  */ /g' >"$T/flat.txt"
has() { grep -qF -- "$1" "$T/flat.txt"; }

# --- every command main.c dispatches has its own subsection -----------------------------------------------------
commands=$(sed -n 's/.*strcmp(cmd, "\([a-z-]*\)") == 0)$/\1/p' "$SOURCE_ROOT/host/cli/main.c")
[ -n "$commands" ] || fail "no command found in host/cli/main.c's dispatch"
for c in $commands; do
    grep -qE "^   $c( |$)" "$T/page.txt" || fail "the man page has no subsection for '$c' (dispatched by main.c)"
done

# --- every synopsis in the usage texts (stagehost CMD SUB) and every option they list ------------------------
for f in "$SOURCE_ROOT"/host/cli/*.c; do
    # "Usage: stagehost plugins list ..." and the "       stagehost plugins inspect ..." lines below it.
    sed -n 's/^ *"\(Usage: \|       \)stagehost \([a-z-]*\)\( [a-z][a-z-]*\)\{0,1\}.*/\2\3/p' "$f" | while read -r cmd sub; do
        [ -n "$sub" ] && ! has "$cmd $sub" && echo "$cmd $sub"
    done
    # Option lines of the help texts: "  --opt ..." or "  -v, --opt ...".
    sed -n 's/^ *"  \(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p' "$f"
done | sort -u >"$T/wanted"
while read -r item; do
    case $item in
        --*) has "$item" || fail "option $item (in a usage text in host/cli/) is not in the man page" ;;
        *) fail "'$item' (a usage synopsis in host/cli/) is not in the man page" ;;
    esac
done <"$T/wanted"
grep -q -- '--plugins-dir' "$T/wanted" || fail "no option found in host/cli/*.c usage texts (did their layout change?)"

for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS ENVIRONMENT FILES "EXIT STATUS"; do
    grep -q "^$section" "$T/page.txt" || fail "the man page has no $section section"
done
# Every environment variable the host reads.
for v in $(grep -rhoE 'getenv\("STAGEHOST_[A-Z_]+"\)' "$SOURCE_ROOT/host" | sed 's/getenv("\(.*\)")/\1/' | sort -u); do
    has "$v" || fail "environment variable $v (read in host/) is not in the man page"
done

# --- installed with the completion --------------------------------------------------------------------------------
"$MESON" install -C "$BUILD_ROOT" --destdir "$T/dest" --no-rebuild --quiet >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "meson install --destdir"; finish; }
[ -n "$(find "$T/dest" -path '*/man1/stagehost.1*')" ] || fail "meson install does not install man1/stagehost.1"
[ -n "$(find "$T/dest" -path '*/bash-completion/completions/stagehost')" ] \
    || fail "meson install does not install the bash completion"

finish
