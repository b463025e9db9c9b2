"""The cohort runner: a validated manifest in, a cohort database out.

The coordinator (this module) syncs the manifest into the store, decides which scans need
work, hands :class:`~vasomics.cohort.pipelines.ScanTask` objects to an executor (local
processes or Dask) and writes each :class:`~vasomics.cohort.pipelines.ScanResult` in one
transaction as it arrives. Workers only compute; only the coordinator writes.

Idempotence: a scan is skipped when its last run succeeded with the same parameter hash
(pipeline, pipeline version, parameters) and the same input hash (SHA-256 of the file, or
of every file of a DICOM folder). Re-hashing every input on every run would read the whole
cohort, so, like ``make`` and ``rsync``, the stored hash is trusted while the file's size
and modification time are unchanged; when they changed the file is hashed again and the
scan is skipped if the content is the same (``rehash=True`` always hashes). Failed scans
are retried on every run; ``force=True`` redoes everything.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vasomics.cohort.executors import DaskExecutor, LocalExecutor
from vasomics.cohort.manifest import Manifest, ScanEntry
from vasomics.cohort.pipelines import ScanTask, file_signature, get_pipeline
from vasomics.cohort.store import CohortStore, progress_path
from vasomics.io.atomic import atomic_file
from vasomics.params import params_dict
from vasomics.provenance import file_sha256

log = logging.getLogger(__name__)

#: Seconds between two writes of the progress file.
PROGRESS_INTERVAL_S = 0.1


@dataclass
class RunSummary:
    """Counts of one run; ``failures`` lists ``(scan_id, reason)``."""

    session_id: str
    executor: str
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "done": self.done, "skipped": self.skipped,
                "failed": self.failed}


def run_cohort(manifest: Manifest, db: str | os.PathLike, *,
               executor: LocalExecutor | DaskExecutor | None = None, force: bool = False,
               rehash: bool = False, wait_s: float = 0.0,
               progress: Callable[[dict[str, int]], None] | None = None) -> RunSummary:
    """Run every scan of ``manifest`` that needs work and store the results in ``db``.

    Parameters
    ----------
    executor:
        :class:`LocalExecutor` (default: one process per CPU) or :class:`DaskExecutor`.
    force:
        Recompute every scan even when nothing changed.
    rehash:
        Hash every input even when its size and modification time are unchanged.
    wait_s:
        Wait up to this long for another runner on the same database to finish.
    progress:
        Called with counts ``{total, done, skipped, failed}`` after each scan.

    Raises
    ------
    StoreBusyError
        Another runner holds the database.
    StoreWriteError
        The database cannot be written (disk full, ...): the run stops; scans committed
        before are kept and a rerun continues where it stopped.
    """
    db = Path(db)
    executor = executor or LocalExecutor()
    started = time.monotonic()
    import vasomics

    with CohortStore.open(db, wait_s=wait_s) as store:
        store.sync_manifest(manifest.entries)
        states = store.scan_states()
        todo: list[ScanEntry] = []
        skipped = 0
        for entry in manifest.entries:
            if not force and _unchanged(entry, states.get(entry.scan_id), rehash, store):
                skipped += 1
            else:
                todo.append(entry)
        summary = RunSummary(session_id=store.start_session(
            str(manifest.path), executor.describe(), vasomics.__version__, len(manifest)),
            executor=executor.describe(), total=len(manifest), skipped=skipped)
        reporter = _Reporter(db, summary, progress)
        reporter.update(force=True)
        log.info("%d scans: %d to run, %d unchanged", len(manifest), len(todo), skipped)
        entries = {e.scan_id: e for e in todo}
        tasks = (ScanTask.make(e.scan_id, e.path, get_pipeline(e.pipeline), e.params,
                               vasomics.__version__) for e in todo)
        status = "failed"
        results = executor.run(tasks)
        try:
            for result in results:
                entry = entries[result.scan_id]
                store.write_result(
                    result, session_id=summary.session_id, pipeline=entry.pipeline,
                    params_json=json.dumps(params_dict(entry.params), sort_keys=True),
                    file_signature=result.file_signature,
                    replace=states.get(result.scan_id, {}).get("status") == "done")
                if result.status == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                    summary.failures.append((result.scan_id, result.error or "unknown error"))
                    log.info("%s failed: %s", result.scan_id, result.error)
                reporter.update()
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            results.close()
            summary.seconds = time.monotonic() - started
            reporter.update(force=True, state=status)
            try:
                store.end_session(summary.session_id, status, summary.counts())
            except Exception as exc:  # the disk may be full: the session row is secondary
                log.warning("could not close session %s: %s", summary.session_id, exc)
    return summary


def plan_cohort(manifest: Manifest, db: str | os.PathLike, *, force: bool = False,
                rehash: bool = False) -> tuple[list[str], list[str]]:
    """What :func:`run_cohort` would do, without running or writing anything: the scan ids
    to run and those unchanged (the database is opened read-only, when it exists)."""
    db = Path(db)
    if not db.exists():
        return [e.scan_id for e in manifest.entries], []
    with CohortStore.open(db, read_only=True) as store:
        states = store.scan_states()
        todo, unchanged = [], []
        for entry in manifest.entries:
            same = not force and _unchanged(entry, states.get(entry.scan_id), rehash, None)
            (unchanged if same else todo).append(entry.scan_id)
    return todo, unchanged


def _unchanged(entry: ScanEntry, state: dict | None, rehash: bool,
               store: CohortStore | None) -> bool:
    """True when ``entry`` needs no work; a re-hash that finds the same content records the
    file's new size and mtime in ``store`` (when given)."""
    if (state is None or state["status"] != "done"
            or state["params_hash"] != entry.params_hash or not state["input_hash"]):
        return False
    signature = file_signature(entry.path)
    if signature is None:
        return False
    if not rehash and signature == (state["file_size"], state["file_mtime_ns"]):
        return True
    if file_sha256(entry.path) != state["input_hash"]:
        return False
    if store is not None:
        store.update_signature(entry.scan_id, signature)
    return True


class _Reporter:
    """Calls the progress callback and keeps ``<db>.progress.json`` current, so that
    ``vasomics cohort status`` can show a running cohort (the database itself is locked)."""

    def __init__(self, db: Path, summary: RunSummary, callback):
        self.path = progress_path(db)
        self.summary = summary
        self.callback = callback
        self.last = 0.0
        self.since = time.time()

    def update(self, force: bool = False, state: str = "running") -> None:
        counts = self.summary.counts()
        if self.callback is not None:
            self.callback(counts)
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        record = {**counts, "state": state, "pid": os.getpid(),
                  "session_id": self.summary.session_id, "executor": self.summary.executor,
                  "started_unix": self.since, "updated_unix": time.time()}
        try:
            with atomic_file(self.path) as tmp:
                tmp.write_text(json.dumps(record))
        except Exception as exc:  # progress display only; never stop a run for it
            log.debug("progress file not written: %s", exc)
