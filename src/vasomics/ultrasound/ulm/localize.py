"""Sub-pixel localization of detected peaks, vectorized over all detections.

Each detection's ``(2h+1)²`` intensity patch (default 5×5) is cut from its frame; the
estimators return the offset ``(dz, dx)`` in pixels of the bubble centre from the patch's
centre pixel (the detected peak):

* ``no_shift``: the peak pixel itself (offset 0), PALA's reference for gridding;
* ``weighted_average``: intensity-weighted centroid of the patch after subtracting its
  minimum;
* ``radial_symmetry``: Parthasarathy, "Rapid, accurate particle tracking by calculation of
  radial symmetry centers", Nat Methods 9, 2012: intensity gradients are computed at the
  (2h)² pixel corners and the centre is the point minimizing
  the weighted sum of squared distances to the lines along all gradients, with weights
  ``|∇I|² / distance to the gradient-weighted centroid``; solved in closed form (a 2×2
  system per patch). Parthasarathy's optional 3×3 smoothing of the gradient field is off by
  default: on 5×5 patches it mixes most of the 4×4 gradient grid and raised the point-grid
  RMSE at −10 dB from 0.10 λ to 0.27 λ in our measurements;
* ``gaussian_fit``: a 2D Gaussian with background (amplitude, z0, x0, σz, σx, offset) fitted
  by Levenberg–Marquardt (compiled, parallel over patches); initialized by the
  log-parabola (three-point Gaussian) estimate along each axis.

Offsets are clipped to the patch (|offset| ≤ h).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vasomics.errors import ParameterError
from vasomics.ultrasound.ulm._kernels import gaussian_fit_kernel, radial_symmetry_kernel

Method = Literal["no_shift", "weighted_average", "radial_symmetry", "gaussian_fit"]


def extract_patches(intensity: np.ndarray, frame: np.ndarray, z: np.ndarray, x: np.ndarray,
                    half: int = 2) -> np.ndarray:
    """Patches ``(K, 2h+1, 2h+1)`` float32 centred on integer pixels (must be ≥ h from edges)."""
    off = np.arange(-half, half + 1)
    zz = z[:, None, None] + off[None, :, None]
    xx = x[:, None, None] + off[None, None, :]
    return intensity[frame[:, None, None], zz, xx].astype(np.float32, copy=False)


def weighted_average(patches: np.ndarray) -> np.ndarray:
    """Intensity-weighted centroid offsets ``(K, 2)`` (dz, dx) in pixels."""
    k, n, _ = patches.shape
    h = n // 2
    p = patches - patches.reshape(k, -1).min(axis=1)[:, None, None]
    total = np.maximum(p.sum(axis=(1, 2)), np.finfo(np.float32).tiny)
    off = np.arange(-h, h + 1, dtype=np.float32)
    dz = (p.sum(axis=2) @ off) / total
    dx = (p.sum(axis=1) @ off) / total
    return np.stack([dz, dx], axis=1)


def radial_symmetry(patches: np.ndarray) -> np.ndarray:
    """Radial-symmetry centre offsets ``(K, 2)`` (dz, dx) in pixels (Parthasarathy 2012)."""
    p = np.ascontiguousarray(patches, dtype=np.float32)
    out = np.empty((p.shape[0], 2), np.float32)
    radial_symmetry_kernel(p, out)
    return out


def _log_parabola(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three-point Gaussian estimate along each axis through the centre: offsets and σ²."""
    k, n, _ = patches.shape
    h = n // 2
    lp = np.log(np.maximum(patches, 1e-6))
    out = []
    for line in (lp[:, h - 1:h + 2, h], lp[:, h, h - 1:h + 2]):
        m, c, p = line[:, 0], line[:, 1], line[:, 2]
        curv = m - 2 * c + p
        curv = np.where(curv < -1e-6, curv, -1e-6)
        out.append(np.clip((m - p) / (2 * curv), -h, h))
        out.append(np.clip(-1.0 / curv, 0.1, float(n * n)))
    return out[0], out[2], out[1], out[3]


def gaussian_fit(patches: np.ndarray, iterations: int = 6, damping: float = 1e-2) -> np.ndarray:
    """2D Gaussian + background least-squares centre offsets ``(K, 2)`` (dz, dx) in pixels."""
    p = patches.astype(np.float64)
    k = p.shape[0]
    flat = p.reshape(k, -1)
    bg0 = flat.min(axis=1)
    dz0, dx0, vz0, vx0 = _log_parabola(p - bg0[:, None, None] + 1e-3 * flat.max(axis=1)[:, None, None])
    theta = np.stack([flat.max(axis=1) - bg0, dz0, dx0, 0.5 / vz0, 0.5 / vx0, bg0], axis=1)
    out = np.empty((k, 2), np.float32)
    gaussian_fit_kernel(np.ascontiguousarray(p), np.ascontiguousarray(theta), iterations,
                        damping, out)
    return out


def localize_patches(patches: np.ndarray, method: Method = "radial_symmetry") -> np.ndarray:
    """Offsets ``(K, 2)`` (dz, dx) in pixels by ``method``."""
    if method == "radial_symmetry":
        return radial_symmetry(patches)
    if method == "weighted_average":
        return weighted_average(patches)
    if method == "gaussian_fit":
        return gaussian_fit(patches)
    if method == "no_shift":
        return np.zeros((len(patches), 2), np.float32)
    raise ParameterError(f"unknown localization method '{method}'")
