# Helpers for CLI tests: each test script sources this, runs the real stagehost binary, and exits non-zero
# naming every check that failed.
set -u

SH=${STAGEHOST:?STAGEHOST must point at the stagehost binary}
PLUGINS=${BUNDLED_PLUGIN_DIR:?}
TEST_PLUGINS=${TEST_PLUGIN_DIR:?}
export STAGEHOST_PLUGIN_PATH=
export STAGEHOST_SYSTEM_PLUGIN_PATH=

failures=0
T=$(mktemp -d /tmp/sh-cli-XXXXXX)
# Workers of a host running as root run as an unprivileged user, which must be able to read the plugins here.
chmod 755 "$T"
# Crash history and the registry cache belong to each test, not to the machine.
export STAGEHOST_STATE_DIR="$T/.state" STAGEHOST_CACHE_DIR="$T/.cache"
trap 'rm -rf "$T"' EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run CMD...: runs it, keeping stdout in $T/out, stderr in $T/err and the exit code in $rc.
run() {
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

# expect_rc N DESCRIPTION: the last run exited N.
expect_rc() {
    if [ "$rc" != "$1" ]; then
        fail "$2: exit code $rc, expected $1"
        sed 's/^/    stderr: /' "$T/err" >&2
    fi
}

# expect_in FILE TEXT DESCRIPTION: FILE (out or err) contains TEXT literally.
expect_in() {
    if ! grep -qF -- "$2" "$T/$1"; then
        fail "$3: $1 lacks '$2'"
        sed "s/^/    $1: /" "$T/$1" >&2
    fi
}

expect_not_in() {
    if grep -qF -- "$2" "$T/$1"; then
        fail "$3: $1 unexpectedly has '$2'"
    fi
}

# link_lib DIR LIB: the test library LIB, linked into DIR (a descriptor's library must be inside its directory).
link_lib() {
    mkdir -p "$1"
    ln -sf "$TEST_PLUGINS/$2" "$1/$2"
}

# plugin_dir NAME LIB DESCRIPTOR-BODY: a directory $T/NAME holding NAME.plugin for the test library LIB.
plugin_dir() {
    link_lib "$T/$1" "$2"
    printf '%s\n' "$3" | sed "s|@LIB@|$2|" >"$T/$1/$1.plugin"
}

# faults_descriptor [EXTRA]: the descriptor body of the test/faults plugin, then EXTRA. The descriptor is
# test/plugins/faults.plugin (copied beside the library), the one list of the plugin's stages.
faults_descriptor() {
    sed 's|library = "libfaults.so"|library = "@LIB@"|' "$TEST_PLUGINS/faults.plugin"
    printf '%s\n' "${1:-}"
}

# pipeline FILE STAGES: writes a pipeline named "t" with the given stage list body.
pipeline() {
    printf 'pipeline = { name = "t"; stages = ( %s ); };\n' "$2" >"$1"
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
