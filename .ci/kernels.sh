#!/usr/bin/env bash
# CI fragment (called by .ci/run): the committed kernel code objects must be reproducible and
# well formed. Needs `apt-get install -y clang-19 lld-19 llvm-19` (Debian bookworm packages).
#   1. kernels/check.sh: rebuild into a temp dir, byte-compare, clean disassembly.
#   2. llvm-readelf-19 cross-check: one metadata note, 25 kernels, all wave32, no hidden args.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in clang-19 ld.lld-19 llvm-objdump-19 llvm-readelf-19; do
    if ! command -v "$tool" >/dev/null; then
        echo "kernels.sh: $tool not found (apt-get install -y clang-19 lld-19 llvm-19)" >&2
        exit 1
    fi
done

kernels/check.sh

for t in gfx1201 gfx1100; do
    notes="$(llvm-readelf-19 --notes "kernels/$t/pm4rt.hsaco")"
    n_notes="$(grep -c 'NT_AMDGPU_METADATA' <<<"$notes" || true)"
    n_wave32="$(grep -c '\.wavefront_size: *32' <<<"$notes" || true)"
    n_hidden="$(grep -c 'value_kind: *hidden_' <<<"$notes" || true)"
    if [ "$n_notes" != 1 ] || [ "$n_wave32" != 25 ] || [ "$n_hidden" != 0 ]; then
        echo "kernels.sh: $t: $n_notes metadata notes (want 1), $n_wave32 wave32 kernels (want 25), $n_hidden hidden args (want 0)" >&2
        exit 1
    fi
    echo "kernels.sh: $t: 1 metadata note, 25 wave32 kernels, no hidden arguments"
done
tests/user_kernels/build.sh --check
