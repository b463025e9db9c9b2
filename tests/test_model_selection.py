"""Feature selection: stability selection, mRMR, BH-FDR filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vasomics.errors import InputError
from vasomics.model.selection import (
    FeatureSelector,
    benjamini_hochberg,
    mrmr_order,
    stability_index,
)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n, p = 300, 40
    X = rng.normal(size=(n, p))
    X[:, 5] = X[:, 0] + 0.05 * rng.normal(size=n)  # a redundant copy of a signal feature
    y = (X[:, 0] + 0.8 * X[:, 1] - 0.8 * X[:, 2] + rng.normal(size=n) > 0).astype(int)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(p)])
    df["kind"] = np.where(X[:, 1] > 0, "high", "low")  # categorical carrying signal
    return df, y


def test_stability_selection_finds_signal_and_reports_stability(table):
    df, y = table
    sel = FeatureSelector("stability", n_resamples=30).fit(df.drop(columns="kind"), y)
    assert {"f1", "f2"} <= set(sel.selected_)
    assert {"f0", "f5"} & set(sel.selected_)
    assert len(set(sel.selected_) - {"f0", "f1", "f2", "f5"}) <= 1  # at most one false pick
    rep = sel.report()
    assert 0.5 < rep["stability_index"] <= 1
    noise = [rep["scores"][f"f{i}"] for i in range(6, 40)]
    assert rep["scores"]["f1"] >= 0.9 and np.median(noise) < 0.3


def test_mrmr_avoids_redundant_copy(table):
    df, y = table
    Z = df.drop(columns="kind").to_numpy()
    order, _ = mrmr_order(Z, y, 3, "classification")
    assert set(order) & {0, 5} and not {0, 5} <= set(order)  # only one of the twins
    assert {1, 2} <= set(order)


def test_fdr_filter_and_categorical_kept_whole(table):
    df, y = table
    sel = FeatureSelector("fdr", alpha=0.05).fit(df, y)
    assert {"f0", "f1", "f2", "f5", "kind"} <= set(sel.selected_)
    assert len(sel.selected_) <= 8
    out = sel.transform(df)
    assert list(out.columns) == sel.selected_
    assert not pd.api.types.is_numeric_dtype(out["kind"])  # object (pandas 2) or str (pandas 3)


def test_benjamini_hochberg_against_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(1).uniform(size=200) ** 3
    rej, q = benjamini_hochberg(p, 0.1)
    ref_rej, ref_q, *_ = multitest.multipletests(p, 0.1, method="fdr_bh")
    np.testing.assert_array_equal(rej, ref_rej)
    np.testing.assert_allclose(q, ref_q)


def test_stability_index_extremes():
    same = np.tile([1, 1, 0, 0, 0], (10, 1))
    assert stability_index(same) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    rand = np.array([rng.permutation([1, 1, 0, 0, 0]) for _ in range(500)])
    assert abs(stability_index(rand)) < 0.05


def test_nothing_selected_keeps_best_and_bad_method(table):
    df, _ = table
    noise = np.random.default_rng(5).integers(0, 2, len(df))
    sel = FeatureSelector("fdr", alpha=1e-6).fit(df, noise)
    assert len(sel.selected_) == 1
    with pytest.raises(InputError, match="unknown selection method"):
        FeatureSelector("lasso").fit(df, noise)
