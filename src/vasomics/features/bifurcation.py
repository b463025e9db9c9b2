"""Bifurcation-scope features: branching angles, Murray exponent, area and diameter ratios.

A bifurcation is a node with three or more segment ends. Its **parent** is the segment through
which the root-first search reached it (:mod:`vasomics.features.topology`); the other
incident segments are its **daughters**, the *major* daughter being the one with the larger
radius. Each branch is measured on the stretch of its centerline between ``a = ka·R`` and
``a + kl·R`` of arc length from the node (``R`` = node radius, the largest radius of the
incident segments at the node; ``ka``, ``kl`` = ``junction_start_radii``,
``junction_length_radii``): its **direction** is the principal axis (least-squares line) of
that stretch's points, oriented away from the node, its **radius** the mean radius over it.
A stretch with fewer than three points uses the vector from the node to its centroid (to the
far end of a branch shorter than ``a``), and a branch shorter than ``a`` its mean radius. Features needing a parent are NaN at a root; the three angles are
NaN at nodes with more than two daughters.
"""

from __future__ import annotations

import numpy as np

from vasomics.features.context import Context, Values

PROVIDES = (
    "VX.A.B.ANG_MAJOR", "VX.A.B.ANG_MINOR", "VX.A.B.ANG_DAUGHTERS", "VX.M.B.MURRAY",
    "VX.M.B.AREA_RATIO", "VX.A.B.ASYM", "VX.A.B.DRATIO_MAJOR", "VX.A.B.DRATIO_MINOR",
)

#: Murray exponents beyond this are reported as NaN (daughters nearly as wide as the parent).
MURRAY_MAX = 100.0


def junction_branches(ctx: Context):
    """Direction (unit, from the node) and radius (mm) of every segment at each of its two
    ends: arrays of shape ``(S, 2, d)`` and ``(S, 2)`` (end 0 = start node, 1 = end node)."""
    g, cl, p = ctx.graph, ctx.centerlines, ctx.params
    off = g.point_offsets
    r_at = np.stack([g.radius[off[:-1]], g.radius[off[1:] - 1]], axis=1)
    node_r = np.zeros(g.n_nodes)
    np.maximum.at(node_r, g.segment_start, r_at[:, 0])
    np.maximum.at(node_r, g.segment_end, r_at[:, 1])
    n_seg, d = g.n_segments, g.ndim
    direction = np.zeros((n_seg, 2, d))
    radius = np.zeros((n_seg, 2))
    whole_r = ctx.segment_mean(cl.radius)
    for end, node in ((0, g.segment_start), (1, g.segment_end)):
        r_node = node_r[node]
        a = p.junction_start_radii * r_node
        b = a + p.junction_length_radii * r_node
        dist = cl.s if end == 0 else cl.length[cl.segment] - cl.s
        inside = (dist >= a[cl.segment]) & (dist <= b[cl.segment])
        seg_in = cl.segment[inside]
        pts_in = cl.points[inside]
        count = np.bincount(seg_in, minlength=n_seg)
        safe = np.maximum(count, 1)
        centroid = np.stack([np.bincount(seg_in, weights=pts_in[:, k], minlength=n_seg)
                             for k in range(d)], axis=1) / safe[:, None]
        # principal axis of the stretch (least-squares line), independent of where exactly
        # the node sits; oriented away from the node
        centred = pts_in - centroid[seg_in]
        cov = np.zeros((n_seg, d, d))
        for i in range(d):
            for j in range(i, d):
                cov[:, i, j] = cov[:, j, i] = np.bincount(
                    seg_in, weights=centred[:, i] * centred[:, j], minlength=n_seg)
        axis = np.linalg.eigh(cov)[1][:, :, -1]
        r_sum = np.bincount(seg_in, weights=cl.radius[inside], minlength=n_seg)
        has = count > 0
        line = count >= 3
        far = g.points[off[1:] - 1] if end == 0 else g.points[off[:-1]]
        away = np.where(has[:, None], centroid, far) - g.node_position[node]
        sign = np.where(np.einsum("ij,ij->i", axis, away) < 0, -1.0, 1.0)
        vec = np.where(line[:, None], sign[:, None] * axis, away)
        norm = np.linalg.norm(vec, axis=1, keepdims=True)
        direction[:, end] = np.where(norm > 0, vec / np.where(norm > 0, norm, 1.0), np.nan)
        radius[:, end] = np.where(has, r_sum / safe, whole_r)
    return direction, radius


