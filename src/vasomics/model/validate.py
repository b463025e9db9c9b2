"""Validation harness: stratified repeated cross-validation and leave-one-centre-out
external validation, the same for every model (mixture of experts and baselines).

Each training fold fits the whole estimator (preprocessing, harmonization, selection and
model) on its own rows; the held-out rows are only transformed and predicted. Rule-in and
rule-out cut-offs are derived in the training fold (from the model's out-of-fold training
predictions ``oof_decision_`` when it has them, else from a 3-fold inner cross-validation)
and applied unchanged to the held-out fold. Results are pooled and split per centre and per
modality.

Centres with fewer than ``min_centre_size`` patients are never held out on their own (their
rows stay in every training fold of leave-one-centre-out) and get no per-centre measures;
this is logged and recorded in the result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import KFold, RepeatedStratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from vasomics.errors import InputError
from vasomics.model import metrics as M
from vasomics.model.matrix import FeatureMatrix
from vasomics.model.preprocess import TablePreprocessor

log = logging.getLogger(__name__)

#: Column through which the centre reaches estimators that harmonize (ComBat).
BATCH_COLUMN = "__centre__"


def l1_logistic(random_state: int = 0) -> Pipeline:
    """Baseline: L1 logistic regression on standardized features, C in 1e-3..10 chosen by
    5-fold inner CV (log loss)."""
    return Pipeline([("prep", TablePreprocessor()),
                     ("model", LogisticRegressionCV(Cs=np.logspace(-3, 1, 10), l1_ratios=(1.0,),
                                                    solver="liblinear",
                                                    scoring="neg_log_loss", max_iter=1000,
                                                    use_legacy_attributes=False,
                                                    cv=5, random_state=random_state))])


def gradient_boosting(random_state: int = 0, task: str = "classification") -> Pipeline:
    """Baseline: histogram gradient boosting (native missing-value handling)."""
    prep = TablePreprocessor(missing_indicators=False, scale=False)
    if task == "regression":
        model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05,
                                              max_leaf_nodes=15, random_state=random_state)
    else:
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                               max_leaf_nodes=15, random_state=random_state)
    return Pipeline([("prep", prep), ("model", model)])


def ridge(task: str = "regression") -> Pipeline:
    """Baseline for regression: ridge regression with alpha by inner CV."""
    return Pipeline([("prep", TablePreprocessor()),
                     ("model", RidgeCV(alphas=np.logspace(-3, 3, 13)))])


def baselines(task: str = "classification", random_state: int = 0) -> dict:
    """The baselines every model is compared with in the same harness."""
    if task == "regression":
        return {"ridge": ridge(), "gradient_boosting": gradient_boosting(random_state, task)}
    return {"l1_logistic": l1_logistic(random_state),
            "gradient_boosting": gradient_boosting(random_state)}


def uses_batch(estimator) -> bool:
    """True when the estimator harmonizes and so needs the centre column."""
    from vasomics.model.harmonize import ComBatHarmonizer

    steps = estimator.steps if isinstance(estimator, Pipeline) else [(None, estimator)]
    return any(isinstance(step, ComBatHarmonizer) for _, step in steps)


def model_input(fm: FeatureMatrix, estimator) -> pd.DataFrame:
    """Features, plus the centre column when the estimator harmonizes."""
    if uses_batch(estimator):
        if fm.centre is None:
            raise InputError("harmonization needs a centre column", fm.source)
        return fm.X.assign(**{BATCH_COLUMN: fm.centre})
    return fm.X


def _final(estimator):
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def _scores(estimator, X, task) -> np.ndarray:
    if task == "regression":
        return estimator.predict(X)
    return estimator.predict_proba(X)[:, 1]


def _training_cutoffs(fitted, unfitted, X, y, seed) -> dict:
    oof = getattr(_final(fitted), "oof_decision_", None)
    if oof is not None and len(oof) == len(y):
        prob = expit(oof)
    else:
        prob = cross_val_predict(clone(unfitted), X, y, method="predict_proba",
                                 cv=_stratified(3, y, seed))[:, 1]
    return M.cutoffs_from_training(y, prob)


def _stratified(k, y, seed):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(max(2, min(k, int(np.bincount(y).min()))), shuffle=True,
                           random_state=seed)


def splits(fm: FeatureMatrix, scheme: str, n_splits: int = 5, n_repeats: int = 1,
           seed: int = 0, min_centre_size: int = 10):
    """(fold name, repeat, train indices, test indices) for ``scheme`` ``"cv"`` (stratified
    repeated k-fold; plain k-fold for regression) or ``"loco"`` (leave one centre out)."""
    n = len(fm.X)
    if scheme == "cv":
        if fm.task == "classification":
            k = min(n_splits, int(np.bincount(fm.y).min()))
            if k < 2:
                raise InputError("too few patients of one class for cross-validation",
                                 fm.source)
            cv = RepeatedStratifiedKFold(n_splits=k, n_repeats=n_repeats, random_state=seed)
            for i, (tr, te) in enumerate(cv.split(np.zeros(n), fm.y)):
                yield f"fold{i % k}", i // k, tr, te
        else:
            for r in range(n_repeats):
                cv = KFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
                for i, (tr, te) in enumerate(cv.split(np.zeros(n))):
                    yield f"fold{i}", r, tr, te
        return
    if scheme != "loco":
        raise InputError(f"unknown validation scheme '{scheme}' (cv or loco)")
    if fm.centre is None:
        raise InputError("leave-one-centre-out needs a centre column", fm.source)
    centres, counts = np.unique(fm.centre, return_counts=True)
    held = [c for c, k in zip(centres, counts, strict=True) if k >= min_centre_size]
    small = [f"{c} (n={k})" for c, k in zip(centres, counts, strict=True) if k < min_centre_size]
    if small:
        log.warning("centres with fewer than %d patients are not held out (kept in training): "
                    "%s", min_centre_size, ", ".join(small))
    if len(held) < 2:
        raise InputError(f"leave-one-centre-out needs at least 2 centres with >= "
                         f"{min_centre_size} patients, found {len(held)}", fm.source)
    for c in held:
        te = np.flatnonzero(fm.centre == c)
        tr = np.flatnonzero(fm.centre != c)
        if fm.task == "classification" and len(np.unique(fm.y[tr])) < 2:
            raise InputError(f"training data without centre {c} have one class only",
                             fm.source)
        yield str(c), 0, tr, te


def held_out_predictions(estimator, fm: FeatureMatrix, scheme: str = "loco",
                         n_splits: int = 5, n_repeats: int = 1, seed: int = 0,
                         min_centre_size: int = 10, threads: int | None = 1) -> pd.DataFrame:
    """Held-out predictions of ``estimator`` under ``scheme``: one row per (patient,
    repeat) with fold, centre, modality, label, score and the fold's cut-offs.

    ``threads`` limits BLAS/OpenMP threads while fitting (default 1: on tables of clinical
    size, multi-threaded OpenMP in gradient boosting is slower, and on a shared machine
    up to 30x slower, than one thread; None leaves the libraries' defaults)."""
    with threadpool_limits(threads):
        return _held_out(estimator, fm, scheme, n_splits, n_repeats, seed, min_centre_size)


def _held_out(estimator, fm, scheme, n_splits, n_repeats, seed, min_centre_size):
    X = model_input(fm, estimator)
    rows, selected = [], {}
    for fold, rep, tr, te in splits(fm, scheme, n_splits, n_repeats, seed, min_centre_size):
        t0 = time.perf_counter()
        model = clone(estimator).fit(X.iloc[tr], fm.y[tr])
        score = _scores(model, X.iloc[te], fm.task)
        part = {"id": fm.ids[te], "fold": fold, "repeat": rep, "y": fm.y[te], "score": score,
                "centre": fm.centre[te] if fm.centre is not None else "all",
                "modality": fm.modality[te] if fm.modality is not None else "all"}
        if fm.task == "classification":
            cut = _training_cutoffs(model, estimator, X.iloc[tr], fm.y[tr], seed)
            part["rule_out"], part["rule_in"] = cut["rule_out"], cut["rule_in"]
        rows.append(pd.DataFrame(part))
        if isinstance(model, Pipeline) and "select" in model.named_steps:
            selected[f"{fold}/{rep}"] = list(model.named_steps["select"].selected_)
        log.info("fold %s: trained on %d, tested on %d in %.1f s", fold, len(tr), len(te),
                 time.perf_counter() - t0)
    out = pd.concat(rows, ignore_index=True)
    out.attrs["selected"] = selected
    return out


def selection_across_folds(selected: dict[str, list[str]]) -> dict:
    """How often each feature was selected over the training folds, and the Nogueira
    stability index of the selected sets."""
    from vasomics.model.selection import stability_index

    feats = sorted({f for s in selected.values() for f in s})
    Z = np.array([[f in s for f in feats] for s in selected.values()], float)
    return {"n_folds": len(selected),
            "frequency": dict(zip(feats, Z.mean(axis=0).round(3).tolist(), strict=True)),
            "stability_index": stability_index(Z) if len(selected) > 1 else None,
            "per_fold": selected}


def summarize(pred: pd.DataFrame, task: str, min_n: int = 10, n_boot: int = 1000,
              seed: int = 0, threshold: float | None = None) -> dict:
    """Pooled, per-centre and per-modality measures of held-out predictions (repeats of
    repeated CV are pooled per repeat and then averaged for the pooled AUC summary)."""

    def group(df: pd.DataFrame) -> dict:
        if task == "regression":
            return M.regression_metrics(df.y.to_numpy(), df.score.to_numpy(), threshold,
                                        min_n=min_n, seed=seed)
        return M.binary_metrics(df.y.to_numpy(), df.score.to_numpy(),
                                {"rule_out": df.rule_out.to_numpy(),
                                 "rule_in": df.rule_in.to_numpy()},
                                n_boot=n_boot, seed=seed, min_n=min_n)

    first = pred[pred.repeat == 0]
    out = {"pooled": group(first), "per_centre": {}, "per_modality": {}}
    if pred.repeat.nunique() > 1 and task == "classification":
        per_rep = [M.auc(d.y.to_numpy(), d.score.to_numpy()) for _, d in pred.groupby("repeat")]
        out["pooled"]["auc_repeats_mean"] = float(np.mean(per_rep))
        out["pooled"]["auc_repeats_sd"] = float(np.std(per_rep, ddof=1))
    for name, df in first.groupby("centre"):
        out["per_centre"][str(name)] = group(df)
    if first.modality.nunique() > 1:
        for name, df in first.groupby("modality"):
            out["per_modality"][str(name)] = group(df)
    if task == "classification":
        y, p = first.y.to_numpy(), first.score.to_numpy()
        out["calibration_curve"] = M.calibration_curve(y, p)
        out["decision_curve"] = M.decision_curve(y, p)
    return out


@dataclass
class ValidationResult:
    """Measures (``results[model][...]``) and held-out predictions per model."""

    scheme: str
    task: str
    results: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def table(self, measure: str = "auc") -> pd.DataFrame:
        """Rows = centres (and ``pooled``), columns = models: one measure."""
        data = {}
        for name, res in self.results.items():
            col = {"pooled": res["pooled"].get(measure)}
            col.update({c: r.get(measure) for c, r in res["per_centre"].items()})
            data[name] = col
        return pd.DataFrame(data)

    def to_dict(self) -> dict:
        return {"scheme": self.scheme, "task": self.task, "results": self.results,
                "seconds": self.seconds, "settings": self.settings}


def validate(models: dict, fm: FeatureMatrix, scheme: str = "loco", n_splits: int = 5,
             n_repeats: int = 1, seed: int = 0, min_centre_size: int = 10, n_boot: int = 1000,
             threshold: float | None = None, threads: int | None = 1) -> ValidationResult:
    """Validate every model of ``models`` (name -> unfitted estimator) on ``fm`` in the
    same splits; see :func:`held_out_predictions` and :func:`summarize`."""
    if fm.y is None:
        raise InputError("validation needs a target column", fm.source)
    out = ValidationResult(scheme=scheme, task=fm.task,
                           settings={"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed,
                                     "min_centre_size": min_centre_size, "n_boot": n_boot})
    for name, est in models.items():
        t0 = time.perf_counter()
        pred = held_out_predictions(est, fm, scheme, n_splits, n_repeats, seed, min_centre_size,
                                    threads)
        out.seconds[name] = time.perf_counter() - t0
        out.predictions[name] = pred
        out.results[name] = summarize(pred, fm.task, min_centre_size, n_boot, seed, threshold)
        if pred.attrs.get("selected"):
            out.results[name]["selection"] = selection_across_folds(pred.attrs["selected"])
    return out
