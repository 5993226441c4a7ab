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
# One translation unit (src/pm4rt.cl includes the others in a fixed order) so the code object
# carries exactly one metadata note.
SOURCE=pm4rt.cl

CFLAGS=(
    -target amdgcn-amd-amdhsa -O3 -x cl -cl-std=CL2.0 -nogpulib
    -ffp-contract=off                      # the arithmetic is exactly the written fma/mul/add
    -cl-fp32-correctly-rounded-divide-sqrt # rms_norm: IEEE division and sqrt
    -cl-kernel-arg-info                    # argument names in the metadata (.args[].name)
    -Werror -Wall
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for t in "${TARGETS[@]}"; do
    o="$tmp/$t.o"
    (cd "$here/src" && "$CLANG" "${CFLAGS[@]}" -mcpu="$t" -c "$SOURCE" -o "$o")
    mkdir -p "$out/$t"
    "$LLD" -shared --no-undefined "$o" -o "$out/$t/pm4rt.hsaco"
done
