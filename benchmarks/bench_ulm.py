"""Ultrasound benchmarks: SVD filter, detection, localization, linking, end-to-end ULM.

Run (2 cores): ``NUMBA_NUM_THREADS=2 taskset -c 0,1 python benchmarks/bench_ulm.py``.
Prints time per stage and throughput; timings are best of 3 (numba kernels are compiled
and cached on first use, before timing).
"""

from __future__ import annotations

import os
import resource
import time

import numba
import numpy as np

from vasomics.phantoms.flow import flow_phantom, horseshoe_vessels
from vasomics.ultrasound.clutter import SVDParams, svd_filter
from vasomics.ultrasound.ulm import ULMParams, run_ulm
from vasomics.ultrasound.ulm.detect import detect_peaks
from vasomics.ultrasound.ulm.localize import gaussian_fit, radial_symmetry
from vasomics.ultrasound.ulm.track import link


def best(fn, repeat=3):
    """Best wall time and best CPU time (all threads) over ``repeat`` runs. On a loaded
    machine the wall time is pessimistic; the work per CPU-second is a load-independent
    figure (a parallel stage on two idle cores runs up to twice that per wall second)."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def show(label, work, unit, wall, cpu, target):
    print(f"{label}: {work / wall:,.0f} {unit} (wall), {work / cpu:,.0f} per CPU-second "
          f"(target {target})")


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f}; threads: numba {numba.get_num_threads()}")
    rng = np.random.default_rng(0)
    # SVD: 12k pixels × 1000 frames, randomized, tissue cut-off 20
    iq = (rng.standard_normal((1000, 84, 143)) + 1j * rng.standard_normal((1000, 84, 143))
          ).astype(np.complex64)
    w, c, _ = best(lambda: svd_filter(iq, SVDParams(solver="randomized", low=20, rank=20,
                                                    oversample=10, power_iterations=0)))
    print(f"randomized SVD filter 12012 px x 1000 frames (tissue cut 20): {w:.3f} s wall, "
          f"{c:.3f} CPU-s (target <= 0.25 s)")
    w, c, _ = best(lambda: svd_filter(iq, SVDParams(solver="randomized", low=20, rank=20,
                                                    oversample=10, power_iterations=1)), 1)
    print(f"  same with one power iteration: {w:.3f} s wall, {c:.3f} CPU-s")

    size = (84, 143)
    ph = flow_phantom(horseshoe_vessels(size, radius=1.0), size, n_frames=1000,
                      bubbles_per_frame=40, seed=0)
    stack = ph.images
    detect_peaks(stack[:10], top_n=40, border=2)  # compile (cached) before timing
    run_ulm(stack[:20], ULMParams(top_n=40))
    w, c, _ = best(lambda: detect_peaks(stack, top_n=40, border=2))
    show("detection", stack.shape[0], "frames/s", w, c, ">= 2,000")
    patches = rng.random((1_000_000, 5, 5), dtype=np.float32)
    w, c, _ = best(lambda: radial_symmetry(patches))
    show("radial symmetry", patches.shape[0], "loc/s", w, c, ">= 1 M")
    small = patches[:200_000]
    w, c, _ = best(lambda: gaussian_fit(small), 1)
    show("Gaussian fit", small.shape[0], "loc/s", w, c, ">= 50 k")
    res = run_ulm(stack, ULMParams(top_n=40, min_track_length=1))
    w, c, _ = best(lambda: link(res.frame, res.z, res.x, 1.5, 0, 5))
    show("linking", res.frame.size, "loc/s", w, c, ">= 100 k")
    w, c, _ = best(lambda: run_ulm(stack, ULMParams(top_n=40)))
    show("end-to-end ULM after SVD (84x143, 40 bubbles/frame)", stack.shape[0], "frames/s",
         w, c, ">= 1,000")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
