"""Liver vasomics features (features/liver.py) against the liver CT phantom's truth."""

import edt
import numpy as np
import pytest

from vasomics.features.liver import liver_features
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom
from vasomics.phantoms.truth import liver_tree_truth


def test_liver_features_against_phantom_truth():
    ct, truth = liver_ct_phantom((60, 96, 96), seed=4, z_extent_mm=180.0, min_radius_mm=1.0,
                                 noise_sd_hu=10.0, psf_sigma_mm=0.1)
    lab = truth.labels.array
    portal, hepatic = lab == LABELS["portal"], lab == LABELS["hepatic"]
    organs = {"liver": truth.mask("liver"), "spleen": lab == LABELS["spleen"],
              "aorta": lab == LABELS["aorta"], "portal_vein": portal}
    t = liver_features(ct, organs, portal, hepatic, truth.portal, truth.hepatic,
                       truth.noise_sd_hu)
    v, hu = truth.values, truth.hu
    pt, ht = "vessel:portal_venous_tree", "vessel:hepatic_venous_tree"
    liver_ml, spleen_ml = v["liver_volume_mm3"] / 1e3, v["spleen_volume_mm3"] / 1e3
    close = lambda a, b, tol=0.05: np.isclose(a, b, rtol=tol)  # noqa: E731
    assert close(t.value("VX.A.T.LIVER_VOL"), liver_ml)
    assert close(t.value("VX.A.T.SPLEEN_VOL"), spleen_ml)
    assert close(t.value("VX.P.T.LIVER_SPLEEN_RATIO"), liver_ml / spleen_ml)
    # the trees within 12 mm of the liver: the portal trunk toward the confluence and the
    # splenic and mesenteric veins lie beyond (the whole truth portal tree is 918 mm long,
    # 743 mm of it in scope); the truth adds each terminal's rounded end (a radius) to the
    # axis length, the features measure the graph given (here the truth's axes)
    truth_in_scope = liver_tree_truth(truth)
    assert t.value("VX.A.V.TREE_LEN", pt) < 0.85 * v["portal_length_mm"]
    assert close(t.value("VX.A.V.TREE_LEN", ht), v["hepatic_length_mm"], 1e-3)  # all inside
    near = edt.edt(~organs["liver"], anisotropy=ct.spacing) <= 12.0
    for graph, scope in ((truth.portal, pt), (truth.hepatic, ht)):
        ends = [s for s in range(graph.n_segments)
                if graph.node_kind[graph.segment_end[s]] == "endpoint"]
        tips = np.rint(ct.physical_to_index(
            np.array([graph.segment_points(s)[-1] for s in ends]))).astype(int)
        caps = sum(graph.segment_radius(s)[-1] for s, ijk in zip(ends, tips, strict=True)
                   if near[tuple(ijk)])
        axis = truth_in_scope[("VX.A.V.TREE_LEN", scope)] - caps
        assert close(t.value("VX.A.V.TREE_LEN", scope), axis, 1e-3), scope
        assert close(t.value("VX.A.V.LENGTH_DENSITY", scope), axis / v["liver_volume_mm3"],
                     1e-3)  # mm^-2
    for fid in ("VX.A.V.TREE_VOL", "VX.A.V.VESSEL_VOLUME_FRACTION"):  # the same voxels
        for scope in (pt, ht):
            assert close(t.value(fid, scope), truth_in_scope[(fid, scope)], 1e-9), (fid, scope)
    assert t.value("VX.A.V.TREE_VOL", pt) < 0.9 * v["portal_volume_mm3"] / 1e3
    units = dict(zip(t.frame.feature_id, t.frame.unit, strict=False))
    assert units["VX.A.V.VESSEL_VOLUME_FRACTION"] == "1"
    assert units["VX.A.V.LENGTH_DENSITY"] == "mm^-2"
    n_term = int(np.sum(truth.hepatic.node_kind == "endpoint"))
    assert close(t.value("VX.P.V.DISTAL_RICHNESS", ht), n_term / (t.value("VX.A.T.LIVER_VOL") / 1000),
                 1e-9)
    assert abs(t.value("VX.M.V.MURRAY_DEV", ht)) < 0.05  # Murray radii by construction
    assert close(t.value("VX.C.V.LUMEN_HU", pt), hu["portal"])
    assert close(t.value("VX.C.V.CNR", pt), (hu["portal"] - hu["liver"]) / 10.0, 0.10)
    main = truth.portal.segment_points(int(np.nonzero(
        truth.portal.segment_label == "main_portal_vein")[0][0]))
    chord = np.linalg.norm(main[-1] - main[0]) / np.linalg.norm(np.diff(main, axis=0),
                                                                axis=1).sum()
    assert close(t.value("VX.A.V.HILAR_STRAIGHTNESS", "vessel:main_portal_vein"), chord, 0.01)
    assert close(t.value("VX.A.V.NAMED_DIAMETER", "vessel:main_portal_vein"), 14.0)
    assert close(t.value("VX.X.T.PORTAL_HEPATIC_VOL_RATIO"),
                 truth_in_scope[("VX.A.V.TREE_VOL", pt)]
                 / truth_in_scope[("VX.A.V.TREE_VOL", ht)])
    assert close(t.value("VX.C.T.PV_AORTA_RATIO"), hu["portal"] / hu["aorta"])


