#!/usr/bin/env python3
"""Prints DMMV throughput / streaming-read throughput from the last criterion run of
`cargo bench -p pm4rt-sim --bench dmmv` (medians, same bytes, same run)."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion") / "dmmv_16384x4096"


def gib_per_s(name):
    d = root / name / "new"
    median_ns = json.loads((d / "estimates.json").read_text())["median"]["point_estimate"]
    nbytes = json.loads((d / "benchmark.json").read_text())["throughput"]["Bytes"]
    return nbytes / (median_ns * 1e-9) / 2**30


for ty in ("F32", "Q4_0", "Q8_0"):
    k, r = gib_per_s(ty), gib_per_s(f"stream_read_{ty}_bytes")
    print(f"{ty:5} dmmv {k:6.2f} GiB/s  stream read {r:6.2f} GiB/s  ratio {k / r:.2f}")
