"""The cohort runner on a generated cohort: completion with corrupted files, idempotence,
SIGKILL and resume, two runners at once, and Dask clusters giving identical tables."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from vasomics.cohort.executors import DaskExecutor, LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.mask_pipeline import MaskPipelineParams, run_mask
from vasomics.cohort.pipelines import Pipeline, register_pipeline
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore, progress_path
from vasomics.errors import VasomicsError
from vasomics.image import Image
from vasomics.io.images import write_image
from vasomics.phantoms.trees import random_tree

N_GOOD = 40
SHAPES = [(64, 64, 64), (56, 64, 64), (64, 56, 60)]
SPACINGS = [(0.5, 0.5, 0.5), (0.6, 0.5, 0.5), (0.5, 0.45, 0.5)]
FORMATS = [".nii.gz", ".nrrd", ".mha"]
#: scan id -> (how the file is broken, a pattern its failure reason must match)
CORRUPT = {
    "bad-truncated": ("truncated", "truncated|cannot read"),
    "bad-garbage": ("garbage", "not a NIfTI|cannot read"),
    "bad-labels": ("labels", "not binary"),
    "bad-empty": ("empty", "empty"),
}
HEADER = "scan_id,subject_id,path,centre,modality,acquisition_date,label:hvpg\n"
RESULT_TABLES = {
    "features": "SELECT scan_id, scope, feature_id, value, unit FROM features",
    "segments": "SELECT * FROM segments",
    "qc": "SELECT * FROM qc",
    "scans": "SELECT scan_id, subject_id, centre, status, input_hash, params_hash FROM scans",
    "labels": "SELECT * FROM labels",
}


def _write_cohort(folder: Path) -> Path:
    """40 random trees with varied size, spacing, depth and file format, plus four broken
    files; returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(N_GOOD):
        phantom = random_tree(shape=SHAPES[i % 3], spacing=SPACINGS[(i // 3) % 3],
                              generations=4 + i % 2, root_radius_mm=1.2 + 0.1 * (i % 4),
                              seed=100 + i)
        name = f"scan{i:02d}{FORMATS[i % 3]}"
        write_image(phantom.mask, folder / name)
        rows.append(f"s{i:02d},P{i // 2:02d},{name},{'ABC'[i % 3]},mask,2024-01-{1 + i % 28:02d},"
                    f"{4 + 0.5 * i}\n")
    good = folder / "scan00.nii.gz"
    for scan_id, (kind, _) in CORRUPT.items():
        path = folder / f"{scan_id}.nii.gz"
        if kind == "truncated":
            path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        elif kind == "garbage":
            path.write_bytes(gzip.compress(os.urandom(4096)))
        else:
            array = np.zeros((20, 20, 20), np.uint8)
            if kind == "labels":
                array[5:10, 5:10, 5:15], array[12:15, 5:10, 5:15] = 1, 2
            write_image(Image(array, spacing=(0.5, 0.5, 0.5)), path)
        rows.append(f"{scan_id},PX,{path.name},A,mask,,\n")
    manifest = folder / "manifest.csv"
    manifest.write_text(HEADER + "".join(rows))
    return manifest


def _tables(db: Path) -> dict[str, pd.DataFrame]:
    with CohortStore.open(db, read_only=True) as store:
        return {name: store.query(sql).sort_values(list(store.query(sql).columns[:3]))
                .reset_index(drop=True) for name, sql in RESULT_TABLES.items()}


def _assert_same_results(db: Path, reference: Path) -> None:
    got, want = _tables(db), _tables(reference)
    for name in RESULT_TABLES:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)


def _cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vasomics", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return _write_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def reference(manifest, tmp_path_factory) -> Path:
    """An uninterrupted local run with two worker processes."""
    db = tmp_path_factory.mktemp("ref") / "cohort.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(2))
    assert (summary.done, summary.failed, summary.skipped) == (N_GOOD, len(CORRUPT), 0)
    return db


def test_cohort_runs_to_completion_and_records_failures(reference):
    with CohortStore.open(reference, read_only=True) as store:
        q = store.query
        scans = q("SELECT scan_id, status FROM scans ORDER BY scan_id")
        assert len(scans) == N_GOOD + len(CORRUPT)
        assert set(scans[scans.status == "done"].scan_id) == {f"s{i:02d}" for i in range(N_GOOD)}
        failed = q("SELECT s.scan_id, r.error_message FROM scans s JOIN runs r "
                   "ON r.run_id = s.last_run_id WHERE s.status = 'failed'")
        reasons = dict(zip(failed.scan_id, failed.error_message, strict=True))
        assert set(reasons) == set(CORRUPT)
        for scan_id, (_, phrase) in CORRUPT.items():
            assert re.search(phrase, reasons[scan_id]), reasons[scan_id]
            assert f"{scan_id}.nii.gz" in reasons[scan_id]
            assert "\n" not in reasons[scan_id] and "Traceback" not in reasons[scan_id]
        # every successful scan has its tables; failed ones have none
        per_scan = q("SELECT scan_id, count(*) AS n FROM features GROUP BY 1")
        assert set(per_scan.scan_id) == set(scans[scans.status == "done"].scan_id)
        assert per_scan.n.min() > 100
        assert q("SELECT count(DISTINCT scan_id) FROM segments").iat[0, 0] == N_GOOD
        assert q("SELECT count(*) FROM qc").iat[0, 0] == 5 * N_GOOD
        assert q("SELECT DISTINCT status FROM qc WHERE \"check\" = 'pixel_size'"
                 ).status.tolist() == ["pass"]  # NIfTI, NRRD and MHA store their spacing
        dup = q("SELECT scan_id, scope, feature_id, count(*) c FROM features GROUP BY ALL "
                "HAVING c > 1")
        assert dup.empty
        runs = q("SELECT status, count(*) n, min(seconds) s, bool_and(params_hash = "
                 "(SELECT any_value(params_hash) FROM scans)) same FROM runs GROUP BY 1")
        assert dict(zip(runs.status, runs.n, strict=True)) == {"done": N_GOOD,
                                                               "failed": len(CORRUPT)}
        assert runs.s.min() > 0 and runs.same.all()
        prov = json.loads(q("SELECT provenance FROM runs WHERE status = 'done' LIMIT 1"
                            ).iat[0, 0])
        assert prov["software"]["vasomics"] and len(prov["inputs"]["scan"]) == 64
        # the label and a real feature reach the wide matrix
        m = store.matrix(["VX.A.T.LEN", "VX.A.T.NSEG"])
    assert len(m) == N_GOOD and list(m.columns[-3:]) == ["VX.A.T.LEN", "VX.A.T.NSEG", "hvpg"]
    assert m["VX.A.T.LEN"].between(20, 500).all() and m.hvpg.iloc[1] == 4.5


def test_rerun_skips_unchanged_and_redoes_changed(manifest, reference, tmp_path):
    db = tmp_path / "c.duckdb"
    shutil.copy(reference, db)
    m = load_manifest(manifest)
    again = run_cohort(m, db, executor=LocalExecutor(1))
    assert (again.done, again.skipped, again.failed) == (0, N_GOOD, len(CORRUPT))
    _assert_same_results(db, reference)
    folder = manifest.parent
    os.utime(folder / "scan01.nrrd")  # touched, same content: hashed again, still skipped
    shutil.copy(folder / "scan03.nii.gz", tmp_path / "keep.nii.gz")
    write_image(random_tree(shape=(48, 48, 48), generations=3, seed=7).mask,
                folder / "scan03.nii.gz")  # changed content: recomputed
    try:
        third = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(1))
        assert (third.done, third.skipped) == (1, N_GOOD - 1)
        with CohortStore.open(db, read_only=True) as store:
            n_runs = store.query("SELECT count(*) FROM runs WHERE scan_id = 's03'").iat[0, 0]
            n_seg = store.query("SELECT count(*) FROM segments WHERE scan_id='s03'").iat[0, 0]
        assert n_runs == 2 and n_seg < 20
        subset = tmp_path / "subset.csv"  # the same scans with new parameters: redone
        subset.write_text("".join(manifest.read_text().splitlines(keepends=True)[:4]))
        new_params = run_cohort(load_manifest(subset, root=folder,
                                              params={"qc": {"max_anisotropy": 4}}), db,
                                executor=LocalExecutor(1))
        assert (new_params.done, new_params.skipped) == (3, 0)
        forced = run_cohort(load_manifest(subset, root=folder), db, executor=LocalExecutor(1),
                            force=True)
        assert (forced.done, forced.skipped) == (3, 0)
    finally:
        shutil.copy(tmp_path / "keep.nii.gz", folder / "scan03.nii.gz")


