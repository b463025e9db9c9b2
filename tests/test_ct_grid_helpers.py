"""Grid helpers of the CT chain that trade full-volume work for bounding boxes: they must give
what the full-volume computation gives."""

import edt
import numpy as np
import pytest
from scipy import ndimage

from vasomics.chain._grid import (
    ball_opening,
    border_distance,
    bounding_box,
    distance_to,
    fill_holes,
    largest_component,
)
from vasomics.chain.localize import _expand


@pytest.mark.parametrize("seed", range(40))
def test_bounding_box_is_find_objects_box_padded_and_clipped(seed):
    """1-3 axes, empty to dense masks, a pad per axis: the box ``ndimage.find_objects``
    gives, grown and clipped to the array; None for an empty mask."""
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(1, 13, ndim))
    mask = rng.random(shape) < [0.0, 0.01, 0.1, 0.6][seed % 4]
    pad = rng.integers(0, 4, ndim)
    boxes = ndimage.find_objects(mask.astype(np.uint8))
    if not boxes:
        assert bounding_box(mask, pad) is None
        return
    ref = tuple(slice(max(0, b.start - int(q)), min(n, b.stop + int(q))) for b, q, n in
                zip(boxes[0], pad, shape, strict=True))
    assert bounding_box(mask, pad) == ref
    assert bounding_box(mask) == boxes[0]


def test_largest_component_keeps_the_biggest_piece_and_nothing_of_an_empty_mask():
    plane = np.zeros((6, 9), bool)
    plane[1:3, 1:3] = True  # 4 pixels
    plane[3:5, 4:8] = True  # 8 pixels, face-apart from the first
    assert np.array_equal(largest_component(plane), np.pad(np.ones((2, 4), bool),
                                                          ((3, 1), (4, 1))))
    assert not largest_component(np.zeros((4, 4), bool)).any()


@pytest.mark.parametrize("seed", range(8))
def test_border_distance_is_both_binary_transforms(seed):
    """On the mask ``edt(mask)``, off it ``edt(~mask)``, bit for bit (anisotropic spacing;
    seed 0 all mask, seed 1 none: inf everywhere, as the binary transforms give)."""
    rng = np.random.default_rng(seed)
    shape = (12, 17, 21)
    mask = np.ones(shape, bool) if seed == 0 else rng.random(shape) < 0.1 * (seed - 1)
    spacing = (1.5, 0.8, 0.7)
    ref = np.where(mask, edt.edt(mask, anisotropy=spacing), edt.edt(~mask, anisotropy=spacing))
    got = border_distance(mask, spacing)
    assert got.dtype == np.float32 and np.array_equal(got, ref)


@pytest.mark.parametrize("seed", range(30))
def test_fill_holes_is_scipys(seed):
    """Against ``ndimage.binary_fill_holes`` with an in-plane, a face and a full structure,
    2D and 3D masks from empty to full."""
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    mask = rng.random(tuple(int(n) for n in rng.integers(1, 14, ndim))) < [
        0.0, 0.3, 0.5, 0.7, 0.9, 1.0][seed % 6]
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    for structure in ([None, np.ones((3, 3), bool)] if ndim == 2 else
                      [None, in_plane, np.ones((3, 3, 3), bool)]):
        assert np.array_equal(fill_holes(mask, structure),
                              ndimage.binary_fill_holes(mask, structure))


@pytest.mark.parametrize("seed", range(5))
def test_bounded_distance_is_exact_within_its_reach(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((30, 40, 50)) > 0.9995
    spacing, reach = (1.2, 0.8, 0.7), float(rng.uniform(1.0, 8.0))
    full = edt.edt(~mask, anisotropy=spacing)
    got = distance_to(mask, spacing, reach)
    near = full <= reach
    assert np.array_equal(got <= reach, near)
    np.testing.assert_allclose(got[near], full[near], rtol=1e-6)


def test_bounded_distance_of_an_empty_mask_is_infinite():
    assert np.isinf(distance_to(np.zeros((4, 5, 6), bool), (1, 1, 1), 3.0)).all()


@pytest.mark.parametrize("seed", range(6))
def test_ball_opening_in_its_box_is_the_full_volume_opening(seed):
    """The opening's depth map is computed in the mask's bounding box and a voxel around it:
    the same as on the whole array, also where the mask touches the array's faces (which are
    no background there either)."""
    rng = np.random.default_rng(seed)
    shape = (24, 30, 36)
    idx = np.indices(shape).reshape(3, -1).T
    mask = np.zeros(shape, bool)
    for _ in range(4):  # balls, some cut by the array's faces
        c, r = rng.uniform(-4, np.array(shape) + 4), rng.uniform(3.0, 7.0)
        mask |= (np.linalg.norm(idx - c, axis=1) <= r).reshape(shape)
    spacing, radius = (1.3, 0.9, 0.7), float(rng.uniform(0.8, 2.0))
    core = edt.edt(mask, anisotropy=spacing) > radius
    ref = edt.edt(~core, anisotropy=spacing) <= radius if core.any() else core
    assert mask.any() and core.any()
    assert np.array_equal(ball_opening(mask, spacing, radius), ref)


@pytest.mark.parametrize("seed", range(20))
def test_mask_expansion_repeats_blocks_and_the_last_one(seed):
    """``_expand`` against the full-size reference: every block repeated, the last block
    replicated over the voxels the block grid dropped."""
    rng = np.random.default_rng(seed)
    coarse = np.zeros(tuple(int(n) for n in rng.integers(3, 12, 3)), bool)
    lo = [int(rng.integers(0, n)) for n in coarse.shape]
    hi = [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, coarse.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    coarse[box] = rng.random(tuple(b - a for a, b in zip(lo, hi, strict=True))) > 0.5
    factors = [int(f) for f in rng.integers(1, 4, 3)]
    shape = tuple(n * f + int(rng.integers(0, f)) for n, f in zip(coarse.shape, factors,
                                                                  strict=True))
    ref = coarse
    for axis, f in enumerate(factors):
        ref = np.repeat(ref, f, axis=axis)
    ref = np.pad(ref, [(0, n - m) for n, m in zip(shape, ref.shape, strict=True)], mode="edge")
    assert np.array_equal(_expand(coarse, factors, shape), ref)
