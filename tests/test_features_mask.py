"""Mask-based, region and intensity features against known sets and patterns."""

import numpy as np
import pytest

from vasomics.features.extract import extract_features
from vasomics.features.fractal import (
    Foreground,
    default_box_range,
    fractal_dimension,
    mean_thickness,
    radius_of_gyration,
    surface_measure,
)
from vasomics.features.params import FeatureParams, resolve_params
from vasomics.image import Image
from vasomics.phantoms import binary_tree, random_rotation, rotation_matrix, straight_tube
from vasomics.phantoms.fractals import cantor_dust, menger_sponge, sierpinski_carpet
from vasomics.vessel_graph import VesselGraph

_LINE = VesselGraph.from_polylines([np.array([[0.0, 0.0], [1.0, 0.0]])], [0.5])


def _fd(mask: Image, ids=("VX.A.T.FD", "VX.A.T.FD_R2")):
    """Tree-level FD and its R² with default (auto) parameters, through the extractor."""
    graph = _LINE if mask.ndim == 2 else VesselGraph.from_polylines(
        [np.array([[0.0, 0, 0], [1.0, 0, 0]])], [0.5])
    t = extract_features(graph, mask=mask)
    return tuple(t.value(fid) for fid in ids)


def test_fractal_dimension_known_sets():
    """Self-similar sets, axis-aligned and rotated (sampled at voxel centres with cells of
    several voxels), 2D and 3D, some on anisotropic grids: the auto range (mean thickness to
    three octaves above, see fractal.default_box_range) measures the analytic dimension
    within 0.05 (measured: carpets -0.025 and -0.029, dusts -0.032..+0.010)."""
    carpet, dimension = sierpinski_carpet(6)
    # through the extractor, auto range resolved from the mask
    fd, r2 = _fd(carpet, ids=("VX.A.T.FD", "VX.A.T.FD_R2"))
    assert abs(fd - dimension) < 0.05 and r2 > 0.99
    cases = [
        sierpinski_carpet(6, (0.5, 0.7), rotation=rotation_matrix(60, 2), cell_voxels=1.5),
        cantor_dust(6, (1.0, 1.0), rotation=rotation_matrix(33, 2), cell_voxels=3),
        cantor_dust(5),
        cantor_dust(4, rotation=random_rotation(2), cell_voxels=3),
        cantor_dust(4, (0.5, 0.6, 0.7), rotation=random_rotation(4), cell_voxels=2.5),
    ]
    for mask, dimension in cases:
        fg = Foreground.of(mask.array)
        p = resolve_params(FeatureParams(), mask=mask, foreground=fg)
        fd, r2 = fractal_dimension(fg, mask.spacing, p.fractal_min_box_mm, p.fractal_max_box_mm)
        assert abs(fd - dimension) < 0.05, (mask.shape, fd, dimension)
        assert r2 > 0.99
    # a diagonal 1-pixel line (pixels touching at corners): dimension 1 from 4 pixels up; at
    # 2 pixels its own thickness still shows (1.065 over the auto range 2 to 16 pixels)
    line = np.zeros((300, 300), np.uint8)
    line[np.arange(10, 290), np.arange(10, 290)] = 1
    assert fractal_dimension(line, (1.0, 1.0), 4.0, 32.0)[0] == pytest.approx(1.0, abs=0.05)
    # solid bodies: no scale between their thickness and half their radius of gyration,
    # so the auto range is empty and the dimension undefined ...
    square = np.zeros((420, 210), np.uint8)
    square[10:410, 5:205] = 1  # 400 x 400 mm at spacing (1, 2)
    square_img = Image(square, spacing=(1.0, 2.0))
    assert np.isnan(_fd(square_img)[0])
    # ... while boxes well below their side see the plane and the volume; the grid-offset
    # mean counts (S/ε + 1)^d boxes, so the slope is d (1 - ε/S) to first order
    fd, r2 = fractal_dimension(square, (1.0, 2.0), 2.0, 6.0)
    assert fd == pytest.approx(2.0, abs=0.03) and r2 > 0.999
    cube = np.zeros((130, 130, 130), np.uint8)
    cube[5:125, 5:125, 5:125] = 1
    lo, hi = default_box_range(cube, (1.0, 1.0, 1.0))
    assert hi < lo  # thickness 4V/A = 80 voxels, half the radius of gyration 52 voxels
    assert fractal_dimension(cube, (1.0, 1.0, 1.0), 1.0, 2.0, 2)[0] == pytest.approx(3.0,
                                                                                   abs=0.05)
    # too narrow a range: undefined
    assert np.isnan(fractal_dimension(line, (1, 1), 10.0, 12.0, 2)[0])


def test_fractal_dimension_rotation_and_spacing_invariance():
    """A 63-segment binary tree turned by six random rotations and sampled at two spacings
    (and one anisotropic grid): the auto box range, resolved as the extractor does, and the
    dimension agree within 3 % (max/min - 1; measured 0.8 %; a single grid anchored at the
    bounding box corner spread 13 %)."""
    fds, ranges = [], []
    for spacing, seeds in (((0.5, 0.5, 0.5), (None, 1, 2, 3, 4, 5, 6)),
                           ((0.35, 0.35, 0.35), (None, 3)), ((0.4, 0.3, 0.35), (5,))):
        for seed in seeds:
            mask, _ = binary_tree(6, spacing=spacing,
                                  rotation=None if seed is None else random_rotation(seed))
            fg = Foreground.of(mask.array)
            p = resolve_params(FeatureParams(), mask=mask, foreground=fg)
            ranges.append((p.fractal_min_box_mm, p.fractal_max_box_mm))
            fds.append(fractal_dimension(fg, mask.spacing, p.fractal_min_box_mm,
                                         p.fractal_max_box_mm)[0])
    fds, ranges = np.array(fds), np.array(ranges)
    assert fds.max() / fds.min() - 1 < 0.03, fds
    assert np.all(ranges.max(axis=0) / ranges.min(axis=0) - 1 < 0.03), ranges
    assert 1.4 < fds.mean() < 1.7  # a branching line set between its diameters and its size


