#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a fixed short time on its committed corpus (plus
# its crash regressions) with the nightly toolchain; fails on any crash, hang (> 1 s per
# input) or RSS over 1 GiB. New inputs go to a scratch directory, so the tree stays clean.
#
# The mutation sequence is fixed (-seed), so CI replays the same first inputs every run and a
# red run is reproducible with the same seed; a longer local run with that seed covers them.
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_SEED     libFuzzer's random seed (default 1)
#   FUZZ_SKIP     targets not run, with the reason printed (default: engine, whose known hang
#                 fuzz/hangs/engine/timeout-c1b2f170... — dropping the engine does not return
#                 for that IB — is open in the fuzzing issue; set FUZZ_SKIP= to run it)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
FUZZ_SEED="${FUZZ_SEED:-1}"
FUZZ_SKIP="${FUZZ_SKIP-engine}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "error: the nightly Rust toolchain is missing; cargo-fuzz needs it" >&2
    echo "       (install it with: rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: installing it"
    cargo install cargo-fuzz --locked
fi

start=$(date +%s)
cargo +nightly fuzz build

targets=$(cargo +nightly fuzz list)
if [ -z "$targets" ]; then
    echo "error: cargo fuzz list found no target in fuzz/" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=""
for t in $targets; do
    if [[ " $FUZZ_SKIP " == *" $t "* ]]; then
        echo "--- SKIPPED $t: known open bug, input in fuzz/hangs/$t/ (FUZZ_SKIP)"
        summary+="$t: SKIPPED (known hang, fuzz/hangs/$t/)"$'\n'
        continue
    fi
    if [ ! -d "fuzz/corpus/$t" ]; then
        echo "error: no committed corpus fuzz/corpus/$t" >&2
        exit 1
    fi
    mkdir -p "$work/$t"
    dirs=("$work/$t" "fuzz/corpus/$t")
    if [ -d "fuzz/regressions/$t" ]; then dirs+=("fuzz/regressions/$t"); fi
    echo "--- fuzz $t for ${SECONDS_PER_TARGET}s"
    # -jobs/-workers unset: one process (libFuzzer's default).
    if ! cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
        -seed="$FUZZ_SEED" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1024 -timeout=1 \
        -print_final_stats=1 2>"$work/$t.log"; then
        tail -n 60 "$work/$t.log" >&2
        echo "error: fuzz target $t failed (the crashing input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || true)
    summary+="$t: ${runs:-?} executions in ${SECONDS_PER_TARGET}s"$'\n'
done
printf '\n%s' "$summary"
echo "fuzzing took $(( $(date +%s) - start ))s"
