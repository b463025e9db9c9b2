"""The cohort store: one embedded DuckDB file holding a cohort's metadata and results.

One writer at a time: :meth:`CohortStore.open` in write mode takes an exclusive lock on
``<db>.lock`` (released by the kernel when the process ends, even on SIGKILL) before it
opens the database, so a second runner gets :class:`StoreBusyError` naming the holder. Read
mode opens DuckDB ``read_only``; it cannot run while a writer holds the file (a DuckDB
limit), and then says so. Every scan's results are written in one transaction
(:meth:`CohortStore.write_result`), so a killed writer leaves no half-written scan: DuckDB's
write-ahead log replays committed transactions and drops the rest on the next open.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from vasomics.cohort.pipelines import QC_COLUMNS, SEGMENT_COLUMNS, ScanResult
from vasomics.cohort.schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from vasomics.errors import InputError, OutputError, VasomicsError
from vasomics.io.atomic import atomic_file

log = logging.getLogger(__name__)


class StoreError(VasomicsError):
    """The cohort database cannot be used (wrong schema, not a vasomics database, ...)."""


class StoreBusyError(StoreError):
    """Another process is writing the database."""


class StoreWriteError(OutputError):
    """A write to the database failed (disk full, file too large, I/O error); everything
    committed before is kept."""


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def progress_path(db: Path) -> Path:
    return db.with_name(db.name + ".progress.json")


def _utc(seconds: float | None = None) -> dt.datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP), microsecond precision."""
    return dt.datetime.fromtimestamp(time.time() if seconds is None else seconds,
                                     dt.UTC).replace(tzinfo=None)


