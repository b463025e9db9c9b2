"""The phantoms' venous trees keep their lumens apart (vasomics.phantoms.vessel_clearance)."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from vasomics.phantoms.liver_ct import VENOUS_CLEARANCE_MM, liver_ct_phantom
from vasomics.phantoms.vessel_clearance import keep_apart


def _line(a, b, n=201):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t


def _least_gap(polylines, radii, fixed_polylines, fixed_radii):
    p, r = np.concatenate(polylines), np.concatenate(radii)
    q, s = np.concatenate(fixed_polylines), np.concatenate(fixed_radii)
    d, j = cKDTree(q).query(p, k=min(50, len(q)))
    return float(np.min(d - r[:, None] - s[j]))


def test_a_branch_running_inside_another_vessel_is_bent_out_and_stays_joined():
    """A parent and its child (sharing a point) run 3 mm from the axis of a fixed tube,
    radii 3 and 4 mm: 4 mm of overlap. After bending, every lumen keeps the clearance, the
    shared point is still shared, far points do not move, and the path has no kink."""
    parent = _line((0, 3, -60), (0, 3, 0))
    child = _line((0, 3, 0), (0, 3, 60))
    far = _line((0, 40, 0), (0, 40, 30), 31)  # out of reach: must not move
    polys = [parent, child, far]
    radii = [np.full(len(p), 3.0) for p in polys]
    fixed = [_line((0, 0, -20), (0, 0, 20))]
    fixed_r = [np.full(len(fixed[0]), 4.0)]
    assert _least_gap(polys, radii, fixed, fixed_r) == pytest.approx(-4.0)
    moved = keep_apart(polys, radii, fixed, fixed_r, clearance_mm=0.5)
    assert _least_gap(moved, radii, fixed, fixed_r) >= 0.48
    np.testing.assert_allclose(moved[0][-1], moved[1][0])
    np.testing.assert_array_equal(moved[2], far)
    np.testing.assert_allclose(moved[0][0], parent[0], atol=1e-6)  # 60 mm away
    path = np.concatenate([moved[0], moved[1][1:]])
    step = np.diff(path, axis=0)
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    turn = np.degrees(np.arccos(np.clip(np.sum(step[1:] * step[:-1], axis=1), -1, 1)))
    assert turn.max() < 5.0  # per 0.3 mm step: a smooth bend, no kink
    np.testing.assert_array_equal(child, _line((0, 3, 0), (0, 3, 60)))  # inputs untouched


def test_clear_tubes_are_left_as_they_are():
    polys = [_line((0, 10, -30), (0, 10, 30))]
    radii = [np.full(201, 2.0)]
    fixed = [_line((0, 0, -30), (0, 0, 30))]
    moved = keep_apart(polys, radii, fixed, [np.full(201, 4.0)], clearance_mm=0.5)
    np.testing.assert_array_equal(moved[0], polys[0])


@pytest.mark.parametrize("seed", [601, 619, 622])
def test_phantom_portal_and_hepatic_lumens_keep_the_clearance(seed):
    """Before the clearance, these seeds' portal axes lay up to 4.3-6.9 mm deep in a
    hepatic vein's lumen (segment 7 along the right hepatic vein)."""
    _, truth = liver_ct_phantom((96, 160, 160), seed=seed, z_extent_mm=240.0)

    def tubes(g):
        return ([g.segment_points(s) for s in range(g.n_segments)],
                [g.segment_radius(s) for s in range(g.n_segments)])

    gap = _least_gap(*tubes(truth.portal), *tubes(truth.hepatic))
    assert gap >= VENOUS_CLEARANCE_MM - 0.05
