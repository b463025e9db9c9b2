"""Learned 2D segmenter: shipped weights on the held-out splits (inference only), feature
agreement with manual masks, a one-iteration training smoke run, missing weights."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from vasomics.chain.segment import learned
from vasomics.errors import DependencyError
from vasomics.metrics import segmentation as sm


@pytest.fixture(scope="module")
def chase_predictions(shared_data):
    items = learned.load_dataset("chase", shared_data / "chase_db1", "test")
    out, seconds = [], []
    for _, rgb, gt, fov in items:
        t0 = time.perf_counter()
        mask, prob = learned.segment_learned(rgb, "chase", fov)
        seconds.append(time.perf_counter() - t0)
        out.append((mask, prob, gt, fov))
    return out, seconds


def test_chase_test_split_dice_cldice(chase_predictions):
    """CHASE_DB1 test split (8 images, first observer), inside the FOV.

    Measured: Dice 0.802, clDice 0.827, ROC AUC 0.983 (targets: Dice 0.79, clDice 0.80)."""
    preds, seconds = chase_predictions
    d = np.mean([sm.dice(m, g, f) for m, _, g, f in preds])
    cl = np.mean([sm.cl_dice(m, g, f) for m, _, g, f in preds])
    auc = np.mean([sm.roc_auc(p, g, f) for _, p, g, f in preds])
    assert d >= 0.79 and cl >= 0.80 and auc > 0.97, (d, cl, auc)
    assert np.median(seconds) < 5.0  # < 1 s on an idle 2-core machine; the CI CPU is shared


def test_rossa_validation_dice(shared_data):
    items = learned.load_dataset("rossa", shared_data / "rossa", "val")
    dices = [sm.dice(learned.segment_learned(img, "rossa")[0], gt) for _, img, gt, _ in items]
    assert len(dices) == 100 and np.mean(dices) >= 0.88, np.mean(dices)


@pytest.mark.xfail(strict=True, reason="target ICC >= 0.85 not met: measured ICC(2,1) total "
                   "length 0.34, fractal dimension 0.60, vessel fraction 0.73; the predicted "
                   "masks miss the thinnest vessels (total length -15 percent vs manual)")
def test_feature_agreement_chase(chase_predictions):
    """Tree features from predicted vs manual masks: ICC(2,1) over the 8 test images."""
    from vasomics.api import extract_features
    from vasomics.image import Image

    ids = ("VX.A.T.LEN", "VX.A.T.FD", "VX.A.T.VFRAC")
    values = {i: ([], []) for i in ids}
    for mask, _, gt, fov in chase_predictions[0]:
        region = Image(fov.astype(np.uint8))
        for k, m in enumerate((mask, gt & fov)):
            table = extract_features(Image(m.astype(np.uint8)), region=region)
            for i in ids:
                values[i][k].append(table.value(i))
    iccs = {i: sm.icc(*values[i]) for i in ids}
    assert all(v >= 0.85 for v in iccs.values()), iccs


def test_training_smoke(shared_data, tmp_path):
    """The training loop runs end to end on 2 images for 1 iteration and writes a loadable
    model with its card."""
    import vasomics.chain.segment.learned as mod

    items = mod.load_dataset("rossa", shared_data / "rossa", "train")[:3]
    original = mod.load_dataset
    try:
        mod.load_dataset = lambda *a, **k: items
        params = mod.TrainParams(iterations=1, validate_every=1, n_val=1, batch=2, patch=64)
        card = mod.train("rossa", shared_data / "rossa", tmp_path / "m.pt", params)
    finally:
        mod.load_dataset = original
    assert card["best_iteration"] == 1 and len(card["train_images"]) == 2
    model, loaded = mod.load_model(tmp_path / "m.pt")
    assert loaded == json.loads((tmp_path / "m.json").read_text())
    assert mod.predict_probability(model, np.zeros((40, 40), np.float32)).shape == (40, 40)


def test_missing_weights_and_bad_input(tmp_path):
    with pytest.raises(DependencyError, match="segmenter train"):
        learned.load_model(tmp_path / "absent.pt")
    from vasomics.errors import InputError

    with pytest.raises(InputError, match="field-of-view mask shape"):
        learned.segment_learned(np.zeros((64, 64), np.uint8), "rossa", np.ones((8, 8), bool))
    with pytest.raises(InputError, match="2D grey or RGB"):
        learned.segment_learned(np.zeros((4, 64, 64), np.uint8), "rossa")
