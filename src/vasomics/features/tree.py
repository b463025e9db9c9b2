"""Tree-scope features computed from the graph alone: size, radius, counts, topology,
tortuosity summaries and percentiles of segment length and radius.

Volume and surface use the tubular model with a junction correction: each segment is a chain
of truncated cones along its resampled centerline, but at a node with three or more segment
ends (node radius ``R`` = the largest end radius there) the tubes and one sphere of radius
``R`` are combined by inclusion-exclusion: each branch starts where its surface meets the
sphere and the spherical caps it shares with the sphere are subtracted. Without the
correction the daughters' cones would overlap the parent's and be counted twice; overlap of
daughters with each other beyond the sphere (narrow branching angles) is not removed. Ends
at endpoints are open (no caps).
"""

from __future__ import annotations

import numpy as np

from vasomics.features.context import Context, Values
from vasomics.features.segment import distance_metric, sum_of_angles
from vasomics.features.topology import horton_bifurcation_ratio

PERCENTILES = (10, 25, 50, 75, 90)

PROVIDES = (
    "VX.A.T.LEN", "VX.A.T.VOL", "VX.A.T.SURF", "VX.A.T.RMEAN", "VX.A.T.RMED", "VX.A.T.NSEG",
    "VX.A.T.NBIF", "VX.A.T.NEND", "VX.A.T.NCOMP", "VX.A.T.NLOOP", "VX.A.T.GENMAX",
    "VX.A.T.STRAHLER", "VX.A.T.BIFRATIO", "VX.A.T.DM_MEAN", "VX.A.T.SOAM",
    *(f"VX.A.T.SLEN_P{q}" for q in PERCENTILES), *(f"VX.A.T.SRAD_P{q}" for q in PERCENTILES),
)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Quantile ``q`` in [0, 1] of ``values`` weighted by ``weights`` (midpoint rule of the
    weighted empirical distribution; equals ``np.median`` for equal weights and odd counts)."""
    ok = (weights > 0) & np.isfinite(values)
    if not np.any(ok):
        return float("nan")
    v, w = values[ok], weights[ok]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cum = np.cumsum(w) - 0.5 * w
    return float(np.interp(q * w.sum(), cum, v))


def volume_and_surface(ctx: Context) -> tuple[float, float]:
    """Tubular-model volume (mm³) and lateral surface (mm²) with the junction correction
    (module doc): at a junction of radius ``R`` each branch of end radius ``r_b`` starts at
    ``s_b = sqrt(R² − r_b²)``, where its surface meets the sphere; the sphere is added once
    and the caps it shares with the branches (height ``h_b = R − s_b``) are subtracted."""
    g, cl, topo = ctx.graph, ctx.centerlines, ctx.topology
    off = g.point_offsets
    r_ends = (g.radius[off[:-1]], g.radius[off[1:] - 1])
    node_r = np.zeros(g.n_nodes)
    np.maximum.at(node_r, g.segment_start, r_ends[0])
    np.maximum.at(node_r, g.segment_end, r_ends[1])
    junction = topo.degree >= 3
    cuts, cap_vol, cap_area = [], np.zeros(g.n_nodes), np.zeros(g.n_nodes)
    for node, r_b in ((g.segment_start, r_ends[0]), (g.segment_end, r_ends[1])):
        big = node_r[node]
        s_b = np.sqrt(np.maximum(big ** 2 - np.minimum(r_b, big) ** 2, 0.0))
        h = big - s_b
        cuts.append(np.where(junction[node], s_b, 0.0))
        np.add.at(cap_vol, node, np.pi * h * h * (3 * big - h) / 3.0)
        np.add.at(cap_area, node, 2.0 * np.pi * big * h)
    seg, h, r1, r2, s_mid = cl.piece_values()
    keep = (s_mid >= cuts[0][seg]) & (cl.length[seg] - s_mid >= cuts[1][seg])
    vol = np.pi * h * (r1 * r1 + r1 * r2 + r2 * r2) / 3.0
    surf = np.pi * (r1 + r2) * np.sqrt(h * h + (r1 - r2) ** 2)
    nodes = np.flatnonzero(junction)
    rn = node_r[nodes]
    volume = float(vol[keep].sum()) + float(np.sum(4.0 / 3.0 * np.pi * rn ** 3 - cap_vol[nodes]))
    surface = float(surf[keep].sum()) + float(np.sum(np.maximum(
        4.0 * np.pi * rn ** 2 - cap_area[nodes], 0.0)))
    return volume, surface


def compute(ctx: Context) -> dict[str, Values]:
    g, topo, cl = ctx.graph, ctx.topology, ctx.centerlines
    lengths = ctx.lengths
    total = float(lengths.sum())
    volume, surface = volume_and_surface(ctx)
    n_loops = g.n_segments - g.n_nodes + topo.n_components
    seg_r = ctx.segment_mean(cl.radius)
    dm = distance_metric(ctx)
    ok = np.isfinite(dm) & (lengths > 0)
    soam = sum_of_angles(ctx)
    ok_s = np.isfinite(soam)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "VX.A.T.LEN": total,
            "VX.A.T.VOL": volume,
            "VX.A.T.SURF": surface,
            "VX.A.T.RMEAN": float(np.sum(ctx.weights * cl.radius) / np.sum(ctx.weights)),
            "VX.A.T.RMED": weighted_quantile(cl.radius, ctx.weights, 0.5),
            "VX.A.T.NSEG": g.n_segments,
            "VX.A.T.NBIF": int(np.count_nonzero(topo.degree >= 3)),
            "VX.A.T.NEND": int(np.count_nonzero(topo.degree == 1)),
            "VX.A.T.NCOMP": topo.n_components,
            "VX.A.T.NLOOP": n_loops,
            "VX.A.T.GENMAX": int(topo.generation.max()) if g.n_segments else np.nan,
            "VX.A.T.STRAHLER": int(topo.strahler.max()) if g.n_segments else np.nan,
            "VX.A.T.BIFRATIO": horton_bifurcation_ratio(topo.strahler, topo.children),
            "VX.A.T.DM_MEAN": float(np.sum(dm[ok] * lengths[ok]) / np.sum(lengths[ok])),
            "VX.A.T.SOAM": float(np.sum(soam[ok_s] * lengths[ok_s]) / np.sum(lengths[ok_s])),
        }
    for q in PERCENTILES:
        values[f"VX.A.T.SLEN_P{q}"] = float(np.percentile(lengths, q))
        values[f"VX.A.T.SRAD_P{q}"] = float(np.nanpercentile(seg_r, q))
    return {fid: Values.tree(v) for fid, v in values.items()}
