"""The :class:`FeatureTable`: long-format feature values, one row per (scope, feature_id).

``scope`` is ``tree``, ``vessel:<name>``, ``segment:<id>`` or ``bifurcation:<node id>``.
Wide matrices for modelling are derived from long tables (:meth:`FeatureTable.wide`), never
stored separately.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from vasomics.errors import InputError
from vasomics.io.atomic import atomic_file

COLUMNS = ("scope", "feature_id", "value", "unit")


class FeatureTable:
    """Feature values in long format (columns :data:`COLUMNS`)."""

    def __init__(self, frame: pd.DataFrame | None = None):
        frame = pd.DataFrame(columns=list(COLUMNS)) if frame is None else frame
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise InputError(f"feature table lacks columns {sorted(missing)}")
        frame = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
        frame = frame.astype({"scope": str, "feature_id": str, "unit": str})
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
        if frame.duplicated(["scope", "feature_id"]).any():
            dup = frame[frame.duplicated(["scope", "feature_id"], keep=False)].iloc[0]
            raise InputError(f"duplicate feature {dup.feature_id} in scope {dup.scope}")
        self.frame = frame

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, float, str]]) -> FeatureTable:
        """Build from ``(scope, feature_id, value, unit)`` tuples."""
        return cls(pd.DataFrame(list(records), columns=list(COLUMNS)))

    @classmethod
    def concat(cls, tables: Iterable[FeatureTable]) -> FeatureTable:
        frames = [t.frame for t in tables]
        return cls(pd.concat(frames, ignore_index=True) if frames else None)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"FeatureTable({len(self)} rows, {self.frame.scope.nunique()} scopes)"

    def value(self, feature_id: str, scope: str = "tree") -> float:
        """The value of one feature in one scope (KeyError when absent)."""
        hit = self.frame[(self.frame.feature_id == feature_id) & (self.frame.scope == scope)]
        if hit.empty:
            raise KeyError(f"{feature_id} in scope {scope}")
        return float(hit.value.iloc[0])

    def scope(self, scope: str) -> pd.Series:
        """Values of one scope, indexed by feature id."""
        rows = self.frame[self.frame.scope == scope]
        return pd.Series(rows.value.to_numpy(), index=rows.feature_id.to_numpy(), name=scope)

    def wide(self, scope_prefix: str | None = None) -> pd.DataFrame:
        """Rows = scopes, columns = feature ids (optionally only scopes starting with
        ``scope_prefix``)."""
        frame = self.frame
        if scope_prefix is not None:
            frame = frame[frame.scope.str.startswith(scope_prefix)]
        return frame.pivot(index="scope", columns="feature_id", values="value")

    def to_parquet(self, path: str | Path) -> None:
        """Write atomically as Parquet."""
        with atomic_file(path) as tmp:
            self.frame.to_parquet(tmp, index=False)

    def to_csv(self, path: str | Path) -> None:
        """Write atomically as CSV (full float precision)."""
        with atomic_file(path) as tmp:
            self.frame.to_csv(tmp, index=False, float_format="%.10g")

    @classmethod
    def read(cls, path: str | Path) -> FeatureTable:
        """Read a table written by :meth:`to_parquet` or :meth:`to_csv`."""
        path = Path(path)
        try:
            if path.suffix == ".parquet":
                frame = pd.read_parquet(path)
            else:
                frame = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
        except FileNotFoundError:
            raise InputError("feature table not found", path) from None
        except Exception as exc:  # pyarrow/pandas raise many types for corrupt files
            raise InputError(f"cannot read feature table ({type(exc).__name__})", path) from None
        return cls(frame)

    def equals(self, other: FeatureTable, rtol: float = 0.0) -> bool:
        """Same rows (order-independent) with values equal within ``rtol``."""
        a = self.frame.sort_values(["scope", "feature_id"]).reset_index(drop=True)
        b = other.frame.sort_values(["scope", "feature_id"]).reset_index(drop=True)
        if len(a) != len(b) or not (a[["scope", "feature_id", "unit"]]
                                    .equals(b[["scope", "feature_id", "unit"]])):
            return False
        return bool(np.allclose(a.value, b.value, rtol=rtol, atol=0.0, equal_nan=True))
