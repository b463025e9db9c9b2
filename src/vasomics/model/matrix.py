"""Feature matrices for modelling: one row per patient (scan), feature columns, a label,
a centre and (optionally) a modality.

A :class:`FeatureMatrix` is read from a CSV/Parquet table or a cohort DuckDB store
(:func:`read_matrix`). Nothing is fitted here: imputation, scaling, encoding, harmonization
and selection are estimators fitted inside training folds (``preprocess``, ``harmonize``,
``selection``). This module only parses and checks the input so that a meaningless table
fails with one clear line instead of producing a meaningless AUC:

* a label column with one class only (classification) or a constant target -> ``InputError``;
* a feature column that is mostly numeric but holds non-numeric entries -> ``InputError``
  naming the column and an offending value (text columns are categorical only when fewer
  than 90 % of their values parse as numbers, or when listed as categorical);
* constant features are kept here and dropped by the preprocessor inside each training fold
  (logged and recorded in the model);
* physiologically impossible zeros can be declared missing (``zero_as_missing``), e.g. a
  cholesterol of 0 mg/dl in the UCI heart data, which codes "not measured".

Feature families (anatomical, biomechanical, biochemical, pathophysiological, composite)
come from the feature catalogue for catalogue ids, or from an explicit column -> family
mapping for other tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vasomics.errors import InputError

log = logging.getLogger(__name__)

#: The five catalogue categories; experts of the mixture are built per family.
CATALOGUE_FAMILIES = ("anatomical", "biomechanical", "biochemical", "pathophysiological",
                      "composite")
#: Text values read as booleans (case-insensitive).
_BOOL_TEXT = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}
#: A text column is numeric when at least this share of its non-missing values parse.
NUMERIC_SHARE = 0.9


@dataclass
class FeatureMatrix:
    """Features ``X`` (numeric float columns and categorical string columns, NaN = missing),
    target ``y`` (0/1 for classification, float for regression, None when unlabelled),
    ``centre`` and ``modality`` per row (None when absent), ``families`` column -> family,
    ``ids`` row identifiers and ``source`` (file the data came from)."""

    X: pd.DataFrame
    y: np.ndarray | None = None
    centre: np.ndarray | None = None
    modality: np.ndarray | None = None
    families: dict[str, str] = field(default_factory=dict)
    ids: np.ndarray | None = None
    task: str = "classification"
    target: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        n = len(self.X)
        for name in ("y", "centre", "modality", "ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise InputError(f"{name} has {len(value)} rows, features {n}", self.source)
        if self.ids is None:
            self.ids = np.asarray(self.X.index.astype(str))

    @property
    def categorical(self) -> list[str]:
        return [c for c in self.X.columns if not pd.api.types.is_numeric_dtype(self.X[c])]

    def summary(self) -> dict:
        """Training-cohort summary (JSON-compatible): size, outcome, centres, missingness."""
        out: dict = {"n": int(len(self.X)), "n_features": int(self.X.shape[1]),
                     "task": self.task, "target": self.target,
                     "missing_share": float(self.X.isna().to_numpy().mean()) if self.X.size else 0.0,
                     "families": _count(self.families.values())}
        if self.y is not None:
            if self.task == "classification":
                out["n_positive"] = int(np.sum(self.y == 1))
                out["prevalence"] = float(np.mean(self.y))
            else:
                out["target_mean"] = float(np.mean(self.y))
                out["target_sd"] = float(np.std(self.y, ddof=1)) if len(self.y) > 1 else 0.0
        if self.centre is not None:
            out["centres"] = {}
            for c in np.unique(self.centre):
                sel = self.centre == c
                entry = {"n": int(sel.sum())}
                if self.y is not None and self.task == "classification":
                    entry["prevalence"] = float(np.mean(self.y[sel]))
                out["centres"][str(c)] = entry
        if self.modality is not None:
            out["modalities"] = _count(self.modality)
        return out


def _count(values) -> dict[str, int]:
    vals, counts = np.unique(np.asarray(list(values), dtype=str), return_counts=True)
    return {str(v): int(c) for v, c in zip(vals, counts, strict=True)}


def coerce_features(frame: pd.DataFrame, categorical: list[str] | None = None,
                    source: str | None = None, numeric: list[str] | None = None
                    ) -> pd.DataFrame:
    """Numeric columns as float64, text booleans as 0/1, other text columns as categorical
    strings (NaN kept); a mostly numeric column, or one listed in ``numeric`` (e.g. numeric
    in a model's training data), with stray text raises ``InputError``."""
    categorical = set(categorical or [])
    numeric = set(numeric or [])
    out = {}
    for col in frame.columns:
        s = frame[col]
        if col in categorical:
            out[col] = s.astype(object).where(s.notna(), np.nan).map(
                lambda v: v if isinstance(v, float) and np.isnan(v) else str(v))
            continue
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float)
            continue
        present = s.dropna()
        text = present.astype(str).str.strip()
        lowered = text.str.lower()
        if len(present) and lowered.isin(_BOOL_TEXT).all():
            out[col] = s.map(lambda v: np.nan if pd.isna(v) else _BOOL_TEXT[str(v).strip().lower()])
            continue
        parsed = pd.to_numeric(text, errors="coerce")
        share = float(parsed.notna().mean()) if len(present) else 1.0
        if share >= NUMERIC_SHARE or col in numeric:
            bad = text[parsed.isna()]
            if len(bad):
                raise InputError(f"feature column '{col}' has non-numeric values "
                                 f"(e.g. '{bad.iloc[0]}' in row {bad.index[0]}); fix them or "
                                 f"declare the column categorical", source)
            out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        else:
            out[col] = s.astype(object).where(s.notna(), np.nan).map(
                lambda v: v if isinstance(v, float) and np.isnan(v) else str(v).strip())
    return pd.DataFrame(out, index=frame.index)


