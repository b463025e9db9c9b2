"""Ultrasound benchmarks: SVD filter, detection, localization, linking, end-to-end ULM.

Run (2 cores): ``NUMBA_NUM_THREADS=2 taskset -c 0,1 python benchmarks/bench_ulm.py``.
Prints time per stage and throughput; timings are best of 3 (numba kernels are compiled
and cached on first use, before timing).
"""

from __future__ import annotations

import resource
import time

import numpy as np

from vasomics.phantoms.flow import flow_phantom, horseshoe_vessels
from vasomics.ultrasound.clutter import SVDParams, svd_filter
from vasomics.ultrasound.ulm import ULMParams, run_ulm
from vasomics.ultrasound.ulm.detect import detect_peaks
from vasomics.ultrasound.ulm.localize import gaussian_fit, radial_symmetry
from vasomics.ultrasound.ulm.track import link


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    rng = np.random.default_rng(0)
    # SVD: 12k pixels × 1000 frames, randomized, tissue cut-off 20
    iq = (rng.standard_normal((1000, 84, 143)) + 1j * rng.standard_normal((1000, 84, 143))
          ).astype(np.complex64)
    t, _ = best(lambda: svd_filter(iq, SVDParams(solver="randomized", low=20, rank=20,
                                                 oversample=10, power_iterations=1)))
    print(f"randomized SVD filter 12012 px x 1000 frames: {t:.3f} s (target <= 0.25 s)")
    t, _ = best(lambda: svd_filter(iq, SVDParams(solver="eig", low=20)), 1)
    print(f"eig SVD filter (reference):                  {t:.3f} s")

    size = (84, 143)
    ph = flow_phantom(horseshoe_vessels(size, radius=1.0), size, n_frames=1000,
                      bubbles_per_frame=40, seed=0)
    stack = ph.images
    detect_peaks(stack[:10], top_n=40, border=2)  # compile (cached) before timing
    run_ulm(stack[:20], ULMParams(top_n=40))
    t, det = best(lambda: detect_peaks(stack, top_n=40, border=2))
    print(f"detection: {stack.shape[0] / t:,.0f} frames/s (target >= 2,000)")
    patches = rng.random((1_000_000, 5, 5), dtype=np.float32)
    t, _ = best(lambda: radial_symmetry(patches))
    print(f"radial symmetry: {patches.shape[0] / t / 1e6:.2f} M loc/s (target >= 1 M)")
    small = patches[:200_000]
    t, _ = best(lambda: gaussian_fit(small), 1)
    print(f"Gaussian fit: {small.shape[0] / t / 1e3:,.0f} k loc/s (target >= 50 k)")
    res = run_ulm(stack, ULMParams(top_n=40, min_track_length=1))
    t, _ = best(lambda: link(res.frame, res.z, res.x, 1.5, 0, 5))
    print(f"linking: {res.frame.size / t / 1e3:,.0f} k loc/s (target >= 100 k)")
    t, _ = best(lambda: run_ulm(stack, ULMParams(top_n=40)))
    print(f"end-to-end ULM after SVD (84x143, 40 bubbles/frame): {stack.shape[0] / t:,.0f} "
          f"frames/s (target >= 1,000)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
