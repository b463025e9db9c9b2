"""The coordinate frame of TubeTK gold-standard centerlines (``VascularNetwork*.vtp``).

TubeTK's healthy-MRA gold standard, as converted to VTP by the BrainGraph project
(``tubetk_brain_mra/centerlines/VascularNetworkFixed-00x.vtp`` in the shared data), stores
each point as the **voxel index of the matching label volume times its spacing**, in ITK axis
order ``(x, y, z)``: ``p = (i * sx, j * sy, k * sz)`` with ``(i, j, k)`` the ITK index (NumPy
index reversed), no origin offset, no direction flip, no half-voxel shift. Radii (point array
``Radius``) are **not** in mm: TubeTK computes and stores tube radii in index units of the x
spacing (S. Aylward, KitwareMedical/ITKTubeTK pull request #830: "Radius is in terms of
spacingX. It is not in terms of mm"), and the .tre → .vtp conversion scaled the positions only.
:func:`read_tubetk_centerlines` therefore multiplies them by the x spacing (0.513 mm for these
cases). Measured on cases 002/003, with the radii read so the manual masks' inscribed radius is
+0.27/+0.26 mm (about half a voxel) larger than the gold tubes, while read as mm it would be
0.47–0.58 × gold + 0.2–0.3 mm, a slope no unit-consistent relation explains.

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
    of ``reference``, radii converted from TubeTK's x-spacing units to mm, ready to compare
    with graphs extracted from it."""
    lines = read_vtp_centerlines(path).transformed(lambda p: tubetk_to_physical(p, reference))
    if lines.radii is not None:
        spacing_x = float(reference.spacing[-1])  # ITK x is the last NumPy axis
        lines = Centerlines(lines.polylines, [r * spacing_x for r in lines.radii],
                            lines.radius_name, dict(lines.cell_data))
    return lines


def tubetk_gold_standard_graph(path: str | Path, reference: Image,
                               extra_mm: float | None = None) -> VesselGraph:
    """The gold standard as a :class:`VesselGraph` in ``reference``'s LPS frame: tubes that
    end inside another tube are joined to it (:meth:`Centerlines.joined`), so branches meet
    at bifurcation nodes. ``extra_mm`` (default: the largest voxel spacing of ``reference``)
    is the tolerance beyond the parent's radius: TubeTK's ridge traversal places a child's
    first point at voxel resolution near the parent's wall. On the shared cases this joins
    236 → 59 (case 002) and 319 → 103 (case 003) connected pieces without creating any cycle
    (0.8 mm; without the tolerance 125 and 181 pieces stay apart)."""
    if extra_mm is None:
        extra_mm = float(max(reference.spacing))
    lines = read_tubetk_centerlines(path, reference).joined(extra_mm)
    return lines.to_graph(merge_tol_mm=1e-6, metadata={"source": str(path),
                                                       "frame": "LPS mm of reference"})