def test_a_tree_without_a_graph_is_not_measured():
    """A venous mask too small for a centerline graph (an arterial-phase scan leaves a few
    hepatic-vein voxels) is an untraced tree: every feature of that tree is NaN, the volume
    included (it used to read 5 voxels, i.e. -100 % against the truth), and the
    portal-to-hepatic volume ratio is NaN; the traced tree is still measured."""
    ct, truth = liver_ct_phantom((40, 64, 64), seed=4, z_extent_mm=180.0, min_radius_mm=1.5,
                                 noise_sd_hu=10.0, psf_sigma_mm=0.1)
    lab = truth.labels.array
    portal = lab == LABELS["portal"]
    hepatic = np.zeros_like(portal)
    hepatic[tuple(np.argwhere(lab == LABELS["hepatic"])[:5].T)] = True
    organs = {"liver": truth.mask("liver"), "spleen": lab == LABELS["spleen"]}
    t = liver_features(ct, organs, portal, hepatic, truth.portal, None, truth.noise_sd_hu)
    ht = t.frame[t.frame.scope == "vessel:hepatic_venous_tree"]
    assert len(ht) == 8 and ht.value.isna().all(), ht
    assert np.isnan(t.value("VX.X.T.PORTAL_HEPATIC_VOL_RATIO"))
    assert np.isclose(t.value("VX.A.V.TREE_VOL", "vessel:portal_venous_tree"),
                      liver_tree_truth(truth)[("VX.A.V.TREE_VOL", "vessel:portal_venous_tree")])


