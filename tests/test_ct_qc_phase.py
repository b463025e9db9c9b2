"""CT chain: quality control verdicts and contrast phase recognition."""

import numpy as np
import pytest

from vasomics.chain.phase import PHASES, measure_regions, recognize_phase
from vasomics.chain.qc import check_coverage, check_image, check_vessel_contrast
from vasomics.image import Image
from vasomics.io.images import read_image
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom, sample_enhancement

TS = "totalsegmentator_examples"


def _truth_regions(truth):
    lab = truth.labels.array
    env = truth.labels.metadata["liver_envelope"]
    return {"aorta": lab == LABELS["aorta"], "portal_vein": (lab == LABELS["portal"]) & ~env,
            "liver": lab == LABELS["liver"], "ivc": lab == LABELS["ivc"]}


def test_qc_passes_phantom_and_fails_bad_inputs(shared_data):
    ct, truth = liver_ct_phantom((60, 96, 96), seed=1, z_extent_mm=180.0)
    assert check_image(ct).verdict in ("pass", "warn")
    coarse, _ = liver_ct_phantom((30, 64, 64), seed=1)  # 10 mm slices
    assert any(c.name == "slice_spacing" for c in check_image(coarse).failures())
    mr = check_image(read_image(shared_data / TS / "example_mr_sm.nii.gz"))
    assert mr.verdict == "fail" and any(c.name == "hounsfield" for c in mr.failures())
    scout = Image(ct.array[:3], spacing=ct.spacing, modality="CT")
    assert any(c.name == "slices" for c in check_image(scout).failures())
    flat = Image(ct.array[20], spacing=ct.spacing[1:])
    assert check_image(flat).failures()[0].name == "dimensions"
    tagged = ct.with_array(ct.array, metadata={"image_type": ["ORIGINAL", "PRIMARY",
                                                              "LOCALIZER"]})
    assert any(c.name == "localizer" for c in check_image(tagged).failures())
    mixed = ct.with_array(ct.array, metadata={"dicom_series_in_folder": 3})
    assert any(c.name == "series" and c.status == "warn" for c in check_image(mixed).checks)
    modality = ct.with_array(ct.array, modality="MR")
    assert any(c.name == "modality" for c in check_image(modality).failures())
    with pytest.raises(Exception, match="quality control"):
        check_image(modality).raise_if_failed()
    # a scan that does not cover the liver fails coverage
    empty = {"liver": np.zeros(ct.shape, bool)}
    assert check_coverage(ct, empty, 12.0, "portal_venous").verdict == "fail"
    organs = _truth_regions(truth)
    organs["liver"] = truth.mask("liver")
    assert check_coverage(ct, organs, 12.0, "portal_venous").verdict != "fail"
    # a liver mask that a failed registration put on fat and bowel reads below 0 HU
    misplaced = {"liver": (ct.array < -20) & (ct.array > -300)}
    failed = check_coverage(ct, misplaced, 12.0, "portal_venous").failures()
    assert failed and failed[0].name == "liver_coverage" and "HU" in failed[0].reason


def test_vessel_contrast_is_measured_on_the_segmented_vessels():
    """Phantom with a known contrast: portal tree 60 HU above a liver of 100 HU, noise 10 HU,
    2 mm voxels, so CNR 6 (the lumen core is free of the render's partial volume). A thin
    portal tree with no core gives no verdict; a native scan none either; 15 HU of contrast
    warns (1.5 < 3)."""
    hu = {**sample_enhancement("portal_venous", np.random.default_rng(3)), "liver": 100.0,
          "portal": 160.0, "hepatic": 160.0}
    ct, truth = liver_ct_phantom((60, 160, 160), seed=3, noise_sd_hu=10.0, hu=hu,
                                 fov_mm=(320.0, 320.0), z_extent_mm=120.0)
    liver = truth.mask("liver")
    portal = truth.labels.array == LABELS["portal"]
    check = check_vessel_contrast(ct, portal, liver, 10.0, "portal_venous").checks[0]
    assert check.status == "pass" and 5.2 <= check.value <= 6.5, check
    assert not check_vessel_contrast(ct, portal, liver, 10.0, "native").checks
    faint, _ = liver_ct_phantom((60, 160, 160), seed=3, noise_sd_hu=10.0,
                                hu={**hu, "portal": 115.0}, fov_mm=(320.0, 320.0),
                                z_extent_mm=120.0)
    check = check_vessel_contrast(faint, portal, liver, 10.0, "portal_venous").checks[0]
    assert check.status == "warn" and 1.0 <= check.value <= 2.2, check
    one_voxel = np.zeros(ct.shape, bool)
    one_voxel[30, 40:60, 48] = True
    assert not check_vessel_contrast(ct, one_voxel, liver, 10.0, "portal_venous").checks


