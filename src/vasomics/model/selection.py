"""Feature selection, fitted inside training folds: stability selection with L1 models,
mRMR, and univariate filters with Benjamini-Hochberg false-discovery control.

All selectors work on raw tables (DataFrames): scores are computed on a fold-fitted
:class:`~vasomics.model.preprocess.TablePreprocessor` encoding, and an input column is
selected when any of its encoded columns is (a categorical column stays whole). The
:class:`FeatureSelector` transformer returns the selected input columns, so it sits in a
pipeline before any model, including the mixture of experts (whose families then simply
lose unselected columns).

References: Meinshausen & Bühlmann 2010 (stability selection), Nogueira, Sechidis & Brown
2018 (stability index), Peng, Long & Ding 2005 and Zhao, Anand & Wang 2019 (mRMR, F-test
relevance / correlation redundancy quotient), Benjamini & Hochberg 1995.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import f_classif, f_regression
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.svm import l1_min_c
from sklearn.utils.validation import check_is_fitted

from vasomics.errors import InputError
from vasomics.model.preprocess import TablePreprocessor, as_frame

log = logging.getLogger(__name__)


def benjamini_hochberg(pvalues: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """BH step-up procedure: (rejected mask, adjusted p-values (q-values))."""
    p = np.asarray(pvalues, float)
    p = np.where(np.isnan(p), 1.0, p)
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q <= alpha, q


def univariate_pvalues(Z: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """Mann-Whitney U (classification) or Spearman (regression) p-value per column."""
    if task == "classification":
        yb = y.astype(bool)
        return stats.mannwhitneyu(Z[yb], Z[~yb], axis=0, alternative="two-sided").pvalue
    return np.array([stats.spearmanr(Z[:, j], y).pvalue if np.ptp(Z[:, j]) > 0 else 1.0
                     for j in range(Z.shape[1])])


def mrmr_order(Z: np.ndarray, y: np.ndarray, k: int, task: str) -> tuple[list[int], np.ndarray]:
    """Greedy mRMR (F-statistic relevance / mean absolute correlation redundancy, the
    "FCQ" variant): indices of the first ``k`` columns in selection order, and relevance."""
    score_fn = f_classif if task == "classification" else f_regression
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.nan_to_num(score_fn(Z, y)[0], nan=0.0)
    std = Z.std(axis=0)
    Zs = (Z - Z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    chosen = [int(np.argmax(rel))]
    red_sum = np.zeros(Z.shape[1])
    while len(chosen) < min(k, Z.shape[1]):
        last = Zs[:, chosen[-1]]
        red_sum += np.abs(Zs.T @ last) / len(last)
        score = rel / np.maximum(red_sum / len(chosen), 1e-3)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen, rel


def stability_index(selections: np.ndarray) -> float:
    """Nogueira et al. (2018) stability of a (resamples x features) 0/1 selection matrix:
    1 = identical sets in every resample, about 0 = as stable as random sets of equal size."""
    S = np.asarray(selections, float)
    M, d = S.shape
    if M < 2:
        return float("nan")
    k_bar = S.sum(axis=1).mean()
    denom = (k_bar / d) * (1 - k_bar / d)
    if denom <= 0:
        return 1.0
    var = S.var(axis=0, ddof=1)
    return float(1 - var.mean() / denom)


def stability_selection(Z: np.ndarray, y: np.ndarray, task: str, n_resamples: int = 50,
                        sample_fraction: float = 0.5, penalties: np.ndarray | None = None,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Selection frequency of each column over subsamples (maximum over the L1 penalty
    grid) and the (resamples x columns) selection matrix at the middle of the grid.

    ``penalties`` are multiples of the weakest regularization that still selects nothing
    (``l1_min_c`` for logistic regression, ``alpha_max`` for the lasso): C = c_min * f, or
    alpha = alpha_max / f; default f = 1.5..6 (4 values, log-spaced)."""
    rng = np.random.default_rng(seed)
    n, d = Z.shape
    if penalties is None:  # 1.5x to 6x looser than the penalty selecting nothing
        penalties = np.logspace(np.log10(1.5), np.log10(6), 4)
    if task == "classification":
        base = l1_min_c(Z, y, loss="log")
    else:
        base = np.max(np.abs((Z - Z.mean(0)).T @ (y - y.mean()))) / n  # lasso alpha_max
    counts = np.zeros((len(penalties), d))
    mid = len(penalties) // 2
    matrix = np.zeros((n_resamples, d), bool)
    m = max(2, int(sample_fraction * n))
    for r in range(n_resamples):
        if task == "classification":
            idx = np.concatenate([rng.choice(np.flatnonzero(y == c),
                                             max(1, int(sample_fraction * np.sum(y == c))),
                                             replace=False) for c in (0, 1)])
        else:
            idx = rng.choice(n, m, replace=False)
        for i, lam in enumerate(penalties):
            if task == "classification":
                model = LogisticRegression(l1_ratio=1.0, C=float(base * lam), solver="liblinear")
                coef = model.fit(Z[idx], y[idx]).coef_.ravel()
            else:
                coef = Lasso(alpha=float(base / lam), max_iter=5000).fit(Z[idx], y[idx]).coef_
            sel = np.abs(coef) > 1e-10
            counts[i] += sel
            if i == mid:
                matrix[r] = sel
    return (counts / n_resamples).max(axis=0), matrix


