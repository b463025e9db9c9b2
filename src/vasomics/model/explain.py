"""Model interpretation: SHAP values, expert weights per patient, partial dependence.

SHAP values are computed here (no extra dependency) as *interventional* Shapley values of
the model output — log-odds for classifiers, the prediction for regressors — on the raw
input columns (before preprocessing), with a background sample standing for "feature
unknown" (Lundberg & Lee 2017; Janzing et al. 2020). They are estimated by permutation
sampling with antithetic pairs (Strumbelj & Kononenko 2014; the same estimator as
``shap.PermutationExplainer``): for each permutation the features of the explained patient
are switched in one by one over every background row, and each switch's change of the mean
output is that feature's marginal contribution. Every permutation satisfies efficiency
exactly (contributions sum to output minus mean background output), and for a model that is
additive in the input columns (e.g. a logistic regression without interactions) one
permutation already gives the exact values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from vasomics.errors import InputError
from vasomics.model.preprocess import as_frame


def model_output(model, X: pd.DataFrame) -> np.ndarray:
    """Log-odds (classifiers with ``decision_function`` or ``predict_proba``) or prediction."""
    if hasattr(model, "decision_function"):
        try:
            return np.asarray(model.decision_function(X), float)
        except AttributeError:  # a pipeline whose final step lacks decision_function
            pass
    if hasattr(model, "predict_proba"):
        p = np.clip(model.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
        return np.log(p / (1 - p))
    return np.asarray(model.predict(X), float)


def _hybrid(x: pd.Series, background: pd.DataFrame, masks: np.ndarray) -> pd.DataFrame:
    """Rows mixing ``x`` (where mask) and background rows (elsewhere): for every mask row,
    one row per background row."""
    nb = len(background)
    rep_mask = np.repeat(masks, nb, axis=0)
    cols = {}
    for j, col in enumerate(background.columns):
        bg = np.tile(background[col].to_numpy(), len(masks))
        xv = x[col]
        if pd.api.types.is_numeric_dtype(background[col]):
            cols[col] = np.where(rep_mask[:, j], float(xv) if pd.notna(xv) else np.nan,
                                 bg.astype(float))
        else:
            arr = bg.astype(object)
            arr[rep_mask[:, j]] = xv
            cols[col] = arr
    return pd.DataFrame(cols)


def shap_values(model, X: pd.DataFrame, background: pd.DataFrame, n_permutations: int = 10,
                seed: int = 0) -> tuple[pd.DataFrame, float]:
    """Interventional SHAP values (rows of ``X`` x its columns) of the model output and the
    base value (mean output over ``background``). ``n_permutations`` is rounded up to an
    even number (antithetic pairs)."""
    with threadpool_limits(1):  # many small predictions: threads only add overhead
        return _shap_values(model, as_frame(X), as_frame(background), n_permutations, seed)


def _shap_values(model, X, background, n_permutations, seed):
    background = background.loc[:, X.columns]
    if len(background) == 0:
        raise InputError("SHAP needs a non-empty background sample")
    rng = np.random.default_rng(seed)
    p, nb = X.shape[1], len(background)
    n_pairs = max(1, (n_permutations + 1) // 2)
    base = float(model_output(model, background).mean())
    phi = np.zeros((len(X), p))
    for i in range(len(X)):
        perms = []
        for _ in range(n_pairs):
            order = rng.permutation(p)
            perms += [order, order[::-1]]
        masks = []
        for order in perms:
            m = np.zeros((p + 1, p), bool)
            for step, j in enumerate(order):
                m[step + 1:, j] = True
            masks.append(m)
        masks = np.vstack(masks)
        out = model_output(model, _hybrid(X.iloc[i], background, masks))
        values = out.reshape(len(perms), p + 1, nb).mean(axis=2)
        deltas = np.diff(values, axis=1)
        for k, order in enumerate(perms):
            phi[i, order] += deltas[k]
        phi[i] /= len(perms)
    return pd.DataFrame(phi, columns=X.columns, index=X.index), base


def global_importance(shap: pd.DataFrame) -> pd.Series:
    """Mean absolute SHAP value per feature, largest first."""
    return shap.abs().mean(axis=0).sort_values(ascending=False)


def partial_dependence(model, X: pd.DataFrame, feature: str, grid_size: int = 20,
                       max_rows: int = 300, seed: int = 0) -> dict:
    """Mean model output (probability for classifiers, prediction for regressors) when
    ``feature`` is set to each grid value for every row of ``X`` (numeric: quantiles 5-95 %;
    categorical: the observed levels)."""
    X = as_frame(X)
    if feature not in X.columns:
        raise InputError(f"feature '{feature}' is not in the table")
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
    col = X[feature]
    if pd.api.types.is_numeric_dtype(col):
        grid = np.unique(np.nanquantile(col.to_numpy(float), np.linspace(0.05, 0.95, grid_size)))
    else:
        grid = np.asarray(sorted(col.dropna().astype(str).unique()), dtype=object)
    if len(grid) == 0:
        raise InputError(f"feature '{feature}' has no observed values")
    big = pd.concat([X] * len(grid), ignore_index=True)
    big[feature] = np.repeat(grid, len(X))
    if hasattr(model, "predict_proba"):
        out = model.predict_proba(big)[:, 1]
    else:
        out = model.predict(big)
    mean = out.reshape(len(grid), len(X)).mean(axis=1)
    return {"feature": feature, "grid": [g.item() if hasattr(g, "item") else g for g in grid],
            "mean_output": mean.tolist()}


def expert_weights(model, X: pd.DataFrame) -> pd.DataFrame:
    """Per-patient gate weights of a mixture of experts (also inside a pipeline: the steps
    before it transform ``X`` first)."""
    steps = model.steps if isinstance(model, Pipeline) else [(None, model)]
    data = X
    for _, step in steps[:-1]:
        data = step.transform(data)
    final = steps[-1][1]
    if not hasattr(final, "expert_weights"):
        raise InputError("the model is not a mixture of experts: no expert weights")
    return final.expert_weights(data)
