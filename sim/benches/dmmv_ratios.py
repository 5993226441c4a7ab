#!/usr/bin/env python3
"""Prints DMMV throughput / streaming-read throughput from the last criterion run of
`cargo bench -p pm4rt-sim --bench dmmv` (medians, same bytes, same run): the ratio of the two
separately measured throughputs, and the paired ratio (each iteration runs both back to
back; criterion's "time" there is t_dmmv / t_stream in milliseconds)."""
import json
import pathlib
import sys

base = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
root = base / "dmmv_65536x4096"


def median_ns(d):
    return json.loads((d / "new" / "estimates.json").read_text())["median"]["point_estimate"]


def gib_per_s(name):
    d = root / name
    nbytes = json.loads((d / "new" / "benchmark.json").read_text())["throughput"]["Bytes"]
    return nbytes / (median_ns(d) * 1e-9) / 2**30


def maybe_gib_per_s(name):
    return gib_per_s(name) if (root / name).exists() else float("nan")


for ty in ("F32", "Q4_0", "Q8_0", "F16", "Bf16", "Q4_1", "Q5_0", "Q5_1", "Q4K", "Q5K", "Q6K"):
    k, r = maybe_gib_per_s(ty), maybe_gib_per_s(f"stream_read_{ty}_bytes")
    paired = base / "dmmv_65536x4096_paired" / f"{ty}_time_over_stream_time"
    p = 1e6 / median_ns(paired) if paired.exists() else float("nan")
    print(
        f"{ty:5} dmmv {k:6.2f} GiB/s  stream read {r:6.2f} GiB/s  "
        f"ratio {k / r if r == r else float('nan'):.2f}  paired ratio {p:.2f}"
    )
