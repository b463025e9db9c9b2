"""Skeletonization: thin, topology-preserving, radius within half a voxel."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics import phantoms as P
from vasomics.chain.skeleton import skeletonize
from vasomics.errors import InputError
from vasomics.image import Image


def _components(sk) -> int:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(sk.n_voxels))
    for i in range(sk.n_voxels):
        for j in sk.adj[sk.adj_offsets[i]:sk.adj_offsets[i + 1]]:
            g.add_edge(i, int(j))
    return nx.number_connected_components(g), g


@pytest.mark.parametrize("spacing", [(0.5, 0.5, 0.5), (0.8, 0.4, 0.5), (0.3, 0.3)])
def test_tube_thins_to_a_simple_curve(spacing):
    rotation = P.random_rotation(4, len(spacing))
    mask, truth = P.straight_tube(20.0, 2.0, spacing, rotation=rotation)
    sk = skeletonize(mask)
    assert np.all(mask.array[tuple(sk.indices.T)])  # inside the mask
    n_comp, g = _components(sk)
    assert n_comp == 1
    assert np.count_nonzero(sk.degree() == 1) == 2  # one curve: two ends
    # centred: away from the ends (where thinning bends towards the rim of the flat end face),
    # every centerline voxel lies within one voxel of the true axis
    axis = truth.graph.node_position
    u = (axis[1] - axis[0]) / np.linalg.norm(axis[1] - axis[0])
    rel = mask.index_to_physical(sk.indices) - axis[0]
    along = rel @ u
    off = np.linalg.norm(rel - np.outer(along, u), axis=1)
    interior = (along > 1.5 * 2.0) & (along < 20.0 - 1.5 * 2.0)
    assert interior.sum() > 10
    assert off[interior].max() <= max(spacing)
    # radius: median within half a voxel of the truth
    assert abs(np.median(sk.radius) - 2.0) <= 0.5 * min(spacing)


def test_topology_is_preserved_for_loops_and_components():
    ring, _ = P.ring_tube(8.0, 1.5, (0.5, 0.5, 0.5))
    sk = skeletonize(ring)
    n_comp, g = _components(sk)
    assert n_comp == 1 and g.number_of_edges() - g.number_of_nodes() + n_comp == 1  # one cycle
    tube, _ = P.straight_tube(10.0, 1.5, (0.5, 0.5, 0.5))
    two = np.concatenate([tube.array, np.zeros_like(tube.array), tube.array], axis=0)
    sk2 = skeletonize(Image(two, spacing=(0.5, 0.5, 0.5)))
    assert _components(sk2)[0] == 2


def test_matches_scikit_image_voxel_count_on_a_tree():
    from skimage.morphology import skeletonize as sk_skeletonize

    mask, _ = P.binary_tree(3, spacing=(0.5, 0.5, 0.5))
    ours = skeletonize(mask).n_voxels
    theirs = int(np.count_nonzero(sk_skeletonize(mask.array.astype(bool))))
    assert abs(ours - theirs) <= 0.15 * theirs


def test_bad_masks_raise_one_line_errors():
    with pytest.raises(InputError, match="empty"):
        skeletonize(Image(np.zeros((8, 8, 8), np.uint8)))
    with pytest.raises(InputError, match="all foreground"):
        skeletonize(Image(np.ones((8, 8, 8), np.uint8)))
    with pytest.raises(InputError, match="not binary"):
        skeletonize(Image(np.arange(125, dtype=np.uint8).reshape(5, 5, 5)), path="m.nii")
    nan = np.zeros((5, 5, 5), np.float32)
    nan[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        skeletonize(Image(nan))


def test_simple_point_test_matches_a_labelling_reference():
    """The bit-parallel simple-point test against connected-component labelling (scipy):
    simple ⇔ one 26-component of foreground neighbours and one 6-component of background
    in the 18-neighbourhood that touches a face neighbour."""
    from scipy import ndimage

    from vasomics.chain._thinning import is_simple

    rng = np.random.default_rng(0)
    cube_idx = np.indices((3, 3, 3)).reshape(3, -1).T
    n18 = np.abs(cube_idx - 1).sum(axis=1) <= 2
    faces = np.abs(cube_idx - 1).sum(axis=1) == 1
    for density in (0.2, 0.5, 0.8):
        for _ in range(700):
            cube = rng.random(27) < density
            cube[13] = False
            fg = cube.reshape(3, 3, 3)
            n_fg = ndimage.label(fg, structure=np.ones((3, 3, 3)))[1]
            bg = (~cube & n18).reshape(3, 3, 3)
            bg[1, 1, 1] = False
            labels, _ = ndimage.label(bg, structure=ndimage.generate_binary_structure(3, 1))
            touching = set(labels.reshape(-1)[faces & ~cube]) - {0}
            expected = n_fg == 1 and len(touching) == 1
            bits = int(np.sum(1 << np.flatnonzero(cube)))
            assert is_simple(np.int64(bits)) == expected


@pytest.mark.parametrize("ndim", [2, 3])
def test_fill_cavities_option(ndim):
    from vasomics.chain.graph import mask_to_graph
    from vasomics.chain.skeleton import SkeletonParams

    shape = (9,) * ndim
    arr = np.zeros(shape, np.uint8)
    arr[(slice(1, 8),) * ndim] = 1
    arr[(4,) * ndim] = 0  # an enclosed background pocket
    image = Image(arr)
    plain = skeletonize(image)
    filled = skeletonize(image, SkeletonParams(fill_cavities=True))
    assert filled.mask.array[(4,) * ndim] and not plain.mask.array[(4,) * ndim]
    assert filled.n_voxels < plain.n_voxels
    if ndim == 3:  # the cavity's closed surface gives no segment; filled, a centre point
        assert mask_to_graph(image).n_segments == 0


def test_bool_masks_with_non_canonical_bytes():
    """PIL's 1-bit images arrive as NumPy bools whose True byte is 255: same result."""
    mask, _ = P.straight_tube(20.0, 2.0, (0.5, 0.5))
    canonical = mask.array.astype(bool)
    odd = (mask.array.astype(np.uint8) * 255).view(bool)
    a = skeletonize(Image(canonical, spacing=mask.spacing))
    b = skeletonize(Image(odd, spacing=mask.spacing))
    assert np.array_equal(a.indices, b.indices) and np.allclose(a.radius, b.radius)


@pytest.mark.parametrize("dtype", [np.uint8, bool, np.float32])
def test_input_is_left_untouched(dtype):
    """Thinning works in place on the validated copy and restores it; the caller's array
    and the skeleton's mask both still hold the input."""
    mask, _ = P.y_bifurcation(spacing=(1.0, 1.0, 1.0))
    arr = mask.array.astype(dtype)
    before = arr.copy()
    sk = skeletonize(Image(arr))
    assert np.array_equal(arr, before)
    assert np.array_equal(sk.mask.array, before != 0)
