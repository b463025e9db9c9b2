"""Learned 2D segmenter: shipped weights on the held-out splits (inference only), feature
agreement with manual masks, a one-iteration training smoke run, missing weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vasomics.chain.segment import learned
from vasomics.errors import DependencyError
from vasomics.metrics import segmentation as sm


@pytest.fixture(scope="module")
def chase_predictions(shared_data):
    items = learned.load_dataset("chase", shared_data / "chase_db1", "test")
    out = []
    for _, rgb, gt, fov in items:
        mask, prob = learned.segment_learned(rgb, "chase", fov, threads=1)
        out.append((mask, prob, gt, fov))
    return out


def test_chase_test_split_dice_cldice(chase_predictions):
    """CHASE_DB1 test split (8 images, first observer), inside the FOV.

    Measured: Dice 0.796, clDice 0.835, ROC AUC 0.981 (targets: Dice 0.79, clDice 0.80)."""
    preds = chase_predictions
    d = np.mean([sm.dice(m, g, f) for m, _, g, f in preds])
    cl = np.mean([sm.cl_dice(m, g, f) for m, _, g, f in preds])
    auc = np.mean([sm.roc_auc(p, g, f) for _, p, g, f in preds])
    assert d >= 0.79 and cl >= 0.80 and auc > 0.97, (d, cl, auc)
    # inference time is measured by benchmarks/eval_segment_learned.py, not asserted here


def test_rossa_validation_dice(shared_data):
    items = learned.load_dataset("rossa", shared_data / "rossa", "val")
    dices = [sm.dice(learned.segment_learned(img, "rossa")[0], gt) for _, img, gt, _ in items]
    assert len(dices) == 100 and np.mean(dices) >= 0.88, np.mean(dices)


FEATURES = ("VX.A.T.LEN", "VX.A.T.FD", "VX.A.T.VFRAC")


@pytest.fixture(scope="module")
def chase_feature_pairs(chase_predictions):
    """Total length, fractal dimension and vessel fraction (region: the FOV) from the
    predicted and the manual mask of each CHASE_DB1 test image: {id: (predicted, manual)}."""
    from vasomics.api import extract_features
    from vasomics.image import Image

    values = {i: ([], []) for i in FEATURES}
    for mask, _, gt, fov in chase_predictions:
        region = Image(fov.astype(np.uint8))
        for k, m in enumerate((mask, gt & fov)):
            table = extract_features(Image(m.astype(np.uint8)), region=region)
            for i in FEATURES:
                values[i][k].append(table.value(i))
    return values


@pytest.mark.xfail(strict=True, reason="target ICC(A,1) >= 0.85 not met: measured total length "
                   "0.39 (ICC(C,1) 0.83; predicted 17 percent shorter: thin vessels missed), "
                   "fractal dimension 0.39 (C,1 0.41), vessel fraction 0.69 (C,1 0.69, +4 "
                   "percent)")
def test_feature_agreement_chase(chase_feature_pairs):
    """Tree features from predicted vs manual masks over the 8 test images: absolute
    agreement ICC(A,1) >= 0.85 for each (the issue's target)."""
    iccs = {i: sm.icc(*chase_feature_pairs[i]) for i in FEATURES}
    assert all(v >= 0.85 for v in iccs.values()), iccs


def test_icc_forms_shrout_fleiss():
    """ICC(A,1) = ICC(2,1) and ICC(C,1) = ICC(3,1) on Shrout & Fleiss (1979), Table 2
    (6 targets, 4 judges): published 0.29 and 0.71; an offset only lowers ICC(A,1)."""
    y = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                  [6, 2, 4, 7]], float)
    assert sm.icc(*y.T) == pytest.approx(0.290, abs=5e-4)
    assert sm.icc(*y.T, kind="consistency") == pytest.approx(0.715, abs=5e-4)
    a = np.array([1.0, 2, 3, 4, 5])
    assert sm.icc(a, a + 1, kind="consistency") == pytest.approx(1.0)
    assert sm.icc(a, a + 1) == pytest.approx(2.5 / 3.0)  # MS_R 5, MS_C 2.5, MS_E 0: 5/(5+1)


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
    assert 0.2 <= card["threshold"] <= 0.7
    assert (tmp_path / "a" / "m.pt").read_bytes() == (tmp_path / "b" / "m.pt").read_bytes()
    model, loaded = mod.load_model(tmp_path / "a" / "m.pt")
    assert loaded == json.loads((tmp_path / "a" / "m.json").read_text())
    assert mod.predict_probability(model, np.zeros((40, 40), np.float32)).shape == (40, 40)


def test_missing_weights_and_bad_input(tmp_path):
    with pytest.raises(DependencyError, match="segmenter train"):
        learned.load_model(tmp_path / "absent.pt")
    from vasomics.errors import InputError

    with pytest.raises(InputError, match="field-of-view mask shape"):
        learned.segment_learned(np.zeros((64, 64), np.uint8), "rossa", np.ones((8, 8), bool))
    with pytest.raises(InputError, match="2D grey or RGB"):
        learned.segment_learned(np.zeros((4, 64, 64), np.uint8), "rossa")
