"""Rasterize tubes (sphere-swept polylines) into binary masks on any grid.

A tube is a polyline of axis points (physical LPS mm, ``(x, y, z)`` or ``(x, y)``) with a
radius per point. Between two consecutive axis points ``a`` and ``b`` (radii ``ra``, ``rb``)
a voxel centre ``p`` is inside when its distance to the axis point ``a + t (b - a)`` is at
most ``ra + t (rb - ra)``, where ``t`` is the projection of ``p`` onto ``ab`` clamped to
``[0, 1]``. Clamping makes round (spherical) joints between pieces and round caps at the
ends; a *flat* cap instead drops the voxels near that end (within two end radii of the end
point) that lie behind the plane through the end point perpendicular to the first (last)
axis piece, cutting the tube flat there, round joints of the following pieces included. Truth lengths of flat-capped
tubes are therefore exactly their axis lengths.

Each piece is evaluated only inside its own bounding box, so the cost scales with the tube
volume, not the grid volume: a 512³ tree of a few thousand segments renders in seconds.
"""

from __future__ import annotations

import numba
import numpy as np

from vasomics.errors import InputError
from vasomics.image import Image


def grid_coordinates(points: np.ndarray, origin, direction) -> np.ndarray:
    """Physical LPS points ``(N, d)`` → "grid millimetres": NumPy-order index × spacing.

    Distances are preserved (the direction matrix is orthonormal), so the rasterizer can
    measure in mm on the voxel grid without knowing the direction any more.
    """
    local = (np.asarray(points, float) - np.asarray(origin, float)) @ np.asarray(direction, float)
    return local[:, ::-1]  # ITK (x, y, z) order → NumPy (z, y, x) order, still in mm


