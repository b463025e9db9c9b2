"""Mask-based, region and intensity features against known sets and patterns."""

import numpy as np
import pytest

from vasomics.features.extract import extract_features
from vasomics.features.fractal import fractal_dimension, lacunarity_curve
from vasomics.features.params import FeatureParams
from vasomics.image import Image
from vasomics.phantoms import straight_tube
from vasomics.phantoms.fractals import (
    bernoulli_field,
    bernoulli_lacunarity,
    menger_sponge,
    sierpinski_carpet,
)
from vasomics.vessel_graph import VesselGraph

_LINE = VesselGraph.from_polylines([np.array([[0.0, 0.0], [1.0, 0.0]])], [0.5])


def _fd(mask: Image, ids=("VX.A.T.FD", "VX.A.T.FD_R2")):
    """Tree-level FD and its R² with default (auto) parameters, through the extractor."""
    graph = _LINE if mask.ndim == 2 else VesselGraph.from_polylines(
        [np.array([[0.0, 0, 0], [1.0, 0, 0]])], [0.5])
    t = extract_features(graph, mask=mask)
    return tuple(t.value(fid) for fid in ids)


def test_fractal_dimension_known_sets():
    carpet, d_carpet = sierpinski_carpet(5)
    assert abs(_fd(carpet)[0] - d_carpet) < 0.05
    sponge, d_sponge = menger_sponge(4)
    assert abs(_fd(sponge)[0] - d_sponge) < 0.05
    square = np.zeros((260, 130), np.uint8)
    square[20:220, 15:115] = 1  # 200 x 200 mm at spacing (1, 2)
    fd, r2 = _fd(Image(square, spacing=(1.0, 2.0)), ids=("VX.A.T.FD", "VX.A.T.FD_R2"))
    assert fd == pytest.approx(2.0, abs=1e-9) and r2 == pytest.approx(1.0, abs=1e-9)
    cube = np.zeros((80, 80, 80), np.uint8)
    cube[5:69, 5:69, 5:69] = 1
    assert _fd(Image(cube))[0] == pytest.approx(3.0, abs=1e-9)
    line = np.zeros((300, 300), np.uint8)
    line[np.arange(10, 290), np.arange(10, 290)] = 1
    assert _fd(Image(line))[0] == pytest.approx(1.0, abs=0.05)
    # too narrow a range: undefined
    assert np.isnan(fractal_dimension(line, (1, 1), 10.0, 12.0, 2)[0])


def test_lacunarity_known_patterns():
    p = 0.3
    field = bernoulli_field((256, 256), p, seed=1)
    boxes = (1, 2, 4, 8, 24)  # 24 voxels: glides in steps of 3 (see fractal.glide_steps)
    lac = lacunarity_curve(field.array, field.spacing, np.array(boxes, float))
    expected = [bernoulli_lacunarity(p, b, 2) for b in boxes]
    assert np.allclose(lac, expected, rtol=0.02)
    field3 = bernoulli_field((48, 48, 48), p, seed=2)
    lac3 = lacunarity_curve(field3.array, field3.spacing, np.array([1.0, 2.0, 3.0]))
    assert np.allclose(lac3, [bernoulli_lacunarity(p, b, 3) for b in (1, 2, 3)], rtol=0.02)
    box = np.zeros((40, 40, 40), np.uint8)
    box[4:30, 6:33, 2:38] = 1
    t = extract_features(VesselGraph.from_polylines([np.array([[0.0, 0, 0], [1.0, 0, 0]])],
                                                    [0.5]), mask=Image(box))
    assert t.value("VX.A.T.LAC") == pytest.approx(1.0, abs=1e-12)


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
