"""Compiled kernels on centerline cross-sections, by ray casting in the plane normal to the
centerline.

For a point ``p`` with unit tangent ``t``, ``n_rays`` rays ``d_k`` at evenly spaced angles are
cast in the plane normal to ``t``. Each stops at the first background voxel (nearest-voxel
membership, probed every quarter of the smallest voxel, at (k + 0.382) steps so that no probe
falls exactly half-way between two voxel centres), so its length ``s_k`` reaches the voxel
faces of the mask boundary: the mask is read as the union of its voxels' boxes. A ray that
runs more than twice the median ray length (another vessel joins: bifurcations, touching
vessels) or does not leave the mask within ``max_len`` marks the section as open.

* :func:`recenter`: for a circular cross-section of radius ``R`` whose centre lies at ``δ``
  from ``p``, ``s_k ≈ R + δ · d_k`` and the mean of ``s_k d_k`` is ``δ / 2``: the centre is
  ``p + 2 mean(s_k d_k)``. Open sections leave the point where it is.
* :func:`section_radius`: the area-equivalent radius ``sqrt(A / π)`` of the cross-section,
  with ``A = ½ Σ s_k² Δθ`` (polar area of the star-shaped section seen from ``p``; exact for
  any interior ``p`` as ``n_rays`` grows), i.e. ``sqrt(mean(s_k²))``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _normal_basis(t0, t1, t2):  # pragma: no cover - compiled
    """Unit ``u ⟂ t`` from the axis least aligned with ``t``, and ``v = t × u`` (zeros when
    ``t`` is zero)."""
    a0, a1, a2 = 0.0, 0.0, 0.0
    if abs(t0) <= abs(t1) and abs(t0) <= abs(t2):
        a0 = 1.0
    elif abs(t1) <= abs(t2):
        a1 = 1.0
    else:
        a2 = 1.0
    u0, u1, u2 = t1 * a2 - t2 * a1, t2 * a0 - t0 * a2, t0 * a1 - t1 * a0
    norm = np.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
    if norm == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    u0, u1, u2 = u0 / norm, u1 / norm, u2 / norm
    v0, v1, v2 = t1 * u2 - t2 * u1, t2 * u0 - t0 * u2, t0 * u1 - t1 * u0
    return u0, u1, u2, v0, v1, v2


@numba.njit(cache=True, nogil=True)
def _cast(mask, p0, p1, p2, d0, d1, d2, spacing, step, max_len):  # pragma: no cover
    """Length (mm) of the ray from ``p`` (grid mm) along ``d`` to the face of the first
    background voxel (outside the grid is background); -1 when it stays inside the mask up
    to ``max_len``."""
    nz, ny, nx = mask.shape
    dist = (0.382 - 1.0) * step
    while dist <= max_len:
        dist += step
        z = int(np.rint((p0 + dist * d0) / spacing[0]))
        y = int(np.rint((p1 + dist * d1) / spacing[1]))
        x = int(np.rint((p2 + dist * d2) / spacing[2]))
        if z < 0 or z >= nz or y < 0 or y >= ny or x < 0 or x >= nx or not mask[z, y, x]:
            return dist - 0.5 * step
    return -1.0


@numba.njit(cache=True, nogil=True)
def _ring(spacing, n_rays):  # pragma: no cover - compiled
    """Probe step (a quarter of the smallest voxel, mm), the rays' cosines and sines, and
    empty ``lengths`` / ``dirs`` buffers for :func:`_rays`."""
    step = 0.25 * min(spacing[0], min(spacing[1], spacing[2]))
    angles = 2.0 * np.pi * np.arange(n_rays) / n_rays
    return step, np.cos(angles), np.sin(angles), np.empty(n_rays), np.empty((n_rays, 3))


@numba.njit(cache=True, nogil=True)
def _rays(mask, p, t, spacing, step, max_len, cos, sin, lengths,
          dirs):  # pragma: no cover - compiled
    """Cast the ring of rays from ``p`` in the plane normal to ``t``; fill ``lengths`` and
    ``dirs``; return False when there is no plane (zero tangent) or the section is open (a
    ray does not leave the mask, or runs beyond twice the median length)."""
    u0, u1, u2, v0, v1, v2 = _normal_basis(t[0], t[1], t[2])
    if u0 == 0.0 and u1 == 0.0 and u2 == 0.0:
        return False
    for k in range(cos.shape[0]):
        c, s = cos[k], sin[k]
        d0, d1, d2 = c * u0 + s * v0, c * u1 + s * v1, c * u2 + s * v2
        dirs[k, 0], dirs[k, 1], dirs[k, 2] = d0, d1, d2
        lengths[k] = _cast(mask, p[0], p[1], p[2], d0, d1, d2, spacing, step, max_len)
        if lengths[k] < 0.0:
            return False
    return lengths.max() <= 2.0 * np.median(lengths)


@numba.njit(cache=True, nogil=True)
def recenter(mask, points, tangents, spacing, max_len, n_rays, gain):  # pragma: no cover
    """Return re-centred copies of ``points`` (``(N, 3)`` in grid mm: NumPy index × spacing)
    and a flag per point telling whether it moved. ``tangents`` are unit vectors in the same
    frame; ``max_len`` (``(N,)`` mm) bounds each ray. ``gain`` is 2 for a full ring of rays
    (3D) and 1 for two opposite rays (2D, where the offset is half their difference)."""
    n = points.shape[0]
    out = points.copy()
    moved = np.zeros(n, np.bool_)
    step, cos, sin, lengths, dirs = _ring(spacing, n_rays)
    for i in range(n):
        if not _rays(mask, points[i], tangents[i], spacing, step, max_len[i], cos, sin,
                     lengths, dirs):
            continue
        o0, o1, o2 = 0.0, 0.0, 0.0
        for k in range(n_rays):
            o0 += lengths[k] * dirs[k, 0]
            o1 += lengths[k] * dirs[k, 1]
            o2 += lengths[k] * dirs[k, 2]
        scale = gain / n_rays
        out[i, 0] = points[i, 0] + scale * o0
        out[i, 1] = points[i, 1] + scale * o1
        out[i, 2] = points[i, 2] + scale * o2
        moved[i] = True
    return out, moved


@numba.njit(cache=True, nogil=True)
def section_radius(mask, points, tangents, spacing, max_len, n_rays):  # pragma: no cover
    """Area-equivalent radius (mm) of the cross-section at each of ``points`` (``(N, 3)``
    grid mm, unit ``tangents`` in the same frame): ``sqrt(mean(s_k²))`` over ``n_rays``
    evenly spaced rays (``n_rays`` = 2: the half-width ``mean(s_k)``, for 2D masks seen as one
    slice). Returns the radii and a flag per point telling whether the section was closed;
    open sections (see the module docstring) get NaN."""
    n = points.shape[0]
    radius = np.full(n, np.nan)
    closed = np.zeros(n, np.bool_)
    step, cos, sin, lengths, dirs = _ring(spacing, n_rays)
    for i in range(n):
        if not _rays(mask, points[i], tangents[i], spacing, step, max_len[i], cos, sin,
                     lengths, dirs):
            continue
        if n_rays == 2:
            radius[i] = 0.5 * (lengths[0] + lengths[1])
        else:
            radius[i] = np.sqrt(np.mean(lengths * lengths))
        closed[i] = True
    return radius, closed


@numba.njit(cache=True, nogil=True)
def _poly_fit(u, pts, n, degree):  # pragma: no cover - compiled
    """Least-squares polynomial of ``degree`` (per coordinate) through the first ``n`` of
    ``pts`` (``(N, 3)``) at parameters ``u``: coefficients ``(degree + 1, 3)``, constant
    first."""
    m = degree + 1
    ata = np.zeros((m, m))
    atb = np.zeros((m, 3))
    for i in range(n):
        for a in range(m):
            pa = u[i] ** a
            for b in range(m):
                ata[a, b] += pa * u[i] ** b
            for c in range(3):
                atb[a, c] += pa * pts[i, c]
    return np.linalg.solve(ata, atb)


@numba.njit(cache=True, nogil=True)
def _poly_at(coef, shift, s, out):  # pragma: no cover - compiled
    """Point ``Σ coef[k] s^k + shift`` and unit tangent; ``out`` (2, 3)."""
    for c in range(3):
        v = shift[c]
        d = 0.0
        for k in range(coef.shape[0]):
            v += coef[k, c] * s ** k
            if k > 0:
                d += k * coef[k, c] * s ** (k - 1)
        out[0, c] = v
        out[1, c] = d
    norm = np.sqrt(out[1, 0] ** 2 + out[1, 1] ** 2 + out[1, 2] ** 2)
    if norm > 0.0:
        for c in range(3):
            out[1, c] /= norm


@numba.njit(cache=True, nogil=True)
def _inside(mask, p, spacing):  # pragma: no cover - compiled
    nz, ny, nx = mask.shape
    z = int(np.rint(p[0] / spacing[0]))
    y = int(np.rint(p[1] / spacing[1]))
    x = int(np.rint(p[2] / spacing[2]))
    return 0 <= z < nz and 0 <= y < ny and 0 <= x < nx and mask[z, y, x]


@numba.njit(cache=True, nogil=True)
def _inside_near(mask, p, t, spacing, side):  # pragma: no cover - compiled
    """``p`` or one of the four points ``side`` mm from it in the plane normal to ``t`` lies
    in the mask (nearest voxel)."""
    if _inside(mask, p, spacing):
        return True
    if side <= 0.0:
        return False
    u0, u1, u2, v0, v1, v2 = _normal_basis(t[0], t[1], t[2])
    q = np.empty(3)
    for a, b in ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)):
        q[0] = p[0] + side * (a * u0 + b * v0)
        q[1] = p[1] + side * (a * u1 + b * v1)
        q[2] = p[2] + side * (a * u2 + b * v2)
        if _inside(mask, q, spacing):
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _reach(mask, coef, shift, spacing, probe, limit, side):  # pragma: no cover - compiled
    """Arc parameter (mm) where the curve leaves the mask: the last probe (every ``probe``
    mm from 0.382 probe, off half-voxel ties) in the mask or within ``side`` mm of it
    across the curve, plus half a probe; 0 when the first probe is out, ``limit`` at most."""
    buf = np.empty((2, 3))
    t = 0.382 * probe
    last = -1.0
    while t < limit + probe:
        _poly_at(coef, shift, t, buf)
        if not _inside_near(mask, buf[0], buf[1], spacing, side):
            break
        last = t
        t += probe
    return 0.0 if last < 0.0 else last + 0.5 * probe


@numba.njit(cache=True, nogil=True)
def trace_end(mask, pts, spacing, tip_r, voxel, step, trim, fit_reach, cap, iters, n_rays,
              gain, narrow, side):  # pragma: no cover - compiled
    """Re-draw the free end of a polyline ``pts`` (``(n, 3)`` grid mm, free end last).

    1. Points closer to the end point than ``trim`` × ``tip_r`` (where thinning bends
       towards the rim of the vessel end) are dropped, at most half of them; ``keep`` are left.
    2. A parabola (per coordinate, in arc length ``u`` from the last kept point, ``u <= 0``
       on the kept points) is fitted to the kept points within ``fit_reach`` of the last
       one (a line when fewer than 5) and shifted through it; ``u > 0`` continues the vessel.
    3. ``iters`` times: the curve is sampled every half smallest voxel from ``u`` = a
       quarter voxel up to ``cap`` × ``tip_r`` before the mask boundary (the flat end face
       cuts sections closer to it); each sample is moved to the centre of its cross-section
       normal to the curve (as :func:`recenter`; open sections are left out). Sections
       narrower (twice their mean ray length) than the median of these sections by more
       than ``narrow`` smallest voxels are left out too: a section of the tube is at least
       as wide as the vessel (each ray end is quantized to half a voxel), a narrower one is
       cut by the end face (the curve heads into a corner of the flat end). The parabola is
       refitted to the kept points and these centres, shifted through the last kept
       point. The end stretch is thus measured from the mask's walls up to
       ``cap`` × ``tip_r`` from the tip, not extrapolated.
    4. The curve is followed up to the mask boundary (probed every quarter of the smallest
       voxel; a probe counts as inside while it or a point ``side`` mm from it across the
       curve lies in the mask, so a curve slightly off the axis of a vessel about one voxel
       in radius does not leave its voxelized lumen sideways; a flat or rounded end face,
       crossed at right angles, is left at the same probe) and sampled about every ``step``
       mm.

    Returns ``keep`` and the new points ``(m, 3)`` appended after ``pts[:keep]`` (``m`` = 0
    when the curve leaves the mask at once or the fit has no direction)."""
    n = pts.shape[0]
    keep = n
    lim_trim = trim * tip_r
    while keep > 1:
        d = np.sqrt(np.sum((pts[keep - 1] - pts[n - 1]) ** 2))
        if d >= lim_trim:
            break
        keep -= 1
    keep = max(keep, (n + 1) // 2, 2)
    keep = min(keep, n)
    empty = np.zeros((0, 3))
    # arc length backwards from the last kept point
    back = np.zeros(keep)
    for i in range(1, keep):
        j = keep - 1 - i
        back[i] = back[i - 1] + np.sqrt(np.sum((pts[j + 1] - pts[j]) ** 2))
    if back[keep - 1] <= 0.0:
        return keep, empty
    reach = min(max(fit_reach, 3.0 * voxel), back[keep - 1])
    w = 1
    while w < keep and back[w - 1] < reach:
        w += 1
    # w points: back[0..w-1] (searchsorted(back, reach) + 1 as in the former numpy code)
    probe = 0.25 * min(spacing[0], min(spacing[1], spacing[2]))
    vmin = 4.0 * probe
    n_samples = int(max(0.0, 12.0 * tip_r + 12.0 * voxel) / (0.5 * vmin)) + 2
    data_u = np.empty(w + n_samples)
    data_p = np.empty((w + n_samples, 3))
    for i in range(w):
        data_u[i] = -back[w - 1 - i]
        data_p[i] = pts[keep - w + i]
    degree = 2 if w >= 5 else 1
    coef = _poly_fit(data_u, data_p, w, degree)
    if np.sqrt(np.sum(coef[1] ** 2)) <= 0.0:
        return keep, empty
    shift = pts[keep - 1] - coef[0]
    limit = 4.0 * tip_r + 4.0 * voxel
    ext = _reach(mask, coef, shift, spacing, probe, limit, side)
    step_ray, cos, sin, lengths, dirs = _ring(spacing, n_rays)
    max_len = 3.0 * tip_r + 3.0 * voxel
    buf = np.empty((2, 3))
    width = np.empty(n_samples)
    for _ in range(iters):
        hi = ext - cap * tip_r
        m = w
        u = 0.25 * vmin
        while u < hi and m < w + n_samples:
            _poly_at(coef, shift, u, buf)
            if _rays(mask, buf[0], buf[1], spacing, step_ray, max_len, cos, sin, lengths,
                     dirs):
                scale = gain / cos.shape[0]
                for c in range(3):
                    acc = 0.0
                    for k in range(cos.shape[0]):
                        acc += lengths[k] * dirs[k, c]
                    data_p[m, c] = buf[0, c] + scale * acc
                data_u[m] = u
                width[m - w] = 2.0 * np.mean(lengths)
                m += 1
            u += 0.5 * vmin
        if m - w < 3:
            break
        if narrow > 0.0:
            floor = np.median(width[:m - w]) - narrow * vmin
            j = w
            for i in range(w, m):
                if width[i - w] >= floor:
                    data_u[j] = data_u[i]
                    data_p[j] = data_p[i]
                    j += 1
            m = j
            if m - w < 3:
                break
        coef = _poly_fit(data_u, data_p, m, 2)
        if np.sqrt(np.sum(coef[1] ** 2)) <= 0.0:
            return keep, empty
        shift = pts[keep - 1] - coef[0]
        ext = _reach(mask, coef, shift, spacing, probe, limit, side)
    if ext <= 0.0:
        return keep, empty
    n_new = max(1, int(np.rint(ext / step)))
    out = np.empty((n_new, 3))
    for i in range(n_new):
        _poly_at(coef, shift, ext * (i + 1) / n_new, buf)
        out[i] = buf[0]
    return keep, out
