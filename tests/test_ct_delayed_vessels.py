"""Liver vessel segmentation at low contrast-to-noise (delayed phase: 20-30 HU between the
veins and the liver against 11 HU of noise): the parenchyma's noise SD and the pre-smoothing
that the thresholds are set from (vasomics.chain.liver_vessels)."""

import numpy as np
import pytest
from scipy import ndimage

from vasomics.chain.liver_vessels import (
    LiverVesselParams,
    _parenchyma_sd,
    _smooth_to_cnr,
    segment_liver_vessels,
)
from vasomics.chain.phase import measure_regions
from vasomics.chain.qc import estimate_noise_sd
from vasomics.chain.run import RunParams, _graph
from vasomics.phantoms.liver_ct import liver_ct_phantom, truth_organs
from vasomics.phantoms.truth import liver_tree_truth


def test_parenchyma_sd_unbiased_when_the_contrast_is_low():
    """Parenchyma N(0, 11 HU) with 6 % vessel voxels 28 HU brighter: the SD comes out
    within 6 % of 11 HU (measured 11.5; clipping at half the contrast, 1.3 SDs, as the
    stage did before gave 8.6, which put the low threshold at 1.9 instead of 2.5 noise SDs
    and let noise clusters grow into the trees). At high contrast (80 HU) the clip at half
    the contrast still keeps the vessels out (within 3 %)."""
    rng = np.random.default_rng(0)
    par = rng.normal(0.0, 11.0, 200_000)
    for contrast, tol in ((28.0, 0.06), (80.0, 0.03)):
        x = np.concatenate([par, contrast + rng.normal(0.0, 11.0, 12_000)])
        assert abs(_parenchyma_sd(x, contrast) / 11.0 - 1) < tol, contrast
    x = np.concatenate([par, 28.0 + rng.normal(0.0, 11.0, 12_000)])
    clipped = x[np.abs(x) < 14.0]
    assert 1.4826 * np.median(np.abs(clipped - np.median(clipped))) < 9.0  # the old bias


def test_smoothing_grows_only_for_low_contrast():
    """Correlated noise of 11 HU SD (the phantoms' kernel) on a 2.25 mm grid: an 80 HU
    contrast keeps the least smoothing (0.8 mm: its seed threshold, 40 HU, is 3.9 SDs); a
    28 HU contrast (seed threshold 14 HU, 1.2 SDs at 0.8 mm) is smoothed to the largest
    sigma, 1.6 mm, where the parenchyma's SD has fallen to half (measured 10.4 -> 5.6 HU)."""
    rng = np.random.default_rng(1)
    spacing = np.array([2.5, 2.25, 2.25])
    noise = ndimage.gaussian_filter(rng.standard_normal((48, 64, 64)).astype(np.float32), 0.6)
    raw = 100.0 + noise * np.float32(11.0 / noise.std())
    depth = np.full(raw.shape, 50.0, np.float32)
    p = LiverVesselParams()
    sigma, _, sd = _smooth_to_cnr(raw, depth, 100.0, 1.0, 80.0, spacing, p)
    assert sigma == p.smoothing_mm and 10.0 < sd < 12.5
    sigma, _, sd = _smooth_to_cnr(raw, depth, 100.0, 1.0, 28.0, spacing, p)
    assert sigma == p.max_smoothing_mm and sd < 6.5


@pytest.mark.parametrize("seed", [508, 511])
def test_delayed_trees_not_grown_through_the_noise(seed):
    """Delayed-phase phantoms (96×160×160, veins 24-39 HU above the liver, noise SD 12 HU)
    on the generator's organ masks, noise SD estimated as the chain does: the portal tree's
    centerline length is within 30 % of the truth; the hepatic tree's at most 50 % long
    (noise clusters percolating through the parenchyma: before the SD fix and the adaptive
    smoothing portal +1.05 / +0.64, hepatic +0.54 / +0.19) and at most 60 % short (its
    faint thin veins are missed at these voxels). Measured: portal -0.20 / +0.17, hepatic
    -0.31 / -0.51 (session 39: a 9 mm strand returning to its junction around a hole of a
    3.3 mm vein's lumen, 3.5 mm off its axis, is cut as a strand of one lumen; -0.29 /
    -0.49 before)."""
    ct, truth = liver_ct_phantom((96, 160, 160), phase="delayed", seed=seed,
                                 z_extent_mm=240.0)
    organs = truth_organs(truth)
    ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs, 5.0),
                                estimate_noise_sd(ct.array))
    assert ves.status == "ok"
    want = liver_tree_truth(truth)
    for tree, scope, short, long in (("portal", "vessel:portal_venous_tree", 0.3, 0.3),
                                     ("hepatic", "vessel:hepatic_venous_tree", 0.6, 0.5)):
        g = _graph(ct, ves.centerline_mask(tree), RunParams().graph, ves.roots.get(tree))
        length = sum(float(np.sum(np.linalg.norm(np.diff(g.segment_points(s), axis=0), axis=1)))
                     for s in range(g.n_segments))
        err = length / want[("VX.A.V.TREE_LEN", scope)] - 1
        assert -short < err < long, (tree, err)


