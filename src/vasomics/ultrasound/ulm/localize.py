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
  by Levenberg–Marquardt, all patches as one batch of 6×6 normal equations; initialized by
  the log-parabola (three-point Gaussian) estimate along each axis.

Offsets are clipped to the patch (|offset| ≤ h).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vasomics.errors import ParameterError

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


def _box3(a: np.ndarray) -> np.ndarray:
    """3×3 box mean over the last two axes with edge-normalized weights (batch)."""
    pad = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones(a.shape[1:], a.dtype), 1)
    n, m = a.shape[1:]
    s = sum(pad[:, i:i + n, j:j + m] for i in range(3) for j in range(3))
    c = sum(ones[i:i + n, j:j + m] for i in range(3) for j in range(3))
    return s / c


def radial_symmetry(patches: np.ndarray, smooth: bool = False) -> np.ndarray:
    """Radial-symmetry centre offsets ``(K, 2)`` (dz, dx) in pixels (Parthasarathy 2012)."""
    p = patches.astype(np.float32, copy=False)
    k, n, _ = p.shape
    h = n // 2
    # gradients at pixel corners (the (n-1)² midpoints), centred differences over 2×2 cells
    gz = 0.5 * ((p[:, 1:, :-1] + p[:, 1:, 1:]) - (p[:, :-1, :-1] + p[:, :-1, 1:]))
    gx = 0.5 * ((p[:, :-1, 1:] + p[:, 1:, 1:]) - (p[:, :-1, :-1] + p[:, 1:, :-1]))
    if smooth:
        gz, gx = _box3(gz), _box3(gx)
    mid = np.arange(n - 1, dtype=np.float32) + 0.5 - h
    qz, qx = mid[:, None], mid[None, :]
    g2 = gz * gz + gx * gx
    tot = np.maximum(g2.sum(axis=(1, 2)), np.finfo(np.float32).tiny)
    cz = (g2 * qz).sum(axis=(1, 2)) / tot
    cx = (g2 * qx).sum(axis=(1, 2)) / tot
    dist = np.sqrt((qz - cz[:, None, None]) ** 2 + (qx - cx[:, None, None]) ** 2)
    w = g2 / np.maximum(dist, 1e-3)  # |∇I|² / distance to centroid
    # unit normals: projector onto the line's normal = I − n nᵀ with n the gradient direction
    inv = 1.0 / np.maximum(g2, np.finfo(np.float32).tiny)
    nzz, nxx, nzx = gz * gz * inv, gx * gx * inv, gz * gx * inv
    pzz, pxx, pzx = (w * (1 - nzz)), (w * (1 - nxx)), (-w * nzx)
    a11, a22, a12 = pzz.sum(axis=(1, 2)), pxx.sum(axis=(1, 2)), pzx.sum(axis=(1, 2))
    b1 = (pzz * qz + pzx * qx).sum(axis=(1, 2))
    b2 = (pzx * qz + pxx * qx).sum(axis=(1, 2))
    det = a11 * a22 - a12 * a12
    ok = np.abs(det) > 1e-12 * np.maximum(a11 * a22, 1e-30)
    det = np.where(ok, det, 1.0)
    dz = np.where(ok, (a22 * b1 - a12 * b2) / det, 0.0)
    dx = np.where(ok, (a11 * b2 - a12 * b1) / det, 0.0)
    return np.clip(np.stack([dz, dx], axis=1), -h, h).astype(np.float32)


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
    k, n, _ = p.shape
    h = n // 2
    flat = p.reshape(k, -1)
    bg0 = flat.min(axis=1)
    dz0, dx0, vz0, vx0 = _log_parabola(p - bg0[:, None, None] + 1e-3 * flat.max(axis=1)[:, None, None])
    coords = np.arange(-h, h + 1, dtype=np.float64)
    zz = np.repeat(coords, n)[None]
    xx = np.tile(coords, n)[None]
    # parameters: amplitude, z0, x0, 1/(2σz²), 1/(2σx²), background
    theta = np.stack([flat.max(axis=1) - bg0, dz0, dx0, 0.5 / vz0, 0.5 / vx0, bg0], axis=1)

    def model(t):
        ez = (zz - t[:, 1:2]) ** 2
        ex = (xx - t[:, 2:3]) ** 2
        g = np.exp(-t[:, 3:4] * ez - t[:, 4:5] * ex)
        return g, ez, ex, t[:, 0:1] * g + t[:, 5:6]

    g, ez, ex, f = model(theta)
    cost = ((f - flat) ** 2).sum(axis=1)
    lam = np.full(k, damping)
    for _ in range(iterations):
        a = theta[:, 0:1] * g
        J = np.stack([g, 2 * a * theta[:, 3:4] * (zz - theta[:, 1:2]),
                      2 * a * theta[:, 4:5] * (xx - theta[:, 2:3]), -a * ez, -a * ex,
                      np.ones_like(g)], axis=2)
        r = flat - f
        H = np.einsum("kpi,kpj->kij", J, J)
        grad = np.einsum("kpi,kp->ki", J, r)
        Hd = H + lam[:, None, None] * (np.eye(6)[None] * np.diagonal(H, axis1=1, axis2=2)[:, :, None]
                                       + 1e-9 * np.eye(6)[None])
        step = np.linalg.solve(Hd, grad[:, :, None])[:, :, 0]
        new = theta + step
        new[:, 3:5] = np.maximum(new[:, 3:5], 1e-3)
        g_new, ez_new, ex_new, f_new = model(new)
        cost_new = ((f_new - flat) ** 2).sum(axis=1)
        better = np.isfinite(cost_new) & (cost_new < cost)
        theta = np.where(better[:, None], new, theta)
        g = np.where(better[:, None], g_new, g)
        ez = np.where(better[:, None], ez_new, ez)
        ex = np.where(better[:, None], ex_new, ex)
        f = np.where(better[:, None], f_new, f)
        cost = np.where(better, cost_new, cost)
        lam = np.where(better, lam * 0.3, lam * 10)
    return np.clip(theta[:, 1:3], -h, h).astype(np.float32)


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
