"""The cohort store: schema versions and migrations, exports, the feature matrix, queries
through the CLI, and bad input (foreign or newer databases, a full disk)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from vasomics.cli import main
from vasomics.cohort import schema
from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore, StoreBusyError, StoreError
from vasomics.errors import InputError, OutputError
from vasomics.io.images import write_image
from vasomics.phantoms.trees import random_tree


def _cohort(folder: Path, n: int, centres: str = "AB") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["scan_id,subject_id,path,centre,modality,acquisition_date,label:hvpg,label:stage"]
    for i in range(n):
        write_image(random_tree(shape=(40, 40, 40), generations=3 + i % 2, seed=i).mask,
                    folder / f"t{i}.nii.gz")
        lines.append(f"t{i},P{i},t{i}.nii.gz,{centres[i % len(centres)]},mask,2023-0{1 + i % 9}-15,"
                     f"{10 + i},{'ab'[i % 2]}")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder / "m.csv"


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("store")
    manifest = _cohort(folder, 6)
    db = folder / "c.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(1))
    assert summary.done == 6
    return manifest, db


def _counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in schema.TABLES}


def test_new_database_has_schema_tables_and_indexes(tmp_path):
    with CohortStore.open(tmp_path / "n.duckdb") as store:
        tables = set(store.query("SELECT table_name FROM information_schema.tables").table_name)
        indexes = set(store.query("SELECT index_name FROM duckdb_indexes()").index_name)
        version = store.query("SELECT version FROM schema_version").version.tolist()
    assert set(schema.TABLES) <= tables
    assert {"runs_scan", "scans_subject", "labels_name"} <= indexes
    assert version == [schema.SCHEMA_VERSION]


def test_newer_schema_is_refused_and_left_untouched(small_db, tmp_path):
    db = tmp_path / "future.duckdb"
    db.write_bytes(small_db[1].read_bytes())
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO schema_version VALUES (99, now(), '9.9')")
    before = _counts(db)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="schema version 99 is newer than this vasomics "
                                             "supports"):
            CohortStore.open(db, read_only=read_only)
    assert _counts(db) == before
    code = main(["cohort", "run", str(small_db[0]), "--db", str(db)])
    assert code == 2 and _counts(db) == before


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE patients (name VARCHAR)")
    with pytest.raises(StoreError, match="not a vasomics cohort database"):
        CohortStore.open(other)
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StoreError, match="junk.duckdb"):
        CohortStore.open(junk)
    with pytest.raises(InputError, match="cohort database not found"):
        CohortStore.open(tmp_path / "none.duckdb", read_only=True)


def test_migrations_run_in_order_and_a_failed_one_changes_nothing(small_db, tmp_path,
                                                                  monkeypatch):
    db = tmp_path / "old.duckdb"
    db.write_bytes(small_db[1].read_bytes())
    before = _counts(db)
    v2 = ["ALTER TABLE scans ADD COLUMN reader VARCHAR DEFAULT 'unknown'"]
    monkeypatch.setattr("vasomics.cohort.store.MIGRATIONS", [*schema.MIGRATIONS, v2])
    monkeypatch.setattr("vasomics.cohort.store.SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match="version 1 is older"):
        CohortStore.open(db, read_only=True)
    broken = ["ALTER TABLE scans ADD COLUMN reader VARCHAR", "SELECT * FROM no_such_table"]
    monkeypatch.setattr("vasomics.cohort.store.MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(StoreError, match="migration to schema version 2 failed"):
        CohortStore.open(db)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
        assert "reader" not in [r[0] for r in con.execute("DESCRIBE scans").fetchall()]
    monkeypatch.setattr("vasomics.cohort.store.MIGRATIONS", [*schema.MIGRATIONS, v2])
    with CohortStore.open(db) as store:
        versions = store.query("SELECT version FROM schema_version ORDER BY 1").version
        readers = store.query("SELECT DISTINCT reader FROM scans").reader.tolist()
    assert versions.tolist() == [1, 2] and readers == ["unknown"]
    assert {k: v for k, v in _counts(db).items() if k != "schema_version"} == \
        {k: v for k, v in before.items() if k != "schema_version"}


def test_export_every_table_to_parquet_and_csv(small_db, tmp_path):
    _, db = small_db
    with CohortStore.open(db, read_only=True) as store:
        for table in schema.TABLES:
            out = store.export(table, tmp_path / f"{table}.parquet")
            got = pd.read_parquet(out)
            want = store.query(f"SELECT * FROM {table}")
            assert len(got) == len(want) and list(got.columns) == list(want.columns)
        features = pd.read_parquet(tmp_path / "features.parquet")
        assert features.value.notna().sum() > 0 and len(features) > 6 * 100
        store.export("labels", tmp_path / "labels.csv")
        assert "hvpg" in (tmp_path / "labels.csv").read_text()
        with pytest.raises(InputError, match="unknown table 'secrets'"):
            store.export("secrets", tmp_path / "x.parquet")
        with pytest.raises(InputError, match=r"\.parquet, \.csv or \.tsv"):
            store.export("scans", tmp_path / "x.xlsx")
        (tmp_path / "a_file").write_text("")
        with pytest.raises(OutputError, match="not a folder"):
            store.export("scans", tmp_path / "a_file" / "x.parquet")


def test_feature_matrix_one_row_per_scan(small_db):
    _, db = small_db
    with CohortStore.open(db, read_only=True) as store:
        m = store.matrix(["VX.A.T.LEN", "VX.A.T.N*"])
        long = store.query("SELECT scan_id, value FROM features WHERE scope = 'tree' AND "
                           "feature_id = 'VX.A.T.LEN' ORDER BY scan_id")
        with pytest.raises(InputError, match="no feature matches 'nope'"):
            store.matrix(["nope"])
    assert list(m.columns[:5]) == ["scan_id", "subject_id", "centre", "modality",
                                   "acquisition_date"]
    assert m.scan_id.tolist() == sorted(m.scan_id) and len(m) == 6
    assert "VX.A.T.NSEG" in m.columns and m.columns[5] == "VX.A.T.LEN"
    np.testing.assert_array_equal(m["VX.A.T.LEN"].to_numpy(), long.value.to_numpy())
    assert m.hvpg.dtype == float and set(m.stage) == {"a", "b"}


def test_cli_query_export_matrix_status(small_db, tmp_path, capsys):
    manifest, db = small_db
    assert main(["cohort", "query", "SELECT centre, count(*) AS n FROM scans GROUP BY 1 "
                 "ORDER BY 1", "--db", str(db), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["centre,n", "A,3", "B,3"]
    assert main(["cohort", "query", "DELETE FROM features", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "query failed" in err and "read-only" in err
    assert _counts(db)["features"] > 0
    out = tmp_path / "m.csv"
    assert main(["cohort", "matrix", "--db", str(db), "--features", "VX.A.T.LEN,VX.A.T.NSEG",
                 "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert frame.shape == (6, 5 + 2 + 2)
    assert main(["cohort", "export", "segments", "--db", str(db), "-o",
                 str(tmp_path / "s.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == _counts(db)["segments"]
    assert main(["cohort", "status", "--db", str(db)]) == 0
    assert "6 done" in capsys.readouterr().out
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    before = _counts(copy)
    assert main(["cohort", "run", str(manifest), "--db", str(copy), "--dry-run",
                 "--force"]) == 0
    assert "6 valid scans: 6 to run, 0 unchanged (dry run" in capsys.readouterr().out
    assert _counts(copy) == before
    assert main(["cohort", "run", str(manifest), "--db", str(copy)]) == 0  # progress bar on
    captured = capsys.readouterr()
    assert "6 scans: 0 done, 6 unchanged, 0 failed" in captured.out
    assert "done 0 · unchanged 6 · failed 0" in captured.err and "ETA" in captured.err


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_stops_the_run_and_keeps_what_was_stored(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes the database's writes fail with EFBIG, as a
    full disk makes them fail with ENOSPC: the write-ahead log outgrows it after a few
    scans."""
    manifest = _cohort(tmp_path / "scans", 12)
    first = manifest.parent / "first.csv"
    first.write_text("\n".join(manifest.read_text().splitlines()[:5]) + "\n")  # 4 scans
    db = tmp_path / "c.duckdb"
    assert run_cohort(load_manifest(first), db, executor=LocalExecutor(1)).done == 4
    with CohortStore.open(db, read_only=True) as store:
        stored = store.query("SELECT * FROM features ORDER BY ALL")
    limit = 40_000  # bytes: no write may reach beyond this offset in any file
    result = subprocess.run(
        [sys.executable, "-m", "vasomics", "cohort", "run", str(manifest), "--db", str(db),
         "--workers", "1", "--no-progress"], capture_output=True, text=True, timeout=300,
        preexec_fn=_limit_file_size(limit))
    assert result.returncode == 2, result.stderr
    assert "cannot write the database (" in result.stderr
    assert "everything committed before is kept" in result.stderr
    assert "Traceback" not in result.stderr
    with CohortStore.open(db) as store:  # reopens (replays the log) without complaint
        after = store.query("SELECT * FROM features WHERE scan_id IN ('t0','t1','t2','t3') "
                            "ORDER BY ALL")
        done = store.query("SELECT scan_id FROM scans WHERE status = 'done'").scan_id
        partial = store.query("SELECT s.scan_id FROM scans s LEFT JOIN features f USING "
                              "(scan_id) WHERE s.status = 'done' AND f.scan_id IS NULL")
    pd.testing.assert_frame_equal(after, stored)
    assert set(done) >= {"t0", "t1", "t2", "t3"} and len(done) < 12 and partial.empty
    assert run_cohort(load_manifest(manifest), db, executor=LocalExecutor(1)).skipped == \
        len(done)


def test_writer_lock_waits_or_fails_clearly(tmp_path):
    db = tmp_path / "w.duckdb"
    holder = CohortStore.open(db)
    with pytest.raises(StoreBusyError, match=f"in use by another vasomics cohort run \\(pid "
                                             f"{os.getpid()} on "):
        CohortStore.open(db, wait_s=0.3)
    threading.Timer(1.0, holder.close).start()
    t0 = time.monotonic()
    with CohortStore.open(db, wait_s=30) as second:  # waits for the first to close
        assert second.query("SELECT count(*) FROM scans").iat[0, 0] == 0
    assert 0.7 < time.monotonic() - t0 < 20

