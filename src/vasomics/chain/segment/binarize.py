"""From a vesselness response (or any score map) to a binary vessel mask.

Steps, in order (each optional, all in :class:`BinarizeParams`):

1. **Region**: voxels outside the region mask (field of view, organ) are never vessel.
2. **Intensity window**: voxels whose *raw image* value lies outside ``[lo, hi]`` are never
   vessel (e.g. contrast blood 150-700 HU in CTA).
3. **Threshold**: ``high`` on the response (absolute); else the quantile leaving
   ``top_fraction`` of the region above it (an expected vessel fraction); else Otsu's
   threshold of the response inside the region where it is > 0 (times ``otsu_factor``).
   Hysteresis keeps voxels above ``low_ratio x high`` connected to a voxel above ``high``
   (``low_ratio=1``: plain threshold).
4. **Components**: ``keep="all"``; ``"largest"``: the ``n_largest`` largest connected
   components (26/8-connectivity, cc3d); ``"seeds"``: components touching a seed point.
   Components smaller than ``min_size_mm`` (mm^3 in 3D, mm^2 in 2D) are dropped.
5. **Hole filling** per 2D slice along every axis (``fill_holes``), closing lumen gaps left by
   bright-centre responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from vasomics.errors import InputError
from vasomics.params import StageParams


class BinarizeParams(StageParams):
    """Parameters of :func:`binarize`."""

    high: float | None = None  # response threshold; None: top_fraction or Otsu (see below)
    top_fraction: float | None = Field(default=None, gt=0, lt=1)  # high = quantile keeping
    # this fraction of the region above it (when high is None); None: Otsu x otsu_factor
    otsu_factor: float = 1.0  # multiplies the Otsu threshold when high is None
    low_ratio: float = Field(default=0.5, gt=0, le=1)  # hysteresis low = low_ratio x high
    intensity_window: tuple[float, float] | None = None  # raw-intensity [lo, hi] allowed
    keep: Literal["all", "largest", "seeds"] = "all"  # which connected components to keep
    n_largest: int = Field(default=1, ge=1)  # components kept when keep == "largest"
    min_size_mm: float = 0.0  # drop components smaller than this (mm^3 3D, mm^2 2D)
    fill_holes: bool = False  # fill enclosed holes slice by slice along each axis


def _check_same(name: str, arr, shape) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != tuple(shape):
        raise InputError(f"{name} shape {arr.shape} does not match the image {tuple(shape)}")
    return arr


def otsu(values: np.ndarray) -> float:
    """Otsu threshold of a 1D sample (256 bins)."""
    from skimage.filters import threshold_otsu

    if values.size == 0 or float(values.min()) == float(values.max()):
        return float(values.max()) if values.size else 0.0
    return float(threshold_otsu(values))


def binarize(response: np.ndarray, params: BinarizeParams | None = None, *,
             spacing: Sequence[float] | None = None, image: np.ndarray | None = None,
             region: np.ndarray | None = None,
             seeds: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Boolean vessel mask from ``response`` (see module doc).

    ``image`` (raw intensities, same shape) is needed only for ``intensity_window``;
    ``seeds`` are voxel indices (NumPy order) for ``keep="seeds"``.
    """
    import cc3d

    p = params or BinarizeParams()
    response = np.asarray(response, np.float32)
    shape = response.shape
    spacing = tuple(spacing or (1.0,) * response.ndim)
    allowed = np.ones(shape, bool)
    if region is not None:
        allowed &= _check_same("region mask", region, shape).astype(bool)
    if p.intensity_window is not None:
        if image is None:
            raise InputError("intensity_window needs the raw image")
        img = _check_same("image", image, shape)
        lo, hi = p.intensity_window
        allowed &= (img >= lo) & (img <= hi)
    high = p.high
    if high is None and p.top_fraction is not None:
        high = float(np.quantile(response[allowed], 1 - p.top_fraction)) if allowed.any() else 0.0
    elif high is None:
        inside = response[allowed & (response > 0)]
        high = otsu(inside) * p.otsu_factor
    strong = (response >= high) & allowed
    weak = (response >= p.low_ratio * high) & allowed
    conn = 26 if response.ndim == 3 else 8
    if p.low_ratio < 1:
        labels = cc3d.connected_components(weak, connectivity=conn)
        keep_ids = np.unique(labels[strong])
        mask = np.isin(labels, keep_ids[keep_ids > 0])
    else:
        mask = strong
    labels, n = cc3d.connected_components(mask, connectivity=conn, return_N=True)
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(float) * float(np.prod(spacing))
        sizes[0] = 0
        ok = sizes >= p.min_size_mm
        if p.keep == "largest":
            order = np.argsort(sizes)[::-1][:p.n_largest]
            chosen = np.zeros_like(ok)
            chosen[order] = True
            ok &= chosen
        elif p.keep == "seeds":
            if not seeds:
                raise InputError("keep='seeds' needs at least one seed point")
            chosen = np.zeros_like(ok)
            for s in seeds:
                idx = tuple(int(round(v)) for v in s)
                if len(idx) != response.ndim or any(not 0 <= i < d for i, d in zip(idx, shape, strict=True)):
                    raise InputError(f"seed {tuple(s)} is outside the image {shape}")
                chosen[labels[idx]] = True
            chosen[0] = False
            ok &= chosen
        ok[0] = False
        mask = ok[labels]
    if p.fill_holes:
        mask = fill_holes_slices(mask)
        mask &= allowed | (response >= high)
    return mask


def fill_holes_slices(mask: np.ndarray) -> np.ndarray:
    """Fill holes in every 2D slice along every axis (2D: one pass)."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        return ndi.binary_fill_holes(mask)
    out = mask.copy()
    for axis in range(3):
        moved = np.moveaxis(out, axis, 0)
        for i in range(moved.shape[0]):
            if moved[i].any():
                moved[i] = ndi.binary_fill_holes(moved[i])
    return out
