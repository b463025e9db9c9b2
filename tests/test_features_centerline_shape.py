"""Centerline shape: inflection counting and torsion (vasomics.features.centerline) against
analytic curves and rasterized phantoms with analytic answers.

Mask cases go mask -> graph (vasomics.chain.graph) -> features at several spacings and
orientations: inflection counts exact, torsion within 5 %, curvature within 3 %, length
within 2 %.

Analytic inflection count of a sinusoid phantom (vasomics.phantoms.sinusoid_tube): the
number of interior zeros of the curvature. On y = A sin(2 pi x / lambda),
x in [lambda/4, lambda/4 + periods lambda], kappa ~ -sin(2 pi x / lambda) vanishes at
x = m lambda / 2, m = 1 .. 2 periods, all interior, and is extreme at both ends (crests):
2 x periods. With straight leads the curvature is 0 on the leads, no sign change is added."""

import numpy as np
import pytest

from vasomics.chain.graph import mask_to_graph
from vasomics.features import centerline as C
from vasomics.features.context import Context
from vasomics.features.extract import extract_features
from vasomics.features.params import FeatureParams, resolve_params
from vasomics.phantoms import helix_tube, random_rotation, sinusoid_tube, straight_tube
from vasomics.vessel_graph import VesselGraph


def _helix_points(a, b, turns, n, rotation):
    t = np.linspace(0, 2 * np.pi * turns, n)
    return np.column_stack([a * np.cos(t), a * np.sin(t), b * t]) @ rotation.T


def _context(graph, **params):
    return Context(graph, resolve_params(FeatureParams(**params), graph))


def test_plane_rotation_integrates_helix_torsion():
    """On an exact helix the osculating plane turns by τ L in total and the windowed torsion
    is τ everywhere."""
    a, b = 8.0, 25.0 / (2 * np.pi)
    tau = b / (a * a + b * b)
    g = VesselGraph.from_polylines([_helix_points(a, b, 2.0, 4001, random_rotation(5))], [1.0])
    ctx = _context(g, sampling_step_mm=0.1, derivative_window_mm=4.0)
    cl = ctx.centerlines
    phi = C.plane_rotation(cl, ctx.derivatives, np.ones(len(cl.s), bool))
    assert np.nansum(phi) == pytest.approx(tau * cl.length[0], rel=2e-3)
    tw = C.windowed_torsion(cl, phi, 8.0)
    assert np.nanmax(np.abs(tw / tau - 1)) < 1e-2  # ends: off-centre fits


def test_plane_rotation_ignores_binormal_flip_at_inflections():
    """A planar sinusoid in 3D: the binormal flips at each inflection, the plane does not
    turn (no torsion); the inflections are counted exactly."""
    x = np.linspace(0, 90, 3001)
    pts = np.column_stack([x, 5 * np.sin(2 * np.pi * x / 30 + np.pi / 2), 0 * x])
    g = VesselGraph.from_polylines([pts @ random_rotation(2).T], [1.5])
    ctx = _context(g, sampling_step_mm=0.1)
    cl, der = ctx.centerlines, ctx.derivatives
    b = C.binormal(der)
    assert (np.einsum("ij,ij->i", b[1:], b[:-1]) < -0.99).sum() == 6  # flips at inflections
    phi = C.plane_rotation(cl, der, np.linalg.norm(np.cross(der.d1, der.d2), axis=1) > 0)
    assert np.nanmax(np.abs(phi)) < 1e-6
    t = extract_features(g)
    assert t.value("VX.A.S.NINFL", "segment:0") == 6
    assert t.value("VX.A.S.TORS_MEAN", "segment:0") < 1e-6


def test_sign_changes_minimum_arc_and_extrapolated_lobes():
    """Bending side + for s < 40, − over [40, 41.5) (a brief excursion), + up to 70, − up to
    95, + beyond (a lobe drawn only by end extrapolation)."""
    g = VesselGraph.from_polylines([np.linspace([0, 0], [100, 0], 101)], [1.0])
    cl = C.resample(g, 0.5)
    s = cl.s
    side = np.where((s < 40) | ((s >= 41.5) & (s < 70)) | (s >= 95), 1.0, -1.0)[:, None]
    test = np.ones(len(s), bool)
    extrapolated = s >= 95
    assert C.sign_changes(cl, side, test, 0.0)[0] == 4
    assert C.sign_changes(cl, side, test, 3.0)[0] == 2  # excursion: neither flip counts
    assert C.sign_changes(cl, side, test, 3.0, extrapolated)[0] == 1
    assert C.sign_changes(cl, side, test, 0.0, extrapolated)[0] == 3
    assert C.sign_changes(cl, side, np.zeros(len(s), bool), 3.0)[0] == 0