def binarize_target(values: pd.Series, positive: str | None, source: str | None = None
                    ) -> np.ndarray:
    """0/1 labels from a target column. ``positive`` is a rule: ``">0"``, ``">=10"``,
    ``"<5"``, ``"==yes"`` or None (the column must already hold two classes; the larger
    sorted value is positive). Missing targets raise ``InputError``."""
    if values.isna().any():
        raise InputError(f"target column '{values.name}' has {int(values.isna().sum())} "
                         f"missing values; drop those rows first", source)
    if positive:
        for op in (">=", "<=", "==", "!=", ">", "<"):
            if positive.startswith(op):
                ref = positive[len(op):].strip()
                break
        else:
            raise InputError(f"positive-class rule '{positive}' must start with one of "
                             f">, >=, <, <=, ==, !=", source)
        if op in ("==", "!="):
            hit = values.astype(str).str.strip() == ref
            return (hit if op == "==" else ~hit).to_numpy().astype(int)
        num = pd.to_numeric(values, errors="coerce")
        if num.isna().any():
            raise InputError(f"target column '{values.name}' is not numeric; use an == rule",
                             source)
        ref_f = float(ref)
        ops = {">": num > ref_f, ">=": num >= ref_f, "<": num < ref_f, "<=": num <= ref_f}
        return ops[op].to_numpy().astype(int)
    classes = np.unique(values.astype(str))
    if len(classes) > 2:
        raise InputError(f"target column '{values.name}' has {len(classes)} classes; give a "
                         f"positive-class rule such as '>0'", source)
    try:
        order = sorted(np.unique(values), key=float)
    except (TypeError, ValueError):
        order = sorted(np.unique(values.astype(str)))
    return (values.astype(str).to_numpy() == str(order[-1])).astype(int)


def check_target(y: np.ndarray, task: str, name: str = "target",
                 source: str | None = None) -> None:
    """Refuse targets on which a model or an AUC would be meaningless."""
    if len(y) == 0:
        raise InputError("no rows to model", source)
    if task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise InputError(f"label column '{name}' has one class only ({classes[0]} in all "
                             f"{len(y)} rows): a classifier and its AUC would be meaningless",
                             source)
        if counts.min() < 5:
            raise InputError(f"label column '{name}' has only {counts.min()} rows of class "
                             f"{classes[np.argmin(counts)]}: too few to fit and validate", source)
    elif not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        raise InputError(f"target column '{name}' is constant or not finite", source)


def _catalogue():
    try:
        from vasomics.features.catalogue import load_catalogue
    except ImportError:  # features area not installed
        return None
    return load_catalogue()


def catalogue_families(columns) -> dict[str, str]:
    """Families (catalogue categories) of the columns that are feature-catalogue ids; a
    column ``<id>@<scope>`` (wide export of a non-tree scope) maps to its id's family."""
    cat = _catalogue()
    if cat is None:
        return {}
    lookup = {f.id: f.category for f in cat.features}
    out = {}
    for col in columns:
        base = str(col).split("@")[0]
        if base in lookup:
            out[col] = str(lookup[base])
    return out


def catalogue_version() -> str | None:
    """Version string of the installed feature catalogue, None when unavailable."""
    cat = _catalogue()
    return None if cat is None else str(cat.catalogue_version)