def rasterize_tubes(polylines, radii, shape, spacing, *, origin=None, direction=None,
                    flat_caps=True) -> np.ndarray:
    """Binary mask (``bool``, NumPy order) of the union of tubes.

    Parameters
    ----------
    polylines:
        Sequence of ``(n_i, d)`` arrays of axis points in physical LPS mm (``d`` = 2 or 3).
    radii:
        Sequence of ``(n_i,)`` radii in mm (a scalar per polyline is broadcast).
    shape, spacing:
        Grid shape and voxel size (mm) in NumPy order.
    origin, direction:
        Grid geometry as in :class:`~vasomics.image.Image` (default: zero origin, identity).
    flat_caps:
        ``True``/``False`` for all ends, or a sequence of ``(start_flat, end_flat)`` pairs,
        one per polyline. Flat ends are cut perpendicular to the axis; round ends are
        hemispheres.
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    spacing = np.asarray(spacing, float)
    origin = np.zeros(ndim) if origin is None else np.asarray(origin, float)
    direction = np.eye(ndim) if direction is None else np.asarray(direction, float)
    if ndim not in (2, 3) or len(spacing) != ndim:
        raise InputError(f"grid shape {shape} and spacing {tuple(spacing)} do not match")
    polylines = [np.asarray(p, float).reshape(-1, ndim) for p in polylines]
    if isinstance(flat_caps, bool | np.bool_):
        flat_caps = [(bool(flat_caps), bool(flat_caps))] * len(polylines)
    pieces, caps = [], []
    for poly, rad, (cap0, cap1) in zip(polylines, radii, flat_caps, strict=True):
        rad = np.broadcast_to(np.asarray(rad, float), (len(poly),))
        if len(poly) < 2:
            raise InputError("a tube polyline needs at least two points")
        if np.any(rad <= 0) or not np.all(np.isfinite(rad)):
            raise InputError("tube radii must be finite and positive")
        g = grid_coordinates(poly, origin, direction)
        if ndim == 2:
            g = np.column_stack([np.zeros(len(g)), g])
        n = len(g) - 1
        pieces.append(np.column_stack([g[:-1], g[1:], rad[:-1], rad[1:]]))
        # flat cap: a plane through the end point, normal pointing into the tube, that cuts
        # every piece near that end (also the round joints of the following pieces)
        c = np.zeros((n, 14))
        for col, flat, end, inner in ((0, cap0, 0, 1), (7, cap1, -1, -2)):
            normal = g[inner] - g[end]
            if flat and np.linalg.norm(normal) > 0:
                c[:, col:col + 3] = g[end]
                c[:, col + 3:col + 6] = normal / np.linalg.norm(normal)
                c[:, col + 6] = rad[end]
        caps.append(c)
    grid_shape = shape if ndim == 3 else (1, *shape)
    grid_spacing = spacing if ndim == 3 else np.array([1.0, *spacing])
    mask = np.zeros(grid_shape, dtype=np.bool_)
    if pieces:
        _rasterize(mask, grid_spacing, np.concatenate(pieces), np.concatenate(caps))
    return mask if ndim == 3 else mask[0]


def rasterize_image(polylines, radii, shape, spacing, *, origin=None, direction=None,
                    flat_caps=True) -> Image:
    """As :func:`rasterize_tubes`, wrapped in a ``uint8`` mask :class:`Image`."""
    mask = rasterize_tubes(polylines, radii, shape, spacing, origin=origin,
                           direction=direction, flat_caps=flat_caps)
    ndim = len(shape)
    return Image(mask.astype(np.uint8), spacing=tuple(float(s) for s in spacing),
                 origin=None if origin is None else tuple(origin),
                 direction=None if direction is None else np.asarray(direction).reshape(ndim,
                                                                                        ndim),
                 modality="mask")


@numba.njit(cache=True, nogil=True)
def _behind(qz, qy, qx, caps, k, col):  # pragma: no cover - compiled
    """True when the point lies behind the flat cap stored at ``caps[k, col:col + 7]`` and
    within two cap radii of its centre."""
    r = caps[k, col + 6]
    if r <= 0.0:
        return False
    dz, dy, dx = qz - caps[k, col], qy - caps[k, col + 1], qx - caps[k, col + 2]
    if dz * caps[k, col + 3] + dy * caps[k, col + 4] + dx * caps[k, col + 5] >= 0.0:
        return False
    return dz * dz + dy * dy + dx * dx < 4.0 * r * r


@numba.njit(cache=True, nogil=True)
def _rasterize(mask, spacing, pieces, caps):  # pragma: no cover - compiled
    nz, ny, nx = mask.shape
    sz, sy, sx = spacing[0], spacing[1], spacing[2]
    for k in range(pieces.shape[0]):
        az, ay, ax = pieces[k, 0], pieces[k, 1], pieces[k, 2]
        bz, by, bx = pieces[k, 3], pieces[k, 4], pieces[k, 5]
        ra, rb = pieces[k, 6], pieces[k, 7]
        r = max(ra, rb)
        z0 = max(0, int(np.floor((min(az, bz) - r) / sz)))
        z1 = min(nz - 1, int(np.ceil((max(az, bz) + r) / sz)))
        y0 = max(0, int(np.floor((min(ay, by) - r) / sy)))
        y1 = min(ny - 1, int(np.ceil((max(ay, by) + r) / sy)))
        x0 = max(0, int(np.floor((min(ax, bx) - r) / sx)))
        x1 = min(nx - 1, int(np.ceil((max(ax, bx) + r) / sx)))
        dz, dy, dx = bz - az, by - ay, bx - ax
        ll = dz * dz + dy * dy + dx * dx
        for i in range(z0, z1 + 1):
            pz = i * sz - az
            for j in range(y0, y1 + 1):
                py = j * sy - ay
                for m in range(x0, x1 + 1):
                    if mask[i, j, m]:
                        continue
                    px = m * sx - ax
                    t = (pz * dz + py * dy + px * dx) / ll if ll > 0 else 0.0
                    t = min(max(t, 0.0), 1.0)
                    rr = ra + t * (rb - ra)
                    ez, ey, ex = pz - t * dz, py - t * dy, px - t * dx
                    if ez * ez + ey * ey + ex * ex > rr * rr:
                        continue
                    qz, qy, qx = i * sz, j * sy, m * sx
                    if _behind(qz, qy, qx, caps, k, 0) or _behind(qz, qy, qx, caps, k, 7):
                        continue
                    mask[i, j, m] = True


def rasterize_points_tubetk(points, radii, shape, spacing, *, origin=None,
                            direction=None) -> np.ndarray:
    """Binary mask (``bool``, NumPy order, 3D) drawn by the rule of TubeTK's
    ``TubeSpatialObjectToImageFilter`` (``ConvertTubesToImage -r``), for validating radii
    against masks TubeTK made from its tubes: around each axis point (physical LPS mm,
    ``(x, y, z)``; radius in mm) offsets on a half-voxel grid inside the ellipsoid of
    semi-axes radius / spacing are rounded to their nearest voxel, and every voxel one lands
    in is set. A voxel whose box reaches into the tube is set even when its centre lies
    outside: the mask is wider than the tube (about 0.55 voxel in radius at 0.513 mm voxels,
    ``tests/test_radius.py``), unlike :func:`rasterize_tubes` (voxel centres inside)."""
    pts = np.atleast_2d(np.asarray(points, float))
    rad = np.asarray(radii, float).reshape(-1)
    if pts.shape[1] != 3 or len(shape) != 3 or len(rad) != len(pts):
        raise InputError("TubeTK's rule is drawn in 3D: points (N, 3) with N radii")
    spacing = np.asarray(spacing, float)
    origin = np.zeros(3) if origin is None else np.asarray(origin, float)
    direction = np.eye(3) if direction is None else np.asarray(direction, float)
    index = grid_coordinates(pts, origin, direction) / spacing  # continuous NumPy index
    mask = np.zeros(shape, bool)
    _rasterize_tubetk(mask, index, rad[:, None] / spacing[None, :])
    return mask


@numba.njit(cache=True, nogil=True)
def _rasterize_tubetk(mask, index, semi):  # pragma: no cover - compiled
    nz, ny, nx = mask.shape
    for k in range(index.shape[0]):
        rz, ry, rx = max(semi[k, 0], 0.25), max(semi[k, 1], 0.25), max(semi[k, 2], 0.25)
        z = -rz
        while z <= rz:
            y = -ry
            while y <= ry:
                x = -rx
                while x <= rx:
                    if (z / rz) ** 2 + (y / ry) ** 2 + (x / rx) ** 2 <= 1.0:
                        i = int(np.floor(index[k, 0] + z + 0.5))
                        j = int(np.floor(index[k, 1] + y + 0.5))
                        m = int(np.floor(index[k, 2] + x + 0.5))
                        if 0 <= i < nz and 0 <= j < ny and 0 <= m < nx:
                            mask[i, j, m] = True
                    x += 0.5
                y += 0.5
            z += 0.5