def test_phase_through_the_chain_ignores_a_missed_portal_vein():
    """Portal venous phantoms 10002 and 10010 of ``bench_ct_chain_phase.py --chain``: the atlas
    portal vein lands beside the phantom's (Dice 0) and refinement keeps 0.48 / 0.46 of it in
    the parenchyma, which read 126 / 118 HU for a portal vein of 181 / 169 HU and made both
    scans delayed (P 0.59 / 0.84) while the portal vein was used above a refinement Dice of
    0.4. Left out below 0.7 (portal_vein_min_refinement_dice), both are portal venous.
    Through the chain on 40 phantoms: accuracy 0.85 -> 0.95."""
    from vasomics.chain.run import characterize

    for seed, noise in ((10_002, 13.43), (10_010, 20.13)):
        ct, _ = liver_ct_phantom((64, 96, 96), phase="portal_venous", seed=seed,
                                 noise_sd_hu=noise, z_extent_mm=240.0)
        res = characterize(ct)
        assert res.localization.refinement_dice["portal_vein"] < 0.7
        assert np.isnan(res.phase.features["portal_vein"])
        assert res.phase.phase == "portal_venous", res.phase.probabilities


def test_phase_through_the_chain_ignores_a_vessel_in_fat():
    """Native phantom 10016 (noise 29 HU) of ``bench_ct_chain_phase.py --chain``: at that noise
    refinement keeps the atlas masks as they are (portal vein Dice 0.90) and the portal vein's
    lies in fat (median -14 HU), which the model read as arterial (P 0.78). A vessel region
    darker than blood (blood_min_hu, 20 HU) is left out: native."""
    from vasomics.chain.run import characterize

    ct, _ = liver_ct_phantom((64, 96, 96), phase="native", seed=10_016, noise_sd_hu=29.41,
                             z_extent_mm=240.0)
    res = characterize(ct)
    assert np.isnan(res.phase.features["portal_vein"])
    assert any("fat or air" in e for e in res.phase.evidence), res.phase.evidence
    assert res.phase.phase == "native", res.phase.probabilities


@pytest.mark.parametrize("seed, phase, noise, want", [
    (10_016, "native", 29.41, None),  # a 4.7 mm blob of noise beside the spine
    (502, "native", 12.0, None),  # the vertebral body: 794 HU around it
    (501, "arterial", 12.0, 367.0)])  # the aorta: radius 10.4 mm, -29 HU around it
def test_aorta_fallback_takes_only_an_aorta(seed, phase, noise, want):
    """The classical CTA tracker stands in for an atlas aorta left out; on native scans it
    has no contrast lumen to find and tracked what was bright instead. Native 10016 with the
    atlas aorta left out read arterial at P 1.00 from a 253 HU 'aorta' with no voxel in the
    true aorta. A tracked lumen thinner than 6 mm or ringed by bone is not taken."""
    from vasomics.chain.phase import PhaseParams
    from vasomics.chain.run import _tracked_aorta_hu

    ct, _ = liver_ct_phantom((64, 96, 96), phase=phase, seed=seed, noise_sd_hu=noise,
                             z_extent_mm=240.0)
    got = _tracked_aorta_hu(ct, PhaseParams())
    if want is None:
        assert got is None, got
    else:
        assert got is not None and got[0] == pytest.approx(want, abs=25)