def test_portal_to_aorta_ratio_reads_the_lumen_cores():
    """A main portal vein of radius 4 mm along z (1 mm voxels) reads 150 HU within 2.5 mm of
    its axis and 90 HU beyond (the edge's partial volume), an aorta (a 12 mm square tube)
    200 HU inside and 100 HU in its outer 2 mm: the ratio of the cores (the vein within half
    its radius of the main portal vein's centerline, the aorta at least half its greatest
    depth inside) is 150 / 200 = 0.75; over the whole masks it read 90 / 100 = 0.90. An
    aorta reading 0 HU gives NaN, not a division by zero, and so does a portal tree that
    names no main portal vein, unless a localized portal vein is given."""
    from vasomics.image import Image
    from vasomics.phantoms.truth import tree_graph

    shape = (30, 40, 40)
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    d = np.hypot(y - 12.0, x - 12.0)
    vein = d <= 4.0
    aorta = (y >= 24) & (y < 36) & (x >= 24) & (x < 36)
    aorta_core = (y >= 26) & (y < 34) & (x >= 26) & (x < 34)
    hu = np.where(vein, np.where(d <= 2.5, 150.0, 90.0), 50.0)
    hu = np.where(aorta, np.where(aorta_core, 200.0, 100.0), hu).astype(np.float32)
    # an LPI-like grid with an origin: the centerline is given in LPS mm
    ct = Image(hu, spacing=(1.0, 1.0, 1.0), origin=(50.0, -20.0, 7.0),
               direction=np.diag([-1.0, 1.0, -1.0]), modality="CT")
    axis = ct.index_to_physical(np.stack([np.arange(0.0, 29.5, 0.5), np.full(59, 12.0),
                                          np.full(59, 12.0)], 1))
    graph = tree_graph([axis], [np.full(59, 4.0)], [-1])
    main = graph.replace(segment_label=np.array(["main_portal_vein"], dtype=object))
    empty = np.zeros(shape, bool)
    t = liver_features(ct, {"aorta": aorta}, vein, empty, main, None, 10.0)
    assert t.value("VX.C.T.PV_AORTA_RATIO") == pytest.approx(0.75)
    unnamed = liver_features(ct, {"aorta": aorta}, vein, empty, graph, None, 10.0)
    assert np.isnan(unnamed.value("VX.C.T.PV_AORTA_RATIO"))
    # without a named main portal vein, a localized portal vein the caller trusts is read on
    # its core (here the same tube: 150 HU within half its depth of 4.5 mm)
    localized = liver_features(ct, {"aorta": aorta, "portal_vein": vein}, vein, empty, graph,
                               None, 10.0)
    assert localized.value("VX.C.T.PV_AORTA_RATIO") == pytest.approx(0.75)
    water = ct.with_array(np.where(aorta, 0.0, hu).astype(np.float32))
    t = liver_features(water, {"aorta": aorta}, vein, empty, main, None, 10.0)
    assert np.isnan(t.value("VX.C.T.PV_AORTA_RATIO"))


def test_tree_length_and_volume_count_the_liver_and_its_hilum_only():
    """Analytic scope: a straight vein of radius 3 mm along z (2 mm slices, 1 mm pixels) from
    0 to 118 mm; the liver fills the slices from 60 mm on. The trees are measured within 12 mm
    of the liver: the slices from index 24 (48 mm; its voxel starts at 47 mm) on, so 71 mm of
    centerline and the tube's voxels of slices 24-59, whatever lies outside."""
    from vasomics.image import Image
    from vasomics.phantoms.truth import tree_graph

    spacing = (2.0, 1.0, 1.0)
    shape = (60, 40, 40)
    z, y, x = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)],
                          indexing="ij")
    tube = (y - 20.0) ** 2 + (x - 20.0) ** 2 <= 9.0
    liver = z >= 60.0
    ct = Image(np.where(tube, 200.0, 50.0).astype(np.float32), spacing=spacing, modality="CT")
    axis = np.stack([np.full(237, 20.0), np.full(237, 20.0), np.arange(0.0, 118.5, 0.5)],
                    1)  # LPS (x, y, z) mm
    graph = tree_graph([axis], [np.full(237, 3.0)], [-1])
    t = liver_features(ct, {"liver": liver}, tube, np.zeros(shape, bool), graph, None, 10.0)
    pt = "vessel:portal_venous_tree"
    assert np.isclose(t.value("VX.A.V.TREE_LEN", pt), 71.0, atol=0.26)  # 0.25 mm sampling
    voxels = np.count_nonzero(tube[24:])
    assert voxels == 36 * np.count_nonzero(tube[0])
    assert np.isclose(t.value("VX.A.V.TREE_VOL", pt), voxels * 2.0 / 1000)
    assert np.isclose(t.value("VX.A.V.VESSEL_VOLUME_FRACTION", pt),
                      voxels / np.count_nonzero(liver))
    # a wider hilum margin takes in more of the vein: 30 mm -> from slice 15 (29 mm) on
    wide = liver_features(ct, {"liver": liver}, tube, np.zeros(shape, bool), graph, None, 10.0,
                          hilum_margin_mm=30.0)
    assert np.isclose(wide.value("VX.A.V.TREE_LEN", pt), 118.0 - 29.0, atol=0.26)
    # no liver, no scope: the trees are not measured
    none = liver_features(ct, {}, tube, np.zeros(shape, bool), graph, None, 10.0)
    assert np.isnan(none.value("VX.A.V.TREE_LEN", pt))
    # an empty liver mask (a scan the localization found no liver in) is no liver either:
    # NaN per tree and per liver volume, never a division by zero
    empty = liver_features(ct, {"liver": np.zeros(shape, bool)}, tube, np.zeros(shape, bool),
                           graph, None, 10.0)
    assert empty.value("VX.A.T.LIVER_VOL") == 0.0
    for fid in ("VX.A.V.TREE_LEN", "VX.A.V.VESSEL_VOLUME_FRACTION", "VX.P.V.DISTAL_RICHNESS"):
        assert np.isnan(empty.value(fid, pt)), fid


