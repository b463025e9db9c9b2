"""CT chain: atlas localization (real CTs), liver vessel separation (3D-IRCADb labels) and
anatomical naming (liver phantom)."""

import numpy as np
import pytest

from vasomics.chain.localize import LocalizeParams, _dice, _sitk, localize
from vasomics.chain.naming import name_hepatic_veins, name_portal_tree
from vasomics.image import Image
from vasomics.io.images import read_image
from vasomics.phantoms.liver_ct import (
    IRCADB_COMPARTMENTS,
    LABELS,
    ct_from_labels,
    liver_ct_phantom,
    truth_organs,
)
from vasomics.phantoms.truth import tree_graph

TS_NAMES = {"liver": "liver", "spleen": "spleen", "aorta": "aorta"}


def _deformed_atlas_scan(shared_data, seed=0):
    """example_ct_sm (the atlas scan itself) under a random affine + B-spline deformation,
    resampled onto a different 2.5 mm grid: the atlas does not see itself unchanged."""
    import SimpleITK as sitk

    d = shared_data / "totalsegmentator_examples"
    src = read_image(d / "example_ct_sm.nii.gz")
    fixed = _sitk(src, src.array.astype(np.float32))
    rng = np.random.default_rng(seed)
    aff = sitk.AffineTransform(3)
    centre = fixed.TransformContinuousIndexToPhysicalPoint([s / 2 for s in fixed.GetSize()])
    aff.SetCenter(centre)
    rot = sitk.Euler3DTransform()
    rot.SetRotation(*np.deg2rad(rng.uniform(-6, 6, 3)))
    m = np.array(rot.GetMatrix()).reshape(3, 3) @ np.diag(rng.uniform(0.92, 1.08, 3))
    aff.SetMatrix(m.ravel().tolist())
    aff.SetTranslation(rng.uniform(-10, 10, 3).tolist())
    bs = sitk.BSplineTransformInitializer(fixed, [3, 3, 2])
    bs.SetParameters(rng.normal(0, 4, len(bs.GetParameters())).tolist())
    tr = sitk.CompositeTransform([aff, bs])
    size, spacing = np.array([150, 130, 40]), np.array([2.5, 2.5, 2.4])
    ref = sitk.Image(size.tolist(), sitk.sitkFloat32)
    ref.SetSpacing(spacing.tolist())
    ref.SetDirection(fixed.GetDirection())
    ref.SetOrigin((np.array(centre) - np.array(fixed.GetDirection()).reshape(3, 3)
                   @ (size * spacing / 2)).tolist())
    out = sitk.Resample(fixed, ref, tr, sitk.sitkLinear, -1000)
    ct = Image(sitk.GetArrayFromImage(out), spacing=tuple(spacing[::-1]), origin=out.GetOrigin(),
               direction=np.array(out.GetDirection()).reshape(3, 3), modality="CT")
    truth = {}
    for key, name in TS_NAMES.items():
        m = read_image(d / "example_seg_fast" / f"{name}.nii.gz")
        warped = sitk.Resample(_sitk(m, (m.array > 0).astype(np.uint8)), ref, tr,
                               sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        truth[key] = sitk.GetArrayFromImage(warped) > 0
    return ct, truth


def test_localization_dice_on_deformed_totalsegmentator_scan(shared_data):
    """Affine + B-spline localization; measured (seed 0): liver 0.94, spleen 0.91,
    aorta 0.88 (affine only: 0.94, 0.92, 0.87; seeds 1-2 give an affine aorta of 0.79-0.84,
    the B-spline stage 0.87-0.88)."""
    ct, truth = _deformed_atlas_scan(shared_data)
    loc = localize(ct, LocalizeParams(bspline=True))
    dice = {k: _dice(loc.organs[k], truth[k]) for k in truth}
    assert dice["liver"] >= 0.80 and dice["spleen"] >= 0.80, dice
    assert dice["aorta"] >= 0.85, dice


def _ircadb(shared_data):
    lab = read_image(shared_data / "ircadb_01_01" / "3Dircadb0101Labeled.vti")
    ct = ct_from_labels(lab, IRCADB_COMPARTMENTS, "portal_venous", noise_sd_hu=12.0, seed=0)
    return lab.array, ct


def test_ircadb_cross_subject_localization(shared_data):
    """3D-IRCADb 1.1 labels → synthetic portal-venous CT (PSF 1 mm, noise 12 HU, in memory).
    Localization is cross-subject (TotalSegmentator atlas → IRCADb anatomy). Tree separation
    and portal naming on this case: tests/test_ct_ircadb.py. Liver 0.943 (volume -0.10)
    since its refinement follows thick growth (``follow_organs``); 0.909 (-0.16) when it
    stopped at a pass of Dice 0.93 with the previous one. As the chain measures organs (the
    liver's followed extent, ``Localization.extent``, and the borders at the scan's
    resolution, ``refine_organ_borders``): liver 0.965 (volume -0.055; 0.963 and -0.059
    without the extent), spleen 0.930 -> 0.947 (volume -0.049 -> +0.023); since the
    spleen's measured mask is trimmed of tissue unlike its core (1.7 ml here): 0.946
    (+0.019)."""
    from vasomics.chain.organ_edge import refine_organ_borders
    from vasomics.chain.qc import estimate_noise_sd

    a, ct = _ircadb(shared_data)
    loc = localize(ct)
    liver_truth = np.isin(a, [449, 451, 465, 481])
    assert _dice(loc.organs["liver"], liver_truth) >= 0.93
    assert _dice(loc.organs["spleen"], a == 385) >= 0.85
    organs = refine_organ_borders(ct, loc.organs | loc.extent, estimate_noise_sd(ct.array))
    assert _dice(organs["liver"], liver_truth) >= 0.955
    assert -0.08 <= organs["liver"].sum() / liver_truth.sum() - 1 <= -0.03
    assert _dice(organs["spleen"], a == 385) >= 0.94


def test_spleen_localization_on_phantoms_across_draws():
    """Liver CT phantoms (64x96x96, 3.75 mm, 240 mm tall), one seed per contrast phase where
    the spleen used to fail: the registered atlas spleen lands 30-45 mm below the phantom's
    and the in-plane snap took the abdominal wall (spleen Dice 0.61 / 0.90 / 0.67 / 0.96 for
    seeds 503 / 506 / 507 / 501 before the generator's left hepatic vein was fixed); with the
    cranio-caudal snap search 0.94 / 0.97 / 0.96 / 0.97 (liver 0.86 / 0.92 / 0.91 / 0.83,
    aorta 0.98 / 0.96 / 0.93 / 0.95). Liver is held to the issue's 0.80. Native scans are
    left out: there the spleen (39-45 HU) and muscle (50 HU) do not separate (0.58-0.66 at
    96x160x160)."""
    for seed, phase in ((503, "delayed"), (506, "portal_venous"), (507, "delayed"),
                        (501, "arterial")):
        ct, truth = liver_ct_phantom((64, 96, 96), phase=phase, seed=seed, z_extent_mm=240.0)
        org = truth_organs(truth)
        loc = localize(ct)
        dice = {k: _dice(loc.organs[k], org[k]) for k in ("liver", "spleen", "aorta")}
        assert dice["spleen"] >= 0.87, (seed, dice)
        assert dice["liver"] >= 0.80 and dice["aorta"] >= 0.90, (seed, dice)


def test_liver_followed_beyond_the_atlas():
    """Liver CT phantoms (96x160x160 over 300 mm, portal venous) whose liver the registered atlas covers
    only in part (the inferior right lobe). The liver's refinement passes keep their thick
    growth until it stops (``follow_opening_mm`` 6 mm): Dice 0.959 / 0.954, volume -0.078 /
    -0.087 (seeds 500 / 501; 0.962 / 0.957, -0.073 / -0.081 before the liver's growth
    beyond the atlas was opened by 5 mm instead of 4). Stopping at a pass of Dice 0.93 with the previous one (the
    spleen's rule) left 0.928 / 0.935, -0.135 / -0.120. Keeping every pass's growth leaked
    into the abdominal wall on 501 arterial (+0.56). That is the vessel stage's search
    region; the measured extent is followed on until following ends
    (``follow_passes``): Dice 0.984 / 0.986, volume -0.031 / -0.025."""
    for seed in (500, 501):
        ct, truth = liver_ct_phantom((96, 160, 160), phase="portal_venous", seed=seed)
        liver = truth_organs(truth)["liver"]
        loc = localize(ct)
        vol_err = loc.organs["liver"].sum() / liver.sum() - 1
        assert _dice(loc.organs["liver"], liver) >= 0.95, seed
        assert -0.10 <= vol_err <= 0.0, (seed, vol_err)
        extent = loc.extent["liver"]
        assert _dice(extent, liver) >= 0.975, seed
        assert -0.05 <= extent.sum() / liver.sum() - 1 <= 0.0, seed


def test_registration_start_that_puts_the_liver_on_fat_is_not_chosen():
    """Phantom 517 (delayed, 96x160x160 over 240 mm): of the three refined registration
    starts, the one with the best mutual information put the atlas liver 25 mm low, on fat
    and bowel (-13 HU); the localized liver read -30 HU, Dice 0.00, and the phase came out
    portal venous. Starts whose liver lands below ``liver_min_hu`` (0 HU) lose to any start
    whose liver does not: liver Dice 0.89, its median parenchyma HU."""
    ct, truth = liver_ct_phantom((96, 160, 160), phase="delayed", seed=517, z_extent_mm=240.0)
    liver = truth_organs(truth)["liver"]
    loc = localize(ct)
    assert _dice(loc.organs["liver"], liver) >= 0.85
    assert np.median(ct.array[loc.organs["liver"]]) > 40.0


def test_tubes_followed_outside_the_portal_venous_phase():
    """Liver CT phantoms (64x96x96, 3.75 mm) in arterial and delayed phase, where the IVC's
    intensity matches the liver's (and in delayed scans the aorta's too): growth by
    intensity stopped where the liver touches them, and the liver's refinement took them.
    IVC Dice before tube tracking 0.575 / 0.623 / 0.632 (seeds 500 / 502 / 505), after 0.870 /
    0.893 / 0.930; the delayed aorta of 502 (1.46 SDs from the liver: tracked) 0.846 -> 0.959
    (505's, 1.5 SDs or more: not tracked, 0.917); liver unchanged (0.89-0.92). Since the
    generator turns would-be stub branches into their lobe (2026-12-03; 500's S2 / S3, 31
    voxels; 502 and 505 unchanged): IVC 0.847 / 0.851 / 0.930, liver 0.811 / 0.897 / 0.916.
    On the new 500 the
    affine stage, its metric sampled at random with seed 7, stops in another local optimum
    (cranio-caudal scale 0.79 against 1.02; metric over every atlas body voxel -0.2426
    against -0.2455 with seed 1, which gives IVC 0.872, liver 0.867) and the liver grows
    into the abdominal wall's muscle (docs/ct_chain_history.md, known limits: registration). Held
    to the issue's 0.80 for the liver and 0.84 for the IVC. Since the phantom's portal veins
    keep clear of the hepatic veins (session 33) 502's best start squeezed the atlas
    cranio-caudally (scale 0.81 against 1.05 in-plane: IVC 0.753); since refined starts
    compete with the anisotropy weight (``LocalizeParams.anisotropy_weight``) it takes the
    start at 1.05: liver 0.957, IVC 0.942, its aorta 1.56 SDs of its own from the liver's HU
    and not tracked (0.912; it was 1.46 SDs and tracked, 0.959). 500 keeps its start
    at 0.79 (a metric 3.4 % better than the one at 1.03, beyond the weight's reach)."""
    for seed, phase in ((500, "arterial"), (502, "delayed"), (505, "delayed")):
        ct, truth = liver_ct_phantom((64, 96, 96), phase=phase, seed=seed, z_extent_mm=240.0)
        org = truth_organs(truth)
        loc = localize(ct)
        dice = {k: _dice(loc.organs[k], org[k]) for k in ("liver", "aorta", "ivc")}
        assert dice["ivc"] >= 0.84 and dice["aorta"] >= 0.90, (
            seed, dice)
        assert dice["liver"] >= 0.80, (seed, dice)
        assert not (loc.organs["liver"] & loc.organs["ivc"]).any()
        if seed == 502:  # the near tie goes to the fit nearer a similarity (0.279 without)
            assert loc.affine["anisotropy"] < 0.1


def test_registration_anisotropy_is_the_log_ratio_of_extreme_scales():
    """``_anisotropy``: 0 for any rotation times a uniform scale; ln(1.0 / 0.76) for an
    atlas squeezed cranio-caudally, whatever rotation comes with it."""
    import SimpleITK as sitk

    from vasomics.chain.localize import _anisotropy
    from vasomics.phantoms.truth import rotation_matrix

    rot = rotation_matrix((20.0, -35.0, 50.0))
    for matrix, want in ((1.3 * rot, 0.0), (rot @ np.diag([1.0, 1.0, 0.76]), np.log(1 / 0.76))):
        tr = sitk.AffineTransform(3)
        tr.SetMatrix(tuple(float(v) for v in matrix.ravel()))
        assert _anisotropy(tr) == pytest.approx(want, abs=1e-9)


def test_ivc_keeps_one_section_per_slice():
    """The IVC's refinement reached the portal trunk beside it through their partial-volume
    gap (phantom 602 at 160×320×320: 1272 voxels of the trunk). Here (1.125 mm pixels) a
    vertical tube of radius 9 mm and, 3.4 mm from it, a vessel of radius 7 mm: in some
    slices a section of its own, in others joined by a bridge 2.25 mm wide or a neck 5 mm
    wide. The IVC keeps its own sections only, unshaved; without the opening the bridges
    stay."""
    from vasomics.chain.localize import one_section_per_slice

    sp = (1.5, 1.125, 1.125)
    yy, xx = np.mgrid[:60, :60] * sp[1]
    ivc = (yy - 30) ** 2 + (xx - 22) ** 2 <= 9.0 ** 2
    vessel = (yy - 30) ** 2 + (xx - 22 - 9.0 - 3.4 - 7.0) ** 2 <= 7.0 ** 2
    gap = (np.abs(yy - 30) <= 2.25 / 2 + 1e-6) & (xx > 22) & (xx < 22 + 19.4)
    neck = (np.abs(yy - 30) <= 2.5 + 1e-6) & (xx > 22) & (xx < 22 + 19.4)
    mask = np.stack([ivc | vessel, ivc | vessel | gap, ivc | vessel | neck, ivc])
    kept = one_section_per_slice(mask, sp, 3.0)
    for k in range(4):
        assert not (kept[k] & vessel).any(), k
        assert np.count_nonzero(kept[k] & ivc) >= 0.97 * np.count_nonzero(ivc), k
    assert (kept[3] == ivc).all()  # a section without a neck keeps its shape
    assert (one_section_per_slice(mask, sp, 0.0)[1] & vessel).any()


def test_ivc_sections_drop_liver_tissue_beyond_halfway():
    """Held-out phantom 537 (2.25 mm pixels): the IVC (160 HU) took liver tissue (113 HU)
    beside it in 26 of 63 slices, 82-95 voxels against its 45, and through that tissue the
    main portal vein. Here a tube of radius 8.5 mm at 160 HU in liver at 113 HU, noise of
    12 HU; its mask holds, in 3 of 8 slices, a crescent of liver 2-4 pixels deep and a
    portal vein (166 HU) beyond it. Those slices keep the tube alone (its rim may lose the
    voxels that read closer to the liver); the others are untouched, whatever their HU. An
    arterial IVC darker than the liver (45 against 72 HU, phantom 512) keeps its own
    voxels, not the liver's."""
    from vasomics.chain.localize import sections_of_own_hu

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:40, :40] * 2.25
    tube = (yy - 45) ** 2 + (xx - 40) ** 2 <= 8.5 ** 2
    crescent = ((yy - 45) ** 2 + (xx - 40) ** 2 <= 17.0 ** 2) & (xx > 44) & ~tube
    portal = (yy - 45) ** 2 + (xx - 62) ** 2 <= 5.0 ** 2
    hu = np.where(tube, 160.0, np.where(portal, 166.0, 113.0))
    hu = np.stack([hu + rng.normal(0, 12, hu.shape) for _ in range(8)])
    leaked = tube | crescent | portal
    mask = np.stack([leaked if k in (2, 3, 5) else tube for k in range(8)])
    mask[7] |= crescent & (xx < 50) & (np.abs(yy - 45) < 5)  # 7 voxels, under the cap: kept
    out = sections_of_own_hu(mask, hu, 160.0, 113.0, 1.25)
    for k in (2, 3, 5):
        assert not (out[k] & portal).any(), k
        assert np.count_nonzero(out[k] & ~tube) <= 2, k
        assert np.count_nonzero(out[k] & tube) >= 0.9 * np.count_nonzero(tube), k
    for k in (0, 1, 4, 6, 7):
        assert (out[k] == mask[k]).all(), k
    assert not sections_of_own_hu(np.zeros_like(mask), hu, 160.0, 113.0, 1.25).any()
    dark = np.stack([np.where(tube, 45.0, 72.0) + rng.normal(0, 6, hu[0].shape)
                     for _ in range(8)])
    mask = np.stack([tube | crescent if k in (2, 3, 5) else tube for k in range(8)])
    out = sections_of_own_hu(mask, dark, 45.0, 72.0, 1.25)
    for k in (2, 3, 5):
        assert np.count_nonzero(out[k] & ~tube) <= 2, k
        assert np.count_nonzero(out[k] & tube) >= 0.9 * np.count_nonzero(tube), k


