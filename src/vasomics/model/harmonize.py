"""ComBat harmonization of centre (batch) effects with covariates to preserve.

Model (Johnson, Li & Rabinovic 2007, Biostatistics 8:118; Fortin et al. 2018, NeuroImage
167:104), for feature ``j`` of patient ``i`` in centre ``b``::

    y_ij = alpha_j + C_i beta_j + gamma_bj + delta_bj * eps_ij,   eps_ij ~ N(0, sigma_j^2)

``alpha`` (grand mean, the sample-size weighted average of the centre intercepts), ``beta``
(covariate effects, e.g. age and sex, preserved) and ``sigma`` (pooled residual SD) are
least-squares estimates; the additive and multiplicative centre effects ``gamma, delta`` are
empirical-Bayes estimates with parametric priors (normal for gamma, inverse gamma for
delta^2, hyper-parameters by the method of moments across the features of each centre),
shrinking each feature's estimate towards its centre's average behaviour. Harmonized values
are ``(y - alpha - C beta - gamma*) / delta* + alpha + C beta``.

Choices, all documented here and in the parameters:

* **Fitted on training rows only.** ``fit`` estimates everything from the training
  centres; ``transform`` applies the stored parameters to held-out rows of those centres.
* **Unseen centres** (leave-one-centre-out): with ``unseen="estimate"`` (default) the new
  centre's gamma and delta are estimated from its own feature distribution — standardized
  with the training alpha, beta, sigma, then the same empirical-Bayes step — without its
  labels; this assumes the new centre's patients are, after the preserved covariates, a
  similar disease mix to training (a strongly different prevalence is partly removed as if
  it were a centre effect). ``unseen="none"`` passes the new centre through unchanged.
  Centres with fewer than 2 rows at transform time are passed through with a warning.
* **Outcome is never a covariate**: covariates must be known at prediction time, so
  passing the label (which would leak it into held-out data) is not possible.
* **Missing values** are allowed: estimates use the observed values of each feature; a
  centre with fewer than 2 observed values of a feature is left unadjusted for it.
* **Which features**: numeric columns with more than ``min_unique`` distinct training
  values (binary or ordinal codes are not harmonized), except covariates and the batch
  column.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from vasomics.errors import InputError

log = logging.getLogger(__name__)


def _eb_batch(s: np.ndarray, conv: float = 1e-4, max_iter: int = 1000
              ) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes (parametric priors) gamma*, delta*^2 of one batch from its
    standardized data ``s`` (rows = patients of the batch, columns = features, NaN = missing).
    Features with fewer than 2 observed values get gamma 0 and delta 1."""
    n = np.sum(~np.isnan(s), axis=0).astype(float)
    ok = n >= 2
    g_hat = np.zeros(s.shape[1])
    d_hat = np.ones(s.shape[1])
    if not ok.any():
        return g_hat, d_hat
    g_hat[ok] = np.nanmean(s[:, ok], axis=0)
    d_hat[ok] = np.maximum(np.nanvar(s[:, ok], axis=0, ddof=1), 1e-8)
    if ok.sum() < 3:  # priors need several features: fall back to location/scale estimates
        return g_hat, d_hat
    gk, dk, nk, sk = g_hat[ok], d_hat[ok], n[ok], s[:, ok]
    g_bar = gk.mean()
    t2 = gk.var(ddof=1)
    m, v = dk.mean(), dk.var(ddof=1)
    a = (2 * v + m ** 2) / v if v > 0 else np.inf
    b = (m * v + m ** 3) / v if v > 0 else np.inf
    if not np.isfinite(a):
        g_new = (nk * t2 * gk + dk * g_bar) / (nk * t2 + dk)
        g_hat[ok], d_hat[ok] = g_new, dk
        return g_hat, d_hat
    g_old, d_old = gk.copy(), dk.copy()
    for _ in range(max_iter):
        g_new = (t2 * nk * gk + d_old * g_bar) / (t2 * nk + d_old)
        sum2 = np.nansum((sk - g_new[None, :]) ** 2, axis=0)
        d_new = (b + 0.5 * sum2) / (nk / 2.0 + a - 1.0)
        change = max(np.max(np.abs(g_new - g_old) / np.maximum(np.abs(g_old), 1e-12)),
                     np.max(np.abs(d_new - d_old) / d_old))
        g_old, d_old = g_new, d_new
        if change < conv:
            break
    g_hat[ok], d_hat[ok] = g_old, d_old
    return g_hat, d_hat


