"""Centerline geometry shared by the features: arc-length resampling and differential geometry.

Discrete scheme (documented in the catalogue and ``docs/features.md``):

1. Each segment's polyline (mm) is resampled at ``n = max(2, ceil(L / h) + 1)`` points equally
   spaced in arc length (step ``h_s = L / (n - 1) <= h``); radii are interpolated linearly.
2. Derivatives ``r'`` and ``r''`` with respect to arc length come from a local
   least-squares polynomial (Savitzky-Golay) of order ``p`` (default 3) over a window of
   ``W = 2 round(w / 2h) + 1`` resampled points (``w`` = derivative window in mm). Near the
   segment ends the window is shifted inside the segment and the polynomial evaluated off
   centre; segments shorter than the window use all their points and order
   ``min(p, n - 1)``. This removes voxel staircase noise at scales shorter than ``w``.
3. Curvature ``κ = sqrt(|r'|²|r''|² − (r'·r'')²) / |r'|³`` (1/mm, any dimension).
4. Torsion (1/mm, 3D only) needs no third derivative (:func:`plane_rotation`,
   :func:`windowed_torsion`): the signed rotation of the osculating plane about the tangent
   per step (binormal carried along by discrete parallel transport), summed over a window
   and divided by its length. The sums telescope, so binormal noise enters only at the
   window ends (the pointwise formula ``τ = (r' × r'')·r''' / |r' × r''|²`` would divide a
   noisy ``r'''`` by ``|r' × r''|²``). It is undefined where ``κ`` is below the
   straightness threshold.
5. Inflections (:func:`sign_changes`): sign changes of the bending side
   (:func:`bending_orientation`: binormal in 3D, signed curvature in 2D) between
   consecutive test points, with two drop rules on the lobes they form: lobes drawn only by
   a graph's end extrapolation, then (repeatedly) lobes bending over less than a minimum
   arc.

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
    """First and second arc-length derivatives of the centerline at every resampled point."""

    d1: np.ndarray
    d2: np.ndarray


def derivatives(cl: Centerlines, window_mm: float, order: int = 3) -> Derivatives:
    """Local polynomial (Savitzky-Golay) derivatives w.r.t. arc length (see module doc).

    Points whose centred window lies inside their segment are done by one correlation of the
    concatenated points with the centred weights; the first and last ``W // 2`` points of each
    segment (and every point of a segment shorter than the window) by one batched matrix
    product per window length with the off-centre weights."""
    n_pts, d = cl.points.shape
    out = np.zeros((2, n_pts, d))
    if n_pts == 0:
        return Derivatives(*out)
    h_ref = float(np.median(cl.step)) if len(cl.step) else 1.0
    half = max(1, int(round(window_mm / (2 * max(h_ref, 1e-12)))))
    width = 2 * half + 1
    counts = np.diff(cl.offsets)
    first = cl.offsets[:-1]
    # (S, 2, 1): h^(k+1); a zero-length segment has identical points, zero derivatives
    h = np.where(cl.step > 0, cl.step, 1.0)
    scale = h[:, None, None] ** np.arange(1, 3)[None, :, None]
    long = np.flatnonzero(counts >= width)
    if long.size:
        coeffs = _savgol_coefficients(width, int(min(order, width - 1)))  # (2, pos, weights)
        for k in range(2):
            out[k] = correlate1d(cl.points, coeffs[k, half], axis=0, mode="nearest")
        ends = ((first[long], np.arange(half)),
                (first[long] + counts[long] - width, np.arange(width - half, width)))
        for start, positions in ends:
            window = cl.points[start[:, None] + np.arange(width)]  # (L, W, d)
            values = np.einsum("kpw,lwd->klpd", coeffs[:, positions], window)
            idx = start[:, None] + positions  # (L, half)
            out[:, idx] = values
        interior_scale = scale[cl.segment][:, :, 0].T[:, :, None]  # (2, P, 1)
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
    """Weights giving derivatives 1 and 2 (in sample units) of the least-squares polynomial
    of ``order`` through ``width`` samples, evaluated at each sample position."""
    x = np.arange(width) - (width - 1) / 2
    pinv = np.linalg.pinv(np.vander(x, order + 1, increasing=True))  # (order+1, width)
    coeffs = np.zeros((2, width, width))
    for k in (1, 2):
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


def binormal(der: Derivatives) -> np.ndarray:
    """Unit binormal ``(r' × r'') / |r' × r''|`` (3D; rows of zeros where it vanishes)."""
    cross = np.cross(der.d1, der.d2)
    norm = np.linalg.norm(cross, axis=1)
    return np.where(norm[:, None] > 0, cross / np.where(norm > 0, norm, 1.0)[:, None], 0.0)


def plane_rotation(cl: Centerlines, der: Derivatives, defined: np.ndarray) -> np.ndarray:
    """Signed rotation angle (rad) of the osculating plane about the tangent over each step
    ``i → i + 1`` of a segment; NaN for the last point of a segment and where either end of
    the step is not ``defined`` (3D only; ``defined`` marks points whose curvature exceeds
    the straightness threshold).

    The binormal ``b_i`` is carried to point ``i + 1`` by the smallest rotation that takes
    the unit tangent ``t_i`` to ``t_{i+1}`` (discrete parallel transport), and the angle
    ``φ_i`` from it to ``b_{i+1}`` is measured about ``t_{i+1}``; since ``b' = −τ n``,
    ``φ_i = ∫ τ ds`` over the step. The plane is unoriented: ``φ`` is folded into
    ``(−π/2, π/2]``, so the flip of the binormal at an inflection is not torsion.
    Summed over a stretch, the angles telescope to the net rotation of the plane, so noise in
    the binormal enters only through the stretch's two end points (no third derivative)."""
    n = len(cl.s)
    out = np.full(n, np.nan)
    if n < 2 or cl.points.shape[1] != 3:
        return out
    speed = np.linalg.norm(der.d1, axis=1)
    t = np.where(speed[:, None] > 0, der.d1 / np.where(speed > 0, speed, 1.0)[:, None], 0.0)
    b = binormal(der)
    i = np.flatnonzero((cl.segment[1:] == cl.segment[:-1]) & defined[:-1] & defined[1:]
                       & (speed[:-1] > 0) & (speed[1:] > 0))
    t0, t1, b0, b1 = t[i], t[i + 1], b[i], b[i + 1]
    axis = np.cross(t0, t1)
    c = np.einsum("ij,ij->i", t0, t1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(c > -1 + 1e-12, 1.0 / (1.0 + c), 0.0)
    # Rodrigues: R x = c x + a × x + a (a·x) / (1 + c), with a = t0 × t1
    moved = (c[:, None] * b0 + np.cross(axis, b0)
             + axis * (np.einsum("ij,ij->i", axis, b0) * k)[:, None])
    phi = np.arctan2(np.einsum("ij,ij->i", np.cross(moved, b1), t1),
                     np.einsum("ij,ij->i", moved, b1))
    phi = np.where(phi > np.pi / 2, phi - np.pi, np.where(phi <= -np.pi / 2, phi + np.pi, phi))
    out[i] = phi
    return out


def windowed_torsion(cl: Centerlines, phi: np.ndarray, window_mm: float) -> np.ndarray:
    """Signed torsion (1/mm) at each point: the net osculating-plane rotation
    (:func:`plane_rotation`) over the defined steps whose midpoints lie within
    ``window_mm / 2`` of the point (in arc length, inside its segment), divided by their
    total length; NaN where the point has no defined step in its window."""
    n = len(cl.s)
    if n == 0:
        return np.zeros(0)
    ok = np.isfinite(phi)
    h = np.zeros(n)
    h[:-1] = np.where(cl.segment[1:] == cl.segment[:-1], cl.s[1:] - cl.s[:-1], 0.0)
    h = np.where(ok, h, 0.0)
    mid = cl.s + 0.5 * h
    gap = 2.0 * window_mm + 1.0
    shift = (np.cumsum(cl.length) - cl.length + gap * np.arange(cl.n_segments))[cl.segment]
    key_mid = mid + shift  # non-decreasing along the CSR order, segments kept apart
    key_pt = cl.s + shift
    half = 0.5 * window_mm
    lo = np.searchsorted(key_mid, key_pt - half, side="left")
    hi = np.searchsorted(key_mid, key_pt + half, side="right")
    c_phi = np.concatenate([[0.0], np.cumsum(np.where(ok, phi, 0.0))])
    c_len = np.concatenate([[0.0], np.cumsum(h)])
    total = c_len[hi] - c_len[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (c_phi[hi] - c_phi[lo]) / total, np.nan)


def near_free_end(cl: Centerlines, graph: VesselGraph, zone_mm: np.ndarray) -> np.ndarray:
    """Points within ``zone_mm[s]`` (arc length, mm) of a free end (a node of degree 1) of
    their segment ``s``."""
    if cl.n_segments == 0:
        return np.zeros(0, bool)
    degree = graph.node_degree()
    free_a = degree[graph.segment_start] == 1
    free_b = degree[graph.segment_end] == 1
    zone = np.asarray(zone_mm, float)[cl.segment]
    return ((free_a[cl.segment] & (cl.s < zone))
            | (free_b[cl.segment] & (cl.length[cl.segment] - cl.s < zone)))


def bending_orientation(der: Derivatives) -> np.ndarray:
    """Unit vector fixing the bending side at each point: the binormal in 3D; in 2D the sign
    of ``x'y'' − y'x''`` as a (P, 1) array of ±1 (0 where straight)."""
    if der.d1.shape[1] == 2:
        z = der.d1[:, 0] * der.d2[:, 1] - der.d1[:, 1] * der.d2[:, 0]
        return np.sign(z)[:, None]
    return binormal(der)


def sign_changes(cl: Centerlines, orientation: np.ndarray, test: np.ndarray,
                 min_arc_mm: float, extrapolated: np.ndarray | None = None,
                 lobes_out: dict | None = None) -> np.ndarray:
    """Inflections per segment: sign changes of the bending side between consecutive
    ``test`` points (``orientation_a · orientation_b < 0``, see :func:`bending_orientation`).

    The test points of a segment fall into lobes (maximal runs bending to one side). A lobe
    whose test points are all ``extrapolated`` (shape drawn by the graph stage, not
    measured) is dropped: extrapolation may continue a measured lobe but not create one.
    Then the minimum-arc hysteresis on each lobe's *bending arc*, the arc length between
    its consecutive test points that are neighbours on the centerline (the arc over which
    it is seen bending; stretches below the test thresholds do not count): the lobe with
    the shortest bending arc, when below ``min_arc_mm``, is dropped, neighbours bending to
    the same side merge (their bending arcs add up), and this repeats, so a brief
    excursion counts neither of its two flips, and sparse ripple just above the thresholds
    (digital staircase of thin straight tubes) does not build long lobes out of short
    pieces far apart. For a lobe whose test points are contiguous (every real bend) the
    bending arc is the span of its test points. The count is the number of lobes left
    minus one (0 without lobes).

    ``lobes_out`` (a dict), when given, receives for every segment with a lobe left its
    lobes as ``(first s, last s)`` of their test points (mm, arc length from the segment's
    start), for diagnostics (``benchmarks/bench_centerline_shape.py``)."""
    n_seg = cl.n_segments
    out = np.zeros(n_seg)
    idx = np.flatnonzero(test)
    if idx.size < 2:
        return out
    seg = cl.segment[idx]
    o = orientation[idx]
    s = cl.s[idx]
    ext = np.zeros(idx.size, bool) if extrapolated is None else extrapolated[idx]
    new = np.ones(idx.size, bool)
    new[1:] = (seg[1:] != seg[:-1]) | (np.einsum("ij,ij->i", o[1:], o[:-1]) < 0)
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [idx.size]]) - 1
    # bending arc: steps between consecutive test points of a run that are neighbours
    step = np.zeros(idx.size)
    step[:-1] = np.where(~new[1:] & (idx[1:] == idx[:-1] + 1), s[1:] - s[:-1], 0.0)
    arc = np.add.reduceat(step, first)
    measured = np.logical_or.reduceat(~ext, first)
    first, last, arc = first[measured], last[measured], arc[measured]
    lobe_seg = seg[first]
    counts = np.bincount(lobe_seg, minlength=n_seg)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for k in np.flatnonzero(counts > (0 if lobes_out is not None else 1)):
        ids = range(starts[k], starts[k + 1])
        lobes = _merge_same_side([(s[first[i]], s[last[i]], o[first[i]], o[last[i]], arc[i])
                                  for i in ids])
        while len(lobes) > 1:
            arcs = np.array([lobe[4] for lobe in lobes])
            j = int(np.argmin(arcs))
            if arcs[j] >= min_arc_mm:
                break
            del lobes[j]
            lobes = _merge_same_side(lobes)
        out[k] = len(lobes) - 1
        if lobes_out is not None:
            lobes_out[int(k)] = [(float(lobe[0]), float(lobe[1])) for lobe in lobes]
    return out


def _merge_same_side(lobes):
    """Join consecutive lobes (start s, end s, first and last orientation, bending arc)
    that bend to the same side; their bending arcs add up."""
    merged = lobes[:1]
    for lo, hi, first, last, arc in lobes[1:]:
        plo, _, pfirst, plast, parc = merged[-1]
        if float(plast @ first) >= 0:
            merged[-1] = (plo, hi, pfirst, last, parc + arc)
        else:
            merged.append((lo, hi, first, last, arc))
    return merged
