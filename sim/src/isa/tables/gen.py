#!/usr/bin/env python3
"""Generate the opcode tables of sim/src/isa/tables/gfx11.rs and gfx12.rs from LLVM 19's
AMDGPU disassembler (llvm-mc-19 --disassemble), the implementation of the encodings defined in
llvm/lib/Target/AMDGPU/{SOP,SM,VOP1,VOP2,VOP3,VOP3P,VOPC,VOPD,DS,FLAT}Instructions.td.

For every encoding family and every opcode value the script encodes one template instruction
whose register fields hold distinct numbers (destination 10, sources 20 / 30 / 40, VOP3B
carry-out 0), disassembles the whole batch, and records for each opcode LLVM accepts its
mnemonic and its operand shape: the order in which the fields are printed and how many dwords
each spans (v[10:11] = two dwords of the destination). Opcodes LLVM rejects are left out, so
the interpreter's decoder reports them as unknown encodings.

Usage: sim/src/isa/tables/gen.py            rewrite the tables
       sim/src/isa/tables/gen.py --check    exit 1 when the committed tables differ
Needs: apt-get install -y llvm-19
"""
import os
import re
import subprocess
import sys

LLVM_MC = os.environ.get("LLVM_MC", "llvm-mc-19")
HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"gfx11": "gfx1100", "gfx12": "gfx1201"}

D, A, B, C = 10, 20, 30, 40  # template register numbers: dst, src0, src1, src2
SD = 8  # SMEM sdata: aligned for the widest load
LIT = 0x12345678  # a literal dword, for encodings that need one
ROLE = {D: "d", A: "a", B: "b", C: "c", 0: "e", SD: "d"}
NULL = 0x7C


def le_bytes(words):
    out = []
    for w in words:
        out += [(w >> (8 * i)) & 0xFF for i in range(4)]
    return out


