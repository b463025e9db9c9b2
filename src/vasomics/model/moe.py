"""Mixture of experts over feature families, with the scikit-learn estimator API.

Model
-----
One *expert* per feature family (anatomical, biomechanical, biochemical,
pathophysiological, composite, or any family of a user mapping), each a pipeline of
:class:`~vasomics.model.preprocess.TablePreprocessor` restricted to that family's columns and
an L2-penalized linear model (logistic regression for classification, ridge for
regression; ``expert="gbm"`` uses histogram gradient boosting instead). Optionally a
*generalist* expert sees all columns.

A *gating model* weights the experts per patient::

    eta(x) = c0 + s * sum_k w_k(x) * e_k(x),   w(x) = softmax_k(a_k + B_k . g(x))  over
                                                       the experts available for x,

where ``e_k`` is expert k's output (log-odds, or the prediction in target units for
regression) and ``g(x)`` holds the share of observed values of each family for that patient.
Constant training columns are ignored (``dropped_constant_``); a family left without
columns gets no expert. An expert whose columns are all missing for a patient (a missing family or modality, or
columns absent from the table) gets weight 0 and the others are renormalized, so a missing
family never feeds imputed guesses into the prediction. ``a, B, c0, s`` are fitted on
*out-of-fold* expert outputs (``inner_folds``-fold cross-fitting inside the training data)
by penalized maximum likelihood (log loss, or squared error for regression), which also
calibrates the combined output. The experts are then refitted on all training rows.

Everything is fitted on the data passed to ``fit`` only; ``clone``, ``get_params``,
``Pipeline`` and ``cross_val_score`` work as for any scikit-learn estimator. Input is a
DataFrame (column names are used to assign families) or an array (columns ``x0, x1, ...``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from vasomics.errors import InputError
from vasomics.model.matrix import catalogue_families, check_target
from vasomics.model.preprocess import TablePreprocessor, as_frame

log = logging.getLogger(__name__)

#: Name of the optional expert that sees every column.
GENERALIST = "all"


class _MixtureBase(BaseEstimator):
    _task = "classification"

    def __init__(self, families=None, expert: str = "linear", expert_penalty: float = 1.0,
                 generalist: bool = True, gate_penalty: float = 1.0, inner_folds: int = 5,
                 min_family_size: int = 1, n_threads: int | None = 1,
                 random_state: int | None = 0):
        self.families = families
        self.expert = expert
        self.expert_penalty = expert_penalty
        self.generalist = generalist
        self.gate_penalty = gate_penalty
        self.inner_folds = inner_folds
        self.min_family_size = min_family_size
        self.n_threads = n_threads
        self.random_state = random_state

    # ----------------------------------------------------------------- experts
    def _base_model(self):
        if self.expert not in ("linear", "gbm"):
            raise InputError(f"unknown expert type '{self.expert}' (linear or gbm)")
        if self._task == "classification":
            if self.expert == "gbm":
                return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                                      max_leaf_nodes=15,
                                                      random_state=self.random_state)
            return LogisticRegression(C=self.expert_penalty, max_iter=2000)
        if self.expert == "gbm":
            return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05,
                                                 max_leaf_nodes=15, random_state=self.random_state)
        return Ridge(alpha=1.0 / self.expert_penalty)

    def _expert_pipeline(self, columns) -> Pipeline:
        scale = self.expert == "linear"
        return Pipeline([("prep", TablePreprocessor(columns=list(columns), scale=scale)),
                         ("model", self._base_model())])

    def _expert_output(self, pipe: Pipeline, frame: pd.DataFrame) -> np.ndarray:
        if self._task == "classification":
            return pipe.decision_function(frame)
        return pipe.predict(frame)

    def _family_groups(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        mapping = dict(catalogue_families(frame.columns))
        mapping.update(self.families or {})
        groups: dict[str, list[str]] = {}
        self.dropped_constant_ = [c for c in frame.columns if frame[c].nunique(dropna=True) <= 1]
        if len(self.dropped_constant_) == frame.shape[1]:
            raise InputError("every feature is constant or missing in the training data")
        if self.dropped_constant_:
            log.info("constant features ignored by the mixture: %s", self.dropped_constant_)
        for col in frame.columns:
            if col in self.dropped_constant_:
                continue
            groups.setdefault(str(mapping.get(col, "other")), []).append(col)
        small = [f for f, cols in groups.items() if len(cols) < self.min_family_size]
        if small and len(groups) > len(small):
            merged = [c for f in small for c in groups.pop(f)]
            groups.setdefault("other", []).extend(merged)
        return dict(sorted(groups.items()))

    def _availability(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per patient: observed share of each family (gate input) and which experts can
        speak (at least one observed value in their columns)."""
        observed = []
        for cols in self.family_columns_.values():
            present = [c for c in cols if c in frame.columns]
            share = (frame[present].notna().sum(axis=1).to_numpy() / len(cols) if present
                     else np.zeros(len(frame)))
            observed.append(share)
        G = np.column_stack(observed) if observed else np.zeros((len(frame), 0))
        avail = G > 0
        if self.generalist:
            avail = np.column_stack([avail, avail.any(axis=1)])
        return G, avail

    def _splitter(self, y):
        if self._task == "classification":
            n_min = int(np.bincount(y).min())
            return StratifiedKFold(max(2, min(self.inner_folds, n_min)), shuffle=True,
                                   random_state=self.random_state)
        return KFold(max(2, min(self.inner_folds, len(y) // 5)), shuffle=True,
                     random_state=self.random_state)

    # -------------------------------------------------------------------- gate
    def _combine(self, theta, E, G, avail):
        K = E.shape[1]
        a, B = theta[:K], theta[K:K + K * G.shape[1]].reshape(K, G.shape[1])
        c0, s = theta[-2], theta[-1]
        z = a[None, :] + G @ B.T
        z = np.where(avail, z, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        w = np.exp(z)
        w /= w.sum(axis=1, keepdims=True)
        Ez = np.where(avail, E, 0.0)
        m = (w * Ez).sum(axis=1)
        return c0 + s * m, w, m, Ez

    def _gate_objective(self, theta, E, G, avail, y, scale):
        K = E.shape[1]
        eta, w, m, Ez = self._combine(theta, E, G, avail)
        n = len(y)
        if self._task == "classification":
            loss = np.mean(np.logaddexp(0.0, eta) - y * eta)
            r = (expit(eta) - y) / n
        else:
            loss = np.mean((eta - y) ** 2) / scale
            r = 2.0 * (eta - y) / (n * scale)
        s = theta[-1]
        dz = (r * s)[:, None] * w * (Ez - m[:, None])
        grad = np.concatenate([dz.sum(axis=0), (dz.T @ G).ravel(), [r.sum(), (r * m).sum()]])
        lam = self.gate_penalty / n
        pen = theta[:K + K * G.shape[1]]
        loss += lam * np.sum(pen ** 2)
        grad[:K + K * G.shape[1]] += 2 * lam * pen
        return loss, grad

    def _fit_gate(self, E, G, avail, y) -> np.ndarray:
        K = E.shape[1]
        scale = float(np.var(y)) if self._task == "regression" else 1.0
        theta0 = np.zeros(K + K * G.shape[1] + 2)
        theta0[-1] = 1.0
        if self._task == "regression":
            theta0[-1], theta0[-2] = 1.0, 0.0
        res = minimize(self._gate_objective, theta0, args=(E, G, avail, y, max(scale, 1e-12)),
                       jac=True, method="L-BFGS-B", options={"maxiter": 500})
        if not res.success:
            log.debug("gate optimizer: %s", res.message)
        return res.x

    # --------------------------------------------------------------------- fit
    def fit(self, X, y):
        with threadpool_limits(self.n_threads):
            return self._fit(X, y)

    def _fit(self, X, y):
        frame = as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        y = self._prepare_target(np.asarray(y))
        self.family_columns_ = self._family_groups(frame)
        experts = dict(self.family_columns_)
        if self.generalist:
            experts[GENERALIST] = [c for c in frame.columns if c not in self.dropped_constant_]
        self.expert_names_ = list(experts)
        templates = [self._expert_pipeline(cols) for cols in experts.values()]
        oof = np.zeros((len(frame), len(templates)))
        for train, test in self._splitter(y).split(frame, y):
            for k, tpl in enumerate(templates):
                pipe = clone(tpl).fit(frame.iloc[train], y[train])
                oof[test, k] = self._expert_output(pipe, frame.iloc[test])
        self.experts_ = [clone(tpl).fit(frame, y) for tpl in templates]
        G, avail = self._availability(frame)
        self.gate_coef_ = self._fit_gate(oof, G, avail, y)
        self.oof_decision_ = self._combine(self.gate_coef_, oof, G, avail)[0]
        return self

    def _prepare_target(self, y):
        raise NotImplementedError

    def _outputs(self, X):
        check_is_fitted(self, "gate_coef_")
        frame = as_frame(X, self.feature_names_in_)
        expected = [c for c in self.feature_names_in_ if c not in frame.columns]
        if len(expected) == len(self.feature_names_in_):
            raise InputError("none of the model's features is in the table")
        with threadpool_limits(self.n_threads):
            E = np.column_stack([self._expert_output(p, frame) for p in self.experts_])
        G, avail = self._availability(frame)
        return E, G, avail

    def decision_function(self, X) -> np.ndarray:
        """Combined output: log-odds (classification) or prediction (regression)."""
        E, G, avail = self._outputs(X)
        return self._combine(self.gate_coef_, E, G, avail)[0]

    def expert_weights(self, X) -> pd.DataFrame:
        """Gate weight of every expert for every patient (rows sum to 1)."""
        E, G, avail = self._outputs(X)
        w = self._combine(self.gate_coef_, E, G, avail)[1]
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(w, columns=self.expert_names_, index=index)

    def expert_outputs(self, X) -> pd.DataFrame:
        """Each expert's own output (log-odds or prediction) per patient; NaN where the
        expert has no observed input."""
        E, _, avail = self._outputs(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(np.where(avail, E, np.nan), columns=self.expert_names_,
                            index=index)


class MixtureOfExpertsClassifier(ClassifierMixin, _MixtureBase):
    """Binary mixture-of-experts classifier (see module docstring).

    Parameters
    ----------
    families:
        Column -> family mapping (None: feature catalogue categories; columns without a
        family form the family ``"other"``).
    expert:
        ``"linear"`` (L2 logistic regression on standardized, imputed features with missing
        indicators) or ``"gbm"`` (histogram gradient boosting).
    expert_penalty:
        Inverse L2 strength C of the linear experts (1.0).
    generalist:
        Add an expert over all columns (True).
    gate_penalty:
        L2 penalty of the gate weights (1.0, in units of the summed log loss).
    inner_folds:
        Cross-fitting folds for the out-of-fold expert outputs the gate learns from (5).
    min_family_size:
        Families with fewer columns are merged into ``"other"`` (1: no merging).
    n_threads:
        BLAS/OpenMP threads while fitting and predicting (1: the experts are small models,
        and multi-threaded OpenMP in boosting is much slower on a busy machine; None: the
        libraries' defaults).
    random_state:
        Seed of the inner fold split and of the boosting experts.
    """

    _task = "classification"

    def _prepare_target(self, y):
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise InputError(f"binary classification needs 2 classes, got {len(self.classes_)}")
        y01 = (y == self.classes_[1]).astype(int)
        check_target(y01, "classification")
        return y01

    def predict_proba(self, X) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


class MixtureOfExpertsRegressor(RegressorMixin, _MixtureBase):
    """Mixture-of-experts regressor, e.g. HVPG in mmHg (parameters as the classifier;
    linear experts are ridge regressions with alpha = 1 / expert_penalty)."""

    _task = "regression"

    def _prepare_target(self, y):
        y = y.astype(float)
        check_target(y, "regression")
        return y

    def predict(self, X) -> np.ndarray:
        return self.decision_function(X)
