"""Model workflow: parameters, estimator construction, training with validation, saving.

:class:`ModelParams` (YAML-loadable, every default documented) describes the data columns,
the pipeline (ComBat harmonization -> feature selection -> mixture of experts) and the
validation. :func:`build_estimator` turns it into an unfitted scikit-learn pipeline,
:func:`train` fits it on a :class:`~vasomics.model.matrix.FeatureMatrix`, validates it and
its baselines in the same harness, and returns a :class:`~vasomics.model.persist.ModelBundle`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.special import expit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from vasomics.model import validate as V
from vasomics.model.harmonize import ComBatHarmonizer
from vasomics.model.matrix import FeatureMatrix, catalogue_families, catalogue_version, read_matrix
from vasomics.model.metrics import cutoffs_from_training
from vasomics.model.moe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from vasomics.model.persist import ModelBundle, ModelMeta
from vasomics.model.selection import FeatureSelector
from vasomics.params import StageParams, params_dict, params_hash

log = logging.getLogger(__name__)


class ModelParams(StageParams):
    """Parameters of ``vasomics model`` (section ``model`` of a parameter file)."""

    target: str | None = Field(None, description="Outcome column.")
    task: Literal["classification", "regression"] = Field(
        "classification", description="Binary classification or regression (e.g. HVPG, mmHg).")
    positive: str | None = Field(
        None, description="Positive-class rule for classification, e.g. '>0' or '>=10'; "
                          "None: the column must hold two classes.")
    centre: str | None = Field(None, description="Centre column (leave-one-centre-out, "
                                                 "harmonization); not a feature.")
    modality: str | None = Field(None, description="Modality column (per-modality results).")
    id_column: str | None = Field(None, description="Row identifier column; not a feature.")
    drop: list[str] = Field(default_factory=list, description="Other non-feature columns.")
    categorical: list[str] = Field(default_factory=list,
                                   description="Columns to treat as categorical.")
    zero_as_missing: list[str] = Field(
        default_factory=list, description="Columns where 0 codes 'not measured'.")
    families: dict[str, str] = Field(
        default_factory=dict, description="Column -> family; catalogue ids get their "
                                          "catalogue category automatically.")
    harmonize: bool = Field(False, description="ComBat harmonization of centre effects.")
    covariates: list[str] = Field(default_factory=list,
                                  description="Covariates ComBat preserves (never the outcome).")
    unseen_centre: Literal["estimate", "none"] = Field(
        "estimate", description="ComBat for centres not in training: estimate their effects "
                                "from their own unlabelled data, or leave them unchanged.")
    selection: Literal["none", "stability", "mrmr", "fdr"] = Field(
        "none", description="Feature selection inside training folds.")
    max_features: int = Field(30, ge=1, description="Most features kept by selection.")
    expert: Literal["linear", "gbm"] = Field("linear", description="Expert model type.")
    expert_penalty: float = Field(1.0, gt=0, description="Inverse L2 strength of experts.")
    gate_penalty: float = Field(1.0, ge=0, description="L2 penalty of the gate.")
    generalist: bool = Field(True, description="Add an expert over all features.")
    inner_folds: int = Field(5, ge=2, description="Cross-fitting folds of the gate.")
    scheme: Literal["auto", "loco", "cv", "both", "none"] = Field(
        "auto", description="Validation: leave-one-centre-out, repeated stratified CV, both, "
                            "none; auto = loco when a centre column is given, else cv.")
    n_splits: int = Field(5, ge=2, description="CV folds.")
    n_repeats: int = Field(5, ge=1, description="CV repeats.")
    min_centre_size: int = Field(10, ge=2, description="Smallest centre held out and "
                                                       "reported on its own.")
    n_boot: int = Field(1000, ge=100, description="Bootstrap replicates of AUC CIs.")
    baselines: bool = Field(True, description="Validate L1 logistic regression and gradient "
                                              "boosting (ridge for regression) alongside.")
    threshold: float | None = Field(
        None, description="Regression: also report the AUC for target >= threshold.")
    seed: int = Field(0, description="Seed of every random choice.")


def load_matrix(path: str | Path, p: ModelParams, require_target: bool = True
                ) -> FeatureMatrix:
    """Read ``path`` with the column settings of ``p``."""
    return read_matrix(path, p.target, task=p.task, positive=p.positive, centre=p.centre,
                       modality=p.modality, id_column=p.id_column, families=p.families,
                       drop=p.drop, categorical=p.categorical,
                       zero_as_missing=p.zero_as_missing, require_target=require_target)


def build_estimator(p: ModelParams, families: dict[str, str] | None = None) -> Pipeline:
    """Unfitted pipeline: [ComBat] -> [selection] -> mixture of experts."""
    steps = []
    if p.harmonize:
        steps.append(("combat", ComBatHarmonizer(batch_column=V.BATCH_COLUMN,
                                                 covariates=list(p.covariates),
                                                 unseen=p.unseen_centre)))
    if p.selection != "none":
        steps.append(("select", FeatureSelector(p.selection, max_features=p.max_features,
                                                task=p.task, random_state=p.seed)))
    cls = MixtureOfExpertsClassifier if p.task == "classification" else MixtureOfExpertsRegressor
    steps.append(("moe", cls(families=families or dict(p.families), expert=p.expert,
                             expert_penalty=p.expert_penalty, generalist=p.generalist,
                             gate_penalty=p.gate_penalty, inner_folds=p.inner_folds,
                             random_state=p.seed)))
    return Pipeline(steps)


def schemes(p: ModelParams, fm: FeatureMatrix) -> list[str]:
    if p.scheme == "none":
        return []
    if p.scheme == "auto":
        return ["loco"] if fm.centre is not None else ["cv"]
    return ["loco", "cv"] if p.scheme == "both" else [p.scheme]


def run_validation(p: ModelParams, fm: FeatureMatrix, scheme: str) -> V.ValidationResult:
    """Validate the configured model (and baselines) under ``scheme``."""
    models = {"moe": build_estimator(p, fm.families)}
    if p.baselines:
        models.update(V.baselines(p.task, p.seed))
    return V.validate(models, fm, scheme, n_splits=p.n_splits,
                      n_repeats=p.n_repeats if scheme == "cv" else 1, seed=p.seed,
                      min_centre_size=p.min_centre_size, n_boot=p.n_boot, threshold=p.threshold)


def train(fm: FeatureMatrix, p: ModelParams, name: str = "vasomics model"
          ) -> tuple[ModelBundle, dict[str, V.ValidationResult]]:
    """Fit the configured model on all rows of ``fm`` and validate it (and its baselines)
    under the configured schemes; returns the bundle and the validation results."""
    t0 = time.perf_counter()
    estimator = build_estimator(p, fm.families)
    X = V.model_input(fm, estimator)
    with threadpool_limits(1):  # see validate.held_out_predictions
        estimator.fit(X, fm.y)
    fit_s = time.perf_counter() - t0
    validation = {s: run_validation(p, fm, s) for s in schemes(p, fm)}
    moe = estimator.steps[-1][1]
    cutoffs = (cutoffs_from_training(fm.y, expit(moe.oof_decision_))
               if fm.task == "classification" else None)
    selection = estimator.named_steps["select"].report() if "select" in estimator.named_steps \
        else None
    settings = {k: v for k, v in params_dict(p).items() if v not in (None, [], {})}
    settings["params_hash"] = params_hash(p)
    settings["fit_seconds"] = round(fit_s, 3)
    meta = ModelMeta(
        name=name, task=fm.task, target=fm.target, positive=p.positive,
        feature_ids=[str(c) for c in fm.X.columns], families=dict(fm.families),
        catalogue_version=catalogue_version() if catalogue_families(fm.X.columns) else None,
        centre_column=p.centre,
        categorical=fm.categorical, zero_as_missing=list(p.zero_as_missing),
        training={**fm.summary(), "source_file": Path(fm.source).name if fm.source else None},
        validation={s: v.to_dict() for s, v in validation.items()},
        selection=selection, cutoffs=cutoffs, settings=settings)
    log.info("trained %s on %d rows in %.1f s", name, len(fm.X), fit_s)
    return ModelBundle(estimator=estimator, meta=meta), validation


def external_validation(bundle: ModelBundle, fm: FeatureMatrix, min_n: int = 10,
                        n_boot: int = 1000, seed: int = 0) -> dict:
    """Measures of a fixed (already trained) model on new labelled data, pooled and per
    centre/modality; the model is not refitted."""
    import pandas as pd

    out = bundle.predict(fm)
    score = out.iloc[:, 0].to_numpy()
    cut = bundle.meta.cutoffs or {}
    pred = pd.DataFrame({"id": fm.ids, "fold": "external", "repeat": 0, "y": fm.y,
                         "score": score,
                         "centre": fm.centre if fm.centre is not None else "all",
                         "modality": fm.modality if fm.modality is not None else "all",
                         "rule_out": cut.get("rule_out", np.nan),
                         "rule_in": cut.get("rule_in", np.nan)})
    return V.summarize(pred, fm.task, min_n=min_n, n_boot=n_boot, seed=seed)
