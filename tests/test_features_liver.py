"""Liver vasomics features (features/liver.py) against the liver CT phantom's truth."""

import numpy as np

from vasomics.features.liver import liver_features
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom


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
    assert close(t.value("VX.A.V.TREE_LEN", pt), v["portal_length_mm"])
    assert close(t.value("VX.A.V.TREE_LEN", ht), v["hepatic_length_mm"])
    assert close(t.value("VX.A.V.TREE_VOL", pt), v["portal_volume_mm3"] / 1e3)
    assert close(t.value("VX.A.V.VESSEL_VOLUME_FRACTION", ht),
                 v["hepatic_volume_mm3"] / v["liver_volume_mm3"])
    assert close(t.value("VX.A.V.LENGTH_DENSITY", pt),
                 v["portal_length_mm"] / v["liver_volume_mm3"])  # mm^-2
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
                 v["portal_volume_mm3"] / v["hepatic_volume_mm3"])
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
    assert t.value("VX.A.V.TREE_VOL", "vessel:portal_venous_tree") == \
        np.count_nonzero(portal) * ct.voxel_volume / 1000
