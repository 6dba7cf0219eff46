#!/usr/bin/env bash
# The pmap rate by worker count (1, 2, 4, ... up to the processors present),
# for a many-core machine that has no Rust toolchain: build a statically
# linked benchmark binary here, carry it there, run it there.
#
#   bash benches/scaling.sh build   # here: target/scaling/pprocess-bench
#   bash benches/scaling.sh run     # there: prints the table, and writes
#                                   # results.md and results.csv to $OUT
#                                   # (or target/scaling/out)
#
# `run` needs only the binary, sh and /proc: it runs the benchmark's
# `scaling` group (pp_pmap with PP_REUSE against the fork + MAP_SHARED floor,
# 4M tiny tasks; a few seconds per worker count).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/scaling/pprocess-bench

case "${1:-}" in
build)
    host=$(rustc -vV | sed -n 's/^host: //p')
    # crt-static links glibc in, so the binary runs on any Linux of the same
    # architecture. --target keeps the flag off build scripts and proc macros.
    RUSTFLAGS="-C target-feature=+crt-static" cargo bench --features capi \
        --target "$host" --bench pprocess --no-run --message-format=json-render-diagnostics \
        >target/scaling-build.json
    built=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' target/scaling-build.json | tail -n 1)
    rm -f target/scaling-build.json
    [ -n "$built" ] || { echo "no benchmark binary was built" >&2; exit 1; }
    mkdir -p target/scaling
    cp "$built" "$binary"
    strip "$binary"
    # A dynamically linked program names its loader (an INTERP segment).
    segments=$(readelf --program-headers "$binary")
    if grep -q INTERP <<<"$segments"; then
        echo "$binary is not statically linked" >&2
        exit 1
    fi
    echo "built $binary ($(du -h "$binary" | cut -f1)); run it with: bash benches/scaling.sh run"
    ;;
run)
    [ -x "$binary" ] || { echo "no $binary: run 'bash benches/scaling.sh build' first" >&2; exit 1; }
    out=${OUT:-target/scaling/out}
    mkdir -p "$out"
    PP_BENCH_ONLY=scaling PP_BENCH_OUT="$out" "$binary" --bench
    ;;
*)
    echo "usage: bash benches/scaling.sh build|run" >&2
    exit 2
    ;;
esac
