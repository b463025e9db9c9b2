"""Microbubble (or red-blood-cell speckle) detection: local maxima of the intensity.

Every frame of an intensity stack ``(frames, z, x)`` is searched at once (no Python loop
over frames): a pixel is a candidate when it equals the maximum of its 3×3 neighbourhood,
exceeds the intensity threshold and lies at least ``border`` pixels from the image edge
(a bubble whose peak is closer to the edge cannot have its full patch and is not detected;
this is the documented border behaviour). Optionally only the ``top_n`` brightest
candidates of each frame are kept (PALA's "number of local maxima" parameter, Heiles et al.
Nat Biomed Eng 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vasomics.errors import InputError


@dataclass(frozen=True)
class Detections:
    """Integer peak positions (pixel indices) with their frame and intensity, sorted by frame."""

    frame: np.ndarray
    z: np.ndarray
    x: np.ndarray
    intensity: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.size)


def intensity_stack(data: np.ndarray) -> np.ndarray:
    """float32 intensity ``(frames, z, x)``: ``|IQ|`` of complex data, else the data itself."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(f"ULM needs a stack (frames, z, x), got shape {data.shape}")
    if np.iscomplexobj(data):
        return np.abs(data).astype(np.float32)
    if not np.issubdtype(data.dtype, np.number):
        raise InputError(f"ULM needs numeric data, got {data.dtype}")
    return data.astype(np.float32, copy=False)


def detect_peaks(intensity: np.ndarray, top_n: int | None = 40, threshold: float = 0.0,
                 relative_threshold_db: float | None = None, border: int = 2) -> Detections:
    """Local maxima of ``intensity`` (frames, z, x).

    Parameters
    ----------
    top_n:
        Keep at most this many brightest maxima per frame (None: all above threshold).
    threshold:
        Absolute intensity a maximum must exceed.
    relative_threshold_db:
        If given, also require intensity ≥ frame maximum · 10^(dB/20) (e.g. −20).
    border:
        Minimum distance (pixels) of a peak from the image edge (half the patch size).
    """
    intensity = intensity_stack(intensity)
    F, Z, X = intensity.shape
    if Z <= 2 * border or X <= 2 * border:
        raise InputError(f"frames of {Z}×{X} pixels are too small for border {border}")
    inner = intensity[:, border:Z - border, border:X - border]
    mx = ndimage.maximum_filter(intensity, size=(1, 3, 3), mode="nearest")
    mx = mx[:, border:Z - border, border:X - border]
    thr = np.float32(threshold)
    if relative_threshold_db is not None:
        fmax = intensity.reshape(F, -1).max(axis=1) * np.float32(10 ** (relative_threshold_db / 20))
        thr = np.maximum(thr, fmax)[:, None, None].astype(np.float32)
    cand = (inner == mx) & (inner > thr)
    zi, xi = Z - 2 * border, X - 2 * border
    if top_n is not None and top_n < zi * xi:
        vals = np.where(cand, inner, -np.inf).reshape(F, -1)
        idx = np.argpartition(vals, -top_n, axis=1)[:, -top_n:]
        v = np.take_along_axis(vals, idx, axis=1)
        keep = np.isfinite(v)
        frame = np.broadcast_to(np.arange(F)[:, None], idx.shape)[keep]
        flat = idx[keep]
        val = v[keep]
    else:
        frame, zz, xx = np.nonzero(cand)
        flat = zz * xi + xx
        val = inner[frame, zz, xx]
    z = flat // xi + border
    x = flat % xi + border
    order = np.lexsort((-val, frame))
    return Detections(frame[order].astype(np.int64), z[order].astype(np.int64),
                      x[order].astype(np.int64), val[order].astype(np.float32))