class CohortStore:
    """A connection to a cohort database. Use :meth:`open` (a context manager)."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, read_only: bool,
                 lock_handle=None):
        self.path = path
        self.con = con
        self.read_only = read_only
        self._lock_handle = lock_handle

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike, *, read_only: bool = False,
             wait_s: float = 0.0) -> CohortStore:
        """Open (and in write mode create and migrate) the database at ``path``.

        ``wait_s``: in write mode, how long to wait for another writer to finish before
        raising :class:`StoreBusyError`.
        """
        path = Path(path)
        if read_only:
            if not path.is_file():
                raise InputError("cohort database not found", path)
            con = _connect(path, read_only=True)
            try:
                _check_version(con, path, migrate=False)
            except BaseException:
                con.close()
                raise
            return cls(path, con, True)
        if path.exists() and not path.is_file():
            raise OutputError("database path exists and is not a file", path)
        if not path.parent.is_dir():
            raise OutputError("folder of the database does not exist", path)
        handle = _acquire_lock(path, wait_s)
        try:
            con = _connect(path, read_only=False)
            try:
                _check_version(con, path, migrate=True)
                con.execute("UPDATE sessions SET status = 'killed' WHERE status = 'running'")
            except BaseException:
                con.close()
                raise
        except BaseException:
            handle.close()
            raise
        return cls(path, con, False, handle)

    def close(self) -> None:
        if self.con is not None:
            try:
                self.con.close()
            except duckdb.Error as exc:
                log.warning("%s: closing the database failed: %s", self.path, exc)
            self.con = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> CohortStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def _write(self, statements) -> None:
        """Run ``statements(con)`` in one transaction; roll back and raise
        :class:`StoreWriteError` when the database cannot be written."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            statements(con)
            con.execute("COMMIT")
        except (duckdb.IOException, duckdb.TransactionException, duckdb.FatalException,
                OSError) as exc:
            _rollback(con)
            raise StoreWriteError(f"cannot write the database ({_reason(exc)}); everything "
                                  f"committed before is kept", self.path) from None
        except BaseException:
            _rollback(con)
            raise

    def sync_manifest(self, entries: Sequence) -> None:
        """Insert or update subjects, scans (metadata only; results untouched) and labels of
        the manifest ``entries`` (:class:`~vasomics.cohort.manifest.ScanEntry`), in one
        transaction. Scans absent from the manifest are kept."""
        now = _utc()
        scans = pd.DataFrame({
            "scan_id": [e.scan_id for e in entries],
            "subject_id": [e.subject_id for e in entries],
            "centre": [e.centre for e in entries],
            "modality": [e.modality for e in entries],
            "pipeline": [e.pipeline for e in entries],
            "acquisition_date": pd.Series(
                [e.acquisition_date.isoformat() if e.acquisition_date else None
                 for e in entries], dtype=object),
            "path": [str(e.path) for e in entries],
        })
        labels = pd.DataFrame(
            [(e.scan_id, e.subject_id, name, value if isinstance(value, float) else None,
              value if isinstance(value, str) else None)
             for e in entries for name, value in sorted(e.labels.items())],
            columns=["scan_id", "subject_id", "name", "value", "text"],
        ).astype({"value": float, "text": object})

        def statements(con):
            con.register("m_scans", scans)
            con.register("m_labels", labels)
            con.execute("INSERT INTO subjects SELECT DISTINCT subject_id, ? FROM m_scans "
                        "ON CONFLICT DO NOTHING", [now])
            con.execute(
                "INSERT INTO scans (scan_id, subject_id, centre, modality, pipeline, "
                "acquisition_date, path, status) SELECT scan_id, subject_id, centre, modality, "
                "pipeline, CAST(acquisition_date AS DATE), path, 'pending' FROM m_scans "
                "ON CONFLICT (scan_id) DO UPDATE SET subject_id = excluded.subject_id, "
                "centre = excluded.centre, modality = excluded.modality, "
                "pipeline = excluded.pipeline, acquisition_date = excluded.acquisition_date, "
                "path = excluded.path")
            con.execute("DELETE FROM labels WHERE scan_id IN (SELECT scan_id FROM m_scans)")
            con.execute("INSERT INTO labels SELECT * FROM m_labels")
            con.unregister("m_scans")
            con.unregister("m_labels")

        self._write(statements)

    def scan_states(self) -> dict[str, dict[str, Any]]:
        """Per scan: status, input_hash, params_hash, file_size, file_mtime_ns."""
        rows = self.con.execute("SELECT scan_id, status, input_hash, params_hash, file_size, "
                                "file_mtime_ns FROM scans").fetchall()
        keys = ("status", "input_hash", "params_hash", "file_size", "file_mtime_ns")
        return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}

    def update_signature(self, scan_id: str, signature: tuple[int, int]) -> None:
        """Record a file's new size and mtime after a re-hash showed the same content."""
        self._write(lambda con: con.execute(
            "UPDATE scans SET file_size = ?, file_mtime_ns = ? WHERE scan_id = ?",
            [signature[0], signature[1], scan_id]))

    def start_session(self, manifest: str, executor: str, version: str, n_total: int) -> str:
        session_id = uuid.uuid4().hex
        self._write(lambda con: con.execute(
            "INSERT INTO sessions VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, 0, 0, 0)",
            [session_id, _utc(), manifest, executor, version, n_total]))
        return session_id

    def end_session(self, session_id: str, status: str, counts: dict[str, int]) -> None:
        self._write(lambda con: con.execute(
            "UPDATE sessions SET ended_utc = ?, status = ?, n_done = ?, n_skipped = ?, "
            "n_failed = ? WHERE session_id = ?",
            [_utc(), status, counts.get("done", 0), counts.get("skipped", 0),
             counts.get("failed", 0), session_id]))

    def write_result(self, result: ScanResult, *, session_id: str | None, pipeline: str,
                     params_json: str, file_signature: tuple[int, int] | None,
                     replace: bool = True) -> str:
        """Store one scan's result in one transaction: replace its qc, segments and features
        (removed when the scan failed), add a ``runs`` row and update ``scans``. Returns the
        run id. ``replace=False`` skips deleting old rows, for scans known to have none
        (rows exist only while a scan's status is ``done``)."""
        run_id = uuid.uuid4().hex
        done = result.status == "done"
        provenance = json.dumps({
            "software": result.software, "params_hash": result.params_hash,
            "inputs": {"scan": result.input_hash},
            "info": result.output.info if done else {},
        }, sort_keys=True, default=str)
        features = segments = qc = None
        if done:
            out = result.output
            features = out.features.frame.assign(scan_id=result.scan_id)[
                ["scan_id", "scope", "feature_id", "value", "unit"]]
            segments = out.segments.assign(scan_id=result.scan_id)[["scan_id",
                                                                     *SEGMENT_COLUMNS]]
            qc = out.qc.assign(scan_id=result.scan_id)[["scan_id", *QC_COLUMNS]]
        size, mtime = file_signature or (None, None)

        def statements(con):
            if replace:
                for table in ("features", "segments", "qc"):
                    con.execute(f"DELETE FROM {table} WHERE scan_id = ?", [result.scan_id])
            if done:
                for table, frame in (("features", features), ("segments", segments),
                                     ("qc", qc)):
                    if len(frame):  # columns are in table order; Arrow is the fastest path
                        con.from_arrow(pa.Table.from_pandas(frame, preserve_index=False)
                                       ).insert_into(table)
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, session_id, result.scan_id, pipeline,
                 result.software.get("vasomics"), result.params_hash, result.input_hash,
                 _utc(result.started), _utc(result.ended), result.ended - result.started,
                 result.status, result.error, result.detail, result.host, provenance])
            con.execute(
                "UPDATE scans SET status = ?, input_hash = ?, params_hash = ?, params_json = ?, "
                "file_size = ?, file_mtime_ns = ?, last_run_id = ?, updated_utc = ? "
                "WHERE scan_id = ?",
                [result.status, result.input_hash, result.params_hash, params_json, size,
                 mtime, run_id, _utc(), result.scan_id])

        self._write(statements)
        return run_id

    # ------------------------------------------------------------------ reading
    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        """Run SQL and return a DataFrame; errors become one-line :class:`StoreError`."""
        try:
            return self.con.execute(sql, params or []).df()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {_reason(exc)}", self.path) from None

    def export(self, table: str, out: str | os.PathLike) -> Path:
        """Write one table to Parquet (``.parquet``) or CSV (``.csv``/``.tsv``), atomically."""
        if table not in TABLES:
            raise InputError(f"unknown table {table!r} (tables: {', '.join(TABLES)})")
        out = Path(out)
        fmt = {".parquet": "FORMAT parquet", ".csv": "FORMAT csv, HEADER",
               ".tsv": "FORMAT csv, HEADER, DELIMITER '\t'"}.get(out.suffix.lower())
        if fmt is None:
            raise InputError("export format must be .parquet, .csv or .tsv", out)
        with atomic_file(out) as tmp:
            try:
                self.con.execute(f"COPY (SELECT * FROM {table} ORDER BY ALL) TO "
                                 f"'{_sql_str(tmp)}' ({fmt})")
            except duckdb.Error as exc:
                raise OutputError(f"cannot export {table} ({_reason(exc)})", out) from None
        return out

    def matrix(self, features: Iterable[str] | None = None, *, scope: str = "tree",
               labels: bool = True, status: str = "done") -> pd.DataFrame:
        """The wide feature matrix: one row per scan (``status`` scans only), columns
        ``scan_id, subject_id, centre, modality, acquisition_date``, then one column per
        feature of ``scope`` (all when ``features`` is None; ``*`` and ``?`` wildcards
        allowed), then one column per label (numeric value, else text)."""
        wanted = list(features or [])
        available = [r[0] for r in self.con.execute(
            "SELECT DISTINCT feature_id FROM features WHERE scope = ? ORDER BY 1",
            [scope]).fetchall()]
        if wanted:
            import fnmatch

            chosen: list[str] = []
            for pattern in wanted:
                hits = [f for f in available if fnmatch.fnmatchcase(f, pattern)]
                if not hits:
                    raise InputError(f"no feature matches {pattern!r} in scope {scope!r}")
                chosen += [h for h in hits if h not in chosen]
        else:
            chosen = available
        meta = self.con.execute(
            "SELECT scan_id, subject_id, centre, modality, acquisition_date FROM scans "
            "WHERE status = ? ORDER BY scan_id", [status]).df()
        long = self.con.execute(
            "SELECT f.scan_id, f.feature_id, f.value FROM features f JOIN scans s USING "
            "(scan_id) WHERE s.status = ? AND f.scope = ? AND list_contains(?, f.feature_id)",
            [status, scope, chosen]).df()
        wide = long.pivot(index="scan_id", columns="feature_id", values="value")
        wide = wide.reindex(index=meta.scan_id, columns=chosen)
        out = meta.set_index("scan_id").join(wide)
        if labels:
            lab = self.con.execute(
                "SELECT scan_id, name, coalesce(CAST(value AS VARCHAR), text) AS v, "
                "value IS NOT NULL AS numeric FROM labels").df()
            for name, group in lab.groupby("name", sort=True):
                if name in out.columns:
                    raise InputError(f"label {name!r} has the name of a matrix column")
                values = group.set_index("scan_id").v
                out[name] = (pd.to_numeric(values) if group.numeric.all() else values
                             ).reindex(out.index)
        return out.reset_index()

    def status_summary(self) -> dict[str, Any]:
        """Counts by status, centre and modality; the latest sessions; failed scans."""
        q = self.con.execute
        return {
            "schema_version": SCHEMA_VERSION,
            "by_status": dict(q("SELECT status, count(*) FROM scans GROUP BY 1 "
                                "ORDER BY 1").fetchall()),
            "by_centre": q("SELECT centre, modality, count(*) AS scans, "
                           "count(*) FILTER (WHERE status = 'done') AS done "
                           "FROM scans GROUP BY ALL ORDER BY ALL").df(),
            "sessions": q("SELECT strftime(started_utc, '%Y-%m-%d %H:%M:%S') AS started, "
                          "status, executor, n_total AS total, n_done AS done, "
                          "n_skipped AS unchanged, n_failed AS failed FROM sessions "
                          "ORDER BY started_utc DESC LIMIT 5").df(),
            "failed": q("SELECT s.scan_id, r.error_message FROM scans s LEFT JOIN runs r "
                        "ON r.run_id = s.last_run_id WHERE s.status = 'failed' "
                        "ORDER BY s.scan_id").df(),
            "n_features": q("SELECT count(*) FROM features").fetchone()[0],
        }


