"""Phantoms: the rasterizer and the analytic truth they carry."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics import phantoms as P
from vasomics.errors import InputError


def _curvature(points: np.ndarray) -> np.ndarray:
    d1 = np.gradient(points, axis=0)
    d2 = np.gradient(d1, axis=0)
    cross = np.cross(d1, d2)
    cross = np.linalg.norm(cross, axis=1) if cross.ndim == 2 else np.abs(cross)
    return cross / np.linalg.norm(d1, axis=1) ** 3


@pytest.mark.parametrize("spacing", [(0.5, 0.5, 0.5), (0.8, 0.4, 0.5)])
def test_tube_volume_matches_cylinder(spacing):
    length, radius = 30.0, 3.0
    mask, truth = P.straight_tube(length, radius, spacing, rotation=P.random_rotation(3))
    volume = mask.array.sum() * mask.voxel_volume
    assert volume == pytest.approx(np.pi * radius**2 * length, rel=0.04)
    assert truth.values["length_mm"] == length
    assert truth.graph.segment_lengths()[0] == pytest.approx(length, rel=1e-9)


def test_flat_caps_cut_the_tube_at_the_axis_ends():
    mask, truth = P.straight_tube(20.0, 2.0, (0.5, 0.5, 0.5))
    idx = np.argwhere(mask.array)
    x = mask.index_to_physical(idx)[:, 0]
    ends = truth.graph.node_position[:, 0]
    assert x.min() >= ends.min() - 1e-9 and x.max() <= ends.max() + 1e-9
    assert x.min() < ends.min() + 0.5 and x.max() > ends.max() - 0.5


def test_2d_tube_area():
    mask, _ = P.straight_tube(40.0, 3.0, (0.25, 0.25), rotation=P.rotation_matrix(33, 2))
    assert mask.ndim == 2
    area = mask.array.sum() * mask.voxel_volume
    assert area == pytest.approx(2 * 3.0 * 40.0, rel=0.03)


def test_truth_polyline_matches_analytic_values():
    _, helix = P.helix_tube(helix_radius_mm=8, pitch_mm=25, turns=2)
    a, b = 8.0, 25 / (2 * np.pi)
    assert helix.values["curvature_per_mm"] == pytest.approx(a / (a * a + b * b))
    assert helix.values["torsion_per_mm"] == pytest.approx(b / (a * a + b * b))
    pts = helix.graph.segment_points(0)
    assert np.median(_curvature(pts)[5:-5]) == pytest.approx(helix.values["curvature_per_mm"],
                                                            rel=1e-3)
    assert helix.graph.segment_lengths()[0] == pytest.approx(helix.values["length_mm"], rel=1e-5)

    _, arc = P.arc_tube(bend_radius_mm=20, angle_deg=90)
    assert arc.values["length_mm"] == pytest.approx(20 * np.pi / 2)
    assert arc.graph.segment_lengths()[0] == pytest.approx(arc.values["length_mm"], rel=1e-5)

    _, sine = P.sinusoid_tube(periods=3, spacing=(0.5, 0.5))
    pts = sine.graph.segment_points(0)
    d1, d2 = np.gradient(pts, axis=0), np.gradient(np.gradient(pts, axis=0), axis=0)
    signed = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    changes = np.count_nonzero(np.diff(np.sign(signed[3:-3])) != 0)
    assert changes == sine.values["inflection_count"] == 6
    assert sine.graph.segment_lengths()[0] == pytest.approx(sine.values["length_mm"], rel=1e-5)


@pytest.mark.parametrize("generations", [1, 3, 5])
def test_symmetric_binary_tree_counts(generations):
    _, truth = P.binary_tree(generations, spacing=(1.0, 1.0, 1.0))
    v = truth.values
    assert v["n_segments"] == 2**generations - 1
    assert v["n_bifurcations"] == 2 ** (generations - 1) - 1
    assert v["n_endpoints"] == 2 ** (generations - 1) + 1
    assert v["max_generation"] == v["max_strahler"] == generations
    g = truth.graph
    assert np.sum(g.node_kind == "root") == 1
    assert np.all(g.node_degree()[g.node_kind == "bifurcation"] == 3)


def test_asymmetric_tree_strahler_below_generations():
    _, truth = P.binary_tree(5, asymmetry=1, spacing=(1.0, 1.0, 1.0))
    g = truth.graph
    assert truth.values["max_generation"] == 5
    # minor subtrees are one generation shallower: the order grows every second generation
    assert truth.values["max_strahler"] == 3
    terminal = np.isin(g.segment_end, np.flatnonzero(g.node_kind == "endpoint"))
    assert np.all(g.segment_strahler[terminal] == 1)


def test_y_bifurcation_truth_angles():
    _, truth = P.y_bifurcation(angles_deg=(25.0, 50.0))
    g = truth.graph
    d = [g.segment_points(i)[-1] - g.segment_points(i)[0] for i in range(3)]
    cos = [np.dot(d[0], d[i]) / np.linalg.norm(d[0]) / np.linalg.norm(d[i]) for i in (1, 2)]
    assert np.degrees(np.arccos(cos)) == pytest.approx([25.0, 50.0])
    assert truth.values["angle_between_children_deg"] == 75.0


def test_networks_count_loops():
    assert P.ring_tube()[1].values["n_loops"] == 1
    _, ladder = P.ladder(4)
    assert ladder.values["n_loops"] == 3
    assert ladder.values["n_segments"] == 3 * 4 + 2


def test_random_tree_is_seeded_and_sized():
    a = P.random_tree((64, 64, 64), (0.5, 0.5, 0.5), generations=5, root_radius_mm=1.0, seed=7)
    b = P.random_tree((64, 64, 64), (0.5, 0.5, 0.5), generations=5, root_radius_mm=1.0, seed=7)
    c = P.random_tree((64, 64, 64), (0.5, 0.5, 0.5), generations=5, root_radius_mm=1.0, seed=8)
    assert a.mask.shape == (64, 64, 64)
    assert np.array_equal(a.mask.array, b.mask.array)
    assert not np.array_equal(a.mask.array, c.mask.array)
    assert a.truth.values["n_segments"] == 31
    assert 0 < a.truth.values["foreground_fraction"] < 0.2


def test_rotation_matrices_are_rotations():
    for r in (P.rotation_matrix((10, 20, 30)), P.random_rotation(5), P.random_rotation(1, 2)):
        assert np.allclose(r @ r.T, np.eye(len(r)))
        assert np.linalg.det(r) == pytest.approx(1.0)


def test_bad_phantom_parameters():
    with pytest.raises(InputError):
        P.straight_tube(-1.0)
    with pytest.raises(InputError):
        P.arc_tube(bend_radius_mm=2.0, radius_mm=3.0)
    with pytest.raises(InputError):
        P.rasterize_tubes([np.zeros((1, 3))], [1.0], (4, 4, 4), (1, 1, 1))
    with pytest.raises(InputError):
        P.rasterize_tubes([np.zeros((2, 3))], [0.0], (4, 4, 4), (1, 1, 1))


def test_liver_ct_repeat_scan_keeps_the_patient_and_redraws_the_noise():
    """``noise_seed``: the same anatomy, enhancement and blur with a new noise field, as a
    repeated scan of one patient (benchmarks/bench_ct_chain_repeatability.py)."""
    from vasomics.phantoms.liver_ct import liver_ct_phantom

    a, ta = liver_ct_phantom((32, 48, 48), seed=3)
    b, tb = liver_ct_phantom((32, 48, 48), seed=3, noise_seed=1)
    c, _ = liver_ct_phantom((32, 48, 48), seed=3, noise_seed=1)
    assert np.array_equal(ta.labels.array, tb.labels.array) and ta.hu == tb.hu
    assert np.array_equal(b.array, c.array)
    # two independent fields of SD 12 HU: the difference has no mean and SD 12 sqrt(2)
    diff = a.array.astype(float) - b.array
    assert abs(diff.mean()) < 0.5
    assert diff.std() == pytest.approx(12.0 * np.sqrt(2.0), rel=0.1)
