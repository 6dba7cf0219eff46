#!/usr/bin/env bash
# A few seconds of each fuzz target (PP_FUZZ_SECONDS, default 5), for CI.
# Skips, with a note and exit status 0, when this machine cannot build
# libFuzzer targets (no cargo-fuzz, no C++ compiler, or a toolchain without
# the sanitizer instrumentation); a target that builds but crashes fails.
# As the Rust tests' skips do (tests/skip/mod.rs), a skip appends its line to
# PP_SKIP_LOG if set, and fails (exit status 1) under PP_REQUIRE_ALL=1 (CI).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${PP_FUZZ_SECONDS:-5}
skip() {
    echo "skipped: fuzz smoke: $*"
    if [ -n "${PP_SKIP_LOG:-}" ]; then
        echo "skipped: fuzz smoke: $*" >>"$PP_SKIP_LOG"
    fi
    if [ "${PP_REQUIRE_ALL:-}" = 1 ]; then
        echo "PP_REQUIRE_ALL=1 requires the fuzz smoke to run"
        exit 1
    fi
    exit 0
}

command -v cargo-fuzz >/dev/null 2>&1 || skip "cargo-fuzz is not installed (cargo install cargo-fuzz)"
command -v c++ >/dev/null 2>&1 || skip "no C++ compiler to build libFuzzer"

# cargo fuzz passes nightly-only flags (-Zsanitizer, sancov passes): fine on
# a nightly toolchain, and on stable with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' >"$probe/probe.rs"
if ! rustc -Zsanitizer=address -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 -o "$probe/probe" "$probe/probe.rs" \
    >"$probe/log" 2>&1; then
    skip "this toolchain cannot build sanitizer-instrumented code: $(head -n 3 "$probe/log")"
fi

cargo fuzz build
for target in decode_header decoder conn channel_receive; do
    mkdir -p "$probe/corpus-$target"
    echo "== fuzzing $target for ${seconds}s"
    status=0
    cargo fuzz run "$target" "$probe/corpus-$target" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
        >"$probe/$target.log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$probe/$target.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$probe/$target.log"
        echo "fuzz target $target failed (status $status): the input is in fuzz/artifacts/$target/"
        exit 1
    fi
done
echo "fuzz smoke passed"
