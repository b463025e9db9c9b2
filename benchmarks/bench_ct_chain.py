"""Benchmark: ``vasomics run`` stages on a 512×512×300 liver CT phantom (0.7 × 0.7 × 1 mm).

Prints the wall and CPU time per stage (from the chain's own provenance record), total wall
and CPU time, peak resident memory of this process and the machine load (the CPU may be
shared: CPU time is the steadier figure). The phantom is stored as int16 HU like a scanner's
series. Usage:

    python benchmarks/bench_ct_chain.py [--shape 300 512 512] [--phase portal_venous]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from vasomics.chain.run import run_chain
from vasomics.io.images import write_image
from vasomics.phantoms.liver_ct import liver_ct_phantom


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512))
    ap.add_argument("--phase", default="portal_venous")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    # arterial phase: with the hepatic artery, so that the artery stage has a tree to trace
    ct, truth = liver_ct_phantom(tuple(args.shape), phase=args.phase, seed=args.seed,
                                 fov_mm=(358.4, 358.4), z_extent_mm=float(args.shape[0]),
                                 hepatic_artery=args.phase == "arterial")
    t_gen = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        # stored as CT scanners store HU: int16 (a float32 file doubles the read time)
        ct = ct.with_array(np.round(ct.array).astype(np.int16))
        path = write_image(ct, Path(tmp) / "ct.nii.gz")
        del ct
        load0 = os.getloadavg()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = time.perf_counter()
        result, _ = run_chain(path, Path(tmp) / "out", force=True)
        wall = time.perf_counter() - t1
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        load1 = os.getloadavg()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"phantom {tuple(args.shape)} generated in {t_gen:.1f} s (not timed below)")
    print("stage wall seconds:", result.stage_seconds)
    print("stage CPU seconds: ", result.stage_cpu_seconds)
    print(f"vasomics run wall {wall:.1f} s, CPU {cpu:.1f} s (user+sys, all threads), peak RSS "
          f"{peak_gb:.2f} GB (incl. generation)")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f}; cpus {os.cpu_count()}")
    print(f"phase {result.phase.phase if result.phase else None}; QC {result.qc.verdict}: "
          + "; ".join(f"{c.name} {c.status} ({c.reason})" for c in result.qc.checks
                      if c.status != "pass"))
    traced = {name: (f"{g.n_segments} segments, {g.segment_lengths().sum():.0f} mm"
                     if g is not None else "not traced")
              for name, g in (("portal", result.portal), ("hepatic", result.hepatic),
                              ("artery", result.artery_graph))}
    print("trees:", traced)


if __name__ == "__main__":
    main()
