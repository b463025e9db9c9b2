"""Learned 2D segmenter: shipped weights on the held-out splits (inference only), feature
agreement with manual masks, a one-iteration training smoke run, missing weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vasomics.chain.segment import learned
from vasomics.errors import DependencyError
from vasomics.metrics import segmentation as sm
from vasomics.metrics.agreement import icc


@pytest.fixture(scope="module")
def chase_predictions(shared_data):
    """(mask, probability, manual, fov, mask with thin recovery) per CHASE_DB1 test image."""
    items = learned.load_dataset("chase", shared_data / "chase_db1", "test")
    low = learned.load_model("chase")[1]["thin_low"]
    out = []
    for _, rgb, gt, fov in items:
        mask, prob = learned.segment_learned(rgb, "chase", fov, threads=1)
        out.append((mask, prob, gt, fov, learned.recover_thin(prob, mask, low, fov)))
    return out


def test_chase_test_split_dice_cldice(chase_predictions):
    """CHASE_DB1 test split (8 images, first observer), inside the FOV.

    Measured: Dice 0.796, clDice 0.835, ROC AUC 0.981 (targets: Dice 0.79, clDice 0.80);
    with thin recovery Dice 0.794, clDice 0.803."""
    preds = chase_predictions
    d = np.mean([sm.dice(m, g, f) for m, _, g, f, _ in preds])
    cl = np.mean([sm.cl_dice(m, g, f) for m, _, g, f, _ in preds])
    auc = np.mean([sm.roc_auc(p, g, f) for _, p, g, f, _ in preds])
    assert d >= 0.79 and cl >= 0.80 and auc > 0.97, (d, cl, auc)
    d = np.mean([sm.dice(r, g, f) for _, _, g, f, r in preds])
    cl = np.mean([sm.cl_dice(r, g, f) for _, _, g, f, r in preds])
    assert d >= 0.79 and cl >= 0.80, (d, cl)
    # inference time is measured by benchmarks/eval_segment_learned.py, not asserted here


@pytest.mark.parametrize("factor, least", [(0.55, 0.77), (2.5, 0.77)])
def test_chase_resampled_like_other_cameras(shared_data, factor, least):
    """CHASE_DB1 test images (and manual masks) resampled to an aperture 0.55x (DRIVE's
    565x584 images) and 2.5x (HRF's 3504x2336) as wide: the model runs at its training
    scale (card ``aperture_diameter_px``). Measured: Dice 0.788 and 0.792 (0.793 unscaled,
    1 flip); without the rescaling 0.741 and 0.428 (the network's receptive field is fixed
    in pixels)."""
    from skimage.transform import resize

    from vasomics.chain.segment.fov import fundus_fov

    card = learned.load_model("chase")[1]
    dices = []
    for _, rgb, gt, _ in learned.load_dataset("chase", shared_data / "chase_db1", "test"):
        shape = (round(rgb.shape[0] * factor), round(rgb.shape[1] * factor))
        img = resize(rgb, shape, order=1, anti_aliasing=factor < 1,
                     preserve_range=True).astype(np.uint8)
        manual = resize(gt.astype(float), shape, order=1, anti_aliasing=factor < 1) >= 0.5
        fov = fundus_fov(img)
        assert learned.scale_factor(card, img) == pytest.approx(1 / factor, rel=0.03)
        dices.append(sm.dice(learned.segment_learned(img, "chase", fov, flips=1)[0], manual,
                             fov))
    assert np.mean(dices) >= least, dices


def test_dark_periphery_keeps_the_scale(shared_data):
    """A darker photograph (gamma 2) loses its dark periphery from the analysis FOV (down to
    638 px across against 910-915) but not from the camera aperture that sets the scale:
    the factor stays within 2 % of 1 on every CHASE_DB1 test image."""
    from vasomics.chain.segment.fov import fov_diameter_px, fundus_fov

    card = learned.load_model("chase")[1]
    narrowest = np.inf
    for _, rgb, _, _ in learned.load_dataset("chase", shared_data / "chase_db1", "test"):
        dark = ((rgb / 255.0) ** 2 * 255).round().astype(np.uint8)
        narrowest = min(narrowest, fov_diameter_px(fundus_fov(dark)))
        assert learned.scale_factor(card, dark, tolerance=0.0) == pytest.approx(1, abs=0.02)
    assert narrowest < 700


def test_noisy_fundus_images_are_denoised(shared_data):
    """CHASE_DB1 test images with Gaussian noise of 5.1 grey levels (SD 0.02 of the range)
    added to RGB, eleven times the training images' own: non-local means before the network.
    Measured: Dice 0.778 with it, 0.707 without (0.793 noise-free, 1 flip)."""
    items = learned.load_dataset("chase", shared_data / "chase_db1", "test")
    rng = np.random.default_rng(0)
    dices = {False: [], True: []}
    for _, rgb, gt, fov in items:
        img = (np.clip(rgb / 255 + rng.normal(0, 0.02, rgb.shape), 0, 1) * 255).round()
        for denoise in (False, True):
            mask = learned.segment_learned(img.astype(np.uint8), "chase", fov, flips=1,
                                           denoise=denoise)[0]
            dices[denoise].append(sm.dice(mask, gt, fov))
    assert np.mean(dices[True]) >= 0.76 and np.mean(dices[False]) < 0.73, dices


def test_noise_sd_estimator():
    """Immerkaer's estimator returns the SD of white noise on a shaded image (a linear ramp
    and a smooth bump cancel) within 5 %, inside a field of view."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:300, :300]
    shading = 0.3 + 0.001 * xx + 0.2 * np.exp(-((yy - 150) ** 2 + (xx - 150) ** 2) / 5e3)
    fov = (yy - 150) ** 2 + (xx - 150) ** 2 < 140 ** 2
    for sd in (0.005, 0.02):
        est = learned.noise_sd(shading + rng.normal(0, sd, shading.shape), fov)
        assert est == pytest.approx(sd, rel=0.05), (sd, est)