def test_a_tree_too_faint_to_follow_is_not_traced():
    """Seed 517 (delayed; the portal trunk 27 HU above the liver, the tree's labelled voxels
    13 HU on median, noise 9.2 HU) through the whole chain: the contrast gate is passed by
    the phase model's imputed portal HU, and only 8 % of the portal voxels passed the
    thresholds (tree length -0.79, status ok). The traced lumens are 0.11 % (portal) and
    0.08 % (hepatic) of the liver's volume, against 0.9-2.3 % for every tree traced on seeds
    500-523: both are left empty and the status says why, so no feature is computed from
    them. Seed 508 (delayed, traced: portal 1.46 %, hepatic 1.32 %) keeps both trees."""
    from vasomics.chain.run import characterize

    for seed, traced in ((517, False), (508, True)):
        ct, _ = liver_ct_phantom((96, 160, 160), phase="delayed", seed=seed,
                                 z_extent_mm=240.0)
        ves = characterize(ct, force=True).vessels
        assert ves.portal.any() == traced and ves.hepatic.any() == traced, ves.status
        assert ("do not stand out" in ves.status) != traced, ves.status


@pytest.mark.parametrize("hepatic_contrast, warned", [(35.0, True), (45.0, False),
                                                      (60.0, False)])
def test_hepatic_veins_fainter_than_the_thresholds_are_reported(hepatic_contrast, warned):
    """Phantom 501 (portal venous, 96×160×160) with the portal vein 100 HU and the IVC 90 HU
    above the liver, which set the seed threshold at 45 HU, and hepatic veins only
    ``hepatic_contrast`` HU above it (truth organs). At 35 HU the hepatic veins' core reads
    29 HU, more than a noise SD (11 HU) under the seed threshold: measured 37 % of their
    lumen traced, and the status says the tree is likely incomplete instead of "ok". At 45 /
    60 HU (core 47 / 60 HU): 84 / 94 % traced, status "ok"."""
    rng = np.random.default_rng(501)
    from vasomics.phantoms.liver_ct import sample_enhancement

    hu = sample_enhancement("portal_venous", rng)
    hu.update(portal=hu["liver"] + 100.0, ivc=hu["liver"] + 90.0,
              hepatic=hu["liver"] + hepatic_contrast)
    ct, truth = liver_ct_phantom((96, 160, 160), phase="portal_venous", seed=501,
                                 z_extent_mm=240.0, hu=hu)
    organs = truth_organs(truth)
    ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs),
                                estimate_noise_sd(ct.array))
    lumen = truth.mask("hepatic")
    recall = np.count_nonzero(ves.hepatic & lumen) / np.count_nonzero(lumen)
    assert (recall < 0.5) == warned, recall
    assert ("hepatic tree likely incomplete" in ves.status) == warned, ves.status
    assert "portal tree likely incomplete" not in ves.status
    assert ves.status == "ok" or warned, ves.status


@pytest.mark.parametrize("ivc_contrast, unenhanced", [(0.0, True), (10.0, True),
                                                      (90.0, False)])
def test_a_tree_whose_root_is_not_enhanced_says_so(ivc_contrast, unenhanced):
    """Phantom 501 (arterial, 96×160×160, truth organs) with the IVC and the hepatic veins
    ``ivc_contrast`` HU above the liver. Unenhanced (an arterial scan's usual state), the
    hepatic tree is not traced and the status gives the IVC's HU against the liver's
    instead of "hepatic root (IVC) not found", which read like a failed search, or, at 10
    HU, instead of what the few bright voxels the thresholds kept left ("its lumen is 0.029
    % of the liver's volume"); enhanced, the tree is traced."""
    rng = np.random.default_rng(501)
    from vasomics.phantoms.liver_ct import sample_enhancement

    hu = sample_enhancement("arterial", rng)
    hu.update(ivc=hu["liver"] + ivc_contrast, hepatic=hu["liver"] + ivc_contrast)
    ct, truth = liver_ct_phantom((96, 160, 160), phase="arterial", seed=501,
                                 z_extent_mm=240.0, hu=hu)
    organs = truth_organs(truth)
    ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs),
                                estimate_noise_sd(ct.array))
    assert ves.hepatic.any() != unenhanced, ves.status
    assert ("hepatic tree not traced: the IVC is not enhanced" in ves.status) == unenhanced, \
        ves.status
    assert "hepatic root (IVC) not found" not in ves.status
    assert ves.portal.any()
