#!/usr/bin/env bash
# Build the pm4rt kernel library: every kernel in src/*.cl for every target, linked into one
# code object per target: <out>/gfx1201/pm4rt.hsaco and <out>/gfx1100/pm4rt.hsaco.
#
# Usage: kernels/build.sh [OUT_DIR]   (default: the kernels/ directory itself)
# Needs Debian's clang-19 and lld-19 (apt-get install -y clang-19 lld-19 llvm-19).
# The output is deterministic: sources are compiled from inside src/ by relative name, in a
# fixed order, and nothing in the command line depends on OUT_DIR or the time.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

CLANG="${CLANG:-clang-19}"
LLD="${LLD:-ld.lld-19}"

TARGETS=(gfx1201 gfx1100)
# Fixed link order (the order of kernels inside .text follows it).
SOURCES=(dmmv.cl argmax.cl rms_norm.cl copy.cl)

CFLAGS=(
    -target amdgcn-amd-amdhsa -O3 -x cl -cl-std=CL2.0 -nogpulib
    -ffp-contract=off                      # the arithmetic is exactly the written fma/mul/add
    -cl-fp32-correctly-rounded-divide-sqrt # rms_norm: IEEE division and sqrt
    -Werror -Wall
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for t in "${TARGETS[@]}"; do
    objs=()
    for s in "${SOURCES[@]}"; do
        o="$tmp/$t-${s%.cl}.o"
        (cd "$here/src" && "$CLANG" "${CFLAGS[@]}" -mcpu="$t" -c "$s" -o "$o")
        objs+=("$o")
    done
    mkdir -p "$out/$t"
    "$LLD" -shared --no-undefined "${objs[@]}" -o "$out/$t/pm4rt.hsaco"
done
