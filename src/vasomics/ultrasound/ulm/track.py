"""Linking localizations into tracks: frame-to-frame optimal assignment with KD-tree gating.

All candidate links between consecutive frames are found with one KD-tree query for the
whole sequence (each frame is shifted into its own lateral band, so neighbours closer than
``max_distance`` can only be in the next frame). Unambiguous candidates (one partner on each
side) are accepted directly; every frame with competing candidates is solved exactly as a
linear assignment problem minimizing the summed squared displacement (Hungarian method,
``scipy.optimize.linear_sum_assignment``). Optional gap closing then links track ends to
track starts up to ``max_gap`` frames later, with the gate growing as ``(gap + 1) ·
max_distance``. Tracks shorter than ``min_length`` localizations are discarded (id −1).
Positions and distances are in pixels; frames are integers.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from vasomics.errors import InputError


def candidate_pairs(frame, z, x, src, dst, df, max_distance):
    """Pairs (i in src, j in dst) with frame[j] = frame[i] + df and distance ≤ max_distance."""
    if src.size == 0 or dst.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    span = float(max(z.max(), x.max()) - min(z.min(), x.min())) + 4 * max_distance + 1
    a = np.c_[z[src], x[src] + (frame[src] + df) * span]
    b = np.c_[z[dst], x[dst] + frame[dst] * span]
    ta, tb = cKDTree(a), cKDTree(b)
    sdm = ta.sparse_distance_matrix(tb, max_distance, output_type="ndarray")
    return src[sdm["i"]], dst[sdm["j"]], sdm["v"]


def assign(i, j, d, group):
    """Accept unambiguous pairs; solve each ``group`` (frame) with conflicts by LSA."""
    if i.size == 0:
        return i, j
    ui, inv_i = np.unique(i, return_inverse=True)
    uj, inv_j = np.unique(j, return_inverse=True)
    simple = (np.bincount(inv_i)[inv_i] == 1) & (np.bincount(inv_j)[inv_j] == 1)
    out_i, out_j = [i[simple]], [j[simple]]
    rest = np.flatnonzero(~simple)
    if rest.size:
        g = group[rest]
        order = rest[np.argsort(g, kind="stable")]
        bounds = np.flatnonzero(np.diff(group[order])) + 1
        for chunk in np.split(order, bounds):
            ri, rr = np.unique(i[chunk], return_inverse=True)
            ci, cc = np.unique(j[chunk], return_inverse=True)
            cost = np.full((ri.size, ci.size), 1e12)
            cost[rr, cc] = d[chunk] ** 2
            r, c = linear_sum_assignment(cost)
            ok = cost[r, c] < 1e12
            out_i.append(ri[r[ok]])
            out_j.append(ci[c[ok]])
    return np.concatenate(out_i), np.concatenate(out_j)


def link(frame: np.ndarray, z: np.ndarray, x: np.ndarray, max_distance: float = 1.5,
         max_gap: int = 0, min_length: int = 5) -> np.ndarray:
    """Track id per localization (−1: in no kept track); ids are 0..T−1 in order of first
    appearance. ``frame`` integers, ``z``/``x`` in pixels, ``max_distance`` in pixels per frame.
    """
    frame = np.asarray(frame, dtype=np.int64)
    z = np.asarray(z, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if not (frame.shape == z.shape == x.shape) or frame.ndim != 1:
        raise InputError("frame, z and x must be 1D arrays of the same length")
    n = frame.size
    if n == 0:
        return np.empty(0, np.int64)
    if not (np.isfinite(z).all() and np.isfinite(x).all()):
        raise InputError("localizations hold NaN or infinite positions")
    prev = np.full(n, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    everyone = np.arange(n)
    i, j, d = candidate_pairs(frame, z, x, everyone, everyone, 1, max_distance)
    i, j = assign(i, j, d, frame[i])
    nxt[i], prev[j] = j, i
    for gap in range(1, max_gap + 1):
        ends = np.flatnonzero(nxt < 0)
        starts = np.flatnonzero(prev < 0)
        i, j, d = candidate_pairs(frame, z, x, ends, starts, gap + 1,
                                   (gap + 1) * max_distance)
        i, j = assign(i, j, d, frame[i])
        nxt[i], prev[j] = j, i
    # root of each chain by pointer jumping
    root = np.where(prev >= 0, prev, everyone)
    while True:
        nr = root[root]
        if np.array_equal(nr, root):
            break
        root = nr
    counts = np.bincount(root, minlength=n)
    keep = counts[root] >= min_length
    ids = np.full(n, -1, np.int64)
    kept_roots = np.unique(root[keep])
    first = np.argsort(np.argsort(frame[kept_roots] * n + kept_roots))
    lookup = np.full(n, -1, np.int64)
    lookup[kept_roots] = first
    ids[keep] = lookup[root[keep]]
    return ids


def track_links(track: np.ndarray, frame: np.ndarray) -> set[tuple[int, int]]:
    """Consecutive-localization links ``(index, next index)`` implied by track ids (for
    evaluating linking against a truth)."""
    sel = np.flatnonzero(track >= 0)
    order = sel[np.lexsort((frame[sel], track[sel]))]
    same = track[order[1:]] == track[order[:-1]]
    return set(zip(order[:-1][same].tolist(), order[1:][same].tolist(), strict=True))


def track_velocity(track: np.ndarray, frame: np.ndarray, z: np.ndarray,
                   x: np.ndarray) -> np.ndarray:
    """Velocity ``(K, 2)`` (vz, vx) in pixels per frame by finite differences along each
    track (central inside, one-sided at the ends; NaN for unlinked localizations)."""
    v = np.full((frame.size, 2), np.nan)
    sel = np.flatnonzero(track >= 0)
    order = sel[np.lexsort((frame[sel], track[sel]))]
    if order.size < 2:
        return v
    same = track[order[1:]] == track[order[:-1]]
    dt = np.maximum(frame[order[1:]] - frame[order[:-1]], 1)
    step = np.c_[z[order[1:]] - z[order[:-1]], x[order[1:]] - x[order[:-1]]] / dt[:, None]
    step[~same] = np.nan
    fwd = np.vstack([step, np.full((1, 2), np.nan)])
    bwd = np.vstack([np.full((1, 2), np.nan), step])
    v[order] = np.where(np.isnan(fwd), bwd, np.where(np.isnan(bwd), fwd, 0.5 * (fwd + bwd)))
    return v
