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