def test_named_diameter_weights_each_point_by_its_own_segments_arc():
    """One name on two segments apart: 10 mm of radius 2 mm and 30 mm of radius 5 mm. The
    length-weighted median radius is 5 mm (diameter 10 mm). Before, a segment's last point
    carried the 90 mm jump to the next segment's start, and the median read 2 mm (4 mm)."""
    from vasomics.features.liver import named_diameters
    from vasomics.vessel_graph import VesselGraph

    x = np.linspace(0.0, 1.0, 21)[:, None]
    short = x * [10.0, 0, 0]
    long = [100.0, 0, 0] + x * [30.0, 0, 0]
    g = VesselGraph.from_polylines([short, long], [2.0, 5.0],
                                   labels=["main_portal_vein", "main_portal_vein"])
    assert named_diameters(g) == {"main_portal_vein": 10.0}


def _main_portal_vein_with_a_strand():
    """A straight main portal vein (radius 7 mm, 40 mm from its root at the origin along x,
    two segments joined 10 mm from the root) dividing into right and left portal veins,
    and a 58.5 mm strand (radius 1.5 mm) leaving the trunk's first junction and running
    back and forth inside its lumen, also named main portal vein (what the chain makes of
    strands along a thick lumen, corner branches and the artery's remnants)."""
    from vasomics.vessel_graph import VesselGraph

    def line(*pts):
        pts = np.asarray(pts, float)
        return np.concatenate([a + np.linspace(0, 1, 41)[:-1, None] * (b - a)
                               for a, b in zip(pts[:-1], pts[1:], strict=True)] + [pts[-1:]])

    polylines = [line((0, 0, 0), (10, 0, 0)), line((10, 0, 0), (40, 0, 0)),
                 line((10, 0, 0), (10, 3, 0), (38, 3, 0), (38, 4.5, 0), (12, 4.5, 0)),
                 line((40, 0, 0), (60, 10, 0)), line((40, 0, 0), (55, -15, 0))]
    g = VesselGraph.from_polylines(polylines, [7.0, 7.0, 1.5, 6.0, 5.0], labels=[
        "main_portal_vein"] * 3 + ["right_portal_vein", "left_portal_vein"])
    kind = g.node_kind.copy()
    kind[np.argmin(np.linalg.norm(g.node_position, axis=1))] = "root"
    return g.replace(node_kind=kind)


