#!/bin/sh
# The reused-worker row against an older commit, alternated (issue 20's
# "≥ 3× the rate of the binary of the commit before this work").
#
#   benches/ab/run.sh OLD_REV [RUNS] [TASKS]
#
# Builds benches/ab/reuse_queue.rs twice, in release mode with LTO: against
# OLD_REV's library (from `git archive`) and against this working tree's.
# Then runs old, new, old, new, ... RUNS times each (default 5, TASKS
# default 1,000,000) and prints each rate, the medians and the median of the
# per-pair ratios (new rate ÷ old rate). Run it on an idle machine.
set -eu
old_rev=${1:?usage: benches/ab/run.sh OLD_REV [RUNS] [TASKS]}
runs=${2:-5}
tasks=${3:-1000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/old-lib"
git -C "$root" archive "$old_rev" | tar -x -C "$work/old-lib"

build() { # build SIDE LIBRARY_PATH
    mkdir -p "$work/$1/src"
    cp "$root/benches/ab/reuse_queue.rs" "$work/$1/src/main.rs"
    cat >"$work/$1/Cargo.toml" <<TOML
[package]
name = "ab-$1"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
pprocess = { path = "$2" }
[profile.release]
lto = true
codegen-units = 1
[workspace]
TOML
    cargo build --quiet --release --manifest-path "$work/$1/Cargo.toml" \
        --target-dir "$work/target-$1"
}
build old "$work/old-lib"
build new "$root"

rates() { "$work/target-$1/release/ab-$1" "$tasks" 1 | sed -n 's/^rate //p'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$work/old.rates"; : >"$work/new.rates"; : >"$work/ratios"
i=0
while [ "$i" -lt "$runs" ]; do
    o=$(rates old); n=$(rates new)
    echo "$o" >>"$work/old.rates"; echo "$n" >>"$work/new.rates"
    echo "$n $o" | awk '{ print $1 / $2 }' >>"$work/ratios"
    echo "$((i + 1)) $o $n" | awk '{ printf "pair %d: old %.2f M/s, new %.2f M/s\n", $1, $2 / 1e6, $3 / 1e6 }'
    i=$((i + 1))
done
printf 'old %s: median %.2f M/s\n' "$old_rev" "$(median <"$work/old.rates" | awk '{ print $1 / 1e6 }')"
printf 'new (working tree): median %.2f M/s\n' "$(median <"$work/new.rates" | awk '{ print $1 / 1e6 }')"
printf 'new ÷ old, median of the pairs: %.2f×\n' "$(median <"$work/ratios")"
