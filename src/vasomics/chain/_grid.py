"""Distance maps computed only where they are compared: the bounding box of a mask grown
by the largest distance that matters."""

from __future__ import annotations

import edt
import numpy as np
from scipy import ndimage


def grow_slices(box: tuple[slice, ...], spacing, reach_mm: float, shape
                ) -> tuple[slice, ...]:
    """The bounding box ``box`` grown by ``reach_mm`` (and a voxel) on every side, clipped
    to ``shape``."""
    grow = np.ceil(reach_mm / np.asarray(spacing, float)).astype(int) + 1
    return tuple(slice(max(0, b.start - g), min(n, b.stop + g)) for b, g, n in
                 zip(box, grow, shape, strict=True))


def grown_box(mask: np.ndarray, spacing, reach_mm: float) -> tuple[slice, ...]:
    """Slices of ``mask``'s bounding box grown by ``reach_mm`` (and a voxel) on every side,
    clipped to its shape; ``mask`` must hold a voxel."""
    return grow_slices(ndimage.find_objects(mask.astype(np.uint8))[0], spacing, reach_mm,
                       mask.shape)


def distance_to(mask: np.ndarray, spacing, reach_mm: float) -> np.ndarray:
    """Euclidean distance (mm, float32) to the nearest ``mask`` voxel, exact wherever it is
    at most ``reach_mm``; farther voxels hold a distance above ``reach_mm`` (inf outside
    the :func:`grown_box`, the only part computed; everywhere inf for an empty mask)."""
    out = np.full(mask.shape, np.inf, np.float32)
    if not mask.any():
        return out
    box = grown_box(mask, spacing, reach_mm)
    out[box] = edt.edt(~mask[box], anisotropy=tuple(float(v) for v in spacing), parallel=2)
    return out


def ball_opening(mask: np.ndarray, spacing, radius_mm: float) -> np.ndarray:
    """The opening of ``mask`` by a ball of ``radius_mm`` (mm, ``spacing`` in z, y, x
    order): the voxels within ``radius_mm`` of a voxel lying more than ``radius_mm`` inside
    ``mask``. The array's faces are no background (``edt``): what touches them runs on."""
    core = np.zeros(mask.shape, bool)
    if mask.any():
        # in the bounding box and a voxel of background around it: the same depths
        box = grown_box(mask, spacing, 0.0)
        core[box] = edt.edt(mask[box], anisotropy=tuple(float(v) for v in spacing),
                            parallel=2) > radius_mm
    return distance_to(core, spacing, radius_mm) <= radius_mm
