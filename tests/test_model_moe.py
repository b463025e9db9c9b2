"""Mixture of experts: scikit-learn API, per-patient gating, missing families, regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from vasomics.errors import InputError
from vasomics.model.moe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from vasomics.model.selection import FeatureSelector
from vasomics.model.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort((120, 120), centre_effects=False, seed=3)


def test_sklearn_api_clone_params_pipeline_cross_val(cohort):
    moe = MixtureOfExpertsClassifier(families=cohort.families, inner_folds=3)
    assert moe.get_params()["inner_folds"] == 3
    moe.set_params(gate_penalty=2.0)
    twin = clone(moe)
    assert twin.get_params()["gate_penalty"] == 2.0 and twin.families == cohort.families
    pipe = Pipeline([("select", FeatureSelector("fdr", max_features=12)), ("moe", moe)])
    scores = cross_val_score(pipe, cohort.X, cohort.y, cv=3, scoring="roc_auc")
    assert scores.mean() > 0.75
    fitted = clone(moe).fit(cohort.X, cohort.y)
    proba = fitted.predict_proba(cohort.X)
    assert proba.shape == (len(cohort.X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(fitted.predict(cohort.X)) <= {0, 1}
    assert fitted.expert_names_ == ["anatomical", "biochemical", "biomechanical", "composite",
                                    "demographic", "pathophysiological", "all"]


def test_string_labels_and_numpy_input(cohort):
    y = np.where(cohort.y == 1, "CSPH", "no CSPH")
    X = cohort.X.to_numpy()
    moe = MixtureOfExpertsClassifier(inner_folds=3).fit(X, y)  # one family: "other"
    assert list(moe.classes_) == ["CSPH", "no CSPH"]
    assert set(moe.predict(X)) <= {"CSPH", "no CSPH"}
    assert moe.expert_names_ == ["other", "all"]


def test_gate_weights_per_patient_and_missing_family(cohort):
    moe = MixtureOfExpertsClassifier(families=cohort.families, inner_folds=3)
    moe.fit(cohort.X, cohort.y)
    w = moe.expert_weights(cohort.X)
    assert np.allclose(w.sum(axis=1), 1)
    bio = [c for c, f in cohort.families.items() if f == "biochemical"]
    # a patient group without any biochemical measurement: columns absent from the table
    partial = cohort.X.drop(columns=bio)
    w2 = moe.expert_weights(partial)
    assert np.all(w2["biochemical"] == 0) and np.allclose(w2.sum(axis=1), 1)
    assert moe.expert_outputs(partial)["biochemical"].isna().all()
    p_full = moe.predict_proba(cohort.X)[:, 1]
    p_part = moe.predict_proba(partial)[:, 1]
    assert np.all(np.isfinite(p_part))
    assert roc_auc_score(cohort.y, p_part) > 0.7
    assert not np.allclose(p_full, p_part)
    with pytest.raises(InputError, match="none of the model's features"):
        moe.predict_proba(pd.DataFrame({"zzz": [1.0]}))


def test_regression_hvpg():
    fm = simulate_cohort((150, 150), centre_effects=False, task="regression", seed=4)
    train, test = np.arange(200), np.arange(200, 300)
    reg = MixtureOfExpertsRegressor(families=fm.families, inner_folds=3)
    reg.fit(fm.X.iloc[train], fm.y[train])
    pred = reg.predict(fm.X.iloc[test])
    r2 = 1 - np.sum((fm.y[test] - pred) ** 2) / np.sum((fm.y[test] - fm.y[test].mean()) ** 2)
    assert r2 > 0.4
    assert abs(np.mean(pred) - np.mean(fm.y[test])) < 1.5  # mmHg
    assert reg.score(fm.X.iloc[test], fm.y[test]) == pytest.approx(r2)


def test_gbm_experts_and_bad_expert(cohort):
    moe = MixtureOfExpertsClassifier(families=cohort.families, expert="gbm", inner_folds=2)
    moe.fit(cohort.X.iloc[:160], cohort.y[:160])
    assert roc_auc_score(cohort.y[160:], moe.predict_proba(cohort.X.iloc[160:])[:, 1]) > 0.7
    with pytest.raises(InputError, match="unknown expert"):
        MixtureOfExpertsClassifier(expert="svm").fit(cohort.X, cohort.y)


def test_one_class_target_is_refused(cohort):
    with pytest.raises(InputError, match="2 classes"):
        MixtureOfExpertsClassifier().fit(cohort.X, np.ones(len(cohort.X)))


def test_constant_features_are_ignored_and_all_constant_refused(cohort):
    X = cohort.X.copy()
    bio = [c for c, f in cohort.families.items() if f == "biochemical"]
    X[bio] = 1.0  # a whole family constant in training
    moe = MixtureOfExpertsClassifier(families=cohort.families, inner_folds=3).fit(X, cohort.y)
    assert set(moe.dropped_constant_) == set(bio) and "biochemical" not in moe.expert_names_
    assert np.isfinite(moe.predict_proba(cohort.X)[:, 1]).all()
    with pytest.raises(InputError, match="every feature is constant"):
        MixtureOfExpertsClassifier().fit(X[bio], cohort.y)
