# The command line itself: version, help, usage errors, GNU-style option order.
. "$(dirname "$0")/lib.sh"

run "$SH" --version
expect_rc 0 "--version"
expect_in out "stagehost 0.1.0 (plugin ABI 1.1)" "--version prints version and ABI"

run "$SH" --help
expect_rc 0 "--help"
expect_in out "run PIPELINE" "--help lists run"
expect_in out "plugins list" "--help lists plugins list"

for cmd in "run" "plugins" "resolve"; do
    run "$SH" $cmd --help
    expect_rc 0 "$cmd --help"
    expect_in out "Usage: stagehost $cmd" "$cmd --help shows its usage"
    expect_in out "--plugins-dir DIR" "$cmd accepts --plugins-dir"
done

run "$SH"
expect_rc 2 "no command"
run "$SH" frobnicate
expect_rc 2 "unknown command"
expect_in err "unknown command 'frobnicate'" "unknown command is named"
run "$SH" run
expect_rc 2 "run without a pipeline"
expect_in err "expected one PIPELINE file" "run without a pipeline says so"
run "$SH" run a.cfg --bogus
expect_rc 2 "unknown option"
expect_in err "unknown option '--bogus'" "unknown option is named"
run "$SH" run a.cfg --plugins-dir
expect_rc 2 "option without value"
expect_in err "needs a value" "option without value says so"

# Options may follow arguments.
run "$SH" resolve chunk --plugins-dir "$PLUGINS"
expect_rc 0 "option after argument"
expect_in out "plugin core/text" "option after argument is honoured"
run "$SH" --plugins-dir "$PLUGINS" resolve chunk
expect_rc 2 "options go after the command"

run "$SH" run "$T/missing.cfg"
expect_rc 2 "missing pipeline file"
expect_in err "$T/missing.cfg: cannot read pipeline" "missing pipeline file is named"

run "$SH" plugins list --plugins-dir "$T/nope"
expect_rc 2 "missing plugins dir"
expect_in err "--plugins-dir $T/nope: not a directory" "missing plugins dir is named"

finish