HELIX_MASKS = [  # helix radius, pitch, tube radius (mm), voxel spacing, rotation seed
    (8.0, 25.0, 1.5, (0.5, 0.5, 0.5), 0),
    (8.0, 25.0, 1.5, (0.4, 0.3, 0.35), 4),
    (5.0, 15.0, 1.0, (0.5, 0.5, 0.5), 2),
    (10.0, 40.0, 2.0, (0.4, 0.3, 0.35), 2),
    (12.0, 20.0, 2.0, (0.5, 0.5, 0.5), 4),
    (6.0, 40.0, 1.5, (0.4, 0.3, 0.35), 0),
]


@pytest.mark.parametrize("a, pitch, r, spacing, seed", HELIX_MASKS)
def test_helix_mask_torsion_curvature_length(a, pitch, r, spacing, seed):
    b = pitch / (2 * np.pi)
    kappa, tau = a / (a * a + b * b), b / (a * a + b * b)
    mask, truth = helix_tube(helix_radius_mm=a, pitch_mm=pitch, turns=2.0, radius_mm=r,
                             spacing=spacing, rotation=random_rotation(seed))
    t = extract_features(mask_to_graph(mask), mask=mask)
    s = "segment:0"
    assert abs(t.value("VX.A.S.TORS_MEAN", s) / tau - 1) < 0.05
    assert abs(t.value("VX.A.S.CURV_MEAN", s) / kappa - 1) < 0.03
    assert abs(t.value("VX.A.S.LEN", s) / truth.values["length_mm"] - 1) < 0.02
    assert abs(t.value("VX.A.S.SOAM", s) / np.hypot(kappa, tau) - 1) < 0.03
    assert t.value("VX.A.S.NINFL", s) == 0


SINUSOID_MASKS = [  # amplitude, wavelength (mm), periods, voxel spacing, rotation seed
    (5.0, 30.0, 3, (0.5, 0.5), 0),
    (2.0, 30.0, 3, (0.3, 0.3), 1),
    (3.0, 20.0, 3, (0.5, 0.5), 2),
    (1.5, 25.0, 2, (0.3, 0.3), 0),
    (8.0, 40.0, 2, (0.5, 0.5, 0.5), 2),
    (2.0, 30.0, 3, (0.5, 0.5, 0.5), 1),
    (3.0, 20.0, 3, (0.4, 0.3, 0.35), 0),
    (1.5, 25.0, 2, (0.4, 0.3, 0.35), 1),
]


@pytest.mark.parametrize("amplitude, wavelength, periods, spacing, seed", SINUSOID_MASKS)
def test_sinusoid_mask_inflections_exact(amplitude, wavelength, periods, spacing, seed):
    """Planar sinusoids (2D, and 3D in a random plane) with 10 mm straight leads at the end
    crests: 2 × periods inflections, none from the leads or the re-drawn vessel ends."""
    ndim = len(spacing)
    mask, truth = sinusoid_tube(amplitude_mm=amplitude, wavelength_mm=wavelength,
                                periods=periods, spacing=spacing, lead_mm=10.0,
                                rotation=random_rotation(seed, ndim))
    t = extract_features(mask_to_graph(mask))
    assert t.value("VX.A.S.NINFL", "segment:0") == truth.values["inflection_count"]
    dm = truth.values["length_mm"] / truth.values["chord_mm"]
    assert abs(t.value("VX.A.S.DM", "segment:0") / dm - 1) < 0.02


CREST_MASKS = [  # amplitude, wavelength (mm), periods, voxel spacing, rotation seed
    (5.0, 30.0, 3, (0.5, 0.5), 0),
    (3.0, 20.0, 3, (0.3, 0.3), 1),
    (8.0, 40.0, 2, (0.3, 0.3), 0),
    (2.0, 30.0, 3, (0.5, 0.5), 1),
    (5.0, 30.0, 1, (0.5, 0.5, 0.5), 2),
    (3.0, 20.0, 3, (0.4, 0.3, 0.35), 0),
    (2.0, 30.0, 3, (0.4, 0.3, 0.35), 1),
    (8.0, 40.0, 2, (0.5, 0.5, 0.5), 0),
]


