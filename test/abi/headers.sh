# Each public header compiles alone, as strict C99 and as C++17, with every warning an error: a plugin author's
# compiler and flags are not ours. CC and CXX are compiler commands (CXX empty: no C++ compiler, C++ skipped).
set -u
: "${CC:?}" "${SOURCE_ROOT:?}"
failures=0
T=$(mktemp -d /tmp/sh-headers-XXXXXX)
trap 'rm -rf "$T"' EXIT
inc="-I$SOURCE_ROOT/abi -I$SOURCE_ROOT/sdk"

for h in stagehost/abi.h stagehost/hooks.h stagehost/sdk.h; do
    printf '#include <%s>\n' "$h" >"$T/one.c"
    # shellcheck disable=SC2086
    if ! $CC -std=c99 -pedantic -Werror -Wall -Wextra $inc -fsyntax-only "$T/one.c" 2>"$T/err"; then
        echo "FAIL: $h alone as C99 (-std=c99 -pedantic -Werror -Wall -Wextra):" >&2
        sed 's/^/    /' "$T/err" >&2
        failures=$((failures + 1))
    fi
    if [ -n "${CXX:-}" ]; then
        cp "$T/one.c" "$T/one.cc"
        # shellcheck disable=SC2086
        if ! $CXX -std=c++17 -Wall -Wextra -Werror -pedantic $inc -fsyntax-only "$T/one.cc" 2>"$T/err"; then
            echo "FAIL: $h alone as C++17 (-std=c++17 -Wall -Wextra -Werror -pedantic):" >&2
            sed 's/^/    /' "$T/err" >&2
            failures=$((failures + 1))
        fi
    fi
done
# The two ABI headers together, in either order and twice (their include guards).
printf '#include <stagehost/hooks.h>\n#include <stagehost/abi.h>\n#include <stagehost/hooks.h>\n' >"$T/two.c"
# shellcheck disable=SC2086
$CC -std=c99 -pedantic -Werror -Wall -Wextra $inc -fsyntax-only "$T/two.c" 2>"$T/err" \
    || { echo "FAIL: hooks.h and abi.h together:" >&2; sed 's/^/    /' "$T/err" >&2; failures=$((failures + 1)); }

if [ -z "${CXX:-}" ]; then
    echo "no C++ compiler: the C++17 checks were skipped"
fi
if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all checks passed"
