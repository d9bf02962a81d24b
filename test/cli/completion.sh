# The bash completion (completions/stagehost): commands, options, plugin names and stage types from the binary
# being completed, files after run, and no command of main.c's dispatch missing from it.
. "$(dirname "$0")/lib.sh"

: "${SOURCE_ROOT:?}"
comp="$SOURCE_ROOT/completions/stagehost"
[ -f "$comp" ] || { fail "$comp is missing"; finish; }
# Fail on any error the script makes while loading (syntax, unset variables).
bash -n "$comp" || fail "bash -n: the completion script does not parse"
# shellcheck source=/dev/null
. "$comp"
complete -p stagehost >/dev/null 2>&1 || fail "the script registers a completion for stagehost"

# complete_at N WORD...: completes word N (1: the first WORD) of `stagehost WORD...`; COMPREPLY as one
# space-separated line in $got.
complete_at() {
    local at=$1
    shift
    COMP_WORDS=("$SH" "$@")
    COMP_CWORD=$at
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _stagehost 2>"$T/comp.err"
    got=" $(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')"
    [ -s "$T/comp.err" ] && fail "completing '$*' wrote to stderr: $(cat "$T/comp.err")"
}

# complete WORD...: completes the last word.
complete_words() {
    complete_at $# "$@"
}

# expect_words DESCRIPTION WORD...: each WORD is among the completions.
expect_words() {
    local what=$1 w
    shift
    for w in "$@"; do
        case $got in *" $w "*) ;; *) fail "$what: '$w' missing from [$got]" ;; esac
    done
}

expect_none() {
    local what=$1 w
    shift
    for w in "$@"; do
        case $got in *" $w "*) fail "$what: '$w' unexpectedly in [$got]" ;; esac
    done
}

complete_words ""
expect_words "commands" run plugins resolve serve ctl doctor new-plugin pipeline runs hooks
complete_words "pl"
expect_words "a command prefix" plugins
expect_none "a command prefix" run pipeline

# Every command main.c dispatches is completed: the list cannot drift from the binary.
commands=$(sed -n 's/.*strcmp(cmd, "\([a-z-]*\)") == 0)$/\1/p' "$SOURCE_ROOT/host/cli/main.c")
[ -n "$commands" ] || fail "no command found in host/cli/main.c's dispatch"
complete_words ""
for c in $commands; do
    expect_words "main.c dispatches '$c'" "$c"
done

complete_words run --
expect_words "run's options" --plugins-dir --config --grant --metrics --watch --help
complete_words plugins list --j
expect_words "plugins list --json" --json
complete_words plugins ""
expect_words "plugins subcommands" list inspect validate reset
complete_words ctl --socket /tmp/s ""
expect_words "ctl requests" run plugins unload stats shutdown
complete_words pipeline ""
expect_words "pipeline subcommands" validate graph
complete_words runs ""
expect_words "runs subcommands" list show prune
complete_words hooks ""
expect_words "hooks subcommands" list call
complete_words run p.cfg --jobs ""
expect_none "--jobs takes a number, not a file" p.cfg run
complete_words --
expect_words "top-level options" --help --version

# Plugin names and stage types come from the binary, honouring --plugins-dir on the command line.
complete_words plugins inspect --plugins-dir "$PLUGINS" ""
expect_words "plugins inspect NAME" core/text
complete_at 3 plugins inspect "" --plugins-dir "$PLUGINS"
expect_words "plugins inspect NAME (option after)" core/text
complete_words plugins inspect ""
expect_none "no plugins without --plugins-dir" core/text
complete_words resolve --plugins-dir "$PLUGINS" ""
expect_words "resolve TYPE" normalize core/text.normalize chunk read write passthrough
complete_words resolve --plugins-dir "$PLUGINS" core/text.n
expect_words "resolve a qualified prefix" core/text.normalize
expect_none "resolve a qualified prefix" core/text.chunk read
complete_words ctl --socket /tmp/s unload --plugins-dir "$PLUGINS" ""
expect_words "ctl unload PLUGIN" core/text
STAGEHOST_PLUGIN_PATH="$PLUGINS" complete_words resolve no
expect_words "types from STAGEHOST_PLUGIN_PATH" normalize

# Files: pipelines after run and pipeline validate; directories after --plugins-dir and new-plugin's NAME.
mkdir -p "$T/work/sub" && touch "$T/work/demo.cfg" "$T/work/notes.txt"
cd "$T/work" || exit 1
complete_words run ""
expect_words "run PIPELINE" demo.cfg sub
expect_none "run PIPELINE prefers pipeline files" notes.txt
complete_words pipeline validate d
expect_words "pipeline validate FILE" demo.cfg
complete_words run demo.cfg --plugins-dir ""
expect_words "--plugins-dir DIR" sub
expect_none "--plugins-dir DIR" demo.cfg
complete_words runs list ""
expect_words "runs list PIPELINE" demo.cfg
complete_words runs show abcd ""
expect_words "runs show RUN_ID PIPELINE" demo.cfg
complete_words runs prune ""
expect_words "runs prune PIPELINE" demo.cfg
complete_words new-plugin acme/x ""
expect_words "new-plugin NAME DIR" sub

finish
