"""Microbubble (or red-blood-cell speckle) detection: local maxima of the intensity.

Every frame of an intensity stack ``(frames, z, x)`` is searched by a compiled kernel running
in parallel over frames: a pixel is a candidate when it is the maximum of its 3×3
neighbourhood (on a plateau, the first pixel in raster order),
exceeds the intensity threshold and lies at least ``border`` pixels from the image edge
(a bubble whose peak is closer to the edge cannot have its full patch and is not detected;
this is the documented border behaviour). Optionally only the ``top_n`` brightest
candidates of each frame are kept (PALA's "number of local maxima" parameter, Heiles et al.
Nat Biomed Eng 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vasomics.errors import InputError
from vasomics.ultrasound.ulm._kernels import local_maxima


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
        out = np.abs(data).astype(np.float32)
    elif np.issubdtype(data.dtype, np.number):
        out = data.astype(np.float32, copy=False)
    else:
        raise InputError(f"ULM needs numeric data, got {data.dtype}")
    if not np.isfinite(out).all():
        raise InputError("ULM input holds NaN or infinite values")
    return out


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
        Minimum distance (pixels, at least 1) of a peak from the image edge (half the patch
        size).

    Detections are sorted by frame, brightest first within a frame.
    """
    intensity = np.ascontiguousarray(intensity_stack(intensity))
    F, Z, X = intensity.shape
    border = max(int(border), 1)
    if Z <= 2 * border or X <= 2 * border:
        raise InputError(f"frames of {Z}×{X} pixels are too small for border {border}")
    thr = np.full(F, threshold, np.float32)
    if relative_threshold_db is not None:
        fmax = intensity.reshape(F, -1).max(axis=1) * np.float32(10 ** (relative_threshold_db / 20))
        thr = np.maximum(thr, fmax).astype(np.float32)
    cap = (Z - 2 * border) * (X - 2 * border)
    frame, z, x, val = local_maxima(intensity, border, thr, cap if top_n is None else int(top_n))
    return Detections(frame, z, x, val)