def test_scale_read_through_a_grey_noisy_frame(shared_data):
    """A camera whose frame is not black (20 +- 4 grey levels around the aperture) on a
    CHASE_DB1 test image resampled to 0.6x: the aperture's threshold starts from the frame's
    level, so the scale is still read (factor 1 / 0.6). A threshold at 3 % of the range alone
    took the whole frame, no disc, and gave no scale (factor 1)."""
    from skimage.transform import resize

    from vasomics.chain.segment.fov import fundus_aperture

    _, rgb, _, _ = learned.load_dataset("chase", shared_data / "chase_db1", "test")[0]
    small = resize(rgb, (576, 599), order=1, anti_aliasing=True,
                   preserve_range=True).astype(np.uint8)
    frame = ~fundus_aperture(small)
    noisy = small.astype(float)
    noisy[frame] = np.random.default_rng(0).normal(20, 4, noisy.shape)[frame]
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    card = learned.load_model("chase")[1]
    assert learned.scale_factor(card, noisy) == pytest.approx(1 / 0.6, rel=0.03)


def test_fundus_scale_needs_a_disc():
    """A disc (cut at the top and bottom, as many cameras frame it) gives the ratio of
    diameters; a mask covering a whole crop inside the retina carries no scale."""
    from vasomics.chain.segment.fov import fundus_scale

    yy, xx = np.mgrid[:400, :500]
    disc = (yy - 200) ** 2 + (xx - 250) ** 2 <= 220 ** 2  # 441 px across, rows cut
    assert fundus_scale(disc, 882.0) == pytest.approx(2.0, rel=0.01)
    assert fundus_scale(np.ones((300, 300), bool), 900.0) == 1.0
    photo = np.where(disc, 120, 0).astype(np.uint8)
    assert learned.scale_factor({"aperture_diameter_px": 882.0}, photo) == pytest.approx(2.0,
                                                                                        rel=0.01)
    assert learned.scale_factor({"aperture_diameter_px": 450.0}, photo) == 1.0  # within 5 %
    assert learned.scale_factor({}, photo) == 1.0  # OCTA models: no reference scale


def test_rossa_validation_dice(shared_data):
    items = learned.load_dataset("rossa", shared_data / "rossa", "val")
    dices = [sm.dice(learned.segment_learned(img, "rossa")[0], gt) for _, img, gt, _ in items]
    assert len(dices) == 100 and np.mean(dices) >= 0.88, np.mean(dices)


FEATURES = ("VX.A.T.LEN", "VX.A.T.FD", "VX.A.T.VFRAC")


@pytest.fixture(scope="module")
def chase_feature_pairs(chase_predictions):
    return sm.paired_features([(m, g, f) for m, _, g, f, _ in chase_predictions], FEATURES)


@pytest.fixture(scope="module")
def chase_feature_pairs_thin(chase_predictions):
    return sm.paired_features([(r, g, f) for _, _, g, f, r in chase_predictions], FEATURES)


