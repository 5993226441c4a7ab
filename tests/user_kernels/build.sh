#!/usr/bin/env bash
# Rebuild the user-kernel test corpus (src/user.cl) for gfx1201 and gfx1100 with the same
# compiler flags as kernels/build.sh. `--check` rebuilds into a temporary directory and fails
# unless the result is byte-identical to the committed code objects.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CLANG="${CLANG:-clang-19}"
LLD="${LLD:-ld.lld-19}"
TARGETS=(gfx1201 gfx1100)
CFLAGS=(
    -target amdgcn-amd-amdhsa -O3 -x cl -cl-std=CL2.0 -nogpulib
    -ffp-contract=off -cl-fp32-correctly-rounded-divide-sqrt -cl-kernel-arg-info
    -Werror -Wall
)

build() {
    local out="$1" tmp
    tmp="$(mktemp -d)"
    for t in "${TARGETS[@]}"; do
        (cd "$here/src" && "$CLANG" "${CFLAGS[@]}" -mcpu="$t" -c user.cl -o "$tmp/$t.o")
        mkdir -p "$out/$t"
        "$LLD" -shared --no-undefined "$tmp/$t.o" -o "$out/$t/user.hsaco"
    done
    rm -rf "$tmp"
}

if [ "${1:-}" = "--check" ]; then
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    build "$scratch"
    for t in "${TARGETS[@]}"; do
        cmp "$scratch/$t/user.hsaco" "$here/$t/user.hsaco"
    done
    echo "user kernels: rebuild is byte-identical"
else
    build "$here"
fi
