"""Compiled kernel: re-centre centerline points in their cross-sections by ray casting.

For a point ``p`` with unit tangent ``t``, ``n_rays`` rays are cast in the plane normal to
``t``; each stops at the first background voxel (nearest-voxel membership, probed every
quarter of the smallest voxel), so its length ``s_k`` reaches the voxel faces of the mask
boundary. For a circular cross-section of radius ``R`` whose centre lies at ``δ`` from
``p``, ``s_k ≈ R + δ · d_k`` and the mean of ``s_k d_k`` over evenly spaced ray directions
``d_k`` is ``δ / 2``: the centre is ``p + 2 mean(s_k d_k)``. Where a ray runs more than
twice the median ray length (another vessel joins: bifurcations, touching vessels) or does
not leave the mask within ``max_len``, the point is left where it is.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def recenter(mask, points, tangents, spacing, max_len, n_rays, gain):  # pragma: no cover
    """Return re-centred copies of ``points`` (``(N, 3)`` in grid mm: NumPy index × spacing)
    and a flag per point telling whether it moved. ``tangents`` are unit vectors in the same
    frame; ``max_len`` (``(N,)`` mm) bounds each ray. ``gain`` is 2 for a full ring of rays
    (3D) and 1 for two opposite rays (2D, where the offset is half their difference)."""
    nz, ny, nx = mask.shape
    n = points.shape[0]
    out = points.copy()
    moved = np.zeros(n, np.bool_)
    step = 0.25 * min(spacing[0], min(spacing[1], spacing[2]))
    lengths = np.empty(n_rays)
    dirs = np.empty((n_rays, 3))
    cos = np.cos(2.0 * np.pi * np.arange(n_rays) / n_rays)
    sin = np.sin(2.0 * np.pi * np.arange(n_rays) / n_rays)
    for i in range(n):
        t0, t1, t2 = tangents[i, 0], tangents[i, 1], tangents[i, 2]
        # normal basis: u ⟂ t from the axis least aligned with t, v = t × u
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
            continue
        u0, u1, u2 = u0 / norm, u1 / norm, u2 / norm
        v0, v1, v2 = t1 * u2 - t2 * u1, t2 * u0 - t0 * u2, t0 * u1 - t1 * u0
        ok = True
        for k in range(n_rays):
            c, s = cos[k], sin[k]
            d0, d1, d2 = c * u0 + s * v0, c * u1 + s * v1, c * u2 + s * v2
            dirs[k, 0], dirs[k, 1], dirs[k, 2] = d0, d1, d2
            # probes at (k + 0.382) steps: never exactly half-way between two voxel centres
            # on grid-aligned rays, so rounding has no ties (and scaling the grid changes
            # nothing)
            dist = (0.382 - 1.0) * step
            left = False
            while dist <= max_len[i]:
                dist += step
                z = int(np.rint((points[i, 0] + dist * d0) / spacing[0]))
                y = int(np.rint((points[i, 1] + dist * d1) / spacing[1]))
                x = int(np.rint((points[i, 2] + dist * d2) / spacing[2]))
                if z < 0 or z >= nz or y < 0 or y >= ny or x < 0 or x >= nx or not mask[z, y, x]:
                    left = True
                    break
            if not left:
                ok = False
                break
            lengths[k] = dist - 0.5 * step
        if not ok:
            continue
        med = np.median(lengths)
        if lengths.max() > 2.0 * med:
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