class FeatureSelector(TransformerMixin, BaseEstimator):
    """Select input columns with ``method``:

    * ``"stability"``: stability selection (L1 logistic/lasso on ``n_resamples`` half
      subsamples over a penalty grid); keep columns selected in at least ``threshold`` of
      the subsamples (at most ``max_features``, most frequent first).
    * ``"mrmr"``: the first ``max_features`` columns of greedy mRMR.
    * ``"fdr"``: columns whose univariate test (Mann-Whitney / Spearman) survives
      Benjamini-Hochberg at level ``alpha``.

    If nothing passes, the single best column is kept and a warning logged (a model with no
    input would be meaningless). Fitted attributes: ``selected_`` (input columns),
    ``scores_`` (per input column: frequency, mRMR relevance or -log10 q) and
    ``stability_`` (Nogueira index; stability selection only).
    """

    def __init__(self, method: str = "stability", max_features: int = 30,
                 threshold: float = 0.6, alpha: float = 0.05, n_resamples: int = 50,
                 task: str = "classification", random_state: int = 0):
        self.method = method
        self.max_features = max_features
        self.threshold = threshold
        self.alpha = alpha
        self.n_resamples = n_resamples
        self.task = task
        self.random_state = random_state

    def fit(self, X, y):
        frame = as_frame(X)
        y = np.asarray(y)
        if self.task == "classification":
            y = (y == np.unique(y)[-1]).astype(int)
        prep = TablePreprocessor(missing_indicators=False).fit(frame)
        Z = prep.transform(frame)
        sources = prep.output_sources_
        if self.method == "stability":
            col_score, matrix = stability_selection(Z, y, self.task, self.n_resamples,
                                                    seed=self.random_state)
            self.stability_ = stability_index(matrix)
            keep = col_score >= self.threshold
            order = np.argsort(-col_score)
        elif self.method == "mrmr":
            chosen, rel = mrmr_order(Z, y, self.max_features, self.task)
            col_score = rel
            keep = np.zeros(Z.shape[1], bool)
            keep[chosen] = True
            order = np.asarray(chosen + [j for j in np.argsort(-rel) if j not in chosen])
        elif self.method == "fdr":
            pvals = univariate_pvalues(Z, y, self.task)
            keep, q = benjamini_hochberg(pvals, self.alpha)
            col_score = -np.log10(np.maximum(q, 1e-300))
            order = np.argsort(q)
        else:
            raise InputError(f"unknown selection method '{self.method}' (stability, mrmr, fdr)")
        selected: list[str] = []
        for j in order:
            if keep[j] and sources[j] not in selected:
                selected.append(sources[j])
            if len(selected) >= self.max_features:
                break
        if not selected:
            selected = [sources[order[0]]]
            log.warning("%s selection kept no feature; keeping the best one (%s)", self.method,
                        selected[0])
        scores = pd.Series(col_score, index=sources).groupby(level=0).max()
        self.scores_ = scores.reindex(frame.columns).fillna(0.0)
        self.selected_ = selected
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def transform(self, X) -> pd.DataFrame:
        check_is_fitted(self, "selected_")
        frame = as_frame(X, self.feature_names_in_)
        extra = [c for c in frame.columns if c.startswith("__")]  # e.g. the batch column
        return frame.loc[:, [c for c in self.selected_ if c in frame.columns] + extra]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "selected_")
        return np.asarray(self.selected_, dtype=object)

    def report(self) -> dict:
        """Selected set, per-feature score and stability (JSON-compatible)."""
        check_is_fitted(self, "selected_")
        out = {"method": self.method, "selected": list(self.selected_),
               "scores": {k: float(v) for k, v in self.scores_.items()}}
        if hasattr(self, "stability_"):
            out["stability_index"] = float(self.stability_)
        return out