def test_box_range_geometry():
    """The auto range's inputs against analytic values: boundary measure (Crofton), mean
    thickness (tube diameter) and radius of gyration, at several orientations."""
    for seed, spacing in ((None, (0.5, 0.5, 0.5)), (1, (0.5, 0.5, 0.5)), (2, (0.3, 0.4, 0.5))):
        mask, _ = straight_tube(40.0, 3.0, spacing,
                                rotation=None if seed is None else random_rotation(seed))
        area = 2 * np.pi * 3.0 * 40.0 + 2 * np.pi * 9.0
        assert surface_measure(mask.array, spacing) == pytest.approx(area, rel=0.05)
        # 4V/A of a capped cylinder: 4 π r² L / (2 π r L + 2 π r²)
        assert mean_thickness(mask.array, spacing) == pytest.approx(
            4 * 9.0 * 40.0 / (2 * 3.0 * 40.0 + 2 * 9.0), rel=0.05)
        # a solid cylinder: R_g² = r²/2 + L²/12
        assert radius_of_gyration(mask.array, spacing) == pytest.approx(
            (4.5 + 1600 / 12) ** 0.5, rel=0.02)
    yy, xx = np.mgrid[:200, :300]
    disc = ((yy - 100) ** 2 + (xx - 150) ** 2 < 80 ** 2).astype(np.uint8)
    assert surface_measure(disc, (1.0, 1.0)) == pytest.approx(2 * np.pi * 80, rel=0.02)
    assert radius_of_gyration(disc, (1.0, 1.0)) == pytest.approx(80 / 2 ** 0.5, rel=0.01)


def test_mask_region_features():
    mask, truth = straight_tube(length_mm=30.0, radius_mm=3.0, spacing=(0.5, 0.5, 0.5))
    fg = mask.array != 0
    # region: the half-space of voxels on the low-x side of the tube's middle
    idx = np.indices(mask.shape)
    centre = mask.physical_to_index(truth.graph.points.mean(axis=0, keepdims=True))[0]
    axis_dir = truth.graph.points[-1] - truth.graph.points[0]
    phys = mask.index_to_physical(np.column_stack([i.ravel() for i in idx]))
    side = ((phys - mask.index_to_physical(centre[None])[0]) @ axis_dir < 0).reshape(mask.shape)
    region = mask.with_array(side.astype(np.uint8))
    t = extract_features(truth.graph, mask=mask, region=region)
    assert t.value("VX.A.T.MASKVOL") == fg.sum() * 0.125
    assert t.value("VX.A.T.VFRAC") == pytest.approx((fg & side).sum() / side.sum(), rel=1e-12)
    region_volume = side.sum() * 0.125
    assert t.value("VX.A.T.LDENS") == pytest.approx(15.0 / region_volume, rel=0.02)
    assert t.frame.loc[t.frame.feature_id == "VX.A.T.LDENS", "unit"].item() == "mm^-2"


def test_intensity_features():
    mask, truth = straight_tube(length_mm=20.0, radius_mm=2.0, spacing=(0.5, 0.5, 0.5))
    idx = np.indices(mask.shape).reshape(3, -1).T
    x = mask.index_to_physical(idx)[:, 0].reshape(mask.shape)
    image = mask.with_array((3.0 * x + 7.0).astype(np.float32), modality="CT")
    t = extract_features(truth.graph, mask=mask, image=image,
                         params=FeatureParams(sampling_step_mm=0.25))
    pts = truth.graph.points
    assert t.value("VX.C.S.INT_MEAN", "segment:0") == pytest.approx(
        3.0 * pts[:, 0].mean() + 7.0, rel=1e-5, abs=1e-4)
    assert t.value("VX.C.T.INT_MEAN") == pytest.approx(
        float(image.array[mask.array != 0].mean()), rel=1e-6)


@pytest.mark.xfail(strict=True, reason=(
    "issue #2 target (known sets within 0.05) not met on small grid-aligned sets whose copies "
    "touch: the grid-offset mean count that makes vessel trees rotation-invariant reads a "
    "level-4 Menger sponge about 0.19 low (level 5: -0.075, too large for the suite); the "
    "minimum over offsets reads it -0.075 and spreads the tree 3.5-5.3 % (fractal.py doc)"))
def test_fractal_dimension_aligned_menger_sponge():
    mask, dimension = menger_sponge(4)
    fg = Foreground.of(mask.array)
    p = resolve_params(FeatureParams(), mask=mask, foreground=fg)
    fd, _ = fractal_dimension(fg, mask.spacing, p.fractal_min_box_mm, p.fractal_max_box_mm)
    assert abs(fd - dimension) < 0.05, (fd, dimension)
