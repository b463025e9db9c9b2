"""Tree-scope features measured on the vessel mask (and optional region mask): mask volume,
box-counting fractal dimension and its fit quality, lacunarity, volume fraction and length
density inside a region.

The region mask must share the vessel mask's grid. Centerline length inside the region counts
each resampled centerline piece whose midpoint falls in a region voxel (nearest voxel).
"""

from __future__ import annotations

import numpy as np

from vasomics.features.centerline import Centerlines
from vasomics.features.context import Context, Values
from vasomics.features.fractal import fractal_dimension, lacunarity_curve

PROVIDES = ("VX.A.T.MASKVOL", "VX.A.T.FD", "VX.A.T.FD_R2", "VX.A.T.LAC", "VX.A.T.VFRAC",
            "VX.A.T.LDENS")


def in_region(points: np.ndarray, grid, region_array: np.ndarray) -> np.ndarray:
    """Whether each physical point (N × d, mm) falls in a voxel of ``region_array`` (nearest
    voxel of ``grid``'s index space; points outside the grid are outside)."""
    idx = np.rint(grid.physical_to_index(points)).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.asarray(region_array.shape)), axis=1)
    inside = np.zeros(len(points), bool)
    inside[ok] = region_array[tuple(idx[ok].T)]
    return inside


def length_inside(cl: Centerlines, grid, region_array: np.ndarray) -> float:
    """Centerline length (mm) of ``cl`` whose piece midpoints lie inside ``region_array``
    (on ``grid``)."""
    _, h, _, _, _ = cl.piece_values()
    last = np.zeros(len(cl.s), bool)
    last[cl.offsets[1:] - 1] = True
    a = np.flatnonzero(~last)
    return float(h[in_region(0.5 * (cl.points[a] + cl.points[a + 1]), grid, region_array)].sum())


def compute(ctx: Context) -> dict[str, Values]:
    out: dict[str, Values] = {}
    p = ctx.params
    if ctx.mask is not None:
        m, spacing = ctx.foreground or ctx.mask_array, ctx.mask.spacing
        out["VX.A.T.MASKVOL"] = Values.tree(np.count_nonzero(ctx.mask_array)
                                            * ctx.mask.voxel_volume)
        fd, r2 = fractal_dimension(m, spacing, p.fractal_min_box_mm, p.fractal_max_box_mm,
                                   p.fractal_scales_per_octave)
        out["VX.A.T.FD"], out["VX.A.T.FD_R2"] = Values.tree(fd), Values.tree(r2)
        sizes = np.geomspace(p.fractal_min_box_mm, max(p.fractal_min_box_mm,
                                                       p.fractal_max_box_mm),
                             p.lacunarity_boxes)
        window = ctx.region_array if ctx.region is not None else None  # else a ball (R_g)
        out["VX.A.T.LAC"] = Values.tree(float(np.mean(lacunarity_curve(m, spacing, sizes,
                                                                       region=window))))
    if ctx.region is not None:
        reg = ctx.region_array
        region_volume = np.count_nonzero(reg) * ctx.region.voxel_volume
        if ctx.mask is not None:
            inside = np.count_nonzero(ctx.mask_array & reg) * ctx.region.voxel_volume
            out["VX.A.T.VFRAC"] = Values.tree(inside / region_volume)
        inside = length_inside(ctx.centerlines, ctx.region, reg)
        out["VX.A.T.LDENS"] = Values.tree(inside / region_volume)
    return out
