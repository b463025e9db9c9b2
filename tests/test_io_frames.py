"""Coordinate frames on real data: images must land where other tools' centerlines say.

* ``vmtk_aorta_mra/aorta.mha`` is LPI (direction diag(-1, -1, 1)); VMTK's centerlines are
  stored in RAS. After ``read_image`` and ``ras_to_lps`` the centerline points must lie in
  the bright lumen and inside VMTK's own level-set segmentation.
* TubeTK gold-standard centerlines are index × spacing of the label volume.
"""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.image import Image
from vasomics.io.graphs import read_vtp_centerlines
from vasomics.io.images import read_image
from vasomics.io.tubetk import read_tubetk_centerlines, tubetk_to_physical


def _sample(image: Image, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-voxel values at physical points and a mask of points inside the grid."""
    idx = np.rint(image.physical_to_index(points)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(image.shape)), axis=1)
    idx = np.clip(idx, 0, np.array(image.shape) - 1)
    return image.array[tuple(idx.T)], inside


@pytest.fixture(scope="module")
def aorta(shared_data):
    folder = shared_data / "vmtk_aorta_mra"
    image = read_image(folder / "aorta.mha")
    levelset = read_image(folder / "aorta-final-levelset.mha")
    lines = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS")
    return image, levelset, lines


def test_aorta_is_read_as_lpi(aorta):
    image, levelset, _ = aorta
    assert np.allclose(image.direction, np.diag([-1.0, -1.0, 1.0]))
    assert image.shape == (34, 393, 157)
    assert np.allclose(image.spacing, (1.50009, 0.878906, 0.878906), rtol=1e-5)
    assert levelset.same_geometry(image)


def test_vmtk_centerlines_fall_inside_the_aorta(aorta):
    image, levelset, lines = aorta
    points = lines.points
    values, inside = _sample(image, points)
    assert inside.all()
    # bright lumen: every centerline point is brighter than 95 % of the volume
    bright = np.percentile(image.array, 95)
    frac_bright = np.mean(values > bright)
    assert frac_bright >= 0.99, frac_bright
    # VMTK's level set (vessel where < 0) where it is defined (not clamped at its maximum)
    ls_values, _ = _sample(levelset, points)
    covered = ls_values < levelset.array.max() - 1e-3
    assert covered.mean() > 0.5
    frac_inside = np.mean(ls_values[covered] < 0)
    assert frac_inside >= 0.99, frac_inside
    assert lines.radius_name == "MaximumInscribedSphereRadius"
    assert np.all(lines.point_radius > 2.0)


def test_a_reader_ignoring_direction_misplaces_the_aorta(aorta):
    image, _, lines = aorta
    naive = Image(image.array, image.spacing, image.origin)  # direction dropped
    _, inside = _sample(naive, lines.points)
    assert inside.mean() == 0.0
    # and reading the VTP as if it were LPS misplaces it too
    _, inside_lps = _sample(image, lines.points * [-1, -1, 1])
    assert inside_lps.mean() == 0.0


@pytest.mark.parametrize("case", ["002", "003"])
def test_tubetk_gold_standard_inside_manual_mask(shared_data, case):
    folder = shared_data / "tubetk_brain_mra"
    labels = read_image(folder / "labels" / f"labels-{case}.nii.gz")
    lines = read_tubetk_centerlines(folder / "centerlines" / f"VascularNetworkFixed-{case}.vtp",
                                    labels)
    assert len(lines.polylines) > 200 and lines.radius_name == "Radius"
    values, inside = _sample(labels, lines.points)
    frac = np.mean(inside & (values > 0))
    assert frac >= 0.95, frac
    # the mapping is measured, not a guess: flipping any axis loses the vessels
    raw = read_vtp_centerlines(folder / "centerlines" / f"VascularNetworkFixed-{case}.vtp")
    extent = (np.array(labels.shape[::-1]) - 1) * np.array(labels.spacing[::-1])
    for axis in range(3):
        flipped = raw.points.copy()
        flipped[:, axis] = extent[axis] - flipped[:, axis]
        v, ins = _sample(labels, tubetk_to_physical(flipped, labels))
        assert np.mean(ins & (v > 0)) < 0.2


def test_tubetk_mapping_follows_reference_geometry():
    """With a non-trivial origin and direction the index × spacing frame still maps to
    the voxel it names."""
    ref = Image(np.zeros((4, 5, 6)), spacing=(2.0, 0.5, 0.25), origin=(10.0, -3.0, 7.0),
                direction=np.diag([-1.0, 1.0, -1.0]))
    index = np.array([[1, 2, 3], [3, 4, 5]])  # NumPy (z, y, x)
    tubetk = index[:, ::-1] * np.array(ref.spacing[::-1])
    np.testing.assert_allclose(ref.physical_to_index(tubetk_to_physical(tubetk, ref)), index,
                               atol=1e-9)


def test_vmtk_surface_is_the_zero_level_set(aorta, shared_data):
    """VMTK's surface (marching cubes of its level set, also stored in RAS) lies on the
    zero level of aorta-final-levelset.mha once both are in the same LPS frame."""
    from scipy import ndimage

    from vasomics.io.graphs import ras_to_lps
    from vasomics.io.vtk_xml import read_vtp

    _, levelset, _ = aorta
    surface = read_vtp(shared_data / "vmtk_aorta_mra/aorta-surface.vtp").points
    index = levelset.physical_to_index(ras_to_lps(surface))
    phi = ndimage.map_coordinates(levelset.array, index.T, order=1)
    assert np.percentile(np.abs(phi), 99) < 0.01
    # a direction-ignoring reader would sample far from the zero level
    naive = Image(levelset.array, levelset.spacing, levelset.origin)
    index = naive.physical_to_index(ras_to_lps(surface))
    assert np.all(np.any((index < 0) | (index > np.array(levelset.shape) - 1), axis=1))
