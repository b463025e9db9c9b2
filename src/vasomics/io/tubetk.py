"""The coordinate frame of TubeTK gold-standard centerlines (``VascularNetwork*.vtp``).

TubeTK's healthy-MRA gold standard, as converted to VTP by the BrainGraph project
(``tubetk_brain_mra/centerlines/VascularNetworkFixed-00x.vtp`` in the shared data), stores
each point as the **voxel index of the matching label volume times its spacing**, in ITK axis
order ``(x, y, z)``: ``p = (i * sx, j * sy, k * sz)`` with ``(i, j, k)`` the ITK index (NumPy
index reversed), no origin offset, no direction flip, no half-voxel shift. Radii (point array
``Radius``) are in mm.

For ``labels-00x.nii.gz`` (origin 0, NIfTI affine ``diag(-sx, -sy, sz)``, i.e. RAS with x and
y flipped) that frame is exactly the ITK/SimpleITK LPS physical frame of the label volume, so
:func:`tubetk_to_physical` is the identity there; in nibabel's RAS world coordinates the same
points are ``(-x, -y, z)``. This was measured, not assumed: with this mapping 99.2 % (case 002)
and 100 % (case 003) of the gold-standard points fall inside the manual mask (nearest voxel),
while every flip of an axis or a half-voxel shift gives less (≤ 5 % for any flip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vasomics.image import Image
from vasomics.io.graphs import Centerlines, read_vtp_centerlines
from vasomics.vessel_graph import VesselGraph


def tubetk_to_physical(points: np.ndarray, reference: Image) -> np.ndarray:
    """Map TubeTK VTP points (index × spacing, ITK ``(x, y, z)`` order, mm) to physical LPS
    mm of ``reference`` (the label volume they were traced on, as read by
    :func:`vasomics.io.images.read_image`)."""
    points = np.atleast_2d(np.asarray(points, dtype=float))
    index_xyz = points / np.asarray(reference.spacing[::-1])
    return reference.index_to_physical(index_xyz[:, ::-1])


def read_tubetk_centerlines(path: str | Path, reference: Image) -> Centerlines:
    """Read a TubeTK gold-standard VTP and return its centerlines in the physical LPS frame
    of ``reference`` (radii in mm), ready to compare with graphs extracted from it."""
    return read_vtp_centerlines(path).transformed(lambda p: tubetk_to_physical(p, reference))


def tubetk_gold_standard_graph(path: str | Path, reference: Image,
                               extra_mm: float = 0.0) -> VesselGraph:
    """The gold standard as a :class:`VesselGraph` in ``reference``'s LPS frame: tubes that
    end inside another tube are joined to it (:meth:`Centerlines.joined`), so branches meet
    at bifurcation nodes. On the shared cases this joins 236 → 63 (case 002) and 319 → 108
    (case 003) connected pieces without creating any cycle, adding about 1.6 % length (the
    stretch from each child's first point to its parent's centerline)."""
    lines = read_tubetk_centerlines(path, reference).joined(extra_mm)
    return lines.to_graph(merge_tol_mm=1e-6, metadata={"source": str(path),
                                                       "frame": "LPS mm of reference"})
