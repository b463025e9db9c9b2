"""Compiled kernel: Gaussian smoothing of many polylines at once (CSR layout).

Segment ``s`` owns rows ``offsets[s]:offsets[s + 1]`` of ``values`` (``(P, d)``) and is smoothed
with a Gaussian of ``sigma[s]`` samples, capped at a quarter of its length; segments shorter
than three samples or with σ below 0.3 samples are copied. Beyond the ends the samples are
reflected: *odd* (point) reflection ``2 v_0 - v_r`` keeps the end values fixed (used for
positions), *even* reflection ``v_r`` for per-point quantities; past the segment's own length
the farthest reflected sample is repeated.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def smooth_csr(values, offsets, sigma, odd):  # pragma: no cover - compiled
    out = values.copy()
    d = values.shape[1]
    for s in range(len(offsets) - 1):
        a, b = offsets[s], offsets[s + 1]
        n = b - a
        sg = min(sigma[s], (n - 1) / 4.0)
        if n < 3 or sg < 0.3:
            continue
        k = int(np.ceil(3.0 * sg))
        w = np.empty(2 * k + 1)
        total = 0.0
        for j in range(-k, k + 1):
            w[j + k] = np.exp(-0.5 * (j / sg) ** 2)
            total += w[j + k]
        for j in range(2 * k + 1):
            w[j] /= total
        wr = min(k, n - 1)
        for i in range(n):
            for c in range(d):
                acc = 0.0
                for j in range(-k, k + 1):
                    m = i + j
                    if m < 0:
                        r = min(-m, wr)
                        v = 2.0 * values[a, c] - values[a + r, c] if odd else values[a + r, c]
                    elif m >= n:
                        r = min(m - (n - 1), wr)
                        v = (2.0 * values[b - 1, c] - values[b - 1 - r, c] if odd
                             else values[b - 1 - r, c])
                    else:
                        v = values[a + m, c]
                    acc += w[j + k] * v
                out[a + i, c] = acc
        if odd:
            for c in range(d):
                out[a, c] = values[a, c]
                out[b - 1, c] = values[b - 1, c]
    return out
