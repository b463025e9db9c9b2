"""Saved models: the fitted estimator (with its preprocessing, harmonization and selection)
together with everything needed to use and judge it.

A bundle folder holds

* ``model.joblib``: the fitted scikit-learn estimator (pickle-based: load only bundles you
  trust; its SHA-256 is checked against ``model.json`` on load);
* ``model.json``: feature ids with the feature-catalogue version, families, task, target and
  positive-class rule, centre column, training cohort summary, all validation results,
  selection report, rule-in/rule-out cut-offs, settings and provenance.

Loading a bundle made with another catalogue version warns (feature definitions may have
changed); predicting on a table that lacks features of the model is an error listing them.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from vasomics.errors import InputError
from vasomics.io.atomic import staged_output_dir
from vasomics.model.matrix import FeatureMatrix, catalogue_version
from vasomics.model.validate import BATCH_COLUMN, uses_batch
from vasomics.provenance import file_sha256, software_versions

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
META_FILE = "model.json"
FORMAT_VERSION = 1


class CatalogueVersionWarning(UserWarning):
    """The model was trained with another feature-catalogue version."""


@dataclass
class ModelMeta:
    """Everything about a fitted model except the estimator itself (JSON-compatible)."""

    name: str
    task: str
    target: str | None
    positive: str | None
    feature_ids: list[str]
    families: dict[str, str]
    catalogue_version: str | None
    centre_column: str | None = None
    categorical: list[str] = field(default_factory=list)
    zero_as_missing: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    selection: dict | None = None
    cutoffs: dict | None = None
    settings: dict = field(default_factory=dict)
    software: dict = field(default_factory=software_versions)
    format_version: int = FORMAT_VERSION
    model_sha256: str | None = None


@dataclass
class ModelBundle:
    """A fitted estimator with its :class:`ModelMeta`."""

    estimator: object
    meta: ModelMeta

    def model_input(self, data: FeatureMatrix | pd.DataFrame, source: str | None = None
                    ) -> pd.DataFrame:
        """The estimator's input: the model's features in training order (plus the centre
        for models that harmonize); missing features are an error listing them."""
        if isinstance(data, FeatureMatrix):
            frame, centre, source = data.X, data.centre, data.source
        else:
            frame = data
            col = self.meta.centre_column
            centre = frame[col].astype(str).to_numpy() if col and col in frame.columns else None
        missing = [f for f in self.meta.feature_ids if f not in frame.columns]
        if missing:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise InputError(f"table lacks {len(missing)} feature(s) the model was trained on: "
                             f"{shown} (a feature not measured at all goes in as an empty "
                             f"column: it is then imputed)", source)
        X = frame.loc[:, self.meta.feature_ids]
        if uses_batch(self.estimator):
            if centre is None:
                raise InputError(f"this model harmonizes centres: the table needs the centre "
                                 f"column '{self.meta.centre_column}'", source)
            X = X.assign(**{BATCH_COLUMN: centre})
        return X

    def raw_features(self, frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
        """The model's feature columns of a raw table, parsed as in training (categorical
        columns, zeros coding 'not measured'), plus the centre column when present."""
        from vasomics.model.matrix import coerce_features

        present = [c for c in self.meta.feature_ids if c in frame.columns]
        cat = [c for c in self.meta.categorical if c in present]
        X = coerce_features(frame[present], cat, source,
                            numeric=[c for c in present if c not in cat])
        for c in self.meta.zero_as_missing:
            if c in X.columns:
                X.loc[X[c] == 0, c] = np.nan
        col = self.meta.centre_column
        if col and col in frame.columns:
            X[col] = frame[col].astype(str).to_numpy()
        return X

    def predict(self, data: FeatureMatrix | pd.DataFrame, source: str | None = None
                ) -> pd.DataFrame:
        """Predictions: probability (classification) or value (regression), with the
        rule-in/rule-out zone for classifiers."""
        X = self.model_input(data, source)
        if self.meta.task == "classification":
            prob = self.estimator.predict_proba(X)[:, 1]
            out = pd.DataFrame({"probability": prob})
            if self.meta.cutoffs:
                ro, ri = self.meta.cutoffs["rule_out"], self.meta.cutoffs["rule_in"]
                out["zone"] = np.where(prob < ro, "rule-out",
                                       np.where(prob >= ri, "rule-in", "grey"))
            return out
        return pd.DataFrame({"prediction": self.estimator.predict(X)})


def save_bundle(bundle: ModelBundle, folder: str | Path) -> Path:
    """Write ``model.joblib`` and ``model.json`` into ``folder`` (atomically: a failed save
    leaves the folder as it was)."""
    folder = Path(folder)
    with staged_output_dir(folder) as stage:
        joblib.dump(bundle.estimator, stage / MODEL_FILE, compress=3)
        bundle.meta.model_sha256 = file_sha256(stage / MODEL_FILE)
        (stage / META_FILE).write_text(json.dumps(asdict(bundle.meta), indent=1,
                                                  default=_json_default))
    return folder


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def read_meta(folder: str | Path) -> ModelMeta:
    """The metadata of a bundle (no estimator loaded)."""
    path = Path(folder) / META_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("not a model bundle (model.json missing)", folder) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read model metadata ({exc})", path) from None
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"unsupported model bundle format {data.get('format_version')}", path)
    return ModelMeta(**data)


def load_bundle(folder: str | Path) -> ModelBundle:
    """Load a bundle; warns (:class:`CatalogueVersionWarning`) when the model's features are
    catalogue ids and the installed catalogue version differs from the training one."""
    folder = Path(folder)
    meta = read_meta(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise InputError("model bundle lacks model.joblib", folder)
    if meta.model_sha256 and file_sha256(model_path) != meta.model_sha256:
        raise InputError("model.joblib does not match the checksum in model.json", folder)
    estimator = joblib.load(model_path)
    installed = catalogue_version()
    if meta.catalogue_version is not None and meta.catalogue_version != installed:
        msg = (f"{folder}: model trained with feature catalogue version "
               f"{meta.catalogue_version}, installed version is {installed}; feature "
               f"definitions may differ")
        warnings.warn(msg, CatalogueVersionWarning, stacklevel=2)
        log.warning(msg)
    return ModelBundle(estimator=estimator, meta=meta)