def test_sigkill_mid_run_then_resume_gives_identical_results(manifest, reference, tmp_path):
    db = tmp_path / "k.duckdb"
    runner = subprocess.Popen([sys.executable, "-m", "vasomics", "cohort", "run", str(manifest),
                               "--db", str(db), "--workers", "2", "--no-progress"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and runner.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            done = json.loads(progress_path(db).read_text())["done"]
        if done >= 6:
            break
        time.sleep(0.02)
    assert runner.poll() is None, f"runner ended before the kill: {runner.stderr.read()}"
    workers = psutil.Process(runner.pid).children(recursive=True)
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    runner.stderr.close()
    # the worker processes notice their coordinator is gone and exit
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"orphan workers left: {alive}"
    with CohortStore.open(db) as store:  # recovery: only whole scans
        status = store.query("SELECT status, count(*) n FROM scans GROUP BY 1")
        killed = store.query("SELECT status FROM sessions").status.tolist()
    n_done = int(status.set_index("status").n.get("done", 0))
    assert 6 <= n_done < N_GOOD and killed == ["killed"]
    resumed = _cli("cohort", "run", manifest, "--db", db, "--workers", "2", "--no-progress")
    assert resumed.returncode == 1, resumed.stderr  # the corrupted scans failed
    assert f"{N_GOOD - n_done} done, {n_done} unchanged" in resumed.stdout
    _assert_same_results(db, reference)
    with CohortStore.open(db, read_only=True) as store:
        once = store.query("SELECT scan_id, count(*) n FROM runs WHERE status = 'done' "
                           "GROUP BY 1")
    assert len(once) == N_GOOD and (once.n == 1).all()  # every scan computed exactly once


def test_second_runner_gets_a_clear_error(tmp_path):
    """A scan whose file is a FIFO keeps the first runner busy (its worker blocks reading)
    until the test writes to it, so the second runner deterministically meets a running one."""
    write_image(random_tree(shape=(40, 40, 40), generations=3, seed=1).mask, tmp_path / "a.nrrd")
    os.mkfifo(tmp_path / "slow.nii.gz")
    manifest = tmp_path / "m.csv"
    manifest.write_text("scan_id,subject_id,path,centre,modality\na,P1,a.nrrd,X,mask\n"
                        "slow,P2,slow.nii.gz,X,mask\n")
    db = tmp_path / "c.duckdb"
    first = subprocess.Popen([sys.executable, "-m", "vasomics", "cohort", "run", str(manifest),
                              "--db", str(db), "--workers", "2", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(progress_path(db).read_text())["done"] == 1:
                    break
            time.sleep(0.05)
        second = _cli("cohort", "run", manifest, "--db", db, "--no-progress")
        assert second.returncode == 2
        assert "in use by another vasomics cohort run (pid" in second.stderr
        assert str(first.pid) in second.stderr and "Traceback" not in second.stderr
        status = _cli("cohort", "status", "--db", db)
        assert status.returncode == 0 and "run in progress" in status.stdout
        assert "1 done" in status.stdout
        query = _cli("cohort", "query", "SELECT 1", "--db", db)
        assert query.returncode == 2 and "being written by another process" in query.stderr
    finally:  # release the blocked worker: answer every open of the FIFO until the end
        stop = threading.Event()
        feeder = threading.Thread(target=_feed_fifo, args=(tmp_path / "slow.nii.gz", stop))
        feeder.start()
        try:
            out, err = first.communicate(timeout=120)
        finally:
            stop.set()
            feeder.join()
    assert first.returncode == 1 and "1 done, 0 unchanged, 1 failed" in out, err
    with CohortStore.open(db, read_only=True) as store:
        assert store.query("SELECT count(*) FROM runs").iat[0, 0] == 2


def crash_on_request(path: Path, params: MaskPipelineParams):
    """A pipeline whose worker process dies (like an out-of-memory kill) on files named
    ``crash*``; otherwise the mask pipeline."""
    if path.name.startswith("crash"):
        os._exit(9)
    return run_mask(path, params)


def test_a_dying_worker_fails_only_its_scan(tmp_path):
    register_pipeline(Pipeline(name="crash-test", function="test_cohort_runner:crash_on_request",
                               params="vasomics.cohort.mask_pipeline:MaskPipelineParams"),
                      replace=True)
    lines = ["scan_id,subject_id,path,centre,modality,pipeline"]
    for i, name in enumerate(["a.nrrd", "crash.nrrd", "b.nrrd"]):
        write_image(random_tree(shape=(40, 40, 40), generations=3, seed=i).mask, tmp_path / name)
        lines.append(f"{name[:-5]},P{i},{name},X,mask,crash-test")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    summary = run_cohort(load_manifest(tmp_path / "m.csv"), tmp_path / "c.duckdb",
                         executor=LocalExecutor(2))
    assert (summary.done, summary.failed) == (2, 1)
    assert summary.failures[0][0] == "crash"
    assert "worker process died on this scan" in summary.failures[0][1]


def _feed_fifo(path: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader yet
            time.sleep(0.02)
            continue
        try:
            os.set_blocking(fd, True)
            os.write(fd, b"not an image")
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------ Dask
def test_dask_local_cluster_gives_identical_tables(manifest, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1") as cluster,
          distributed.Client(cluster) as client):
        db = tmp_path / "dask.duckdb"
        summary = run_cohort(load_manifest(manifest), db, executor=DaskExecutor(client))
        assert (summary.done, summary.failed) == (N_GOOD, len(CORRUPT)), summary.failures[:2]
        assert summary.executor.startswith("dask:tcp://127.0.0.1")
        hosts = {r[0] for r in CohortStore.open(db, read_only=True).con.execute(
            "SELECT DISTINCT host FROM runs").fetchall()}
    assert hosts == {socket.gethostname()}
    _assert_same_results(db, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_scheduler_and_workers_as_processes(manifest, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    dask_cli = shutil.which("dask", path=str(Path(sys.executable).parent))
    if dask_cli is None:
        pytest.fail("the `dask` command of the [distributed] extra is not installed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask_cli, "worker", address, "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--local-directory", str(tmp_path / "dask-worker")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        db = tmp_path / "cluster.duckdb"
        result = _cli("cohort", "run", manifest, "--db", db, "--dask", address, "--no-progress")
        assert result.returncode == 1, result.stderr  # the four corrupted scans
        assert f"{N_GOOD} done, 0 unchanged, {len(CORRUPT)} failed" in result.stdout
        assert f"dask:{address}" in result.stdout
        _assert_same_results(db, reference)
        with CohortStore.open(db, read_only=True) as store:
            hosts = store.query("SELECT DISTINCT host FROM runs").host.tolist()
        assert hosts == [socket.gethostname()]
    finally:
        family = [c for p in procs if p.poll() is None
                  for c in psutil.Process(p.pid).children(recursive=True)]
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
    assert all(p.poll() is not None for p in procs)
    _, alive = psutil.wait_procs(family, timeout=20)  # the nannies' worker processes too
    assert not alive, alive


def test_unreachable_dask_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(VasomicsError, match=f"cannot reach the Dask scheduler at {address}"):
        DaskExecutor(address, connect_timeout_s=1)