def is_feature_id(column: str) -> bool:
    """True for feature-catalogue ids (``VX.<category>.<scope>.<NAME>``)."""
    return str(column).startswith("VX.")


def _read_table(path: Path, table: str | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".duckdb", ".db"):
            return _read_cohort_store(path, table)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError("table not found", path) from None
    except InputError:
        raise
    except Exception as exc:  # pandas/pyarrow/duckdb raise many types for corrupt files
        raise InputError(f"cannot read table ({type(exc).__name__}: {exc})", path) from None


def _read_cohort_store(path: Path, table: str | None) -> pd.DataFrame:
    """The wide feature matrix (one row per scan: ``scan_id, subject_id, centre, modality,
    acquisition_date``, feature ids, labels) of a cohort DuckDB store, through the cohort
    store's API (:func:`vasomics.cohort.store.feature_matrix`); without it, a table or view
    named ``table`` (default ``matrix``) read directly with DuckDB."""
    try:
        from vasomics.cohort import store as cohort_store
    except ImportError:
        cohort_store = None
    if cohort_store is not None:
        return cohort_store.feature_matrix(path)
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f'SELECT * FROM "{table or "matrix"}"').df()


def read_matrix(path: str | Path, target: str | None, *, task: str = "classification",
                positive: str | None = None, centre: str | None = None,
                modality: str | None = None, id_column: str | None = None,
                families: dict[str, str] | None = None, drop: list[str] | None = None,
                categorical: list[str] | None = None, zero_as_missing: list[str] | None = None,
                table: str | None = None, require_target: bool = True) -> FeatureMatrix:
    """Read a feature matrix from CSV/TSV/Parquet or a cohort DuckDB store.

    ``target`` is the outcome column (binarized with ``positive`` for classification),
    ``centre`` and ``modality`` are grouping columns (not features), ``id_column`` names rows,
    ``drop`` lists other non-feature columns. ``families`` maps columns to families; columns
    without a family get one from the feature catalogue, else ``"other"``. From a cohort
    store (``.duckdb``), rows are scans, ``scan_id``/``centre``/``modality`` are used by
    default and only feature-catalogue ids are features (other labels are dropped).
    """
    path = Path(path)
    frame = _read_table(path, table)
    src = str(path)
    if path.suffix.lower() in (".duckdb", ".db"):
        # cohort store: its own id/centre/modality columns; only catalogue ids are features
        id_column = id_column or "scan_id"
        centre = centre or ("centre" if frame["centre"].notna().any() else None) \
            if "centre" in frame.columns else centre
        modality = modality or ("modality" if "modality" in frame.columns else None)
        keep = {target, centre, modality, id_column}
        drop = list(drop or []) + [c for c in frame.columns
                                   if c not in keep and not is_feature_id(c)]
    special = [c for c in (target, centre, modality, id_column) if c]
    for col in special + list(drop or []) + list(zero_as_missing or []):
        if col not in frame.columns and not (col == target and not require_target):
            raise InputError(f"column '{col}' not in table (columns: "
                             f"{', '.join(map(str, frame.columns[:12]))}...)", path)
    y = None
    if target and target in frame.columns:
        if task == "classification":
            y = binarize_target(frame[target], positive, src)
        else:
            y = pd.to_numeric(frame[target], errors="coerce").to_numpy(float)
            if np.isnan(y).any():
                raise InputError(f"target column '{target}' has missing or non-numeric values",
                                 path)
        check_target(y, task, target, src)
    features = frame.drop(columns=[c for c in special + list(drop or []) if c in frame.columns])
    if features.shape[1] == 0:
        raise InputError("no feature columns left after removing target/centre/id columns", path)
    X = coerce_features(features, categorical, src)
    for col in zero_as_missing or []:
        if col in X.columns:
            X.loc[X[col] == 0, col] = np.nan
    fam = {**catalogue_families(X.columns), **(families or {})}
    unknown = sorted(set(families or {}) - set(X.columns))
    if unknown:
        log.warning("%s: family mapping names columns not in the table: %s", path, unknown)
    fam = {c: fam.get(c, "other") for c in X.columns}
    return FeatureMatrix(
        X=X, y=y,
        centre=None if not centre else frame[centre].astype(str).to_numpy(),
        modality=None if not modality else frame[modality].astype(str).to_numpy(),
        families=fam,
        ids=None if not id_column else frame[id_column].astype(str).to_numpy(),
        task=task, target=target, source=src)