def test_phase_accuracy_and_calibration_on_phantoms():
    """40 phantoms (10 per phase, seeded, noise 8-25 HU), regions from the truth masks."""
    n_ok, probs, labels = 0, [], []
    for seed in range(40):
        phase = PHASES[seed % 4]
        noise = 8 + (seed * 7) % 18
        ct, truth = liver_ct_phantom((40, 64, 64), phase=phase, seed=100 + seed,
                                     noise_sd_hu=noise)
        res = recognize_phase(measure_regions(ct, _truth_regions(truth)))
        n_ok += res.phase == phase
        probs.append([res.probabilities[p] for p in PHASES])
        labels.append(PHASES.index(phase))
    assert n_ok / 40 >= 0.95
    probs = np.array(probs)
    conf, pred = probs.max(1), probs.argmax(1)
    ece = abs(np.mean(conf) - np.mean(pred == np.array(labels)))
    assert ece < 0.08  # one-bin calibration gap; the benchmark reports the 10-bin ECE


def test_phase_of_real_scans_and_tag_conflict(shared_data):
    d = shared_data / TS
    cta = read_image(d / "aorta_report/test_result/models/ct_cropped.nii.gz")
    aorta = read_image(d / "aorta_report/test_result/models/aorta.nii.gz").array > 0
    res = recognize_phase(measure_regions(cta, {"aorta": aorta}))
    assert res.phase == "arterial" and res.probabilities["arterial"] > 0.9
    native = read_image(d / "example_ct_sm.nii.gz")
    masks = {r: read_image(d / "example_seg_fast" / f"{n}.nii.gz").array > 0 for r, n in
             (("aorta", "aorta"), ("liver", "liver"), ("ivc", "inferior_vena_cava"),
              ("portal_vein", "portal_vein_and_splenic_vein"))}
    hu = measure_regions(native, masks)
    assert recognize_phase(hu).phase == "native"
    wrong_tag = recognize_phase(hu, {"contrast_agent_present": True})
    assert wrong_tag.phase == "native" and wrong_tag.conflict
    assert recognize_phase({}, {}).phase == "unknown"


def test_missing_portal_vein_imputed_from_the_other_regions():
    """The chain leaves out a portal vein the atlas missed and hands the vessel stage the
    phase model's conditional mean instead: on 24 contrast phantoms it must beat the phase's
    plain mean (the shared bolus-timing factor links the regions) and stay within 2 model
    SDs of the truth."""
    from vasomics.chain.phase import impute_regions, phase_model

    means, covs = phase_model()
    err_cond, err_mean = [], []
    for seed in range(24):
        phase = PHASES[1 + seed % 3]
        ct, truth = liver_ct_phantom((40, 64, 64), phase=phase, seed=300 + seed,
                                     noise_sd_hu=12.0)
        hu = measure_regions(ct, _truth_regions(truth))
        true_pv = hu.pop("portal_vein")
        got = impute_regions(hu, phase)
        k = PHASES.index(phase)
        err_cond.append(abs(got["portal_vein"] - true_pv))
        err_mean.append(abs(means[k][1] - true_pv))
        assert err_cond[-1] < 2 * np.sqrt(covs[k][1, 1]), (phase, got, true_pv)
        assert got["aorta"] == hu["aorta"]
    assert np.mean(err_cond) < np.mean(err_mean)
    assert np.isnan(impute_regions({"aorta": np.nan}, "unknown")["portal_vein"])


def test_non_finite_voxels_fail_qc_even_between_sampled_slices():
    """A float CT with one NaN slice at an odd index, in a volume large enough that the
    intensity checks sample every 2nd voxel: every voxel is checked, so QC fails with the
    count (a sample missed the slice, and registration then failed with no word of NaN)."""
    ct = np.full((330, 320, 320), 40.0, np.float32)
    ct[101] = np.nan
    ct[200, 5, 5] = np.inf
    report = check_image(Image(ct, spacing=(1.0, 0.8, 0.8), modality="CT"))
    finite = [c for c in report.checks if c.name == "finite"]
    assert finite and finite[0].status == "fail" and finite[0].value == 320 * 320 + 1
    assert "NaN" in finite[0].reason
