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

Per sub-iteration (one of the six face directions), border voxels in that direction that are
simple and not curve ends (a curve end has exactly one 26-neighbour) are collected, then
deleted one by one after re-checking, which preserves topology. 2D masks are thinned as a
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
    """Cube positions p = 9 (dz+1) + 3 (dy+1) + (dx+1); adjacency lists inside the cube."""
    pos = np.array([(p // 9 - 1, (p // 3) % 3 - 1, p % 3 - 1) for p in range(27)])
    adj26 = np.full((27, 26), -1, np.int64)
    adj6 = np.full((27, 6), -1, np.int64)
    for p in range(27):
        k26 = k6 = 0
        for q in range(27):
            if p == q or q == 13:
                continue
            d = np.abs(pos[p] - pos[q])
            if d.max() == 1:
                adj26[p, k26] = q
                k26 += 1
                if d.sum() == 1 and np.abs(pos[q]).sum() <= 2:  # 6-adjacent, inside N18
                    adj6[p, k6] = q
                    k6 += 1
    six = np.array([4, 22, 10, 16, 12, 14], np.int64)  # -z, +z, -y, +y, -x, +x
    return pos, adj26, adj6, six


CUBE, ADJ26, ADJ6_18, SIX = _neighbour_tables()


def cube_offsets(shape) -> np.ndarray:
    """Flat-index offsets of the 27 cube positions in a C-ordered array of ``shape``."""
    sy, sx = shape[1] * shape[2], shape[2]
    return (CUBE[:, 0] * sy + CUBE[:, 1] * sx + CUBE[:, 2]).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _is_simple(cube):  # pragma: no cover - compiled
    """Exact 3D (26, 6) simple-point test on a 27-entry neighbourhood (centre excluded)."""
    stack = np.empty(27, np.int64)
    seen = np.zeros(27, np.bool_)
    # foreground: exactly one 26-component among the 26 neighbours
    start = -1
    n_fg = 0
    for p in range(27):
        if p != 13 and cube[p]:
            n_fg += 1
            start = p
    if n_fg == 0:
        return False
    top = 0
    stack[top] = start
    top += 1
    seen[start] = True
    reached = 1
    while top > 0:
        top -= 1
        p = stack[top]
        for k in range(26):
            q = ADJ26[p, k]
            if q < 0:
                break
            if cube[q] and not seen[q]:
                seen[q] = True
                reached += 1
                stack[top] = q
                top += 1
    if reached != n_fg:
        return False
    # background: exactly one 6-component in N18 that touches a face neighbour
    for p in range(27):
        seen[p] = False
    components = 0
    for f in range(6):
        s = SIX[f]
        if cube[s] or seen[s]:
            continue
        components += 1
        if components > 1:
            return False
        top = 0
        stack[top] = s
        top += 1
        seen[s] = True
        while top > 0:
            top -= 1
            p = stack[top]
            for k in range(6):
                q = ADJ6_18[p, k]
                if q < 0:
                    break
                if not cube[q] and not seen[q]:
                    seen[q] = True
                    stack[top] = q
                    top += 1
    return components == 1


@numba.njit(cache=True, nogil=True)
def _load(vol, v, offsets, cube):  # pragma: no cover - compiled
    n = 0
    for p in range(27):
        b = (vol[v + offsets[p]] & 1) != 0 and p != 13
        cube[p] = b
        if b:
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def thin(vol, offsets, candidates, directions):  # pragma: no cover - compiled
    """Thin the foreground of the flat padded volume ``vol`` in place to curves.

    ``candidates``: flat indices of the initial border voxels; ``directions``: cube positions
    of the face directions to use, in order. Returns the number of sweeps.
    """
    cube = np.empty(27, np.bool_)
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
            for i in range(n_cand):
                v = cand[i]
                if (vol[v] & 1) == 0 or (vol[v + off_d] & 1) != 0:
                    continue
                if _load(vol, v, offsets, cube) <= 1 or not _is_simple(cube):
                    continue
                if n_border == len(border):
                    border = _grow(border)
                border[n_border] = v
                n_border += 1
            for i in range(n_border):
                v = border[i]
                if _load(vol, v, offsets, cube) <= 1 or not _is_simple(cube):
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