WIDTH_CAUSE = ("; fractal dimension and vessel fraction follow each image's vessel width "
               "(test_chase_features_move_with_one_pixel_of_width) and the first observer's "
               "edges sit differently by child: the threshold giving the network's mask the "
               "manual area is 0.25-0.53 in children 1-7, 0.69-0.81 in 8-10 (training split), "
               "0.53-0.92 on the test split (child 11 0.89-0.92), card 0.65; with each image's "
               "area-matched threshold (an oracle) and thin recovery, fractal dimension would "
               "reach 0.84 (test) / 0.88 (training split): benchmarks/eval_segment_learned.py "
               "--width")


@pytest.mark.xfail(strict=True, reason="target ICC(A,1) >= 0.85 not met by the default masks: "
                   "measured total length 0.40 (ICC(C,1) 0.84, r 0.90; predicted 17 percent "
                   "shorter: thin vessels missed, network probability about 0.01 on them), "
                   "fractal dimension 0.39 (C,1 0.41, r 0.46), vessel fraction 0.69 (C,1 "
                   "0.69, r 0.70, +4 percent; child 11 +17 to +23 percent)" + WIDTH_CAUSE)
def test_feature_agreement_chase(chase_feature_pairs):
    """Tree features from predicted vs manual masks over the 8 test images: absolute
    agreement ICC(A,1) >= 0.85 for each (the issue's target)."""
    iccs = {i: icc(*chase_feature_pairs[i]) for i in FEATURES}
    assert all(v >= 0.85 for v in iccs.values()), iccs


@pytest.mark.xfail(strict=True, reason="target ICC(A,1) >= 0.85 not met with thin recovery: "
                   "total length 0.90 is met, fractal dimension 0.59 (C,1 0.56, r 0.70) and "
                   "vessel fraction 0.64 (C,1 0.70, r 0.71, +7 percent) are not" + WIDTH_CAUSE)
def test_feature_agreement_chase_thin_recovery(chase_feature_pairs_thin):
    """As above with ``thin_recovery`` (thin_low 0.01, chosen on the training split)."""
    iccs = {i: icc(*chase_feature_pairs_thin[i]) for i in FEATURES}
    assert all(v >= 0.85 for v in iccs.values()), iccs


def test_thin_recovery_length_agreement(chase_feature_pairs, chase_feature_pairs_thin):
    """Thin recovery (thin_low chosen on the training split) brings the total centerline
    length to the manual one on the 8 test images: ICC(A,1) 0.90 (target 0.85; without it
    0.39), bias -0.6 percent (-17); fractal dimension ICC(A,1) 0.59 (0.39)."""
    pred, manual = map(np.asarray, chase_feature_pairs_thin["VX.A.T.LEN"])
    assert icc(pred, manual) >= 0.85
    assert abs(np.mean(pred / manual - 1)) < 0.03
    before = icc(*chase_feature_pairs["VX.A.T.FD"])
    assert icc(*chase_feature_pairs_thin["VX.A.T.FD"]) > before + 0.1


def test_chase_features_move_with_one_pixel_of_width(shared_data):
    """Why ICC(A,1) >= 0.85 for fractal dimension and vessel fraction needs each image's
    vessel width right to a fraction of a pixel: moving every edge of the 20 training images'
    manual masks by one pixel (4-connected dilation or erosion) shifts each image's
    VX.A.T.FD by 0.036-0.100 and VX.A.T.VFRAC by 24-38 percent, more than the images differ
    (SD 0.017; 12.8 percent of the mean), so the shifted masks agree with the unchanged ones
    at ICC(A,1) 0.14-0.29 (measured)."""
    from scipy import ndimage as ndi

    values = {"manual": [], "dilated": [], "eroded": []}
    for _, _, gt, fov in learned.load_dataset("chase", shared_data / "chase_db1", "train"):
        gt = gt & fov
        for name, m in (("manual", gt), ("dilated", ndi.binary_dilation(gt) & fov),
                        ("eroded", ndi.binary_erosion(gt))):
            f = sm.mask_tree_features(m, fov)
            values[name].append((f["VX.A.T.FD"], f["VX.A.T.VFRAC"]))
    fd, vf = np.asarray(values.pop("manual")).T
    sd_fd, cv_vf = fd.std(ddof=1), vf.std(ddof=1) / vf.mean()
    assert 0.01 < sd_fd < 0.03 and 0.08 < cv_vf < 0.2, (sd_fd, cv_vf)
    for name, shifted in values.items():
        s_fd, s_vf = np.asarray(shifted).T
        assert np.all(np.abs(s_fd - fd) > 1.5 * sd_fd), (name, np.abs(s_fd - fd).min())
        assert np.all(np.abs(s_vf / vf - 1) > 1.5 * cv_vf), (name, np.abs(s_vf / vf - 1).min())
        assert icc(s_fd, fd) < 0.4 and icc(s_vf, vf) < 0.4, name