def murray_exponent(parent: np.ndarray, daughters: np.ndarray) -> np.ndarray:
    """Solve ``r_p^x = Σ r_i^x`` for ``x`` (vectorized bisection). ``daughters`` is
    ``(B, k)`` with NaN padding. NaN when some daughter is not narrower than the parent or
    when ``x > MURRAY_MAX``."""
    ratio = daughters / parent[:, None]
    valid = np.all(np.isnan(ratio) | ((ratio > 0) & (ratio < 1)), axis=1) & np.isfinite(parent)
    valid &= np.sum(np.isfinite(ratio), axis=1) >= 2
    ratio = np.where(np.isfinite(ratio), ratio, 0.0)
    lo = np.full(len(parent), 1e-6)
    hi = np.full(len(parent), MURRAY_MAX)

    def f(x):
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            return np.sum(np.where(ratio > 0, ratio ** x[:, None], 0.0), axis=1) - 1.0

    valid &= f(hi) < 0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    return np.where(valid, 0.5 * (lo + hi), np.nan)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between rows of ``u`` and ``v`` (unit vectors)."""
    cos = np.clip(np.einsum("ij,ij->i", u, v), -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def compute(ctx: Context) -> dict[str, Values]:
    g, topo = ctx.graph, ctx.topology
    nodes = np.flatnonzero(topo.degree >= 3)
    direction, radius = junction_branches(ctx)
    # incident segment ends per node, excluding the parent's end
    ends_seg = np.concatenate([np.arange(g.n_segments), np.arange(g.n_segments)])
    ends_side = np.repeat([0, 1], g.n_segments)
    ends_node = np.concatenate([g.segment_start, g.segment_end])
    order = np.argsort(ends_node, kind="stable")
    bounds = np.searchsorted(ends_node[order], np.concatenate([nodes, [g.n_nodes]]))
    k_max = int(topo.degree[nodes].max()) if nodes.size else 3
    d = g.ndim
    b = len(nodes)
    parent_dir = np.full((b, d), np.nan)
    parent_r = np.full(b, np.nan)
    dau_dir = np.full((b, k_max, d), np.nan)
    dau_r = np.full((b, k_max), np.nan)
    n_dau = np.zeros(b, np.int64)
    for i, v in enumerate(nodes):
        sel = order[bounds[i]:np.searchsorted(ends_node[order], v, side="right")]
        par = topo.parent_segment[v]
        j = 0
        for e in sel:
            seg, side = ends_seg[e], ends_side[e]
            if seg == par and topo.distal[seg] == v and np.isnan(parent_r[i]):
                parent_dir[i], parent_r[i] = direction[seg, side], radius[seg, side]
            else:
                dau_dir[i, j], dau_r[i, j] = direction[seg, side], radius[seg, side]
                j += 1
        n_dau[i] = j
    # major daughter first
    rank = np.argsort(-np.nan_to_num(dau_r, nan=-np.inf), axis=1, kind="stable")
    dau_r = np.take_along_axis(dau_r, rank, axis=1)
    dau_dir = np.take_along_axis(dau_dir, rank[:, :, None], axis=1)
    two = (n_dau == 2) & np.isfinite(parent_r)
    axis = -parent_dir
    ang_major = np.where(two, _angle(axis, dau_dir[:, 0]), np.nan)
    ang_minor = np.where(two, _angle(axis, dau_dir[:, 1]), np.nan)
    ang_dau = np.where(n_dau == 2, _angle(dau_dir[:, 0], dau_dir[:, 1]), np.nan)
    ang_dau = np.where(two, ang_dau, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        area = np.nansum(dau_r ** 2, axis=1) / parent_r ** 2
        asym = np.where(n_dau == 2, dau_r[:, 1] / dau_r[:, 0], np.nan)
        dr_major = dau_r[:, 0] / parent_r
        dr_minor = np.where(n_dau == 2, dau_r[:, 1] / parent_r, np.nan)
    scopes = np.array([f"bifurcation:{v}" for v in nodes], dtype=object)
    values = {
        "VX.A.B.ANG_MAJOR": ang_major, "VX.A.B.ANG_MINOR": ang_minor,
        "VX.A.B.ANG_DAUGHTERS": ang_dau,
        "VX.M.B.MURRAY": murray_exponent(parent_r, dau_r),
        "VX.M.B.AREA_RATIO": area, "VX.A.B.ASYM": asym,
        "VX.A.B.DRATIO_MAJOR": dr_major, "VX.A.B.DRATIO_MINOR": dr_minor,
    }
    return {fid: Values(scopes, np.asarray(v, float)) for fid, v in values.items()}