def test_main_portal_vein_diameter_and_straightness_read_on_its_stem():
    """The stem runs from the root to the division (the farthest node where a differently
    named vessel leaves): diameter 14 mm, straightness 1. Over all its segments (before
    session 39) the strand, longer than the trunk, gave the median (diameter 3 mm) and,
    chained in, a straightness of 0.10."""
    from vasomics.features.liver import hilar_straightness, named_diameters, named_stem

    g = _main_portal_vein_with_a_strand()
    stem = named_stem(g, "main_portal_vein")
    assert [s for s, _ in stem] == [0, 1] and all(forward for _, forward in stem)
    d = named_diameters(g)
    assert d["main_portal_vein"] == 14.0
    assert d["right_portal_vein"] == 12.0 and d["left_portal_vein"] == 10.0
    assert hilar_straightness(g) == pytest.approx(1.0, abs=1e-9)
    no_root = g.replace(node_kind=np.where(g.node_kind == "root", "endpoint", g.node_kind))
    assert named_stem(no_root, "main_portal_vein") is None
    # without a root, its largest segment (over all its segments, the strand's 3 mm)
    assert named_diameters(no_root)["main_portal_vein"] == 14.0


def test_a_stem_entered_from_a_thin_tip_is_not_the_vessels_stem():
    """A right hepatic vein whose graph root is a thin tip at the IVC's wall (radius 1 mm,
    6 mm long: a side branch's end taken for an ostium) and whose wide trunk (radius 4 mm,
    60 mm) carries on past the junction where a middle hepatic vein (radius 2.5 mm) leaves
    it. Its stem from that root to the junction holds only the tip, so the diameter is read
    on its trunk from the tip (the tip and the wide trunk): 8 mm. Read on that stem
    (session 42) it was 2 mm."""
    from vasomics.features.liver import named_diameters, named_stem
    from vasomics.vessel_graph import VesselGraph

    def line(a, b):
        return np.asarray(a, float) + np.linspace(0, 1, 31)[:, None] * np.subtract(b, a)

    polylines = [line((0, 0, 0), (6, 0, 0)), line((6, 0, 0), (6, 60, 0)),
                 line((6, 0, 0), (40, -20, 0))]
    g = VesselGraph.from_polylines(polylines, [1.0, 4.0, 2.5], labels=[
        "right_hepatic_vein", "right_hepatic_vein", "middle_hepatic_vein"])
    kind = g.node_kind.copy()
    kind[np.argmin(np.linalg.norm(g.node_position, axis=1))] = "root"
    g = g.replace(node_kind=kind)
    assert [s for s, _ in named_stem(g, "right_hepatic_vein")] == [0]
    d = named_diameters(g)
    assert d["right_hepatic_vein"] == 8.0 and d["middle_hepatic_vein"] == 5.0


def test_a_vein_no_named_vessel_leaves_reads_its_trunk():
    """A hepatic vein (trunk radius 5 mm, 50 mm from its ostium, then two branches of 3 mm
    that each divide into two of 1.5 mm) and a 4 mm piece of it cut off at the IVC's wall
    (its own root). Over all its segments the length-weighted median radius is that of the
    thin branches (3 mm across, session 43's reading); its trunk, from the ostium down to the
    first division into two major branches, reads 10 mm, the generator's radius, however
    many thin branches a scan resolves."""
    from vasomics.features.liver import named_diameters, named_trunk
    from vasomics.vessel_graph import VesselGraph

    def line(a, b):
        return np.asarray(a, float) + np.linspace(0, 1, 41)[:, None] * np.subtract(b, a)

    fork = np.array([50.0, 0, 0])
    lines, radii = [line((0, 0, 0), fork)], [5.0]
    for side in (-1, 1):
        mid = fork + (25, side * 18, 0)
        lines.append(line(fork, mid))
        radii.append(3.0)
        for turn in (-1, 1):
            lines.append(line(mid, mid + (30, side * 18 + turn * 22, 0)))
            radii.append(1.5)
    lines.append(line((-3, 10, 0), (-3, 14, 0)))
    radii.append(0.8)
    g = VesselGraph.from_polylines(lines, radii, labels=["right_hepatic_vein"] * len(lines))
    kind = g.node_kind.copy()
    for root in ((0, 0, 0), (-3, 10, 0)):
        kind[np.argmin(np.linalg.norm(g.node_position - root, axis=1))] = "root"
    g = g.replace(node_kind=kind)
    assert named_trunk(g, "right_hepatic_vein") == [0]
    assert named_diameters(g)["right_hepatic_vein"] == 10.0