def test_segment_learned_thin_recovery_option(shared_data, chase_predictions):
    """segment_learned(..., thin_recovery=True) gives recover_thin at the card's thin_low."""
    _, rgb, _, fov = learned.load_dataset("chase", shared_data / "chase_db1", "test")[0]
    mask, _ = learned.segment_learned(rgb, "chase", fov, threads=1, thin_recovery=True)
    assert np.array_equal(mask, chase_predictions[0][4])
    from vasomics.errors import ParameterError

    with pytest.raises(ParameterError, match="thin_low"):
        learned.segment_learned(np.zeros((32, 32), np.uint8), "rossa", thin_recovery=True)
    # the preset field reaches it: same network mask plus centre lines, nothing removed
    from vasomics.chain.segment.api import load_preset, segment
    from vasomics.image import Image

    img = Image(rgb, spacing=(1.0, 1.0))
    preset = load_preset("fundus")
    plain = segment(img, preset, method="learned").mask.array
    thin = segment(img, preset.model_copy(update={"learned_thin_recovery": True}),
                   method="learned").mask.array
    assert np.all(thin[plain]) and np.count_nonzero(thin) > np.count_nonzero(plain)


def test_recover_thin_adds_centre_lines_only():
    """A 7-pixel bar (the mask) continued by a faint 3-pixel line (probability 0.05) and a
    faint blob apart from it: the line's 1-pixel centre line is added, the bar keeps its
    width, the blob (not touching the mask) and pixels below ``low`` stay out."""
    prob = np.zeros((40, 80), np.float32)
    prob[17:24, 5:40] = 0.9  # bar, rows 17-23
    prob[19:22, 40:75] = 0.05  # faint line, rows 19-21
    prob[30:36, 10:16] = 0.05  # faint blob
    mask = prob >= 0.5
    out = learned.recover_thin(prob, mask, 0.01)
    added = out & ~mask
    assert np.array_equal(out[:, :40], mask[:, :40])  # bar and blob unchanged
    rows, cols = np.nonzero(added)
    assert set(rows) <= {19, 20, 21} and cols.min() == 40 and cols.max() >= 72
    assert np.array_equal(np.bincount(cols)[40:], np.ones(cols.max() - 39))  # 1 px wide
    assert added[20, 40:72].all()  # the centre row of the line
    assert np.array_equal(learned.recover_thin(prob, mask, 0.1), mask)


def test_thin_vessel_mask():
    """Thin-vessel weighting mask: a 3-pixel line is thin, a 7-pixel bar (rim included)
    is not, at thin_width_px 3; at 2 the 3-pixel line is not thin either."""
    label = np.zeros((40, 60), bool)
    label[5:12, 5:55] = True  # 7 px wide
    label[25:28, 5:55] = True  # 3 px wide
    thin = learned.thin_vessel_mask(label, 3)
    assert not thin[:20].any() and thin[25:28, 5:55].all()
    assert not learned.thin_vessel_mask(label, 2).any()


def test_icc_forms_shrout_fleiss():
    """ICC(A,1) = ICC(2,1) and ICC(C,1) = ICC(3,1) on Shrout & Fleiss (1979), Table 2
    (6 targets, 4 judges): published 0.29 and 0.71; an offset only lowers ICC(A,1)."""
    y = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                  [6, 2, 4, 7]], float)
    assert icc(*y.T) == pytest.approx(0.290, abs=5e-4)
    assert icc(*y.T, kind="consistency") == pytest.approx(0.715, abs=5e-4)
    a = np.array([1.0, 2, 3, 4, 5])
    assert icc(a, a + 1, kind="consistency") == pytest.approx(1.0)
    assert icc(a, a + 1) == pytest.approx(2.5 / 3.0)  # MS_R 5, MS_C 2.5, MS_E 0: 5/(5+1)


