"""Grid helpers of the CT chain that trade full-volume work for bounding boxes: they must give
what the full-volume computation gives."""

import edt
import numpy as np
import pytest

from vasomics.chain._grid import distance_to
from vasomics.chain.localize import _expand


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
