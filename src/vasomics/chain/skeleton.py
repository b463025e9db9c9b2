"""Skeletonization: binary vessel mask (2D or 3D, any spacing) → centerline voxels with radii.

Method (chosen by measurement, see ``benchmarks/bench_mask_to_graph.py``): topology-preserving
directional thinning (Lee et al. 1994, the algorithm of ``skimage.morphology.skeletonize``)
run only over the foreground with an exact local simple-point test (details in
:mod:`vasomics.chain._thinning`). Its cost scales with the number of foreground voxels, not
with the grid, so a sparse 512³ tree thins in well under a second, where whole-volume
thinning (scikit-image) takes several seconds and TEASAR (kimimaro) tens of seconds; unlike
TEASAR it keeps loops. No distance transform of the volume is computed: radii are needed
only on the centerline and are measured there by local search.

Radius at a centerline voxel: the Euclidean distance (mm, anisotropic spacing honoured) from
its centre to the nearest background voxel centre, outside the grid counting as background -
the foreground's exact distance transform there. It drives spur pruning; the radii of the
final graph are measured again at the smoothed, sub-voxel centerline points
(:mod:`vasomics.chain.graph`), because a thinned voxel can sit half a voxel off the axis, which
shortens this distance by up to that much (mean error −0.1 to −0.3 voxel on digitized discs,
``benchmarks/bench_radius_definition.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from vasomics.chain import _thinning as k
from vasomics.image import Image
from vasomics.masks import binary_mask
from vasomics.params import StageParams

log = logging.getLogger(__name__)


class SkeletonParams(StageParams):
    """Parameters of the skeletonization stage."""

    fill_cavities: bool = Field(
        False, description="Fill background pockets enclosed by the mask (holes in a "
        "segmented lumen) before thinning. Thinning preserves topology, so a cavity otherwise "
        "leaves a closed surface, which becomes one node. Off by default: it costs a pass "
        "over the mask's bounding box (about 1 s for 512^3).")


@dataclass(frozen=True)
class Skeleton:
    """Centerline voxels of a mask and their adjacency.

    Attributes
    ----------
    indices : (N, ndim) int64
        Voxel indices (NumPy order) of the centerline voxels, sorted in C order.
    radius : (N,) float
        Lumen radius in mm at each centerline voxel (definition in the module docstring).
    adj_offsets, adj : int64
        26-adjacency (8 in 2D) between centerline voxels in CSR form: the neighbours of
        voxel ``i`` are ``adj[adj_offsets[i]:adj_offsets[i + 1]]``.
    mask : Image
        The (validated, boolean) mask the skeleton was computed from.
    """

    indices: np.ndarray
    radius: np.ndarray
    adj_offsets: np.ndarray
    adj: np.ndarray
    mask: Image

    @property
    def n_voxels(self) -> int:
        return len(self.indices)

    def degree(self) -> np.ndarray:
        """Number of centerline neighbours of each centerline voxel."""
        return np.diff(self.adj_offsets)


def _padded_box(vol3, nz, ys, xs, lo, hi, plane, params, ndim):
    """``uint8`` copy of the foreground's bounding box with one voxel of background on every
    side (cavities filled on request), the flat indices of its foreground voxels and the index
    shift back to the grid."""
    crop = vol3[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1]
    if params.fill_cavities:
        from scipy.ndimage import binary_fill_holes

        crop = binary_fill_holes(crop) if ndim == 3 else binary_fill_holes(crop[0])[None]
    vol = np.zeros(tuple(int(n) + 2 for n in crop.shape), np.uint8)
    vol[1:-1, 1:-1, 1:-1] = crop.view(np.uint8)
    if params.fill_cavities:
        flat = np.flatnonzero(vol).astype(np.int64)
    else:  # the same indices, from the foreground list instead of a pass over the box
        flat = ((nz // plane - lo[0] + 1) * (vol.shape[1] * vol.shape[2])
                + (ys - lo[1] + 1) * vol.shape[2] + (xs - lo[2] + 1)).astype(np.int64)
    return vol, flat, lo - 1


def skeletonize(mask: Image, params: SkeletonParams | None = None, *, path=None) -> Skeleton:
    """Thin a binary vessel mask to one-voxel-wide centerlines (see the module docstring).

    ``mask`` is validated by :func:`vasomics.masks.binary_mask` (errors name ``path``).
    Topology (components, loops, cavities) is preserved; isolated single voxels remain as
    centerline voxels without neighbours.
    """
    params = params or SkeletonParams()
    fg = binary_mask(mask, path)
    if mask.array.dtype == bool:
        # NumPy bools from some sources (PIL 1-bit images) store True as byte 255; the
        # compiled kernels read bytes, so make them 0/1
        fg = np.not_equal(fg.view(np.uint8), 0)
    ndim = fg.ndim
    vol3 = fg if ndim == 3 else fg[None]
    nz = np.flatnonzero(vol3)
    plane, row = vol3.shape[1] * vol3.shape[2], vol3.shape[2]
    ys, xs = (nz // row) % vol3.shape[1], nz % row
    lo = np.array([nz[0] // plane, ys.min(), xs.min()])
    hi = np.array([nz[-1] // plane, ys.max(), xs.max()])
    n_foreground = len(nz)
    in_place = (ndim == 3 and not params.fill_cavities and vol3.flags.c_contiguous
                and np.all(lo > 0) and np.all(hi < np.array(vol3.shape) - 1))
    if in_place:
        # ``vol3`` is our own copy (made by binary_mask or above) and background surrounds the
        # foreground: thin it in place, then put the foreground back
        vol, flat, shift = vol3.view(np.uint8), nz.astype(np.int64), np.zeros(3, np.int64)
    else:
        vol, flat, shift = _padded_box(vol3, nz, ys, xs, lo, hi, plane, params, ndim)
        if params.fill_cavities:
            vol3 = np.zeros_like(vol3)
            vol3[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = \
                vol[1:-1, 1:-1, 1:-1].view(bool)
            fg = vol3 if ndim == 3 else vol3[0]
    del nz, ys, xs
    offsets = k.cube_offsets(vol.shape)
    flat_vol = vol.reshape(-1)
    directions = k.SIX if ndim == 3 else k.SIX[2:]
    border = k.border_voxels(flat_vol, offsets, flat)
    sweeps = k.thin(flat_vol, offsets, border, directions)
    skel_flat = flat[(flat_vol[flat] & 1) != 0]  # survivors, still sorted
    adj_offsets, adj = k.adjacency(flat_vol, offsets, skel_flat)
    skel_idx = np.column_stack(np.unravel_index(skel_flat, vol.shape)) + shift
    if in_place:
        flat_vol[flat] = 1  # restore the mask (thinning only cleared foreground voxels)
    del vol, flat_vol, flat, border
    spacing = np.asarray(mask.spacing, float)
    if ndim == 2:
        spacing = np.concatenate([[1e9], spacing])  # the slab axis never holds the nearest bg
    radius = k.radius_at(vol3, skel_idx.astype(np.int64), spacing)
    log.debug("thinning: %d foreground voxels -> %d centerline voxels in %d sweeps",
              n_foreground, len(skel_idx), sweeps)
    if ndim == 2:
        skel_idx = skel_idx[:, 1:]
    return Skeleton(indices=skel_idx.astype(np.int64), radius=radius, adj_offsets=adj_offsets,
                    adj=adj, mask=mask.with_array(fg))
