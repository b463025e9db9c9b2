"""Performance measures of held-out predictions: discrimination with bootstrap confidence
intervals, cut-off based measures with a grey zone, calibration, decision curves.

Probabilities are of the positive class; labels are 0/1. Every function refuses (returns a
``note`` instead of numbers) where a measure is undefined, e.g. an AUC on one class.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from scipy.stats import rankdata

#: Probabilities are clipped to [EPS, 1 - EPS] before taking log-odds.
EPS = 1e-6


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties count one half)."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_bootstrap_ci(y: np.ndarray, score: np.ndarray, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC, resampling positives and negatives separately
    (stratified, so every replicate has both classes)."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, float)
    pos, neg = score[y], score[~y]
    rng = np.random.default_rng(seed)
    bp = pos[rng.integers(0, len(pos), (n_boot, len(pos)))]
    bn = neg[rng.integers(0, len(neg), (n_boot, len(neg)))]
    ranks = rankdata(np.hstack([bp, bn]), axis=1)
    n1, n0 = len(pos), len(neg)
    aucs = (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    alpha = (1 - level) / 2
    return float(np.quantile(aucs, alpha)), float(np.quantile(aucs, 1 - alpha))


def _fit_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray | None = None,
                  slope: bool = True, iters: int = 50) -> np.ndarray:
    """Unpenalized logistic regression y ~ a (+ b x) (+ offset) by Newton's method."""
    X = np.column_stack([np.ones_like(x), x]) if slope else np.ones((len(x), 1))
    off = np.zeros(len(x)) if offset is None else offset
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        p = expit(X @ beta + off)
        W = p * (1 - p) + 1e-12
        H = X.T @ (X * W[:, None]) + 1e-9 * np.eye(X.shape[1])
        step = np.linalg.solve(H, X.T @ (y - p))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration(y: np.ndarray, prob: np.ndarray) -> dict:
    """Calibration slope (logistic recalibration y ~ a + b logit(p)) and calibration
    intercept (calibration-in-the-large: y ~ a + offset(logit(p))); ideal 1 and 0."""
    lp = logit(np.clip(prob, EPS, 1 - EPS))
    y = np.asarray(y, float)
    slope = _fit_logistic(lp, y)[1]
    intercept = _fit_logistic(lp, y, offset=lp, slope=False)[0]
    return {"calibration_slope": float(slope), "calibration_intercept": float(intercept)}


def cutoffs_from_training(y: np.ndarray, prob: np.ndarray, sensitivity: float = 0.9,
                          specificity: float = 0.9) -> dict:
    """Rule-out cut-off: the largest probability threshold that keeps the sensitivity at
    least ``sensitivity``; rule-in cut-off: the smallest threshold reaching specificity at
    least ``specificity`` (Baveno-style dual cut-offs). Patients between them form the
    grey zone. Derived on training data (out-of-fold predictions) only."""
    y = np.asarray(y).astype(bool)
    pos = np.sort(prob[y])
    neg = np.sort(prob[~y])
    k = int(np.floor((1 - sensitivity) * len(pos)))
    rule_out = float(pos[k]) if len(pos) else 0.5  # p >= rule_out keeps >= sens of positives
    j = int(np.ceil(specificity * len(neg))) - 1
    rule_in = float(np.nextafter(neg[min(max(j, 0), len(neg) - 1)], 1.0)) if len(neg) else 0.5
    if rule_in < rule_out:
        rule_in = rule_out
    return {"rule_out": rule_out, "rule_in": rule_in,
            "target_sensitivity": sensitivity, "target_specificity": specificity}


