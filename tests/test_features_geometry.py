"""Graph-level features against analytic phantoms (centerline polylines with known answers)."""

import numpy as np
import pytest

from vasomics.features.extract import extract_features
from vasomics.features.params import FeatureParams
from vasomics.phantoms import (
    arc_tube,
    binary_tree,
    helix_tube,
    ladder,
    random_rotation,
    ring_tube,
    sinusoid_tube,
    y_bifurcation,
)
from vasomics.vessel_graph import VesselGraph


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("seed", [0, 1])
def test_helix_geometry(seed):
    radius, pitch = 8.0, 25.0
    c = pitch / (2 * np.pi)
    _, truth = helix_tube(helix_radius_mm=radius, pitch_mm=pitch, turns=2.0,
                          spacing=(0.5, 0.5, 0.5), rotation=random_rotation(seed))
    t = extract_features(truth.graph)
    kappa, tau = radius / (radius ** 2 + c ** 2), c / (radius ** 2 + c ** 2)
    assert _rel(t.value("VX.A.S.LEN", "segment:0"), 2 * 2 * np.pi * np.hypot(radius, c)) < 0.02
    assert _rel(t.value("VX.A.S.CURV_MEAN", "segment:0"), kappa) < 0.02
    assert _rel(t.value("VX.A.S.CURV_RMS", "segment:0"), kappa) < 0.02
    assert _rel(t.value("VX.A.S.TORS_MEAN", "segment:0"), tau) < 0.03
    assert _rel(t.value("VX.A.S.SOAM", "segment:0"), np.hypot(kappa, tau)) < 0.03
    assert t.value("VX.A.S.NINFL", "segment:0") == 0


@pytest.mark.parametrize("ndim", [2, 3])
def test_arc_tortuosity(ndim):
    bend, angle = 20.0, 120.0
    rot = random_rotation(3, ndim)
    _, truth = arc_tube(bend_radius_mm=bend, angle_deg=angle, spacing=(0.5,) * ndim,
                        rotation=rot)
    t = extract_features(truth.graph)
    theta = np.deg2rad(angle)
    chord = 2 * bend * np.sin(theta / 2)
    assert abs(t.value("VX.A.S.CHORD", "segment:0") - chord) < 1e-9 * chord + 1e-9
    assert _rel(t.value("VX.A.S.DM", "segment:0"), theta / (2 * np.sin(theta / 2))) < 0.02
    assert _rel(t.value("VX.A.S.CURV_MEAN", "segment:0"), 1 / bend) < 0.02
    assert _rel(t.value("VX.A.S.SOAM", "segment:0"), 1 / bend) < 0.03
    tors = t.value("VX.A.S.TORS_MEAN", "segment:0")
    assert np.isnan(tors) if ndim == 2 else tors < 0.03 / bend


@pytest.mark.parametrize("periods", [1, 2, 3])
@pytest.mark.parametrize("ndim", [2, 3])
def test_sinusoid_inflections(periods, ndim):
    _, truth = sinusoid_tube(amplitude_mm=5.0, wavelength_mm=30.0, periods=periods,
                             spacing=(0.5,) * ndim, rotation=random_rotation(periods, ndim))
    t = extract_features(truth.graph)
    n = truth.values["inflection_count"]
    assert t.value("VX.A.S.NINFL", "segment:0") == n
    dm = truth.values["length_mm"] / truth.values["chord_mm"]
    assert _rel(t.value("VX.A.S.DM", "segment:0"), dm) < 0.02
    assert _rel(t.value("VX.A.S.ICM", "segment:0"), (n + 1) * dm) < 0.02