def test_soft_cldice_on_bars():
    """Soft skeleton of a 5-pixel bar is its 1-pixel centre line; soft clDice of a prediction
    covering half the bar: precision 1, sensitivity (13 + 1) / (26 + 1) -> loss 13/41."""
    torch = pytest.importorskip("torch")
    x = np.zeros((1, 1, 20, 40), np.float32)
    x[..., 8:13, 5:35] = 1
    skel = learned.soft_skeleton(torch.from_numpy(x), 10)[0, 0].numpy()
    assert np.array_equal(np.nonzero(skel > 0.5)[0], np.full(26, 10))
    half = x.copy()
    half[..., 20:] = 0
    loss = learned.soft_cldice_loss(torch.from_numpy(half), torch.from_numpy(x), 10)
    assert float(loss) == pytest.approx(13 / 41, abs=1e-6)
    assert float(learned.soft_cldice_loss(torch.from_numpy(x), torch.from_numpy(x), 10)) == 0


def test_training_smoke_and_reproducible(shared_data, tmp_path):
    """The training loop (with the clDice term and the length threshold rule) runs end to end
    on 2 images for 2 iterations, writes a loadable model with its card, and a rerun with the
    same seed gives bit-identical weights."""
    import vasomics.chain.segment.learned as mod

    items = mod.load_dataset("rossa", shared_data / "rossa", "train")[:3]
    original = mod.load_dataset
    try:
        mod.load_dataset = lambda *a, **k: items
        params = mod.TrainParams(iterations=2, validate_every=1, n_val=1, batch=2, patch=64,
                                 cldice_weight=0.5, threshold_rule="length", val_flips=2)
        cards = [mod.train("rossa", shared_data / "rossa", tmp_path / run / "m.pt", params)
                 for run in ("a", "b")]
    finally:
        mod.load_dataset = original
    card = cards[0]
    assert card["best_iteration"] in (1, 2) and len(card["train_images"]) == 2
    assert card["init"] is None
    assert 0.2 <= card["threshold"] <= 0.7
    assert (tmp_path / "a" / "m.pt").read_bytes() == (tmp_path / "b" / "m.pt").read_bytes()
    model, loaded = mod.load_model(tmp_path / "a" / "m.pt")
    assert loaded == json.loads((tmp_path / "a" / "m.json").read_text())
    assert mod.predict_probability(model, np.zeros((40, 40), np.float32)).shape == (40, 40)
    # fine-tuning from those weights with thin-vessel weighting (as the CLI's --init)
    import hashlib

    try:
        mod.load_dataset = lambda *a, **k: items
        tuned = mod.train("rossa", shared_data / "rossa", tmp_path / "c" / "m.pt",
                          params.model_copy(update={"iterations": 1, "thin_weight": 4.0,
                                                    "init": str(tmp_path / "a" / "m.pt")}))
    finally:
        mod.load_dataset = original
    assert tuned["init"] == {"file": "m.pt", "sha256": hashlib.sha256(
        (tmp_path / "a" / "m.pt").read_bytes()).hexdigest()}
    assert (tmp_path / "c" / "m.pt").read_bytes() != (tmp_path / "a" / "m.pt").read_bytes()


def test_fundus_training_card_holds_the_scale_and_noise(shared_data, tmp_path):
    """A fundus (CHASE) training run writes the training images' aperture diameter and
    noise to the card, the references of segment_learned's rescaling and de-noising (here
    from two images: 922-923 px, 0.47-0.49 grey levels of 255)."""
    import vasomics.chain.segment.learned as mod

    items = mod.load_dataset("chase", shared_data / "chase_db1", "train")[:2]
    original = mod.load_dataset
    try:
        mod.load_dataset = lambda *a, **k: items
        card = mod.train("chase", shared_data / "chase_db1", tmp_path / "m.pt",
                         mod.TrainParams(iterations=1, validate_every=1, n_val=1, batch=1,
                                         patch=64, val_flips=1))
    finally:
        mod.load_dataset = original
    assert 915 <= card["aperture_diameter_px"] <= 930
    assert 0.4 / 255 <= card["noise_sd"] <= 0.55 / 255


def test_missing_weights_and_bad_input(tmp_path):
    with pytest.raises(DependencyError, match="segmenter train"):
        learned.load_model(tmp_path / "absent.pt")
    from vasomics.errors import InputError

    with pytest.raises(InputError, match="field-of-view mask shape"):
        learned.segment_learned(np.zeros((64, 64), np.uint8), "rossa", np.ones((8, 8), bool))
    with pytest.raises(InputError, match="2D grey or RGB"):
        learned.segment_learned(np.zeros((4, 64, 64), np.uint8), "rossa")
