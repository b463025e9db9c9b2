"""Compiled kernels of the skeletonizer: topology-preserving thinning over a list of voxels,
centerline radius by local search, and skeleton adjacency.

Thinning follows the directional sequential scheme of Lee, Kashyap & Chu (1994) — the
algorithm behind ``skimage.morphology.skeletonize`` in 3D — with two changes that keep the
cost proportional to the foreground instead of the grid:

* only *candidate* voxels are examined: at first every foreground voxel with a background
  6-neighbour, later only foreground voxels whose 26-neighbourhood changed (a voxel whose
  neighbourhood did not change cannot have become deletable);
* the simple-point test is exact and local (Bertrand & Malandain 1994): a voxel is simple
  when its foreground 26-neighbours form exactly one 26-connected component and the
  background in its 18-neighbourhood has exactly one 6-connected component 6-adjacent to it.

Per sub-iteration (one of the six face directions), the border voxels in that direction that
are simple and not curve ends (a curve end has exactly one 26-neighbour) are collected, then
deleted one by one after re-checking; deleting simple points one at a time preserves
topology, and collecting first keeps the peeling symmetric (centred). The simple-point
test is bit-parallel: the 26-neighbourhood is a 27-bit mask and both flood fills are done by
shifting masks. 2D masks are thinned as a
one-voxel slab (the in-plane directions only), where the 3D test reduces to the 2D (8, 4)
one.

Volumes here are padded ``uint8`` arrays addressed by flat index; bit 0 is the foreground,
bits 1 and 2 are bookkeeping flags.
"""

from __future__ import annotations

import numba
import numpy as np

FG, IN_LIST, NEXT = np.uint8(1), np.uint8(2), np.uint8(4)