@pytest.mark.parametrize("reverse", [False, True])
def test_tube_and_cone_segments(reverse):
    """A cone from r=2 to r=1 mm over 30 mm in an arbitrary direction, and a tube."""
    rot = random_rotation(7)
    axis = np.linspace([0, 0, 0], [30.0, 0, 0], 121) @ rot.T
    r = np.linspace(2.0, 1.0, 121)
    tube = np.linspace([0, 20.0, 0], [0, 20.0, 25.0], 51)
    if reverse:
        axis, r = axis[::-1], r[::-1]
    g = VesselGraph.from_polylines([axis, tube], [r, 1.5])
    t = extract_features(g)
    s = "segment:0"
    assert t.value("VX.A.S.RMEAN", s) == pytest.approx(1.5, rel=1e-6)
    assert t.value("VX.A.S.RMIN", s) == 1.0 and t.value("VX.A.S.RMAX", s) == 2.0
    assert t.value("VX.A.S.TAPER", s) == pytest.approx(1 / 30, rel=1e-6)  # narrows downstream
    assert t.value("VX.A.S.VOL", s) == pytest.approx(np.pi * 30 * (4 + 2 + 1) / 3, rel=1e-6)
    assert t.value("VX.A.S.VOL", "segment:1") == pytest.approx(np.pi * 1.5 ** 2 * 25, rel=1e-6)
    assert t.value("VX.M.S.RES", "segment:1") == pytest.approx(8 * 25 / (np.pi * 1.5 ** 4),
                                                               rel=1e-6)
    # cone: (8/π)∫ r^-4 ds with r = 2 - s/30  ->  (8/π)·30·(1 - 1/8)/3
    assert t.value("VX.M.S.RES", s) == pytest.approx(8 / np.pi * 10 * (1 - 1 / 8), rel=1e-3)


def _murray_radii(parent, major, exponent):
    return parent, major, (parent ** exponent - major ** exponent) ** (1 / exponent)


@pytest.mark.parametrize("angles, exponent, seed", [((30, 45), 3.0, 0), ((60, 20), 2.5, 1),
                                                   ((40, 40), 3.0, 2)])
def test_y_bifurcation(angles, exponent, seed):
    radii = _murray_radii(2.5, 2.0, exponent)
    _, truth = y_bifurcation(radii_mm=radii, angles_deg=angles, spacing=(0.5, 0.5, 0.5),
                             rotation=random_rotation(seed))
    t = extract_features(truth.graph)
    node = next(s for s in t.frame.scope if s.startswith("bifurcation:"))
    rp, r1, r2 = radii
    major_angle, minor_angle = angles  # child 1 carries the major radius
    assert abs(t.value("VX.A.B.ANG_MAJOR", node) - major_angle) < 3
    assert abs(t.value("VX.A.B.ANG_MINOR", node) - minor_angle) < 3
    assert abs(t.value("VX.A.B.ANG_DAUGHTERS", node) - sum(angles)) < 3
    assert _rel(t.value("VX.M.B.MURRAY", node), exponent) < 0.02
    assert _rel(t.value("VX.M.B.AREA_RATIO", node), (r1 ** 2 + r2 ** 2) / rp ** 2) < 0.02
    assert _rel(t.value("VX.A.B.ASYM", node), r2 / r1) < 0.02
    assert _rel(t.value("VX.A.B.DRATIO_MAJOR", node), r1 / rp) < 0.02
    assert _rel(t.value("VX.A.B.DRATIO_MINOR", node), r2 / rp) < 0.02


@pytest.mark.parametrize("generations, asymmetry, ndim", [(3, 0, 3), (5, 0, 3), (6, 0, 2),
                                                          (6, 2, 3)])
def test_binary_tree_topology(generations, asymmetry, ndim):
    _, truth = binary_tree(generations, asymmetry=asymmetry, spacing=(0.5,) * ndim)
    g = truth.graph
    t = extract_features(g.replace(node_kind=np.where(g.node_kind == "root", "endpoint",
                                                      g.node_kind)))  # root found by radius
    v = truth.values
    for fid, key in (("VX.A.T.NSEG", "n_segments"), ("VX.A.T.NBIF", "n_bifurcations"),
                     ("VX.A.T.NEND", "n_endpoints"), ("VX.A.T.GENMAX", "max_generation"),
                     ("VX.A.T.STRAHLER", "max_strahler")):
        assert t.value(fid) == v[key], fid
    gen = t.wide("segment:")["VX.A.S.GEN"]
    strahler = t.wide("segment:")["VX.A.S.STRAHLER"]
    for i in range(g.n_segments):
        assert gen[f"segment:{i}"] == g.segment_generation[i]
        assert strahler[f"segment:{i}"] == g.segment_strahler[i]
    if asymmetry == 0:
        assert t.value("VX.A.T.BIFRATIO") == pytest.approx(2.0, abs=1e-9)
        assert t.value("VX.A.T.NSEG") == 2 ** generations - 1