def _rates(y: np.ndarray, positive: np.ndarray) -> dict:
    tp = int(np.sum(positive & y))
    fp = int(np.sum(positive & ~y))
    fn = int(np.sum(~positive & y))
    tn = int(np.sum(~positive & ~y))

    def ratio(a, b):
        return float(a / b) if b else None

    return {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
            "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn)}


def binary_metrics(y: np.ndarray, prob: np.ndarray, cut: dict | None = None,
                   n_boot: int = 1000, seed: int = 0, min_n: int = 10) -> dict:
    """All classification measures for one group of held-out predictions.

    ``cut`` holds per-row ``rule_out``/``rule_in`` arrays (cut-offs from each row's training
    fold) or scalars. Groups smaller than ``min_n`` or with one class get counts and a
    ``note`` instead of measures that would be meaningless."""
    y = np.asarray(y).astype(int)
    prob = np.asarray(prob, float)
    out: dict = {"n": int(len(y)), "n_positive": int(y.sum()),
                 "prevalence": float(y.mean()) if len(y) else None,
                 "mean_predicted": float(prob.mean()) if len(y) else None}
    if len(y) < min_n:
        out["note"] = f"too few patients (n={len(y)} < {min_n}): measures not computed"
        return out
    yb = y.astype(bool)
    out["brier"] = float(np.mean((prob - y) ** 2))
    out["accuracy"] = float(np.mean((prob >= 0.5) == yb))
    if cut is not None:
        ro = np.broadcast_to(np.asarray(cut["rule_out"], float), prob.shape)
        ri = np.broadcast_to(np.asarray(cut["rule_in"], float), prob.shape)
        out["rule_out"] = {"cutoff_mean": float(np.mean(ro)), **_rates(yb, prob >= ro)}
        out["rule_in"] = {"cutoff_mean": float(np.mean(ri)), **_rates(yb, prob >= ri)}
        out["grey_zone_share"] = float(np.mean((prob >= ro) & (prob < ri)))
    if yb.all() or not yb.any():
        out["note"] = "one class only: AUC and calibration undefined"
        return out
    out["auc"] = auc(yb, prob)
    lo, hi = auc_bootstrap_ci(yb, prob, n_boot=n_boot, seed=seed)
    out["auc_ci95"] = [lo, hi]
    out.update(calibration(y, prob))
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray, threshold: float | None = None,
                       min_n: int = 10, seed: int = 0) -> dict:
    """MAE, RMSE, R², Pearson r and calibration slope (y ~ a + b pred) of a continuous
    prediction; with ``threshold`` also the AUC of the prediction for ``y >= threshold``
    (e.g. HVPG >= 10 mmHg)."""
    y = np.asarray(y, float)
    pred = np.asarray(pred, float)
    out: dict = {"n": int(len(y))}
    if len(y) < min_n:
        out["note"] = f"too few patients (n={len(y)} < {min_n}): measures not computed"
        return out
    res = y - pred
    out["mae"] = float(np.mean(np.abs(res)))
    out["rmse"] = float(np.sqrt(np.mean(res ** 2)))
    sst = float(np.sum((y - y.mean()) ** 2))
    out["r2"] = float(1 - np.sum(res ** 2) / sst) if sst > 0 else None
    if np.ptp(pred) > 0 and np.ptp(y) > 0:
        out["pearson_r"] = float(np.corrcoef(y, pred)[0, 1])
        out["calibration_slope"] = float(np.polyfit(pred, y, 1)[0])
    if threshold is not None:
        yb = y >= threshold
        if yb.any() and not yb.all():
            out["auc_threshold"] = float(threshold)
            out["auc"] = auc(yb, pred)
            out["auc_ci95"] = list(auc_bootstrap_ci(yb, pred, seed=seed))
    return out


def decision_curve(y: np.ndarray, prob: np.ndarray,
                   thresholds: np.ndarray | None = None) -> dict:
    """Net benefit (Vickers & Elkin 2006) of treating patients with p >= t, of treating all
    and of treating none, at threshold probabilities ``t`` (default 0.01..0.99)."""
    y = np.asarray(y).astype(bool)
    t = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds)
    n = len(y)
    treat = prob[None, :] >= t[:, None]
    tp = (treat & y[None, :]).sum(axis=1) / n
    fp = (treat & ~y[None, :]).sum(axis=1) / n
    odds = t / (1 - t)
    prev = y.mean()
    return {"threshold": t.tolist(), "model": (tp - fp * odds).tolist(),
            "treat_all": (prev - (1 - prev) * odds).tolist(), "treat_none": [0.0] * len(t)}


def calibration_curve(y: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> dict:
    """Observed event rate against mean predicted probability in quantile bins."""
    order = np.argsort(prob)
    bins = [b for b in np.array_split(order, min(n_bins, max(1, len(prob) // 5))) if len(b)]
    return {"predicted": [float(prob[b].mean()) for b in bins],
            "observed": [float(np.mean(y[b])) for b in bins],
            "n": [int(len(b)) for b in bins]}


def logit_clip(prob: np.ndarray) -> np.ndarray:
    return logit(np.clip(prob, EPS, 1 - EPS))
