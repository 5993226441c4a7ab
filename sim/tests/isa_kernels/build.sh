#!/usr/bin/env bash
# Build the ISA interpreter test corpus (src/corpus.cl) for gfx1201 and gfx1100 into
# <out>/<target>/corpus.hsaco, with the compiler flags of kernels/build.sh.
#
# Usage: build.sh [OUT_DIR]   (default: this directory)
#        build.sh --check     (rebuild into a temp dir, byte-compare with the committed objects)
# Needs Debian's clang-19 and lld-19 (apt-get install -y clang-19 lld-19 llvm-19).
# Deterministic: compiled from inside src/ by relative name; nothing depends on OUT_DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
CLANG="${CLANG:-clang-19}"
LLD="${LLD:-ld.lld-19}"
TARGETS=(gfx1201 gfx1100)
SOURCE=corpus.cl
CFLAGS=(
    -target amdgcn-amd-amdhsa -O3 -x cl -cl-std=CL2.0 -nogpulib
    -ffp-contract=off
    -cl-fp32-correctly-rounded-divide-sqrt
    -cl-kernel-arg-info
    -Werror -Wall
)

build() {
    local out="$1" tmp
    tmp="$(mktemp -d)"
    for t in "${TARGETS[@]}"; do
        (cd "$here/src" && "$CLANG" "${CFLAGS[@]}" -mcpu="$t" -c "$SOURCE" -o "$tmp/$t.o")
        mkdir -p "$out/$t"
        "$LLD" -shared --no-undefined "$tmp/$t.o" -o "$out/$t/corpus.hsaco"
    done
    rm -rf "$tmp"
}

if [ "${1:-}" = "--check" ]; then
    check="$(mktemp -d)"
    trap 'rm -rf "$check"' EXIT
    build "$check"
    fail=0
    for t in "${TARGETS[@]}"; do
        if ! cmp "$here/$t/corpus.hsaco" "$check/$t/corpus.hsaco"; then
            echo "isa_kernels/build.sh: $t: rebuild differs from the committed corpus.hsaco" >&2
            fail=1
        fi
    done
    exit "$fail"
fi

out="${1:-$here}"
mkdir -p "$out"
build "$(cd "$out" && pwd)"
