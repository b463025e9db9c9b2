"""Intensity features (need an intensity image): mean image value along each segment's
centerline and inside the vessel mask. Values are in the image's own units (HU for CT,
arbitrary units otherwise), so they are comparable only between scans of one protocol.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from vasomics.features.context import Context, Values

PROVIDES = ("VX.C.S.INT_MEAN", "VX.C.T.INT_MEAN")


def centerline_intensity(ctx: Context) -> np.ndarray:
    """Image value at every resampled centerline point (linear interpolation; NaN outside)."""
    image = ctx.image
    idx = image.physical_to_index(ctx.centerlines.points)
    data = np.asarray(image.array, dtype=np.float32)
    return map_coordinates(data, idx.T, order=1, mode="constant", cval=np.nan)


def compute(ctx: Context) -> dict[str, Values]:
    if ctx.image is None:
        return {}
    values = centerline_intensity(ctx)
    out = {"VX.C.S.INT_MEAN": ctx.segment_values(
        ctx.segment_mean(values, where=np.isfinite(values)))}
    if ctx.mask is not None:
        out["VX.C.T.INT_MEAN"] = Values.tree(float(np.mean(ctx.image.array[ctx.mask_array])))
    return out