def _crest_count(amplitude, wavelength, periods, spacing, seed):
    ndim = len(spacing)
    mask, truth = sinusoid_tube(amplitude_mm=amplitude, wavelength_mm=wavelength,
                                periods=periods, spacing=spacing,
                                rotation=random_rotation(seed, ndim))
    n = extract_features(mask_to_graph(mask)).value("VX.A.S.NINFL", "segment:0")
    return n, truth.values["inflection_count"]


@pytest.mark.parametrize("amplitude, wavelength, periods, spacing, seed", CREST_MASKS)
def test_crest_ended_sinusoid_mask_inflections_exact(amplitude, wavelength, periods,
                                                     spacing, seed):
    """Sinusoids that end at a crest (the tube ends mid-curve, flat cut): the end lobes are
    quarter-waves whose test points (kappa > 0.2 kappa_max) lie within 0.218 lambda of the
    tip, where the graph stage re-draws the vessel end. The re-drawn end is refitted to the
    cross-section centres up to half a radius from the tip (graph_params
    end_fit_iterations), so only lobes drawn within that last half radius are dropped: all
    2 x periods inflections count (the former parabola through the trimmed skeleton end
    lost one or both end inflections in each of these cases). Over the 72 cases of
    benchmarks/bench_centerline_shape.py: 63 exact (7 before)."""
    n, expected = _crest_count(amplitude, wavelength, periods, spacing, seed)
    assert n == expected


CREST_LOW_CURVATURE = [  # end lobes still lost (kappa_max 0.09-0.3 /mm, lambda <= 25 mm)
    (1.5, 25.0, 2, (0.5, 0.5), 0),
    (1.5, 25.0, 2, (0.5, 0.5, 0.5), 1),
    (3.0, 20.0, 3, (0.5, 0.5), 0),
]


@pytest.mark.parametrize("amplitude, wavelength, periods, spacing, seed",
                         CREST_LOW_CURVATURE)
def test_crest_ended_sinusoid_loses_at_most_the_end_inflections(amplitude, wavelength,
                                                               periods, spacing, seed):
    """Where an end lobe is missed, nothing spurious is added: 2 periods - 2 <= NINFL <=
    2 periods."""
    n, expected = _crest_count(amplitude, wavelength, periods, spacing, seed)
    assert expected - 2 <= n <= expected


@pytest.mark.xfail(strict=True, reason="unmet: on crest-ended sinusoids of low end "
                   "curvature (A = 1.5 mm, lambda = 25 mm: kappa_max 0.095 /mm against the "
                   "straightness threshold 0.04 /mm) or short end lobes (lambda = 20 mm: "
                   "test points within 4.4 mm of the tip against a 3 mm minimum arc) the "
                   "re-drawn end bends too little over too short an arc, and an end lobe is "
                   "dropped: 63/72 exact in benchmarks/bench_centerline_shape.py")
@pytest.mark.parametrize("amplitude, wavelength, periods, spacing, seed",
                         CREST_LOW_CURVATURE)
def test_crest_ended_sinusoid_low_curvature_exact(amplitude, wavelength, periods, spacing,
                                                  seed):
    n, expected = _crest_count(amplitude, wavelength, periods, spacing, seed)
    assert n == expected


def test_sign_changes_bending_arc_ignores_sparse_ripple():
    """Short runs bending alternately to either side, 3-4 mm apart, with no test point in
    between (curvature ripple just above the thresholds): dropping the shortest and merging
    neighbours gives lobes whose test points *span* 7 mm, but whose *bending arc* stays
    below the minimum: 0 inflections. Contiguous lobes keep their span."""
    g = VesselGraph.from_polylines([np.linspace([0, 0], [40, 0], 161)], [1.0])
    cl = C.resample(g, 0.25)
    s = cl.s
    runs = [(5.2, 5.7, 1), (8.2, 8.7, -1), (12.0, 12.0, 1), (14.7, 15.2, -1),
            (18.7, 19.4, 1), (21.7, 22.4, -1), (25.4, 25.9, 1), (28.7, 28.9, -1),
            (32.4, 32.7, 1)]
    side = np.zeros((len(s), 1))
    for lo, hi, sign in runs:
        side[(s >= lo - 1e-9) & (s <= hi + 1e-9), 0] = sign
    test = side[:, 0] != 0
    assert C.sign_changes(cl, side, test, 2.4)[0] == 0
    assert C.sign_changes(cl, side, test, 0.0)[0] == 8
    # the same pattern with every gap filled by its run's side: long contiguous lobes count
    filled = np.sign(np.interp(s, [(lo + hi) / 2 for lo, hi, _ in runs],
                               [sign for _, _, sign in runs]))[:, None]
    filled[filled == 0] = 1
    assert C.sign_changes(cl, filled, np.ones(len(s), bool), 2.4)[0] == 8