def test_tree_size_features():
    """Straight tubes of known lengths and radii joined at one node (a star), plus a lone
    tube: exact sums, weighted radius statistics and percentiles; a Y's volume vs voxels."""
    lengths = np.array([10.0, 20.0, 30.0, 40.0])
    radii = np.array([1.0, 2.0, 1.5, 0.5])
    dirs = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (-1, 0, 0)]
    polys = [np.linspace([0, 0, 0], np.multiply(d, L), 200) for d, L in zip(dirs, lengths,
                                                                             strict=True)]
    lone = np.linspace([100, 0, 0], [100, 0, 50.0], 100)
    g = VesselGraph.from_polylines([*polys, lone], [*radii, 3.0])
    t = extract_features(g)
    all_l = np.append(lengths, 50.0)
    all_r = np.append(radii, 3.0)
    assert t.value("VX.A.T.LEN") == pytest.approx(all_l.sum(), rel=1e-9)
    assert t.value("VX.A.T.RMEAN") == pytest.approx((all_l * all_r).sum() / all_l.sum(),
                                                    rel=1e-9)
    assert t.value("VX.A.T.RMED") == pytest.approx(1.5, abs=0.02)  # 150 mm: r ≤ 1.5 holds 80
    for q in (10, 25, 50, 75, 90):
        assert t.value(f"VX.A.T.SLEN_P{q}") == pytest.approx(np.percentile(all_l, q), rel=1e-9)
        assert t.value(f"VX.A.T.SRAD_P{q}") == pytest.approx(np.percentile(all_r, q), rel=1e-9)
    # the lone tube alone: volume πr²L, lateral surface 2πrL
    lone_graph = VesselGraph.from_polylines([lone], [3.0])
    tl = extract_features(lone_graph)
    assert tl.value("VX.A.T.VOL") == pytest.approx(np.pi * 9 * 50, rel=0.02)
    assert tl.value("VX.A.T.SURF") == pytest.approx(2 * np.pi * 3 * 50, rel=0.02)
    # a Y: tubular-model volume vs the voxel volume of its rasterized mask
    mask, truth = y_bifurcation(spacing=(0.25, 0.25, 0.25))
    ty = extract_features(truth.graph, mask=mask)
    assert _rel(ty.value("VX.A.T.VOL"), ty.value("VX.A.T.MASKVOL")) < 0.05


def test_loops_and_components():
    _, ring = ring_tube()
    t = extract_features(ring.graph)
    assert t.value("VX.A.T.NLOOP") == ring.values["n_loops"] == 1
    assert t.value("VX.A.T.NCOMP") == 1
    _, lad = ladder(rungs=3)
    t = extract_features(lad.graph)
    assert t.value("VX.A.T.NLOOP") == lad.values["n_loops"]
    assert t.value("VX.A.T.NCOMP") == 1
    two = VesselGraph.from_polylines([np.linspace([0, 0, 0], [10, 0, 0], 5),
                                      np.linspace([0, 5, 0], [10, 5, 0], 5)], [1.0, 1.0])
    t = extract_features(two)
    assert t.value("VX.A.T.NCOMP") == 2 and t.value("VX.A.T.NLOOP") == 0
    # a segment closing on itself: distance metric undefined (NaN), not infinite
    assert np.isnan(extract_features(ring.graph).wide("segment:")["VX.A.S.DM"]).any() or \
        ring.graph.n_segments > 1


def test_tree_tortuosity():
    """Three circular arcs of different bend radii meeting at a node."""
    polys, lengths, dms, bends = [], [], [], (10.0, 20.0, 40.0)
    theta = np.deg2rad(90)
    for k, bend in enumerate(bends):
        s = np.linspace(0, theta, 400)
        arc = np.column_stack([bend * np.sin(s), bend * (1 - np.cos(s)), np.zeros_like(s)])
        rot = np.array([[np.cos(2.1 * k), -np.sin(2.1 * k), 0],
                        [np.sin(2.1 * k), np.cos(2.1 * k), 0], [0, 0, 1]])
        polys.append(arc @ rot.T)
        lengths.append(bend * theta)
        dms.append(theta / (2 * np.sin(theta / 2)))
    t = extract_features(VesselGraph.from_polylines(polys, [1.0, 1.0, 1.0]))
    lengths = np.array(lengths)
    assert _rel(t.value("VX.A.T.DM_MEAN"), np.sum(lengths * dms) / lengths.sum()) < 0.02
    soam = np.sum(lengths / np.array(bends)) / lengths.sum()
    assert _rel(t.value("VX.A.T.SOAM"), soam) < 0.03


