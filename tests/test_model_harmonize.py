"""ComBat: agreement with neuroCombat (neuroHarmonize's engine), unseen centres, recovery on a simulated cohort."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from vasomics.errors import InputError
from vasomics.model import validate as V
from vasomics.model.harmonize import ComBatHarmonizer
from vasomics.model.metrics import auc
from vasomics.model.simulate import simulate_cohort
from vasomics.model.workflow import ModelParams, build_estimator


def _sites(seed=1, n_per=60, p=15):
    rng = np.random.default_rng(seed)
    site = np.repeat(["A", "B", "C", "D"], n_per)
    age = rng.uniform(40, 80, len(site))
    sex = rng.integers(0, 2, len(site)).astype(float)
    eff = {"A": (0, 1), "B": (1.5, 2), "C": (-1, 0.6), "D": (0.5, 1.5)}
    J = np.arange(p)
    X = np.array([10 + 0.05 * a * (J % 3) + 0.5 * s + eff[c][0] * (1 + J / p)
                  + eff[c][1] * rng.normal(size=p) for c, a, s in zip(site, age, sex, strict=True)])
    cols = [f"f{j}" for j in range(p)]
    df = pd.DataFrame(X, columns=cols).assign(age=age, sex=sex, __centre__=site)
    return df, cols


def test_matches_neurocombat_on_training_and_new_rows():
    """Reference: neuroCombat 0.2.12 (Fortin et al. 2018), the engine neuroHarmonize wraps
    (neuroHarmonize itself pins numpy < 2, so the reference is taken one level down)."""
    from neuroCombat import neuroCombat

    df, cols = _sites()
    train = df[df.__centre__ != "D"].reset_index(drop=True)
    covars = train[["__centre__", "age", "sex"]]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        ref = neuroCombat(dat=train[cols].to_numpy().T, covars=covars, batch_col="__centre__",
                          continuous_cols=["age", "sex"], eb=True)
    ref_data = ref["data"].T
    cb = ComBatHarmonizer(covariates=["age", "sex"]).fit(train)
    ours = cb.transform(train)[cols].to_numpy()
    assert np.abs(ours - ref_data).max() < 1e-4 * np.abs(ref_data).max()
    assert np.abs(ours - train[cols].to_numpy()).max() > 1.0  # it did change the data
    idx = np.r_[0:5, 60:65, 120:125]  # rows seen again later: same correction as in training
    assert np.abs(cb.transform(train.iloc[idx])[cols].to_numpy() - ref_data[idx]).max() < 1e-4 * 22
    np.testing.assert_allclose(cb.gamma_, ref["estimates"]["gamma.star"], atol=1e-5)
    np.testing.assert_allclose(cb.delta_, ref["estimates"]["delta.star"], rtol=1e-4)


def test_unseen_centre_estimated_from_its_own_rows():
    df, cols = _sites()
    train = df[df.__centre__ != "D"]
    cb = ComBatHarmonizer(covariates=["age", "sex"]).fit(train)
    # a copy of centre B under a new name gets exactly B's correction (label-free estimate)
    copy_b = train[train.__centre__ == "B"].assign(__centre__="E")
    np.testing.assert_allclose(cb.transform(copy_b)[cols].to_numpy(),
                               cb.transform(train[train.__centre__ == "B"])[cols].to_numpy(),
                               rtol=1e-9)
    untouched = ComBatHarmonizer(covariates=["age", "sex"], unseen="none").fit(train)
    d = df[df.__centre__ == "D"]
    np.testing.assert_allclose(untouched.transform(d)[cols].to_numpy(), d[cols].to_numpy())
    assert "__centre__" not in cb.transform(d).columns and "age" in cb.transform(d).columns


def test_missing_values_and_errors():
    df, cols = _sites()
    df.loc[df.index[:40], "f0"] = np.nan  # centre A: f0 almost never measured
    out = ComBatHarmonizer(covariates=["age"]).fit(df).transform(df)
    assert out["f0"].isna().sum() == 40 and np.isfinite(out["f1"]).all()
    with pytest.raises(InputError, match="batch column"):
        ComBatHarmonizer().fit(df.drop(columns="__centre__"))
    with pytest.raises(InputError, match="covariate 'bmi'"):
        ComBatHarmonizer(covariates=["bmi"]).fit(df)


def _pooled_loco_auc(fm, harmonize, unseen="estimate", covariates=("age", "sex")):
    p = ModelParams(harmonize=harmonize, covariates=list(covariates), unseen_centre=unseen,
                    inner_folds=3)
    pred = V.held_out_predictions(build_estimator(p, fm.families), fm, "loco")
    return auc(pred.y.to_numpy(), pred.score.to_numpy())


def test_harmonization_recovers_leave_centre_out_auc_on_simulated_cohort():
    sizes = (130, 130, 130, 130)
    clean = _pooled_loco_auc(simulate_cohort(sizes, centre_effects=False, seed=0), False)
    shifted = simulate_cohort(sizes, centre_effects=True, seed=0)
    raw = _pooled_loco_auc(shifted, False)
    harmonized = _pooled_loco_auc(shifted, True)
    assert clean > 0.8
    assert raw < clean - 0.08, (clean, raw)  # centre effects hurt measurably
    assert harmonized >= clean - 0.03, (clean, raw, harmonized)


def test_phantom_tree_cohort_has_catalogue_features_and_centre_effects():
    from vasomics.model.simulate import simulate_phantom_cohort

    kw = dict(n_per_centre=(4, 4), generations=3, spacing_mm=1.0, seed=2)
    clean = simulate_phantom_cohort(centre_effects=False, **kw)
    shifted = simulate_phantom_cohort(centre_effects=True, **kw)
    assert "VX.A.T.RMEAN" in clean.X.columns and "VX.A.T.NSEG" not in clean.X.columns
    assert set(clean.families.values()) <= {"anatomical", "biochemical"}
    np.testing.assert_array_equal(clean.y, shifted.y)
    assert not np.allclose(clean.X.to_numpy(), shifted.X.to_numpy())


@pytest.mark.slow
def test_harmonization_recovers_auc_on_phantom_tree_cohort():
    from vasomics.model.simulate import simulate_phantom_cohort

    sizes = (50, 50, 50, 50)
    clean = _pooled_loco_auc(simulate_phantom_cohort(sizes, centre_effects=False), False,
                             covariates=())
    shifted = simulate_phantom_cohort(sizes, centre_effects=True)
    raw = _pooled_loco_auc(shifted, False, covariates=())
    harmonized = _pooled_loco_auc(shifted, True, covariates=())
    assert clean > 0.8
    assert raw < clean - 0.04, (clean, raw)
    assert harmonized >= clean - 0.03, (clean, raw, harmonized)
