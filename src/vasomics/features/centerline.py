"""Centerline geometry shared by the features: arc-length resampling and differential geometry.

Discrete scheme (documented in the catalogue and ``docs/features.md``):

1. Each segment's polyline (mm) is resampled at ``n = max(2, ceil(L / h) + 1)`` points equally
   spaced in arc length (step ``h_s = L / (n - 1) <= h``); radii are interpolated linearly.
2. Derivatives ``r'``, ``r''``, ``r'''`` with respect to arc length come from a local
   least-squares polynomial (Savitzky-Golay) of order ``p`` (default 3) over a window of
   ``W = 2 round(w / 2h) + 1`` resampled points (``w`` = derivative window in mm). Near the
   segment ends the window is shifted inside the segment and the polynomial evaluated off
   centre; segments shorter than the window use all their points and order
   ``min(p, n - 1)``. This removes voxel staircase noise at scales shorter than ``w``.
3. Curvature ``κ = sqrt(|r'|²|r''|² − (r'·r'')²) / |r'|³`` (1/mm, any dimension) and torsion
   ``τ = (r' × r'')·r''' / |r' × r''|²`` (1/mm, 3D only; undefined where ``κ`` is below the
   straightness threshold).

Everything is vectorized over the CSR point arrays; the only Python loop is over distinct
window lengths (at most ``W`` of them) and over chunks of points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import factorial

import numpy as np
from scipy.ndimage import correlate1d

from vasomics.vessel_graph import VesselGraph


@dataclass(frozen=True)
class Centerlines:
    """Arc-length resampled centerlines of all segments (CSR layout like VesselGraph).

    ``points`` (P, d) mm; ``radius`` (P,) mm; ``offsets`` (S + 1,); ``s`` (P,) arc length
    from the segment's start node (mm); ``length`` (S,) polyline length of each segment (mm);
    ``step`` (S,) actual resampling step of each segment (mm); ``segment`` (P,) segment index.
    """

    points: np.ndarray
    radius: np.ndarray
    offsets: np.ndarray
    s: np.ndarray
    length: np.ndarray
    step: np.ndarray
    segment: np.ndarray

    @property
    def n_segments(self) -> int:
        return len(self.length)

    def weights(self) -> np.ndarray:
        """Trapezoidal arc-length weight (mm) of each point: ``h/2`` at segment ends, ``h``
        inside; they sum to each segment's length."""
        w = self.step[self.segment].copy()
        w[self.offsets[:-1]] *= 0.5
        w[self.offsets[1:] - 1] *= 0.5
        return w

    def segment_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of per-point ``values`` over each segment."""
        return np.bincount(self.segment, weights=values, minlength=self.n_segments)

    def piece_values(self):
        """Per polyline piece (consecutive points of one segment): segment index, length (mm),
        radius at both ends (mm) and the arc length of its midpoint (mm)."""
        last = np.zeros(len(self.s), bool)
        last[self.offsets[1:] - 1] = True
        a = np.flatnonzero(~last)
        b = a + 1
        h = np.linalg.norm(self.points[b] - self.points[a], axis=1)
        return self.segment[a], h, self.radius[a], self.radius[b], 0.5 * (self.s[a] + self.s[b])


def resample(graph: VesselGraph, step_mm: float) -> Centerlines:
    """Resample every segment of ``graph`` at (at most) ``step_mm`` in arc length."""
    n_seg = graph.n_segments
    if n_seg == 0:
        d = graph.ndim
        return Centerlines(np.zeros((0, d)), np.zeros(0), np.zeros(1, np.int64), np.zeros(0),
                           np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    seg_of_point = graph.point_segment()
    steps = np.linalg.norm(np.diff(graph.points, axis=0), axis=1)
    same = np.diff(seg_of_point) == 0
    # a global, non-decreasing arc-length key; a gap of 1 mm separates consecutive segments
    key = np.concatenate([[0.0], np.cumsum(np.where(same, steps, 1.0))])
    start_key = key[graph.point_offsets[:-1]]
    length = key[graph.point_offsets[1:] - 1] - start_key
    n_new = np.maximum(2, np.ceil(length / step_mm - 1e-9).astype(np.int64) + 1)
    offsets = np.concatenate([[0], np.cumsum(n_new)])
    segment = np.repeat(np.arange(n_seg), n_new)
    local = np.arange(offsets[-1]) - offsets[:-1][segment]
    h = length / (n_new - 1)
    s = local * h[segment]
    target = start_key[segment] + s
    # interpolate inside each segment; ties in ``key`` (repeated points) are harmless
    idx = np.clip(np.searchsorted(key, target, side="right") - 1, 0, len(key) - 2)
    lo_bound = graph.point_offsets[:-1][segment]
    hi_bound = graph.point_offsets[1:][segment] - 2
    idx = np.clip(idx, lo_bound, np.maximum(hi_bound, lo_bound))
    span = key[idx + 1] - key[idx]
    t = np.where(span > 0, (target - key[idx]) / np.where(span > 0, span, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    single = graph.point_offsets[1:][segment] - graph.point_offsets[:-1][segment] < 2
    nxt = np.where(single, idx, idx + 1)
    points = graph.points[idx] * (1 - t)[:, None] + graph.points[nxt] * t[:, None]
    radius = graph.radius[idx] * (1 - t) + graph.radius[nxt] * t
    # exact end points (no rounding drift)
    points[offsets[:-1]] = graph.points[graph.point_offsets[:-1]]
    points[offsets[1:] - 1] = graph.points[graph.point_offsets[1:] - 1]
    return Centerlines(points, radius, offsets, s, length, h, segment)


@dataclass(frozen=True)
class Derivatives:
    """First three arc-length derivatives of the centerline at every resampled point."""

    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray


def derivatives(cl: Centerlines, window_mm: float, order: int = 3) -> Derivatives:
    """Local polynomial (Savitzky-Golay) derivatives w.r.t. arc length (see module doc).

    Points whose centred window lies inside their segment are done by one correlation of the
    concatenated points with the centred weights; the first and last ``W // 2`` points of each
    segment (and every point of a segment shorter than the window) by one batched matrix
    product per window length with the off-centre weights."""
    n_pts, d = cl.points.shape
    out = np.zeros((3, n_pts, d))
    if n_pts == 0:
        return Derivatives(*out)
    h_ref = float(np.median(cl.step)) if len(cl.step) else 1.0
    half = max(1, int(round(window_mm / (2 * max(h_ref, 1e-12)))))
    width = 2 * half + 1
    counts = np.diff(cl.offsets)
    first = cl.offsets[:-1]
    # (S, 3, 1): h^(k+1); a zero-length segment has identical points, zero derivatives
    h = np.where(cl.step > 0, cl.step, 1.0)
    scale = h[:, None, None] ** np.arange(1, 4)[None, :, None]
    long = np.flatnonzero(counts >= width)
    if long.size:
        coeffs = _savgol_coefficients(width, int(min(order, width - 1)))  # (3, pos, weights)
        for k in range(3):
            out[k] = correlate1d(cl.points, coeffs[k, half], axis=0, mode="nearest")
        ends = ((first[long], np.arange(half)),
                (first[long] + counts[long] - width, np.arange(width - half, width)))
        for start, positions in ends:
            window = cl.points[start[:, None] + np.arange(width)]  # (L, W, d)
            values = np.einsum("kpw,lwd->klpd", coeffs[:, positions], window)
            idx = start[:, None] + positions  # (L, half)
            out[:, idx] = values
        interior_scale = scale[cl.segment][:, :, 0].T[:, :, None]  # (3, P, 1)
        out /= interior_scale
    for n in np.unique(counts[counts < width]):
        segs = np.flatnonzero(counts == n)
        coeffs = _savgol_coefficients(int(n), int(min(order, n - 1)))
        window = cl.points[first[segs][:, None] + np.arange(n)]  # (G, n, d)
        values = np.einsum("kpw,gwd->kgpd", coeffs, window)
        values /= scale[segs].transpose(1, 0, 2)[:, :, None, :]
        out[:, first[segs][:, None] + np.arange(n)] = values
    return Derivatives(*out)


@cache
def _savgol_coefficients(width: int, order: int) -> np.ndarray:
    """Weights giving derivatives 1..3 (in sample units) of the least-squares polynomial of
    ``order`` through ``width`` samples, evaluated at each sample position."""
    x = np.arange(width) - (width - 1) / 2
    pinv = np.linalg.pinv(np.vander(x, order + 1, increasing=True))  # (order+1, width)
    coeffs = np.zeros((3, width, width))
    for k in (1, 2, 3):
        for m in range(k, order + 1):
            fall = factorial(m) / factorial(m - k)
            coeffs[k - 1] += fall * np.outer(x ** (m - k), pinv[m])
    return coeffs


def curvature(der: Derivatives) -> np.ndarray:
    """Curvature (1/mm) at every point, valid in 2D and 3D."""
    d1, d2 = der.d1, der.d2
    n1 = np.einsum("ij,ij->i", d1, d1)
    n2 = np.einsum("ij,ij->i", d2, d2)
    dot = np.einsum("ij,ij->i", d1, d2)
    num = np.sqrt(np.maximum(n1 * n2 - dot ** 2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = num / n1 ** 1.5
    return np.where(n1 > 0, k, 0.0)


def torsion(der: Derivatives) -> np.ndarray:
    """Signed torsion (1/mm) at every point (3D only; NaN where ``r' × r''`` vanishes)."""
    cross = np.cross(der.d1, der.d2)
    denom = np.einsum("ij,ij->i", cross, cross)
    num = np.einsum("ij,ij->i", cross, der.d3)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, num / denom, np.nan)


def principal_normal(der: Derivatives) -> np.ndarray:
    """Unit principal normal (component of ``r''`` orthogonal to the tangent); rows of zeros
    where the curve is straight."""
    n1 = np.einsum("ij,ij->i", der.d1, der.d1)
    safe = np.where(n1 > 0, n1, 1.0)
    proj = der.d2 - (np.einsum("ij,ij->i", der.d2, der.d1) / safe)[:, None] * der.d1
    norm = np.linalg.norm(proj, axis=1)
    return np.where(norm[:, None] > 0, proj / np.where(norm > 0, norm, 1.0)[:, None], 0.0)
