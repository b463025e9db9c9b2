"""Box-counting fractal dimension and gliding-box lacunarity of a binary mask, in physical units.

**Box counting** (Mandelbrot 1982; e.g. Family et al. 1989 for retinal vessels): boxes of edge
``ε`` (mm, equal along every axis whatever the voxel spacing) tile space from the corner of the
foreground bounding box; ``N(ε)`` is the number of boxes holding at least one foreground voxel
(a voxel belongs to the box containing its lower corner). Edges are ``ε = S/n`` for integer
``n``, ``S`` the longest physical side of the foreground bounding box, so boxes tile that side
exactly (no partly empty boxes at its far edge biasing the slope), geometrically spaced with
``m`` sizes per octave over ``[ε_min, ε_max]`` (:func:`box_divisions`). The dimension is the
least-squares slope of ``ln N(ε)`` against ``ln(1/ε)``. Counts at ``2ε`` derive exactly from
those at ``ε`` (``⌊x/2ε⌋ = ⌊⌊x/ε⌋/2⌋``), so each octave costs only a pass over the occupied
boxes of the finer one.

**Lacunarity** (Allain & Cloitre 1991; Plotnick et al. 1993): a box of ``b_a = max(1,
round(ε / s_a))`` voxels along each axis glides one voxel at a time over the foreground
bounding box; with ``M`` the foreground voxel count in each of the ``n`` positions,
``Λ(ε) = n ΣM² / (ΣM)²`` (= 1 + Var(M)/E(M)²). The reported lacunarity is the mean of
``Λ(ε)`` over ``lacunarity_boxes`` sizes spaced geometrically over ``[ε_min, ε_max]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vasomics.image import Image


def default_box_range(mask: Image) -> tuple[float, float]:
    """Auto box range (mm): 2 × the largest voxel spacing to a quarter of the largest side of
    the foreground bounding box (NaN-free; both positive)."""
    array = np.asarray(mask.array) != 0
    lo = 2.0 * max(mask.spacing)
    if not array.any():
        return lo, lo
    sides = [(np.flatnonzero(array.any(axis=tuple(j for j in range(array.ndim) if j != a)))
              [[0, -1]] @ [-1, 1] + 1) * s for a, s in enumerate(mask.spacing)]
    return lo, max(lo, 0.25 * float(max(sides)))


def box_divisions(side_mm: float, min_mm: float, max_mm: float, per_octave: int) -> np.ndarray:
    """Box counts per longest side ``n`` (ascending) such that the box edges ``side/n``
    span ``[min_mm, max_mm]``: ``n = n_c 2^l`` with ``n_c = round(n₀ 2^(c/m))``,
    ``n₀ = ceil(side/max_mm)``, ``c < m``, so sizes are geometric (``m`` per octave) and
    each halving of the edge is exact."""
    if not (max_mm >= min_mm > 0 and side_mm > 0):
        return np.zeros(0, np.int64)
    n0 = max(1, int(np.ceil(side_mm / max_mm - 1e-9)))
    n_max = int(np.floor(side_mm / min_mm + 1e-9))
    out = set()
    for c in range(per_octave):
        n = int(round(n0 * 2.0 ** (c / per_octave)))
        while n <= n_max:
            out.add(n)
            n *= 2
    return np.array(sorted(out), np.int64)


def bounding_side(mask: np.ndarray, spacing) -> float:
    """Largest physical side (mm) of the foreground bounding box (voxel extents)."""
    coords = np.nonzero(mask)
    if coords[0].size == 0:
        return 0.0
    return float(max((c.max() - c.min() + 1) * float(s)
                     for c, s in zip(coords, spacing, strict=True)))


def box_counts(mask: np.ndarray, spacing, divisions: np.ndarray) -> tuple[np.ndarray, float]:
    """Occupied boxes for edges ``side / n`` (``n`` in ``divisions``) and ``side`` (mm).

    Boxes start at the lower corner of the foreground bounding box; a voxel belongs to the
    box holding its lower corner. For each chain of doublings the finest level is counted
    from the voxels and the coarser ones by halving box indices (exact)."""
    coords = np.nonzero(mask)
    counts = np.zeros(len(divisions), np.int64)
    if coords[0].size == 0:
        return counts, 0.0
    phys = [(c - c.min()) * float(s) for c, s in zip(coords, spacing, strict=True)]
    side = bounding_side(mask, spacing)
    pos = {int(n): i for i, n in enumerate(divisions)}
    done: set[int] = set()
    for n in sorted(pos, reverse=True):
        if n in done:
            continue
        eps = side / n
        idx = np.stack([np.minimum(np.floor(p / eps + 1e-9).astype(np.int64), n)
                        for p in phys], axis=1)
        while True:
            base = n + 1
            key = np.unique(idx @ (base ** np.arange(idx.shape[1] - 1, -1, -1)))
            counts[pos[n]] = len(key)
            done.add(n)
            if n % 2 or (n // 2) not in pos:
                break
            idx = np.stack(np.unravel_index(key, (base,) * idx.shape[1]), axis=1) // 2
            n //= 2
    return counts, side


def fractal_dimension(mask: np.ndarray, spacing, min_mm: float, max_mm: float,
                      per_octave: int = 2) -> tuple[float, float]:
    """Box-counting dimension and the R² of its log-log fit; NaN with fewer than 3 sizes."""
    side = bounding_side(mask, spacing)
    divisions = box_divisions(side, min_mm, max_mm, per_octave)
    if len(divisions) < 3:
        return float("nan"), float("nan")
    counts, side = box_counts(mask, spacing, divisions)
    sizes = side / divisions
    x, y = np.log(1.0 / sizes), np.log(counts.astype(float))
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return float(slope), r2


def lacunarity_curve(mask: np.ndarray, spacing, sizes_mm: np.ndarray) -> np.ndarray:
    """Gliding-box lacunarity ``Λ(ε)`` for each box edge (mm) on the foreground bounding box."""
    mask = _crop(np.asarray(mask, bool))
    out = np.full(len(sizes_mm), np.nan)
    if mask is None:
        return out
    vol = mask.astype(np.uint8)
    if vol.ndim == 2:
        vol = vol[None]
        spacing = (1.0, *spacing)
    for i, eps in enumerate(sizes_mm):
        box = [max(1, int(round(eps / float(s)))) for s in spacing]
        if mask.ndim == 2:
            box[0] = 1
        box = [min(b, n) for b, n in zip(box, vol.shape, strict=True)]
        n_pos, s1, s2 = _gliding_moments(vol, box[0], box[1], box[2])
        out[i] = n_pos * s2 / (s1 * s1) if s1 > 0 else np.nan
    return out


def _crop(mask: np.ndarray) -> np.ndarray | None:
    if not mask.any():
        return None
    slices = []
    for a in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(j for j in range(mask.ndim) if j != a)))
        slices.append(slice(hit[0], hit[-1] + 1))
    return mask[tuple(slices)]


@njit(cache=True, nogil=True)
def _gliding_moments(vol, bz, by, bx):  # pragma: no cover - compiled
    """Number of box positions, ΣM and ΣM² for a (bz, by, bx) box gliding over ``vol``.

    Running sums along x, then y (per slice), then z (a ring of the last ``bz`` slices);
    rows that hold no foreground are skipped at every stage, so the cost follows the
    neighbourhood of the foreground rather than the grid."""
    nz, ny, nx = vol.shape
    oy, ox = ny - by + 1, nx - bx + 1
    ring = np.zeros((bz, oy, ox), np.int32)
    ring_nz = np.zeros((bz, oy), np.bool_)
    active = np.zeros(oy, np.int32)  # ring slots with a non-zero row yy
    running = np.zeros((oy, ox), np.int64)
    rows = np.zeros((ny, ox), np.int32)
    row_nz = np.zeros(ny, np.bool_)
    col = np.zeros(ox, np.int32)
    s1 = 0.0
    s2 = 0.0
    for z in range(nz):
        for y in range(ny):
            any_fg = False
            for x in range(nx):
                if vol[z, y, x]:
                    any_fg = True
                    break
            row_nz[y] = any_fg
            if any_fg:
                acc = 0
                for x in range(bx):
                    acc += vol[z, y, x]
                rows[y, 0] = acc
                for x in range(1, ox):
                    acc += vol[z, y, x + bx - 1] - vol[z, y, x - 1]
                    rows[y, x] = acc
        col[:] = 0
        n_rows_in = 0
        slot = z % bz
        for y in range(ny):
            if row_nz[y]:
                n_rows_in += 1
                for x in range(ox):
                    col[x] += rows[y, x]
            if y >= by and row_nz[y - by]:
                n_rows_in -= 1
                for x in range(ox):
                    col[x] -= rows[y - by, x]
            if y >= by - 1:
                yy = y - by + 1
                new_nz = n_rows_in > 0
                if new_nz or ring_nz[slot, yy]:
                    for x in range(ox):
                        running[yy, x] += col[x] - ring[slot, yy, x]
                        ring[slot, yy, x] = col[x] if new_nz else 0
                    active[yy] += int(new_nz) - int(ring_nz[slot, yy])
                    ring_nz[slot, yy] = new_nz
        if z >= bz - 1:
            for yy in range(oy):
                if active[yy] > 0:
                    for x in range(ox):
                        m = float(running[yy, x])
                        s1 += m
                        s2 += m * m
    n_pos = float(nz - bz + 1) * oy * ox
    return n_pos, s1, s2
