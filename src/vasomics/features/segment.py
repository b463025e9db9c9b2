"""Segment-scope features: length, chord, tortuosity (Bullitt DM, ICM, SOAM), curvature,
torsion, radii, taper, volume, Poiseuille resistance and the segment's place in the tree.

Every function takes a :class:`~vasomics.features.context.Context` and returns per-segment
arrays; :func:`compute` maps them to catalogue ids.
"""

from __future__ import annotations

import numpy as np

from vasomics.features.centerline import bending_orientation, sign_changes
from vasomics.features.context import Context, Values

PROVIDES = (
    "VX.A.S.LEN", "VX.A.S.CHORD", "VX.A.S.DM", "VX.A.S.NINFL", "VX.A.S.ICM", "VX.A.S.SOAM",
    "VX.A.S.CURV_MEAN", "VX.A.S.CURV_RMS", "VX.A.S.TORS_MEAN", "VX.A.S.RMEAN", "VX.A.S.RMIN",
    "VX.A.S.RMAX", "VX.A.S.TAPER", "VX.A.S.VOL", "VX.A.S.GEN", "VX.A.S.STRAHLER",
    "VX.M.S.RES", "VX.P.S.STENOSIS", "VX.P.S.DILATION",
)


def chord(ctx: Context) -> np.ndarray:
    """Straight distance (mm) between the segment's end points."""
    g = ctx.graph
    return np.linalg.norm(g.points[g.point_offsets[1:] - 1] - g.points[g.point_offsets[:-1]],
                          axis=1)


def distance_metric(ctx: Context) -> np.ndarray:
    """Path length / chord; NaN where the chord is shorter than 1e-9 of the length (loops)."""
    length, c = ctx.lengths, chord(ctx)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 1e-9 * np.maximum(length, 1e-300), length / c, np.nan)


def segment_quantile(values: np.ndarray, segment: np.ndarray, n_segments: int,
                     q: float) -> np.ndarray:
    """Per-segment ``q`` quantile (nearest rank) of per-point ``values`` (NaN if empty)."""
    order = np.lexsort((values, segment))
    counts = np.bincount(segment, minlength=n_segments)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = starts + np.floor(q * np.maximum(counts - 1, 0)).astype(np.int64)
    out = np.full(n_segments, np.nan)
    has = counts > 0
    out[has] = values[order][rank[has]]
    return out


def inflection_count(ctx: Context) -> np.ndarray:
    """Sign changes of the bending side (binormal in 3D, signed curvature in 2D) between
    consecutive inflection-test points of each segment: points whose curvature exceeds both
    the straightness threshold and ``inflection_relative_threshold`` × the segment's
    90th-percentile curvature. Stretches in between are skipped, so a side that turns
    gradually through a noisy, nearly straight stretch (3D centerlines from masks) counts
    once. Lobes only the graph's end extrapolation draws (:attr:`Context.drawn_ends`) are
    dropped, then lobes bending over less than half the derivative window of arc (their
    bending arc: minimum-arc hysteresis, :func:`~vasomics.features.centerline.sign_changes`).
    0 without such points."""
    cl = ctx.centerlines
    p90 = segment_quantile(ctx.curvature, cl.segment, cl.n_segments, 0.9)
    test = ctx.curved & (ctx.curvature > ctx.params.inflection_relative_threshold
                         * p90[cl.segment])
    side = bending_orientation(ctx.derivatives)
    return sign_changes(cl, side, test, 0.5 * ctx.params.derivative_window_mm,
                        ctx.drawn_ends)


def sum_of_angles(ctx: Context) -> np.ndarray:
    """Continuous limit of Bullitt's SOAM: ``∫ sqrt(κ² + τ²) ds / L`` (rad/mm) with the
    window-averaged torsion; τ counts as 0 where undefined (straight points, 2D). Averaged
    over the measured points (:attr:`~vasomics.features.context.Context.shape_points`)."""
    tau = np.nan_to_num(ctx.torsion_smoothed, nan=0.0)
    total = np.sqrt(ctx.curvature ** 2 + tau ** 2)
    return ctx.segment_mean(total, where=ctx.shape_points)


