"""Where scan tasks run: local worker processes or a Dask distributed cluster.

Both executors take an iterator of :class:`~vasomics.cohort.pipelines.ScanTask` and yield
:class:`~vasomics.cohort.pipelines.ScanResult` in completion order, keeping at most
``max_in_flight`` tasks submitted so memory stays bounded and an interrupted run loses at
most those. A task never raises: failures come back as ``failed`` results, including a
worker process that dies (crash, out-of-memory kill).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from vasomics.cohort.pipelines import ScanResult, ScanTask, execute
from vasomics.errors import DependencyError, VasomicsError

log = logging.getLogger(__name__)

def _failed(task: ScanTask, message: str) -> ScanResult:
    now = time.time()
    return ScanResult(scan_id=task.scan_id, status="failed", input_hash=None,
                      params_hash=task.params_hash, started=now, ended=now, host="",
                      pid=0, software={"vasomics": task.coordinator_version}, error=message)


def _watch_parent(parent_pid: int) -> None:
    """Worker initializer: exit when the coordinator dies (even by SIGKILL), so no orphan
    worker keeps computing."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="vasomics-parent-watch").start()


class LocalExecutor:
    """``workers`` spawned processes on this machine (default: one per CPU this process may
    run on; ``spawn``: safe with threads, the same start method on every platform)."""

    def __init__(self, workers: int | None = None):
        usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count())
        self.workers = max(1, int(workers or usable or 1))

    def describe(self) -> str:
        return f"local:{self.workers}"

    def _pool(self, workers: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers or self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_watch_parent, initargs=(os.getpid(),))

    def run(self, tasks: Iterable[ScanTask], max_in_flight: int | None = None
            ) -> Iterator[ScanResult]:
        limit = max_in_flight or 2 * self.workers
        pending = iter(tasks)
        pool = self._pool()
        in_flight: dict = {}
        try:
            while True:
                while len(in_flight) < limit:
                    task = next(pending, None)
                    if task is None:
                        break
                    in_flight[pool.submit(execute, task)] = task
                if not in_flight:
                    return
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                suspects = []
                for future in finished:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        suspects.append(task)
                        continue
                    yield result
                if suspects:
                    # A worker died: every task of the pool is lost, and which one killed it
                    # is unknown. Run each lost task alone to find out, then go on.
                    suspects += list(in_flight.values())
                    in_flight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    log.warning("a worker process died; re-running %d scans one by one",
                                len(suspects))
                    yield from self._run_alone(suspects)
                    pool = self._pool()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_alone(self, tasks: list[ScanTask]) -> Iterator[ScanResult]:
        """Run ``tasks`` one at a time in a one-process pool, replaced when it dies."""
        pool = None
        try:
            for task in tasks:
                pool = pool or self._pool(1)
                try:
                    yield pool.submit(execute, task).result()
                except BrokenProcessPool:
                    yield _failed(task, "the worker process died on this scan (crashed, or "
                                        "was killed, e.g. for using too much memory)")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


class DaskExecutor:
    """The tasks go to a running Dask distributed scheduler (``tcp://host:port``) or to an
    existing :class:`distributed.Client`. Workers need vasomics (same version) and must see
    the scan files at the same paths; they never open the database."""

    def __init__(self, address_or_client, connect_timeout_s: float = 10.0):
        try:
            import distributed
        except ImportError:
            raise DependencyError("the Dask executor needs the [distributed] extra: pip "
                                  "install 'vasomics[distributed]'") from None
        self._distributed = distributed
        if isinstance(address_or_client, distributed.Client):
            self.client, self._own = address_or_client, False
        else:
            try:
                self.client = distributed.Client(address_or_client,
                                                  timeout=f"{connect_timeout_s}s",
                                                  set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise VasomicsError(f"cannot reach the Dask scheduler at {address_or_client} "
                                    f"({exc})") from None
            self._own = True

    def describe(self) -> str:
        return f"dask:{self.client.scheduler.address}"

    def close(self) -> None:
        if self._own:
            self.client.close()

    def _threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def run(self, tasks: Iterable[ScanTask], max_in_flight: int | None = None
            ) -> Iterator[ScanResult]:
        distributed = self._distributed
        limit = max_in_flight or 2 * self._threads()
        pending = iter(tasks)
        by_key: dict[str, tuple] = {}
        completed = distributed.as_completed(loop=self.client.loop)

        def submit() -> bool:
            task = next(pending, None)
            if task is None:
                return False
            future = self.client.submit(execute, task, pure=False,
                                        key=f"vasomics-scan-{task.scan_id}-{os.urandom(4).hex()}")
            by_key[future.key] = (future, task)
            completed.add(future)
            return True

        try:
            while len(by_key) < limit and submit():
                pass
            for future in completed:
                task = by_key.pop(future.key)[1]
                try:
                    yield future.result()
                except Exception as exc:  # KilledWorker, CancelledError, communication errors
                    yield _failed(task, f"Dask task failed: {type(exc).__name__}: {exc}")
                finally:
                    future.release()
                while len(by_key) < limit and submit():
                    pass
        finally:
            if by_key:
                self.client.cancel([future for future, _ in by_key.values()])