def templates(gen):
    """(family, opcode, dwords, clearable fields) for every template of one target.

    LLVM rejects an encoding whose unused register fields are not zero (e.g. src2 of a
    two-source VOP3, vsrcX1 of v_dual_mov_b32), so each template lists the fields that may be
    cleared; the sweep tries the template with fewer fields cleared first."""
    t = []
    for op in range(256):
        t.append(("SOP1", op, [0xBE800000 | D << 16 | op << 8 | A], [(0, 0x7F0000), (0, 0xFF)]))
    for op in range(0x60):
        t.append(("SOP2", op, [0x80000000 | op << 23 | D << 16 | B << 8 | A], [(0, 0x7F0000)]))
    for op in range(29):
        t.append(("SOPK", op, [0xB0000000 | op << 23 | D << 16 | 0x1234], [(0, 0x7F0000)]))
    for op in range(128):
        t.append(("SOPC", op, [0xBF000000 | op << 16 | B << 8 | A], []))
    for op in range(128):
        t.append(("SOPP", op, [0xBF800000 | op << 16], []))
    smem_clear = [(0, 0x1FC0), (0, 0x3F)]
    if gen == "gfx11":
        for op in range(256):
            t.append(("SMEM", op, [0xF4000000 | op << 18 | SD << 6 | A // 2, NULL << 25 | 0x10],
                      smem_clear))
    else:
        for op in range(64):
            t.append(("SMEM", op, [0xF4000000 | op << 13 | SD << 6 | A // 2, NULL << 25 | 0x10],
                      smem_clear))
    for op in range(256):
        t.append(("VOP1", op, [0x7E000000 | D << 17 | op << 9 | (256 + A)],
                  [(0, 0x1FE0000), (0, 0x1FF)]))
    for op in range(0x3E):
        t.append(("VOP2", op, [op << 25 | D << 17 | B << 9 | (256 + A)], []))
    for op in range(256):
        t.append(("VOPC", op, [0x7C000000 | op << 17 | B << 9 | (256 + A)], []))
    for op in range(1024):
        t.append(("VOP3", op, [0xD4000000 | op << 16 | D,
                               (256 + C) << 18 | (256 + B) << 9 | (256 + A)],
                  [(1, 0x7FC0000), (1, 0x3FE00), (0, 0xFF), (1, 0x1FF)]))
    for op in range(128):
        t.append(("VOP3P", op, [0xCC000000 | op << 16 | 1 << 14 | D,
                                3 << 27 | (256 + C) << 18 | (256 + B) << 9 | (256 + A)],
                  [(1, 0x7FC0000), (1, 0x3FE00)]))
    # VOPD: X half swept with Y = v_dual_mov_b32 (opcode 8), Y half with X = v_dual_mov_b32.
    # vdstY's low bit is implied by vdstX, so vdstY = 41 (X = 40, even). Register banks
    # (number mod 4) of the two halves differ, as the encoding requires.
    for op in range(16):
        t.append(("VOPDX", op, [0xC8000000 | op << 22 | 8 << 17 | B << 9 | (256 + A),
                                C << 24 | (41 >> 1) << 17 | (256 + 23)], [(0, 0x1FE00)]))
    for op in range(32):
        t.append(("VOPDY", op, [0xC8000000 | 8 << 22 | op << 17 | (256 + 21),
                                C << 24 | (41 >> 1) << 17 | B << 9 | (256 + A)],
                  [(1, 0x1FE00)]))
    for op in range(256):
        t.append(("DS", op, [0xD8000000 | op << 18, D << 24 | C << 16 | B << 8 | A],
                  [(1, 0xFF000000), (1, 0xFF0000), (1, 0xFF00), (1, 0xFF)]))
    if gen == "gfx11":
        # MUBUF, only the operand-less cache controls (buffer_gl0_inv, buffer_gl1_inv).
        for op in range(256):
            t.append(("MUBUF", op, [0xE0000000 | op << 18, 0], []))
        for seg, fam in ((0, "FLAT"), (1, "SCRATCH"), (2, "GLOBAL")):
            for op in range(128):
                t.append((fam, op, [0xDC000000 | op << 18 | seg << 16,
                                    D << 24 | NULL << 16 | B << 8 | A],
                          [(1, 0xFF000000), (1, 0xFF00), (1, 0xFF)]))
    else:
        for seg, fam in ((0, "FLAT"), (1, "SCRATCH"), (2, "GLOBAL")):
            for op in range(256):
                t.append((fam, op, [0xEC000000 | seg << 24 | op << 14 | NULL, B << 23 | D, A],
                          [(1, 0xFF), (1, 0xFF << 23), (2, 0xFF)]))
    return t


def variants(words, clear):
    """The template with every subset of the clearable fields cleared, fewest first."""
    subsets = sorted(range(1 << len(clear)), key=lambda m: (bin(m).count("1"), m))
    for m in subsets:
        w = list(words)
        for i, (idx, mask) in enumerate(clear):
            if m >> i & 1:
                w[idx] &= ~mask
        yield w
        yield w + [LIT]


MARKS = 4  # markers after each template (> the longest instruction): fewer mean it read into them


def marker(k):
    """`s_nop 0x8000+k`, the marker after template k of a batch (no template is an s_nop
    with bit 15 set)."""
    return 0xBF800000 | (0x8000 + k)


def disassemble_batch(cpu, batch):
    """For each dword list of `batch`, its text when LLVM decodes it as exactly one
    instruction of exactly those dwords, else None. One llvm-mc run: each template on its own
    line followed by MARKS lines of its marker (llvm-mc reads the lines as one byte stream, so
    an instruction longer than its template eats markers); a warning on the template's line
    means LLVM rejected it."""
    assert len(batch) < 0x8000
    lines = []
    for k, words in enumerate(batch):
        lines.append(",".join(f"0x{b:02x}" for b in le_bytes(words)))
        lines += [",".join(f"0x{b:02x}" for b in le_bytes([marker(k)]))] * MARKS
    r = subprocess.run([LLVM_MC, "--disassemble", "-triple=amdgcn", f"--mcpu={cpu}"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    bad = {int(m.group(1)) for m in re.finditer(r"<stdin>:(\d+):\d+: warning", r.stderr)}
    insts = [x.strip() for x in r.stdout.splitlines() if x.strip() and x.strip() != ".text"]
    seen = [[] for _ in batch]
    marks = [0] * len(batch)
    k = 0
    for x in insts:
        m = re.fullmatch(r"s_nop 0x([0-9a-f]+)", x)
        v = int(m.group(1), 16) - 0x8000 if m else -1
        if 0 <= v < len(batch) and v >= k:
            k = v
            marks[k] += 1
        elif marks[k]:
            k += 1
            seen[k].append(x)
        else:
            seen[k].append(x)
    return [seen[k][0] if len(seen[k]) == 1 and marks[k] == MARKS
            and ((MARKS + 1) * k + 1) not in bad else None for k in range(len(batch))]


def sweep(gen):
    temps = templates(gen)
    pending = {k: list(variants(w, clear)) for k, (_, _, w, clear) in enumerate(temps)}
    found = {}
    level = 0
    while pending:
        keys = [k for k, vs in pending.items() if level < len(vs)]
        if not keys:
            break
        texts = disassemble_batch(TARGETS[gen], [pending[k][level] for k in keys])
        for k, text in zip(keys, texts):
            if text is not None:
                found[k] = text
                del pending[k]
        level += 1
    tables = {}
    for k, (fam, op, _, _) in enumerate(temps):
        if k in found:
            mnem, toks = shape(fam, found[k])
            tables.setdefault(fam, []).append((op, mnem, toks))
    return tables


REG = re.compile(r"^(v|s|ttmp)(?:(\d+)|\[(\d+):(\d+)\])$")


def shape(fam, text):
    """'mnemonic operand...' -> (mnemonic, shape tokens)."""
    text = text.strip()
    if fam == "VOPDX":
        text = text.split("::")[0]
    elif fam == "VOPDY":
        text = text.split("::")[1]
    text = text.strip()
    roles = dict(ROLE)
    if fam.startswith("VOPD"):
        roles = {C: "d", 41: "d", A: "a", B: "b"}
    mnem, _, rest = text.partition(" ")
    # Modifiers follow the operands after a space (offset:, op_sel:[..], scope: ...); an
    # operand list has ", " between operands and no other spaces.
    rest = re.split(r"(?<!,) ", rest)[0] if rest else rest
    toks = []
    for operand in [o.strip() for o in rest.split(",")] if rest else []:
        # Modifiers follow the last operand after a space (offset:, op_sel:, scope: ...).
        operand = operand.split(" ")[0]
        # A template VGPR where the operand must be scalar prints as `v40/*Invalid operand*/`;
        # it still names the field it came from.
        operand = re.sub(r"/\*.*$", "", operand)
        m = REG.match(operand)
        if m:
            lo = int(m.group(2) if m.group(2) is not None else m.group(3))
            hi = int(m.group(2) if m.group(2) is not None else m.group(4))
            role = roles.get(lo)
            if role is None:
                toks.append("=" + operand)
            else:
                toks.append(f"{role}{hi - lo + 1}")
        elif operand in ("off", "null") and fam in ("FLAT", "GLOBAL", "SCRATCH"):
            toks.append("s")
        elif operand == f"0x{LIT:x}":
            toks.append("l")
        elif re.match(r"^(0x[0-9a-f]+|-?\d+)$", operand) and fam in ("SOPK", "SOPP", "SMEM"):
            toks.append("k")
        else:
            toks.append("=" + operand)
    return mnem, toks


def render(gen, tables):
    src = [
        f"//! Opcode tables of {TARGETS[gen]} ({gen}), generated by `sim/src/isa/tables/gen.py` from",
        "//! LLVM 19's AMDGPU disassembler (`llvm-mc-19 --disassemble`), which implements the",
        "//! `*_Real_gfx11` / `*_Real_gfx12` encodings of llvm/lib/Target/AMDGPU/SOPInstructions.td,",
        "//! SMInstructions.td, VOP1Instructions.td, VOP2Instructions.td, VOP3Instructions.td,",
        "//! VOP3PInstructions.td, VOPCInstructions.td, VOPDInstructions.td, DSInstructions.td and",
        "//! FLATInstructions.td. Do not edit: rerun the script (CI checks it with `--check`).",
        "//!",
        "//! Each entry: opcode, mnemonic, operand shape (printed order; `d`/`a`/`b`/`c`/`e` =",
        "//! destination, source 0/1/2, VOP3B carry-out; digit = dwords; `s` = FLAT saddr, `k` =",
        "//! immediate, `=text` = a fixed operand).",
        "",
        "use super::OpInfo;",
        "",
    ]
    for fam in ["SOP1", "SOP2", "SOPK", "SOPC", "SOPP", "SMEM", "VOP1", "VOP2", "VOPC", "VOP3",
                "VOP3P", "VOPDX", "VOPDY", "DS", "FLAT", "SCRATCH", "GLOBAL", "MUBUF"]:
        if fam == "MUBUF":
            tables[fam] = [r for r in tables.get(fam, []) if not r[2]]
        rows = tables.get(fam, [])
        src.append(f"/// {fam} opcodes of {TARGETS[gen]}, sorted by opcode.")
        src.append(f"pub(crate) const {fam}: &[OpInfo] = &[")
        for op, mnem, toks in rows:
            src.append(f"    OpInfo::new({op}, \"{mnem}\", \"{' '.join(toks)}\"),")
        src.append("];")
        src.append("")
    return "\n".join(src)


def main():
    check = "--check" in sys.argv[1:]
    fail = False
    for gen in TARGETS:
        text = render(gen, sweep(gen))
        path = os.path.join(HERE, f"{gen}.rs")
        if check:
            with open(path) as f:
                if f.read() != text:
                    print(f"gen.py: {path} differs from a fresh generation", file=sys.stderr)
                    fail = True
        else:
            with open(path, "w") as f:
                f.write(text)
    sys.exit(1 if fail else 0)


if __name__ == "__main__":
    main()
