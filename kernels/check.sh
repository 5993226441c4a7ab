#!/usr/bin/env bash
# Verify the committed code objects: rebuild every target into a temporary directory with
# build.sh, require byte equality with kernels/<target>/pm4rt.hsaco, and require a clean
# disassembly (llvm-objdump-19 -d --mcpu=<target>: no "<unknown>", nothing on stderr).
# Exit status: 0 when everything matches, 1 otherwise (each failure is printed).
# Needs: apt-get install -y clang-19 lld-19 llvm-19
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
OBJDUMP="${OBJDUMP:-llvm-objdump-19}"
TARGETS=(gfx1201 gfx1100)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$here/build.sh" "$tmp/out"

fail=0
for t in "${TARGETS[@]}"; do
    committed="$here/$t/pm4rt.hsaco"
    rebuilt="$tmp/out/$t/pm4rt.hsaco"
    if [ ! -f "$committed" ]; then
        echo "check.sh: missing committed code object $committed" >&2
        fail=1
        continue
    fi
    if ! cmp "$committed" "$rebuilt"; then
        echo "check.sh: $t: rebuild differs from the committed $committed (run kernels/build.sh)" >&2
        fail=1
    fi
    if ! "$OBJDUMP" -d --mcpu="$t" "$committed" >"$tmp/$t.dis" 2>"$tmp/$t.err"; then
        echo "check.sh: $t: $OBJDUMP failed" >&2
        cat "$tmp/$t.err" >&2
        fail=1
    fi
    if [ -s "$tmp/$t.err" ]; then
        echo "check.sh: $t: $OBJDUMP wrote to stderr:" >&2
        cat "$tmp/$t.err" >&2
        fail=1
    fi
    if grep -n -i -E '<unknown>|error|invalid' "$tmp/$t.dis" >&2; then
        echo "check.sh: $t: disassembly has unknown/invalid instructions (lines above)" >&2
        fail=1
    fi
    echo "check.sh: $t: $(grep -c ':$' "$tmp/$t.dis") functions disassembled"
done

if [ "$fail" != 0 ]; then
    echo "check.sh: FAILED" >&2
    exit 1
fi
echo "check.sh: OK (code objects reproduce and disassemble cleanly)"