def taper(ctx: Context) -> np.ndarray:
    """Minus the least-squares slope of radius against arc length from the proximal to the
    distal node (mm/mm): positive when the vessel narrows distally."""
    cl, w = ctx.centerlines, ctx.weights
    total = cl.segment_sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_mean = cl.segment_sum(w * cl.s) / total
        r_mean = cl.segment_sum(w * cl.radius) / total
        ds = cl.s - s_mean[cl.segment]
        slope = cl.segment_sum(w * ds * (cl.radius - r_mean[cl.segment])) / cl.segment_sum(
            w * ds * ds)
    slope = np.where(np.isfinite(slope), slope, np.nan)
    topo = ctx.topology
    reversed_ = topo.proximal != ctx.graph.segment_start
    return np.where(reversed_, slope, -slope)


def frustum_volume(ctx: Context) -> np.ndarray:
    """Sum of truncated-cone volumes ``π h (r₁² + r₁r₂ + r₂²)/3`` along the centerline (mm³)."""
    seg, h, r1, r2, _ = ctx.centerlines.piece_values()
    vol = np.pi * h * (r1 * r1 + r1 * r2 + r2 * r2) / 3.0
    return np.bincount(seg, weights=vol, minlength=ctx.graph.n_segments)


def poiseuille_resistance(ctx: Context) -> np.ndarray:
    """Hydraulic resistance per unit viscosity ``(8/π) ∫ r⁻⁴ ds`` (mm⁻³)."""
    r = ctx.centerlines.radius
    with np.errstate(divide="ignore"):
        inv = np.where(r > 0, r ** -4.0, np.inf)
    return (8.0 / np.pi) * ctx.centerlines.segment_sum(ctx.weights * inv)


def radius_extremes_vs_median(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: ``1 − r_min / r_med`` (stenosis) and ``r_max / r_med − 1`` (dilation),
    with ``r_med`` the length-weighted median radius of the segment's resampled centerline
    and ``r_min``/``r_max`` its extremes."""
    cl = ctx.centerlines
    r = cl.radius
    order = np.lexsort((r, cl.segment))
    w = ctx.weights[order]
    seg = cl.segment[order]
    cum = np.cumsum(w)
    start = np.concatenate([[0.0], cum])[cl.offsets[:-1]]
    total = cl.segment_sum(ctx.weights)
    # first sorted point of each segment whose cumulative weight reaches half the total
    key = cum - 0.5 * w - start[seg] - 0.5 * total[seg]
    idx = np.flatnonzero(key >= 0)
    first = np.full(cl.n_segments, len(r))
    np.minimum.at(first, seg[idx], idx)
    found = (first < len(r)) & (total > 0)
    med = np.where(found, r[order][np.minimum(first, len(r) - 1)], np.nan)
    lo = np.minimum.reduceat(r, cl.offsets[:-1])
    hi = np.maximum.reduceat(r, cl.offsets[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - lo / med, hi / med - 1.0


def compute(ctx: Context) -> dict[str, Values]:
    g = ctx.graph
    curv = ctx.curvature
    radius_lo = np.minimum.reduceat(g.radius, g.point_offsets[:-1])
    radius_hi = np.maximum.reduceat(g.radius, g.point_offsets[:-1])
    dm = distance_metric(ctx)
    n_infl = inflection_count(ctx)
    tau = ctx.torsion_smoothed
    shape = ctx.shape_points
    tors = ctx.segment_mean(np.abs(tau), where=np.isfinite(tau) & shape)
    values = {
        "VX.A.S.LEN": ctx.lengths,
        "VX.A.S.CHORD": chord(ctx),
        "VX.A.S.DM": dm,
        "VX.A.S.NINFL": n_infl,
        "VX.A.S.ICM": (n_infl + 1.0) * dm,
        "VX.A.S.SOAM": sum_of_angles(ctx),
        "VX.A.S.CURV_MEAN": ctx.segment_mean(curv, where=shape),
        "VX.A.S.CURV_RMS": np.sqrt(ctx.segment_mean(curv ** 2, where=shape)),
        "VX.A.S.TORS_MEAN": tors,
        "VX.A.S.RMEAN": ctx.segment_mean(ctx.centerlines.radius),
        "VX.A.S.RMIN": radius_lo,
        "VX.A.S.RMAX": radius_hi,
        "VX.A.S.TAPER": taper(ctx),
        "VX.A.S.VOL": frustum_volume(ctx),
        "VX.A.S.GEN": ctx.topology.generation,
        "VX.A.S.STRAHLER": ctx.topology.strahler,
        "VX.M.S.RES": poiseuille_resistance(ctx),
    }
    values["VX.P.S.STENOSIS"], values["VX.P.S.DILATION"] = radius_extremes_vs_median(ctx)
    return {fid: ctx.segment_values(v) for fid, v in values.items()}