def feature_matrix(path: str | os.PathLike, features: Iterable[str] | None = None, *,
                   scope: str = "tree", labels: bool = True) -> pd.DataFrame:
    """The wide feature matrix of the database at ``path`` (opened read-only); see
    :meth:`CohortStore.matrix`."""
    with CohortStore.open(path, read_only=True) as store:
        return store.matrix(features, scope=scope, labels=labels)


# --------------------------------------------------------------------------- helpers
def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise StoreBusyError(f"database is being written by another process "
                                 f"({_holder(path)}); try again when it has finished "
                                 f"(`vasomics cohort status` shows a running cohort's "
                                 f"progress)", path) from None
        raise StoreError(f"cannot open the database ({_reason(exc)})", path) from None
    except duckdb.Error as exc:
        raise StoreError(f"not a readable DuckDB database ({_reason(exc)})", path) from None


def _check_version(con, path: Path, migrate: bool) -> None:
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    if "schema_version" in tables:
        current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version"
                              ).fetchone()[0]
    elif tables:
        raise StoreError(f"not a vasomics cohort database (it holds tables "
                         f"{', '.join(sorted(tables)[:5])} but no schema_version)", path)
    else:
        current = 0
    if current > SCHEMA_VERSION:
        raise StoreError(f"database schema version {current} is newer than this vasomics "
                         f"supports ({SCHEMA_VERSION}); upgrade vasomics to use it (the "
                         f"database was not changed)", path)
    if current == SCHEMA_VERSION:
        return
    if not migrate:
        raise StoreError(f"database schema version {current} is older than this vasomics "
                         f"({SCHEMA_VERSION}); open it for writing once (e.g. `vasomics "
                         f"cohort run`) to migrate it", path)
    import vasomics

    for version in range(current, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        try:
            if version == 0:
                con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, "
                            "applied_utc TIMESTAMP NOT NULL, software VARCHAR NOT NULL)")
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [version + 1, _utc(), vasomics.__version__])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            _rollback(con)
            raise StoreError(f"migration to schema version {version + 1} failed "
                                  f"({_reason(exc)}); the database is unchanged", path) from None
        log.info("%s: migrated to schema version %d", path, version + 1)


def _acquire_lock(db: Path, wait_s: float):
    lock = lock_path(db)
    try:
        handle = open(lock, "a+")  # noqa: SIM115 - held open for the lifetime of the store
    except OSError as exc:
        raise OutputError(f"cannot create the lock file ({exc.strerror or exc})", lock) from None
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(db)
                handle.close()
                raise StoreBusyError(f"database is in use by another vasomics cohort run "
                                     f"({holder}); wait for it to finish or stop it",
                                     db) from None
            time.sleep(0.2)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since_utc": _utc().isoformat(timespec="seconds")}))
    handle.flush()
    return handle


def _holder(db: Path) -> str:
    try:
        info = json.loads(lock_path(db).read_text())
        return f"pid {info['pid']} on {info['host']} since {info['since_utc']} UTC"
    except (OSError, ValueError, KeyError):
        return "unknown process"


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for prefix in ("IO Error: ", "TransactionContext Error: ", "Catalog Error: ",
                   "Parser Error: ", "Binder Error: "):
        text = text.replace(prefix, "")
    return text[:500]


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")
