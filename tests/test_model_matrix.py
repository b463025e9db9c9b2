"""Feature matrix reading and bad-input handling (vasomics.model.matrix, preprocess)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vasomics.errors import InputError
from vasomics.model.matrix import binarize_target, read_matrix
from vasomics.model.preprocess import TablePreprocessor


def _table(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "site": np.repeat(["a", "b"], n // 2),
                         "f1": rng.normal(size=n), "f2": rng.normal(size=n),
                         "kind": rng.choice(["x", "y", "z"], n),
                         "flag": rng.choice(["TRUE", "FALSE"], n),
                         "label": np.tile([0, 1], n // 2)})


def test_reads_types_families_and_zero_as_missing(tmp_path):
    df = _frame()
    df.loc[3, "f1"] = 0.0
    fm = read_matrix(_table(tmp_path, df), "label", centre="site", id_column="id",
                     families={"f1": "anatomical"}, zero_as_missing=["f1"])
    assert list(fm.X.columns) == ["f1", "f2", "kind", "flag"]
    assert np.isnan(fm.X.loc[3, "f1"])
    assert set(fm.X["flag"].dropna()) == {0.0, 1.0}
    assert fm.categorical == ["kind"]
    assert fm.families == {"f1": "anatomical", "f2": "other", "kind": "other", "flag": "other"}
    assert fm.summary()["centres"]["a"]["n"] == 20
    assert list(fm.ids[:2]) == ["0", "1"]


def test_one_class_label_is_refused(tmp_path):
    df = _frame().assign(label=1)
    with pytest.raises(InputError, match="one class only"):
        read_matrix(_table(tmp_path, df), "label")


def test_non_numeric_value_in_numeric_column_names_column(tmp_path):
    df = _frame(60)
    df["f1"] = df["f1"].astype(object)
    df.loc[7, "f1"] = "12,5"
    with pytest.raises(InputError, match=r"'f1' has non-numeric values \(e.g. '12,5' in row 7\)"):
        read_matrix(_table(tmp_path, df), "label")


def test_missing_columns_and_targets(tmp_path):
    path = _table(tmp_path, _frame())
    with pytest.raises(InputError, match="column 'nope' not in table"):
        read_matrix(path, "nope")
    df = _frame().astype({"label": float})
    df.loc[0, "label"] = np.nan
    with pytest.raises(InputError, match="missing values"):
        read_matrix(_table(tmp_path, df, "m.csv"), "label")


def test_positive_rules():
    s = pd.Series([0, 1, 2, 3, 10, 12], name="hvpg")
    assert binarize_target(s, ">=10").tolist() == [0, 0, 0, 0, 1, 1]
    assert binarize_target(s, ">0").tolist() == [0, 1, 1, 1, 1, 1]
    assert binarize_target(pd.Series(["yes", "no"], name="x"), "==yes").tolist() == [1, 0]
    with pytest.raises(InputError, match="3 classes"):
        binarize_target(pd.Series([0, 1, 2], name="g"), None)


def test_preprocessor_is_fitted_on_training_rows_only_and_drops_constants():
    train = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "c": [5.0] * 4,
                          "k": ["x", "y", "x", None]})
    test = pd.DataFrame({"a": [np.nan, 100.0], "c": [7.0, 8.0], "k": ["w", "y"]})
    prep = TablePreprocessor().fit(train)
    assert prep.dropped_constant_ == ["c"]
    names = list(prep.get_feature_names_out())
    assert names == ["a", "a__missing", "k=x", "k=y"]
    z = prep.transform(test)
    med = 2.0
    mean = np.mean([1, 2, med, 4])
    sd = np.std([1, 2, med, 4])
    assert z[0, 0] == pytest.approx((med - mean) / sd)  # training median, not test values
    assert z[1, 0] == pytest.approx((100 - mean) / sd)
    assert z[:, 1].tolist() == [1.0, 0.0]
    assert z[0, 2:].tolist() == [0.0, 0.0]  # unseen level: all zero
    # a column absent from the table is entirely missing
    assert prep.transform(test.drop(columns=["a"]))[:, 1].tolist() == [1.0, 1.0]


def test_all_constant_features_are_an_error():
    with pytest.raises(InputError, match="every feature is constant"):
        TablePreprocessor().fit(pd.DataFrame({"a": [1.0, 1.0], "b": ["x", "x"]}))


def test_reads_cohort_duckdb_store(tmp_path):
    from vasomics.cohort.store import CohortStore

    db = tmp_path / "cohort.duckdb"
    rng = np.random.default_rng(0)
    with CohortStore.open(db) as store:
        con = store.con
        con.execute("INSERT INTO subjects VALUES ('s1', now()), ('s2', now())")
        for i in range(24):
            sid = f"scan{i:02d}"
            con.execute("INSERT INTO scans (scan_id, subject_id, centre, modality, pipeline, "
                        "path, status) VALUES (?, ?, ?, 'CT', 'p', 'x', 'done')",
                        [sid, f"s{1 + i % 2}", "A" if i < 12 else "B"])
            for fid, unit in (("VX.A.T.LEN", "mm"), ("VX.C.T.INT_MEAN", "image units")):
                con.execute("INSERT INTO features VALUES (?, 'tree', ?, ?, ?)",
                            [sid, fid, float(rng.normal()), unit])
            con.execute("INSERT INTO labels VALUES (?, ?, 'hvpg', ?, NULL)",
                        [sid, f"s{1 + i % 2}", float(5 + i)])
    fm = read_matrix(db, "hvpg", positive=">=10")
    assert list(fm.X.columns) == ["VX.A.T.LEN", "VX.C.T.INT_MEAN"]
    assert fm.families == {"VX.A.T.LEN": "anatomical", "VX.C.T.INT_MEAN": "biochemical"}
    assert sorted(set(fm.centre)) == ["A", "B"]
    assert list(fm.modality[:1]) == ["CT"]
    assert fm.y.sum() == 24 - 5
