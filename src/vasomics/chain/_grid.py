"""Grid helpers of the CT chain that do less full-volume work for the same result: bounding
boxes read from projections, distance maps computed only where they are compared (the
bounding box of a mask grown by the largest distance that matters), the distances on both
sides of a border in one transform, holes filled by one labelling of the background."""

from __future__ import annotations

import edt
import numpy as np
from scipy import ndimage


def bounding_box(mask: np.ndarray, pad=0) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every nonzero voxel of ``mask``, grown by ``pad``
    voxels on every side (one number, or one per axis) and clipped to the array; None for
    an empty mask. Read from projections, axis by axis in the part already found:
    ``ndimage.find_objects`` visits every foreground voxel (0.2 s for a dense organ at
    300 x 512 x 512, about 4 ms this way)."""
    sub = np.asarray(mask)
    lo, hi = [], []
    for axis in range(sub.ndim):
        rest = tuple(a for a in range(sub.ndim) if a != axis)
        hit = np.flatnonzero(sub.any(axis=rest) if rest else sub)
        if hit.size == 0:
            return None
        lo.append(int(hit[0]))
        hi.append(int(hit[-1]) + 1)
        sub = sub[(slice(None),) * axis + (slice(lo[-1], hi[-1]),)]
    pads = np.broadcast_to(np.asarray(pad, int), (sub.ndim,))
    return tuple(slice(max(0, a - int(q)), min(n, b + int(q))) for a, b, q, n in
                 zip(lo, hi, pads, np.shape(mask), strict=True))


def largest_label(lab: np.ndarray) -> int:
    """The label (not 0) holding the most voxels of the label image ``lab``."""
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return int(np.argmax(sizes))


def largest_component(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """The largest connected component of ``mask`` (``ndimage.label`` connectivity, face
    neighbours unless ``structure``); all False for an empty mask."""
    lab, n = ndimage.label(mask, structure)
    return lab == largest_label(lab) if n else np.zeros(np.shape(mask), bool)


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
    return grow_slices(bounding_box(mask), spacing, reach_mm, mask.shape)


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


def border_distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Euclidean distance (mm, float32) from every voxel to the nearest voxel on the other
    side of ``mask``'s border: ``edt(mask)`` on the mask, ``edt(~mask)`` off it (inf where
    the other side is absent; the array's faces are no border). One multi-label transform,
    equal to the two binary ones and about four times faster than both."""
    return edt.edt(np.asarray(mask, bool).view(np.uint8) + np.uint8(1),
                   anisotropy=tuple(float(v) for v in spacing), parallel=2)


def fill_holes(mask: np.ndarray, structure: np.ndarray | None = None) -> np.ndarray:
    """``ndimage.binary_fill_holes(mask, structure)`` by one labelling of the background:
    a background component is a hole unless it reaches a face of the array that the
    structure crosses (an in-plane structure: the in-plane faces only). The same voxels,
    about three times faster on an organ's box (scipy dilates until nothing changes)."""
    mask = np.asarray(mask, bool)
    structure = (ndimage.generate_binary_structure(mask.ndim, 1) if structure is None
                 else np.asarray(structure, bool))
    lab, n = ndimage.label(~mask, structure)
    if n == 0:
        return mask.copy()
    reaches_out = np.zeros(n + 1, bool)
    reaches_out[0] = True
    offsets = np.argwhere(structure) - np.array(structure.shape) // 2
    for axis in np.nonzero(np.any(offsets != 0, axis=0))[0]:
        for face in (0, -1):
            reaches_out[np.take(lab, face, axis=axis)] = True
    return mask | ~reaches_out[lab]


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