def test_vessel_features():
    """Labelled segments: a vessel split in two at a side branch, and an unlabelled branch."""
    a = np.linspace([0, 0, 0], [10, 0, 0], 11)
    b = np.linspace([10, 0, 0], [10, 10, 0], 11)
    side = np.linspace([10, 0, 0], [20, 0, 0], 11)
    g = VesselGraph.from_polylines([a, b, side], [2.0, 1.0, 0.5], labels=["PV", "PV", ""])
    t = extract_features(g)
    assert t.value("VX.A.V.LEN", "vessel:PV") == pytest.approx(20.0, rel=1e-9)
    assert t.value("VX.A.V.NSEG", "vessel:PV") == 2
    assert t.value("VX.A.V.RMEAN", "vessel:PV") == pytest.approx(1.5, rel=1e-6)
    assert t.value("VX.A.V.VOL", "vessel:PV") == pytest.approx(np.pi * (4 + 1) * 10, rel=1e-6)
    assert t.value("VX.A.V.DM", "vessel:PV") == pytest.approx(20 / np.sqrt(200), rel=1e-9)
    assert not t.frame.scope.str.startswith("vessel:").any() or \
        set(t.frame[t.frame.scope.str.startswith("vessel:")].scope) == {"vessel:PV"}
    unlabelled = extract_features(g.replace(segment_label=None))
    assert not unlabelled.frame.scope.str.startswith("vessel:").any()


def test_2d_graph_units_and_nan_torsion():
    _, truth = binary_tree(3, spacing=(0.5, 0.5))
    t = extract_features(truth.graph, params=FeatureParams(sampling_step_mm=0.1))
    assert np.isnan(t.wide("segment:")["VX.A.S.TORS_MEAN"]).all()
    assert (t.frame[t.frame.feature_id == "VX.A.S.LEN"].unit == "mm").all()


@pytest.mark.parametrize("depth", [0.3, -0.5, 0.0])
def test_stenosis_and_dilation(depth):
    """A 40 mm tube of radius 2 mm with a Gaussian narrowing (depth > 0) or bulge (< 0)."""
    s = np.linspace(0, 40, 801)
    r = 2.0 * (1 - depth * np.exp(-0.5 * ((s - 20) / 2.0) ** 2))
    axis = np.column_stack([s, np.zeros_like(s), np.zeros_like(s)]) @ random_rotation(9).T
    t = extract_features(VesselGraph.from_polylines([axis], [r]))
    assert t.value("VX.P.S.STENOSIS", "segment:0") == pytest.approx(max(depth, 0), abs=1e-3)
    assert t.value("VX.P.S.DILATION", "segment:0") == pytest.approx(max(-depth, 0), abs=1e-3)


def test_degenerate_segments_give_nan_not_warnings():
    """A zero-length segment, a segment closing on itself and a 1 µm stub: no warnings,
    NaN exactly where the catalogue says a value is undefined."""
    import warnings

    loop = np.array([[10, 0, 0], [11, 1, 0], [12, 0, 0], [11, -1, 0], [10, 0, 0.0]])
    g = VesselGraph.from_polylines(
        [np.array([[0, 0, 0], [10, 0, 0.0]]), loop, np.array([[10, 0, 0], [10, 0, 0.0]]),
         np.array([[0, 0, 0], [0, 0.001, 0]])], [1.0, 0.5, 0.5, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = extract_features(g)
    seg = t.wide("segment:")
    assert np.isnan(seg.loc["segment:1", "VX.A.S.DM"])  # loop: chord 0
    assert np.isnan(seg.loc["segment:2", "VX.A.S.TAPER"])  # zero length
    assert np.isnan(seg.loc["segment:2", "VX.P.S.STENOSIS"])
    assert seg.loc["segment:0", "VX.A.S.DM"] == 1.0 and np.isnan(seg.loc["segment:0",
                                                                         "VX.A.S.TORS_MEAN"])
    assert t.value("VX.A.T.NLOOP") == 2