class ComBatHarmonizer(TransformerMixin, BaseEstimator):
    """ComBat (empirical Bayes, parametric priors) as a scikit-learn transformer on
    DataFrames (see module docstring).

    Parameters
    ----------
    batch_column:
        Column holding the centre of each row; it is removed from the output.
    covariates:
        Columns whose effects are preserved (numeric used linearly, text one-hot). They stay
        in the output unchanged.
    features:
        Columns to harmonize (None: numeric columns with more than ``min_unique`` values).
    min_unique:
        Minimum number of distinct training values for automatic feature choice (5).
    empirical_bayes:
        Shrink centre effects with parametric priors (True), or use per-feature location
        and scale estimates (False).
    unseen:
        ``"estimate"``: estimate a new centre's effects from its own unlabelled data;
        ``"none"``: leave new centres unchanged.
    """

    def __init__(self, batch_column: str = "__centre__", covariates=(), features=None,
                 min_unique: int = 5, empirical_bayes: bool = True, unseen: str = "estimate"):
        self.batch_column = batch_column
        self.covariates = covariates
        self.features = features
        self.min_unique = min_unique
        self.empirical_bayes = empirical_bayes
        self.unseen = unseen

    def _covariate_design(self, frame: pd.DataFrame, fit: bool) -> np.ndarray:
        cols = []
        for c in self.covariates:
            if c not in frame.columns:
                raise InputError(f"covariate '{c}' is not in the table")
            s = frame[c]
            if pd.api.types.is_numeric_dtype(s):
                if fit:
                    self.cov_fill_[c] = float(np.nanmean(s.to_numpy(float)))
                cols.append(s.fillna(self.cov_fill_[c]).to_numpy(float)[:, None])
            else:
                if fit:
                    self.cov_levels_[c] = sorted(s.dropna().astype(str).unique())[1:]
                v = s.astype(str).to_numpy()
                cols.append((v[:, None] == np.asarray(self.cov_levels_[c])[None, :]).astype(float))
        return np.hstack(cols) if cols else np.zeros((len(frame), 0))

    def fit(self, X, y=None):
        if not isinstance(X, pd.DataFrame) or self.batch_column not in X.columns:
            raise InputError(f"ComBat needs a DataFrame with the batch column "
                             f"'{self.batch_column}'")
        if self.unseen not in ("estimate", "none"):
            raise InputError(f"unseen must be 'estimate' or 'none', got '{self.unseen}'")
        batch = X[self.batch_column].astype(str).to_numpy()
        skip = set(self.covariates) | {self.batch_column}
        if self.features is None:
            feats = [c for c in X.columns if c not in skip
                     and pd.api.types.is_numeric_dtype(X[c])
                     and X[c].nunique(dropna=True) > self.min_unique]
        else:
            feats = [c for c in self.features if c not in skip]
        self.features_ = feats
        self.batches_, counts = np.unique(batch, return_counts=True)
        if len(self.batches_) < 2:
            log.warning("ComBat fitted on a single centre: nothing to harmonize")
        self.cov_fill_, self.cov_levels_ = {}, {}
        C = self._covariate_design(X, fit=True)
        Y = X[feats].to_numpy(float)
        Bd = (batch[:, None] == self.batches_[None, :]).astype(float)
        D = np.hstack([Bd, C])
        nb, p = len(self.batches_), len(feats)
        coef = np.zeros((D.shape[1], p))
        obs = ~np.isnan(Y)
        if obs.all():
            coef = np.linalg.lstsq(D, Y, rcond=None)[0]
        else:
            for j in range(p):
                o = obs[:, j]
                coef[:, j] = np.linalg.lstsq(D[o], Y[o, j], rcond=None)[0]
        n_obs = Bd.T @ obs  # (nb, p) observed count per batch and feature
        w = n_obs / np.maximum(n_obs.sum(axis=0, keepdims=True), 1)
        self.grand_mean_ = np.sum(w * coef[:nb], axis=0)
        self.beta_ = coef[nb:]
        resid = np.where(obs, Y - D @ coef, 0.0)
        self.var_pooled_ = np.maximum(resid.__pow__(2).sum(axis=0) / np.maximum(obs.sum(0), 1),
                                      1e-12)
        self.var_pooled_[np.ptp(np.where(obs, Y, np.nanmean(Y, 0)), axis=0) == 0] = 1.0
        s = (Y - self.grand_mean_ - C @ self.beta_) / np.sqrt(self.var_pooled_)
        self.gamma_ = np.zeros((nb, p))
        self.delta_ = np.ones((nb, p))
        for i, b in enumerate(self.batches_):
            self.gamma_[i], self.delta_[i] = self._batch_effects(s[batch == b])
        self.n_per_batch_ = dict(zip(self.batches_.tolist(), counts.tolist(), strict=True))
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _batch_effects(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.empirical_bayes:
            return _eb_batch(s)
        n = np.sum(~np.isnan(s), axis=0)
        g = np.where(n >= 2, np.nanmean(np.where(n >= 2, s, 0.0), axis=0), 0.0)
        d = np.where(n >= 2, np.nanvar(np.where(n >= 2, s, 0.0), axis=0, ddof=1), 1.0)
        return g, np.maximum(d, 1e-8)

    def transform(self, X) -> pd.DataFrame:
        check_is_fitted(self, "gamma_")
        if not isinstance(X, pd.DataFrame) or self.batch_column not in X.columns:
            raise InputError(f"ComBat needs the batch column '{self.batch_column}' to "
                             f"harmonize new data")
        missing = [c for c in self.features_ if c not in X.columns]
        if missing:
            raise InputError(f"table lacks harmonized features: {missing[:5]}")
        batch = X[self.batch_column].astype(str).to_numpy()
        C = self._covariate_design(X, fit=False)
        Y = X[self.features_].to_numpy(float)
        stand = self.grand_mean_ + C @ self.beta_
        sd = np.sqrt(self.var_pooled_)
        s = (Y - stand) / sd
        out = Y.copy()
        known = {b: i for i, b in enumerate(self.batches_)}
        for b in np.unique(batch):
            rows = batch == b
            if b in known:
                g, d = self.gamma_[known[b]], self.delta_[known[b]]
            elif self.unseen == "none" or rows.sum() < 2:
                if self.unseen == "estimate":
                    log.warning("unseen centre %s has %d row(s): not harmonized", b, rows.sum())
                continue
            else:
                g, d = self._batch_effects(s[rows])
                log.info("unseen centre %s: effects estimated from its %d unlabelled rows",
                         b, rows.sum())
            out[rows] = (s[rows] - g) / np.sqrt(d) * sd + stand[rows]
        result = X.drop(columns=[self.batch_column]).copy()
        result[self.features_] = out
        return result

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "gamma_")
        return np.asarray([c for c in self.feature_names_in_ if c != self.batch_column],
                          dtype=object)