def test_kidney_poles_and_ivc_on_held_out_phantoms():
    """Held-out phantoms 528 and 537 (portal venous, 96x160x160, 2.25 mm pixels). The atlas
    kidneys missed the upper poles, which read like vessels (170 HU) beside the liver, and
    on 537 about 210 mm of the portal tree ran into them: kidney Dice 0.71 / 0.78 with one
    refinement pass, 0.96 / 0.93 with three (``refine_passes``). 537's IVC (160 HU against
    the liver's 113) took liver tissue and, through it, 57 voxels of the main portal vein
    (Dice 0.80); its oversized sections keep their bright voxels (:func:`sections_of_own_hu`):
    0.86, 11 portal voxels left in one slice where a bright bridge joins them."""
    for seed, most_portal in ((528, 0), (537, 15)):
        ct, truth = liver_ct_phantom((96, 160, 160), phase="portal_venous", seed=seed,
                                     z_extent_mm=240.0)
        loc = localize(ct)
        org = truth_organs(truth)
        kidney = truth.labels.array == LABELS["kidney"]
        assert _dice(loc.organs["kidney"], kidney) >= 0.90, seed
        assert _dice(loc.organs["ivc"], org["ivc"]) >= 0.84, seed
        assert np.count_nonzero(loc.organs["ivc"] & org["portal_vein"]) <= most_portal, seed


