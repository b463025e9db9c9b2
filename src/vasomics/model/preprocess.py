"""Preprocessing of a raw feature table, fitted on training rows only.

:class:`TablePreprocessor` (scikit-learn transformer) turns a DataFrame of numeric and
categorical columns into a float matrix:

* numeric columns: median imputation, optional missing-value indicator per column that had
  missing values in training, standardization (z-score with training mean and SD);
* categorical columns: one-hot encoding of the training levels; missing and unseen levels
  give all-zero rows (no level is invented);
* constant columns (at most one distinct non-missing value in training) are dropped and
  listed in ``dropped_constant_``.

Every fitted quantity comes from ``fit`` data only, so putting the preprocessor inside a
pipeline keeps cross-validation and leave-one-centre-out honest. ``output_sources_`` maps each
output column to the input column it came from (used to map features to families).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from vasomics.errors import InputError

log = logging.getLogger(__name__)


def as_frame(X, columns=None) -> pd.DataFrame:
    """``X`` as a DataFrame (arrays get columns ``x0..``, or ``columns`` when given)."""
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InputError(f"feature matrix must be 2-D, got shape {arr.shape}")
    cols = list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


class TablePreprocessor(TransformerMixin, BaseEstimator):
    """Impute, encode and scale a mixed-type table (see module docstring).

    Parameters
    ----------
    columns:
        Input columns to use (None: all columns seen in ``fit``). Columns listed but absent
        from a table are treated as entirely missing (a missing modality or family).
    missing_indicators:
        Add a 0/1 column per numeric input that had missing values in training.
    scale:
        Standardize numeric columns (z-scores with training mean and SD).
    """

    def __init__(self, columns=None, missing_indicators: bool = True, scale: bool = True):
        self.columns = columns
        self.missing_indicators = missing_indicators
        self.scale = scale

    def _select(self, X) -> pd.DataFrame:
        seen = getattr(self, "feature_names_in_", None)
        frame = as_frame(X, seen)
        if self.columns is not None:
            cols = list(self.columns)
        else:
            cols = list(seen) if seen is not None else list(frame.columns)
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            frame = frame.assign(**{c: np.nan for c in missing})
        return frame.loc[:, cols]

    def fit(self, X, y=None):
        frame = self._select(X)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.numeric_, self.categorical_, self.dropped_constant_ = [], [], []
        self.levels_ = {}
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_numeric_dtype(s):
                if s.nunique(dropna=True) <= 1:
                    self.dropped_constant_.append(col)
                else:
                    self.numeric_.append(col)
            else:
                levels = sorted(s.dropna().astype(str).unique())
                if len(levels) <= 1:
                    self.dropped_constant_.append(col)
                else:
                    self.categorical_.append(col)
                    self.levels_[col] = levels
        if self.dropped_constant_:
            log.info("dropped constant features: %s", self.dropped_constant_)
        num = frame[self.numeric_].to_numpy(float) if self.numeric_ else np.zeros((len(frame), 0))
        self.median_ = np.nanmedian(num, axis=0) if num.shape[1] else np.zeros(0)
        self.indicator_ = (np.isnan(num).any(axis=0) if self.missing_indicators
                           else np.zeros(num.shape[1], bool))
        filled = np.where(np.isnan(num), self.median_, num)
        self.mean_ = filled.mean(axis=0) if self.scale else np.zeros(num.shape[1])
        sd = filled.std(axis=0) if self.scale else np.ones(num.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        names = list(self.numeric_)
        sources = list(self.numeric_)
        for col, flag in zip(self.numeric_, self.indicator_, strict=True):
            if flag:
                names.append(f"{col}__missing")
                sources.append(col)
        for col in self.categorical_:
            for level in self.levels_[col]:
                names.append(f"{col}={level}")
                sources.append(col)
        if not names:
            raise InputError("every feature is constant or missing in the training data")
        self.output_names_ = np.asarray(names, dtype=object)
        self.output_sources_ = np.asarray(sources, dtype=object)
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "output_names_")
        frame = self._select(X)
        num = frame[self.numeric_].to_numpy(float) if self.numeric_ else np.zeros((len(frame), 0))
        miss = np.isnan(num)
        out = [(np.where(miss, self.median_, num) - self.mean_) / self.scale_,
               miss[:, self.indicator_].astype(float)]
        for col in self.categorical_:
            values = frame[col].astype(object).to_numpy()
            out.append((values[:, None] == np.asarray(self.levels_[col], dtype=object)[None, :])
                       .astype(float))
        return np.hstack(out)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "output_names_")
        return self.output_names_.copy()