def _neighbour_tables():
    """Cube positions p = 9 (dz+1) + 3 (dy+1) + (dx+1) and the six face neighbours."""
    cube = np.array([(p // 9 - 1, (p // 3) % 3 - 1, p % 3 - 1) for p in range(27)])
    six = np.array([4, 22, 10, 16, 12, 14], np.int64)  # -z, +z, -y, +y, -x, +x
    return cube, six


CUBE, SIX = _neighbour_tables()


def _bit_masks():
    """27-bit masks of the cube (bit p = 9 z + 3 y + x): faces of the cube per axis, the
    18-neighbourhood and the six face neighbours."""
    pos = CUBE + 1
    bit = 1 << np.arange(27, dtype=np.int64)
    lo = [int(bit[pos[:, a] == 0].sum()) for a in range(3)]  # z, y, x == 0
    hi = [int(bit[pos[:, a] == 2].sum()) for a in range(3)]
    n18 = int(bit[(np.abs(CUBE).sum(axis=1) <= 2) & (np.arange(27) != 13)].sum())
    six = int(bit[SIX].sum())
    return np.array(lo, np.int64), np.array(hi, np.int64), n18, six


LO, HI, N18, SIXBITS = _bit_masks()


def cube_offsets(shape) -> np.ndarray:
    """Flat-index offsets of the 27 cube positions in a C-ordered array of ``shape``."""
    sy, sx = shape[1] * shape[2], shape[2]
    return (CUBE[:, 0] * sy + CUBE[:, 1] * sx + CUBE[:, 2]).astype(np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _dilate6(b):  # pragma: no cover - compiled
    return (b | ((b & ~HI[2]) << 1) | ((b & ~LO[2]) >> 1) | ((b & ~HI[1]) << 3)
            | ((b & ~LO[1]) >> 3) | ((b & ~HI[0]) << 9) | ((b & ~LO[0]) >> 9))


@numba.njit(cache=True, nogil=True, inline="always")
def _dilate26(b):  # pragma: no cover - compiled
    b = b | ((b & ~HI[2]) << 1) | ((b & ~LO[2]) >> 1)
    b = b | ((b & ~HI[1]) << 3) | ((b & ~LO[1]) >> 3)
    return b | ((b & ~HI[0]) << 9) | ((b & ~LO[0]) >> 9)


@numba.njit(cache=True, nogil=True)
def is_simple(n):  # pragma: no cover - compiled
    """Exact 3D (26, 6) simple-point test on the 26-neighbourhood bit mask ``n`` (bit
    p = 9 z + 3 y + x of the 3×3×3 cube, centre bit 13 clear), by bit-parallel flood fill:
    the foreground must be one 26-component, and the background inside the 18-neighbourhood
    must have exactly one 6-component touching a face neighbour."""
    if n == 0:
        return False
    comp = n & -n  # lowest set bit
    while True:
        grown = _dilate26(comp) & n
        if grown == comp:
            break
        comp = grown
    if comp != n:
        return False
    bg = ~n & N18
    faces = bg & SIXBITS
    if faces == 0:
        return False
    comp = faces & -faces
    while True:
        grown = _dilate6(comp) & bg
        if grown == comp:
            break
        comp = grown
    return (faces & ~comp) == 0


@numba.njit(cache=True, nogil=True)
def _load(vol, v, offsets):  # pragma: no cover - compiled
    """Bit mask of the foreground 26-neighbours of ``v`` and their number."""
    n = np.int64(0)
    count = 0
    for p in range(27):
        if p != 13 and (vol[v + offsets[p]] & 1) != 0:
            n |= np.int64(1) << p
            count += 1
    return n, count


@numba.njit(cache=True, nogil=True)
def thin(vol, offsets, candidates, directions):  # pragma: no cover - compiled
    """Thin the foreground of the flat padded volume ``vol`` in place to curves.

    ``candidates``: flat indices of the initial border voxels; ``directions``: cube positions
    of the face directions to use, in order. Returns the number of sweeps.
    """
    cand = candidates.copy()
    n_cand = len(cand)
    for i in range(n_cand):
        vol[cand[i]] |= IN_LIST
    nxt = np.empty(1024, np.int64)
    border = np.empty(1024, np.int64)
    sweeps = 0
    while n_cand > 0:
        sweeps += 1
        n_next = 0
        for d in directions:
            off_d = offsets[d]
            n_border = 0
            for i in range(n_cand):  # simple border voxels in this direction, as they are now
                v = cand[i]
                if (vol[v] & 1) == 0 or (vol[v + off_d] & 1) != 0:
                    continue
                n, count = _load(vol, v, offsets)
                if count <= 1 or not is_simple(n):
                    continue
                if n_border == len(border):
                    border = _grow(border)
                border[n_border] = v
                n_border += 1
            for i in range(n_border):  # deleted one by one after re-checking: topology kept
                v = border[i]
                n, count = _load(vol, v, offsets)
                if count <= 1 or not is_simple(n):
                    continue
                vol[v] &= ~FG
                for p in range(27):
                    u = v + offsets[p]
                    if (vol[u] & 1) == 0:
                        continue
                    if (vol[u] & NEXT) == 0:
                        vol[u] |= NEXT
                        if n_next == len(nxt):
                            nxt = _grow(nxt)
                        nxt[n_next] = u
                        n_next += 1
                    if (vol[u] & IN_LIST) == 0:  # newly exposed: try it in later directions
                        vol[u] |= IN_LIST
                        if n_cand == len(cand):
                            cand = _grow(cand)
                        cand[n_cand] = u
                        n_cand += 1
        for i in range(n_cand):
            vol[cand[i]] &= ~IN_LIST
        n_cand = 0
        for i in range(n_next):
            u = nxt[i]
            vol[u] &= ~NEXT
            if (vol[u] & 1) != 0:
                if n_cand == len(cand):
                    cand = _grow(cand)
                cand[n_cand] = u
                n_cand += 1
                vol[u] |= IN_LIST
    return sweeps


@numba.njit(cache=True, nogil=True)
def _grow(a):  # pragma: no cover - compiled
    b = np.empty(2 * len(a), a.dtype)
    b[: len(a)] = a
    return b


@numba.njit(cache=True, nogil=True)
def border_voxels(vol, offsets, foreground):  # pragma: no cover - compiled
    """Foreground voxels (flat indices) with at least one background face neighbour."""
    out = np.empty(len(foreground), np.int64)
    n = 0
    for v in foreground:
        for f in range(6):
            if (vol[v + offsets[SIX[f]]] & 1) == 0:
                out[n] = v
                n += 1
                break
    return out[:n]


@numba.njit(cache=True, nogil=True)
def adjacency(vol, offsets, skeleton):  # pragma: no cover - compiled
    """26-adjacency among the sorted skeleton voxels (flat indices) as CSR (offsets, ids)."""
    n = len(skeleton)
    ptr = np.zeros(n + 1, np.int64)
    ids = np.empty(26 * n, np.int64)
    k = 0
    for i in range(n):
        v = skeleton[i]
        for p in range(27):
            if p == 13:
                continue
            u = v + offsets[p]
            if vol[u] & 1:
                ids[k] = np.searchsorted(skeleton, u)
                k += 1
        ptr[i + 1] = k
    return ptr, ids[:k]


@numba.njit(cache=True, nogil=True)
def radius_at(mask, points, spacing):  # pragma: no cover - compiled
    """Distance (mm) from each voxel in ``points`` (``(N, 3)`` indices into the 3D boolean
    ``mask``) to the nearest background voxel centre; outside the grid counts as background.

    Exact: an axis walk gives an upper bound ``d0``, then every voxel of the box of
    half-size ``d0`` per axis is checked.
    """
    nz, ny, nx = mask.shape
    n = points.shape[0]
    dist = np.empty(n)
    for i in range(n):
        c0, c1, c2 = points[i, 0], points[i, 1], points[i, 2]
        best = np.inf
        for ax in range(3):
            size = nz if ax == 0 else (ny if ax == 1 else nx)
            for sgn in (-1, 1):
                step = 1
                while step * spacing[ax] < best:
                    q0 = c0 + sgn * step if ax == 0 else c0
                    q1 = c1 + sgn * step if ax == 1 else c1
                    q2 = c2 + sgn * step if ax == 2 else c2
                    qa = q0 if ax == 0 else (q1 if ax == 1 else q2)
                    if qa < 0 or qa >= size or not mask[q0, q1, q2]:
                        best = step * spacing[ax]
                        break
                    step += 1
        best2 = best * best
        hz, hy, hx = int(best / spacing[0]), int(best / spacing[1]), int(best / spacing[2])
        for dz in range(-hz, hz + 1):
            z = c0 + dz
            ez = (dz * spacing[0]) ** 2
            if ez >= best2:
                continue
            for dy in range(-hy, hy + 1):
                y = c1 + dy
                ey = ez + (dy * spacing[1]) ** 2
                if ey >= best2:
                    continue
                for dx in range(-hx, hx + 1):
                    ex = ey + (dx * spacing[2]) ** 2
                    if ex >= best2:
                        continue
                    x = c2 + dx
                    if z < 0 or z >= nz or y < 0 or y >= ny or x < 0 or x >= nx \
                            or not mask[z, y, x]:
                        best2 = ex
        dist[i] = np.sqrt(best2)
    return dist


@numba.njit(cache=True, nogil=True)
def radius_at_points(mask, points, spacing):  # pragma: no cover - compiled
    """Distance (mm) from each continuous point (``(N, 3)`` fractional NumPy indices into
    the 3D boolean ``mask``) to the nearest background voxel centre; outside the grid counts
    as background. Exact: the nearest voxel's axis walks bound the search box."""
    nz, ny, nx = mask.shape
    n = points.shape[0]
    dist = np.empty(n)
    for i in range(n):
        p0, p1, p2 = points[i, 0], points[i, 1], points[i, 2]
        c0, c1, c2 = int(np.rint(p0)), int(np.rint(p1)), int(np.rint(p2))
        best2 = np.inf
        for ax in range(3):
            size = nz if ax == 0 else (ny if ax == 1 else nx)
            for sgn in (-1, 1):
                step = 0
                while True:
                    q0 = c0 + sgn * step if ax == 0 else c0
                    q1 = c1 + sgn * step if ax == 1 else c1
                    q2 = c2 + sgn * step if ax == 2 else c2
                    qa = q0 if ax == 0 else (q1 if ax == 1 else q2)
                    e2 = (((q0 - p0) * spacing[0]) ** 2 + ((q1 - p1) * spacing[1]) ** 2
                          + ((q2 - p2) * spacing[2]) ** 2)
                    if e2 >= best2:
                        break
                    if qa < 0 or qa >= size or q0 < 0 or q0 >= nz or q1 < 0 or q1 >= ny \
                            or q2 < 0 or q2 >= nx or not mask[q0, q1, q2]:
                        best2 = e2
                        break
                    step += 1
        best = np.sqrt(best2)
        z0, z1 = int(np.floor(p0 - best / spacing[0])), int(np.ceil(p0 + best / spacing[0]))
        y0, y1 = int(np.floor(p1 - best / spacing[1])), int(np.ceil(p1 + best / spacing[1]))
        x0, x1 = int(np.floor(p2 - best / spacing[2])), int(np.ceil(p2 + best / spacing[2]))
        for z in range(z0, z1 + 1):
            ez = ((z - p0) * spacing[0]) ** 2
            if ez >= best2:
                continue
            for y in range(y0, y1 + 1):
                ey = ez + ((y - p1) * spacing[1]) ** 2
                if ey >= best2:
                    continue
                for x in range(x0, x1 + 1):
                    ex = ey + ((x - p2) * spacing[2]) ** 2
                    if ex >= best2:
                        continue
                    if z < 0 or z >= nz or y < 0 or y >= ny or x < 0 or x >= nx \
                            or not mask[z, y, x]:
                        best2 = ex
        dist[i] = np.sqrt(best2)
    return dist
