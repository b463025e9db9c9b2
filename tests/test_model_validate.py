"""Validation harness and measures; real multicentre acceptance test (UCI heart disease)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vasomics.errors import InputError
from vasomics.model import metrics as M
from vasomics.model import validate as V
from vasomics.model.matrix import FeatureMatrix, read_matrix
from vasomics.model.moe import MixtureOfExpertsClassifier
from vasomics.model.simulate import simulate_cohort

#: Column -> family for the UCI heart data (its columns are not catalogue ids).
UCI_FAMILIES = {"age": "demographic", "sex": "demographic", "cp": "symptom",
                "exang": "symptom", "trestbps": "haemodynamic", "thalch": "exercise",
                "oldpeak": "exercise", "slope": "exercise", "chol": "laboratory",
                "fbs": "laboratory", "restecg": "ecg", "ca": "imaging", "thal": "imaging"}


def test_auc_and_bootstrap_ci_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = y + rng.normal(size=300)
    s[:20] = np.round(s[:20])  # ties
    assert M.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    lo, hi = M.auc_bootstrap_ci(y, s, n_boot=500)
    assert lo < M.auc(y, s) < hi and 0.05 < hi - lo < 0.2


def test_calibration_slope_and_intercept():
    rng = np.random.default_rng(1)
    lp = rng.normal(0, 1.5, 20000)
    y = rng.uniform(size=lp.size) < 1 / (1 + np.exp(-lp))
    cal = M.calibration(y, 1 / (1 + np.exp(-lp)))
    assert cal["calibration_slope"] == pytest.approx(1, abs=0.05)
    assert cal["calibration_intercept"] == pytest.approx(0, abs=0.05)
    over = M.calibration(y, 1 / (1 + np.exp(-2 * lp)))  # overconfident model
    assert over["calibration_slope"] == pytest.approx(0.5, abs=0.05)


def test_cutoffs_grey_zone_and_decision_curve():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 + 0.25 * (2 * y - 1) + rng.normal(0, 0.2, y.size), 0.001, 0.999)
    cut = M.cutoffs_from_training(y, p)
    res = M.binary_metrics(y, p, cut)
    assert res["rule_out"]["sensitivity"] >= 0.9 and res["rule_in"]["specificity"] >= 0.9
    assert res["rule_out"]["sensitivity"] < 0.92 and res["rule_in"]["specificity"] < 0.92
    grey = np.mean((p >= cut["rule_out"]) & (p < cut["rule_in"]))
    assert res["grey_zone_share"] == pytest.approx(grey) and 0 < grey < 1
    dc = M.decision_curve(y, p)
    i = dc["threshold"].index(0.5)
    tp, fp = np.mean((p >= 0.5) & (y == 1)), np.mean((p >= 0.5) & (y == 0))
    assert dc["model"][i] == pytest.approx(tp - fp)
    assert dc["treat_all"][i] == pytest.approx(y.mean() - (1 - y.mean()))


def test_undefined_measures_are_not_reported():
    small = M.binary_metrics(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]))
    assert "auc" not in small and "too few" in small["note"]
    one = M.binary_metrics(np.ones(20, int), np.linspace(0.1, 0.9, 20))
    assert "auc" not in one and "one class" in one["note"]


def test_small_centre_is_never_held_out_alone():
    fm = simulate_cohort((80, 80, 6), centre_effects=False, seed=1)
    folds = list(V.splits(fm, "loco"))
    assert [f[0] for f in folds] == ["C1", "C2"]
    assert all(np.isin(np.flatnonzero(fm.centre == "C3"), tr).all() for _, _, tr, _ in folds)
    with pytest.raises(InputError, match="at least 2 centres"):
        list(V.splits(FeatureMatrix(fm.X, fm.y, np.where(fm.centre == "C1", "C1", "x")[:]
                                    .astype(object), task="classification"), "loco",
                      min_centre_size=100))


def test_repeated_cv_and_regression_harness():
    fm = simulate_cohort((100, 100), centre_effects=False, task="regression", seed=2)
    from vasomics.model.moe import MixtureOfExpertsRegressor

    res = V.validate({"moe": MixtureOfExpertsRegressor(families=fm.families, inner_folds=3)},
                     fm, "cv", n_splits=3, n_repeats=2, threshold=10.0, n_boot=200)
    pooled = res.results["moe"]["pooled"]
    assert pooled["n"] == 200 and pooled["r2"] > 0.3 and pooled["auc"] > 0.75
    assert len(res.predictions["moe"]) == 400  # 2 repeats


@pytest.fixture(scope="module")
def uci(shared_data):
    return read_matrix(shared_data / "uci_heart_disease" / "heart_disease_uci.csv", "num",
                       positive=">0", centre="dataset", id_column="id",
                       families=UCI_FAMILIES, zero_as_missing=["chol", "trestbps"])


def test_uci_leave_one_centre_out_moe_vs_baselines(uci):
    models = {"moe": MixtureOfExpertsClassifier(families=UCI_FAMILIES), **V.baselines()}
    res = V.validate(models, uci, "loco", n_boot=200)
    auc = res.table("auc")
    print("\nUCI leave-one-centre-out AUC\n", auc.round(3))
    print(res.table("calibration_slope").round(2))
    assert list(auc.index) == ["pooled", "Cleveland", "Hungary", "Switzerland", "VA Long Beach"]
    best = auc[["l1_logistic", "gradient_boosting"]].max(axis=1)
    assert (auc["moe"] >= best - 0.02).all(), auc
    slope = res.results["moe"]["pooled"]["calibration_slope"]
    assert 0.8 <= slope <= 1.2
    swiss = res.results["moe"]["per_centre"]["Switzerland"]
    assert swiss["n"] == 123 and len(swiss["auc_ci95"]) == 2 and "grey_zone_share" in swiss
    pred = res.predictions["moe"]
    assert pred.groupby("fold").centre.nunique().eq(1).all()  # held-out = one centre


def test_harness_fits_preprocessing_on_training_folds_only(uci):
    """No held-out value reaches the fitted model: changing every held-out patient but the
    first leaves the first one's prediction unchanged, and each fold's model is the model
    fitted on the other centres alone."""
    est = MixtureOfExpertsClassifier(families=UCI_FAMILIES, inner_folds=3)
    held = uci.centre == "Hungary"
    X2 = uci.X.copy()
    rows = np.flatnonzero(held)[1:]
    X2.loc[rows, "chol"] = X2.loc[rows, "chol"] * 10 + 500
    X2.loc[rows, "cp"] = "asymptomatic"
    small = FeatureMatrix(uci.X[held | (uci.centre == "Cleveland")],
                          uci.y[held | (uci.centre == "Cleveland")],
                          uci.centre[held | (uci.centre == "Cleveland")], ids=uci.ids[
                              held | (uci.centre == "Cleveland")])
    small2 = FeatureMatrix(X2[held | (uci.centre == "Cleveland")], small.y, small.centre,
                           ids=small.ids)
    a = V.held_out_predictions(est, small, "loco")
    b = V.held_out_predictions(est, small2, "loco")
    first = a.id == uci.ids[held][0]
    assert a.score[first].item() == b.score[first].item()
    assert not np.allclose(a.score[a.fold == "Hungary"], b.score[b.fold == "Hungary"])
    direct = est.fit(small.X[small.centre == "Cleveland"], small.y[small.centre == "Cleveland"])
    np.testing.assert_allclose(direct.predict_proba(small.X[small.centre == "Hungary"])[:, 1],
                               a.score[a.fold == "Hungary"])


def test_selection_stability_across_folds_is_reported():
    from vasomics.model.workflow import ModelParams, build_estimator

    fm = simulate_cohort((100, 100, 100), centre_effects=False, seed=6)
    p = ModelParams(selection="fdr", inner_folds=3)
    res = V.validate({"moe": build_estimator(p, fm.families)}, fm, "loco", n_boot=100)
    sel = res.results["moe"]["selection"]
    assert sel["n_folds"] == 3 and -1 <= sel["stability_index"] <= 1
    assert sel["frequency"]["sim.anatomical.0"] == 1.0  # informative: chosen in every fold


def test_per_modality_results():
    fm = simulate_cohort((90, 90), centre_effects=False, seed=7)
    fm.modality = np.where(np.arange(180) % 3 == 0, "MR", "CT")
    res = V.validate({"moe": MixtureOfExpertsClassifier(families=fm.families, inner_folds=3)},
                     fm, "cv", n_splits=3, n_boot=100)
    per = res.results["moe"]["per_modality"]
    assert set(per) == {"CT", "MR"} and per["MR"]["n"] == 60 and "auc" in per["CT"]