@pytest.mark.parametrize("seed", [1, 2])
def test_straight_mask_staircase_is_not_inflections(seed):
    """A thin straight 2D tube (r = 2 voxels) at an oblique angle: the digital staircase
    gives a periodic curvature ripple just above the straightness threshold, in lobes shorter
    than half the derivative window; 0 inflections (the former normal-flip count gave 8-9)."""
    mask, _ = straight_tube(length_mm=40.0, radius_mm=1.0, spacing=(0.5, 0.5),
                            rotation=random_rotation(seed, 2))
    graph = mask_to_graph(mask)
    assert extract_features(graph).value("VX.A.S.NINFL", "segment:0") == 0


def _arc(center, radius, a0, a1, n):
    t = np.linspace(a0, a1, n)
    return np.column_stack([center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)])


def test_extrapolated_end_creates_no_lobe_and_no_curvature():
    """An arc bending one way, a straight run, then a 4 mm hook bending the other way at the
    free end. As an analytic centerline the hook is an inflection; marked as a mask-derived
    graph (graph_params: extend_ends, end_trim_radius_factor 1.5, r = 2 mm), the last
    (1.5 + 1) r + W/2 = 7 mm is re-drawn extrapolation and the hook is not counted."""
    arc = _arc((0.0, 10.0), 10.0, -np.pi / 2, -np.pi / 2 + np.pi / 3, 400)  # bends to +y
    end, tangent = arc[-1], np.array([np.cos(np.pi / 3), np.sin(np.pi / 3)])
    straight = end + np.linspace(0, 15, 300)[1:, None] * tangent
    normal = np.array([tangent[1], -tangent[0]])  # centre of the hook: to the right
    start = straight[-1]
    centre = start + 5.0 * normal
    a0 = np.arctan2(*(start - centre)[::-1])
    hook = _arc(centre, 5.0, a0, a0 - 0.8, 100)[1:]  # 4 mm, clockwise: turning right
    pts = np.vstack([arc, straight, hook])
    g = VesselGraph.from_polylines([pts], [2.0])
    params = FeatureParams(sampling_step_mm=0.1, derivative_window_mm=4.0)
    assert extract_features(g, params=params).value("VX.A.S.NINFL", "segment:0") == 1
    meta = {"graph_params": {"extend_ends": True, "end_trim_radius_factor": 1.5}}
    t = extract_features(g.replace(metadata=meta), params=params)
    assert t.value("VX.A.S.NINFL", "segment:0") == 0
    # the curvature mean skips 7 mm at both free ends: 3.47 mm of arc (κ = 0.1) and 12 mm
    # of the straight run remain
    arc_kept = 10 * np.pi / 3 - 7.0
    assert t.value("VX.A.S.CURV_MEAN", "segment:0") == pytest.approx(
        0.1 * arc_kept / (arc_kept + 15.0 - 3.0), rel=0.03)


def test_short_terminal_helix_falls_back_to_all_points():
    """A terminal segment shorter than its re-drawn end zone keeps all its points for
    curvature and torsion (no NaN)."""
    a, b = 8.0, 25.0 / (2 * np.pi)
    pts = _helix_points(a, b, 0.15, 300, random_rotation(3))  # 8.4 mm
    meta = {"graph_params": {"extend_ends": True, "end_trim_radius_factor": 1.5}}
    g = VesselGraph.from_polylines([pts], [2.0]).replace(metadata=meta)
    t = extract_features(g, params=FeatureParams(sampling_step_mm=0.05,
                                                 derivative_window_mm=3.0))
    assert t.value("VX.A.S.CURV_MEAN", "segment:0") == pytest.approx(a / (a * a + b * b),
                                                                     rel=0.02)
    assert t.value("VX.A.S.TORS_MEAN", "segment:0") == pytest.approx(b / (a * a + b * b),
                                                                     rel=0.05)