def _intrahepatic(g):
    keep = [i for i, lab in enumerate(g.segment_label)
            if lab not in ("superior_mesenteric_vein", "splenic_vein")]
    parents = []
    for i in keep:
        p = [j for j in keep if g.segment_end[j] == g.segment_start[i]]
        parents.append(keep.index(p[0]) if p else -1)
    return tree_graph([g.segment_points(i) for i in keep], [g.segment_radius(i) for i in keep],
                      parents).replace(segment_label=g.segment_label[keep])


def test_naming_accuracy_on_phantom_truth_graphs():
    """Per-segment naming (length-weighted) on 20 seeded phantom trees (truth topology; the
    image-derived graphs are exercised by the run test)."""
    acc_p, acc_h = [], []
    for seed in range(20):
        _, truth = liver_ct_phantom((40, 64, 64), seed=seed, min_radius_mm=1.0)
        g = _intrahepatic(truth.portal)
        named = name_portal_tree(g.replace(segment_label=None), None)
        length = g.segment_lengths()
        acc_p.append(np.sum(length * (named.segment_label == g.segment_label)) / length.sum())
        h = truth.hepatic
        ivc = np.mean([h.segment_points(s)[0] for s in range(h.n_segments)
                       if h.segment_generation[s] == 1], axis=0)
        nh = name_hepatic_veins(h.replace(segment_label=None), ivc)
        lh = h.segment_lengths()
        acc_h.append(np.sum(lh * (nh.segment_label == h.segment_label)) / lh.sum())
    assert np.mean(acc_p) >= 0.95 and np.mean(acc_h) >= 0.95
    assert {"main_portal_vein", "right_portal_vein", "left_portal_vein"} <= set(
        named.segment_label.tolist())


def test_localization_is_reproducible(shared_data):
    """The same scan localized twice gives the same organs. The thoracic CT angiogram, where
    the abdominal atlas fits badly, is where multithreaded ITK registration diverged (metric
    -0.135 vs -0.157, organ Dice moving by up to 0.3, in 3 of 3 repeats) before registration
    ran ITK on one thread."""
    cta = read_image(shared_data / "totalsegmentator_examples" / "aorta_report" / "test_result"
                     / "models" / "ct_cropped.nii.gz")
    first, second = localize(cta), localize(cta)
    assert first.metric == second.metric
    assert first.refinement_dice == second.refinement_dice
    assert all(np.array_equal(first.organs[k], second.organs[k]) for k in first.organs)
