"""Interpretation: SHAP values, partial dependence, expert weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from vasomics.model import explain
from vasomics.model.moe import MixtureOfExpertsClassifier
from vasomics.model.preprocess import TablePreprocessor


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"f{i}" for i in range(8)])
    X["grade"] = rng.choice(["low", "mid", "high"], n)
    lin = 1.5 * X.f0 - 1.0 * X.f3 + 1.2 * (X.grade == "high") + 0.6 * X.f5 ** 2
    y = (lin + rng.logistic(size=n) * 0.5 > np.median(lin)).astype(int)
    families = {"f0": "anatomical", "f1": "anatomical", "f2": "anatomical",
                "f3": "biomechanical", "f4": "biomechanical", "f5": "biochemical",
                "f6": "biochemical", "f7": "composite", "grade": "composite"}
    return X, y.to_numpy(), families


def test_shap_ranks_the_signal_features_first(table):
    X, y, families = table
    model = MixtureOfExpertsClassifier(families=families, expert="gbm", inner_folds=3)
    model.fit(X, y)
    shap, base = explain.shap_values(model, X.iloc[:60], X.iloc[200:240], n_permutations=6)
    imp = explain.global_importance(shap)
    assert set(imp.index[:4]) == {"f0", "f3", "grade", "f5"}, imp
    # efficiency: contributions add up to the output minus the background mean
    out = explain.model_output(model, X.iloc[:60])
    np.testing.assert_allclose(shap.sum(axis=1) + base, out, atol=1e-8)


def test_shap_is_exact_for_an_additive_model(table):
    X, y, _ = table
    num = X.drop(columns="grade")
    pipe = Pipeline([("prep", TablePreprocessor()), ("lr", LogisticRegression())]).fit(num, y)
    bg = num.iloc[100:150]
    shap, _ = explain.shap_values(pipe, num.iloc[:5], bg, n_permutations=2)
    prep = pipe.named_steps["prep"]
    w = pipe.named_steps["lr"].coef_.ravel() / prep.scale_
    expected = (num.iloc[:5] - bg.mean()) * w
    np.testing.assert_allclose(shap.to_numpy(), expected.to_numpy(), atol=1e-10)


def test_partial_dependence_and_expert_weights(table):
    X, y, families = table
    model = MixtureOfExpertsClassifier(families=families, inner_folds=3).fit(X, y)
    pd0 = explain.partial_dependence(model, X, "f0")
    assert np.all(np.diff(pd0["mean_output"]) > 0)  # risk rises with f0
    pd3 = explain.partial_dependence(model, X, "grade")
    assert pd3["grid"] == ["high", "low", "mid"]
    assert pd3["mean_output"][0] == max(pd3["mean_output"])
    w = explain.expert_weights(Pipeline([("m", model)]), X.iloc[:10])
    assert list(w.columns) == model.expert_names_ and np.allclose(w.sum(axis=1), 1)
