"""Cohort runner and store benchmarks; prints the figures of issue 6.

1. Coordinator + store overhead per scan, with a trivial stage that returns a realistic
   result (500 feature rows, 25 segments, 4 QC rows) without computing anything: the whole
   ``run_cohort`` wall time divided by the number of scans (target ≤ 50 ms).
2. Speed-up from 1 to 2 local worker processes on the real ``mask`` pipeline (random trees
   of 128³ voxels), over the whole run and in steady state (after worker start-up).
3. A 10,000-scan store (50 tree features + 200 segment rows per scan, synthetic values):
   per-centre mean of 50 features (target ≤ 1 s), the wide matrix, and the cost of one
   scan's transaction in a store that large.

Usage: python benchmarks/bench_cohort.py [--scans 300] [--trees 16] [--big 10000]
       [--parts overhead,speedup,big]
The machine's CPUs may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.pipelines import Pipeline, ScanOutput, ScanResult, register_pipeline
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore
from vasomics.features.table import FeatureTable
from vasomics.params import StageParams


class TrivialParams(StageParams):
    """No parameters."""


@functools.cache
def trivial_stage(path: Path, params: TrivialParams) -> ScanOutput:
    """A stage that computes nothing but returns a result of realistic size (built once per
    worker process and path, so that only the runner's own work is measured)."""
    rng = np.random.default_rng(0)
    features = FeatureTable.from_records(
        [("tree", f"F{i:03d}", float(v), "mm") for i, v in enumerate(rng.random(100))]
        + [(f"segment:{s}", f"S{i:02d}", float(rng.random()), "mm")
           for s in range(25) for i in range(16)])
    segments = pd.DataFrame({c: rng.random(25) for c in (
        "length_mm", "chord_mm", "mean_radius_mm", "min_radius_mm", "max_radius_mm",
        "start_x_mm", "start_y_mm", "start_z_mm", "end_x_mm", "end_y_mm", "end_z_mm")})
    segments = segments.assign(segment_id=np.arange(25), start_node=np.arange(25),
                               end_node=np.arange(1, 26), label="", generation=1,
                               strahler=1, n_points=10)
    qc = pd.DataFrame({"check": ["a", "b", "c", "d"], "status": "pass", "value": 1.0,
                       "unit": "", "reason": ""})
    return ScanOutput(features=features, segments=segments, qc=qc)


register_pipeline(Pipeline(name="trivial", function="bench_cohort:trivial_stage",
                           params="bench_cohort:TrivialParams", modalities=("trivial",)),
                  replace=True)


def _manifest(folder: Path, rows: list[tuple[str, str, str]], modality: str) -> Path:
    lines = ["scan_id,subject_id,path,centre,modality"]
    lines += [f"{s},{p},{f},{c},{modality}" for s, f, c, p in
              ((r[0], r[1], r[2], f"P{i}") for i, r in enumerate(rows))]
    path = folder / f"{modality}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_overhead(folder: Path, n: int) -> None:
    rows = []
    for i in range(n):
        (folder / f"t{i}.bin").write_bytes(os.urandom(1024))
        rows.append((f"t{i}", f"t{i}.bin", "ABCDE"[i % 5]))
    manifest = load_manifest(_manifest(folder, rows, "trivial"))
    db = folder / "overhead.duckdb"
    stamps: list[float] = []
    t0 = time.perf_counter()
    summary = run_cohort(manifest, db, executor=LocalExecutor(2),
                         progress=lambda counts: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    assert summary.done == n
    steady = (stamps[-1] - stamps[n // 10]) / (n - n // 10 - 1)  # after pool start-up
    with CohortStore.open(db) as store:  # the store part alone: one transaction per scan
        result = ScanResult(scan_id="store-only", status="done", input_hash="0" * 64,
                            params_hash="0" * 16, started=time.time(), ended=time.time(),
                            host="h", pid=1, software={"vasomics": "x"},
                            output=trivial_stage(Path("t0.bin"), TrivialParams()))
        times = []
        for _ in range(50):
            t = time.perf_counter()
            store.write_result(result, session_id=None, pipeline="trivial", params_json="{}",
                               file_signature=(1, 1))
            times.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    again = run_cohort(manifest, db, executor=LocalExecutor(2))
    skip_wall = time.perf_counter() - t0
    print(f"[overhead] {n} scans, trivial stage (525 result rows each), 2 workers: "
          f"{wall:.2f} s wall = {1000 * wall / n:.1f} ms/scan including worker start-up, "
          f"{1000 * steady:.1f} ms/scan in steady state (target <= 50); one scan's store "
          f"transaction alone: median {1000 * statistics.median(times):.1f} ms; rerun with "
          f"all {again.skipped} unchanged: {skip_wall:.2f} s")


def bench_speedup(folder: Path, n: int, size: int = 128) -> None:
    from vasomics.io.images import write_image
    from vasomics.phantoms.trees import random_tree

    rows = []
    for i in range(n):
        name = f"tree{i}.nii.gz"
        write_image(random_tree(shape=(size,) * 3, generations=7, seed=i).mask,
                    folder / name)
        rows.append((f"m{i}", name, "AB"[i % 2]))
    manifest = load_manifest(_manifest(folder, rows, "mask"))
    walls, steady = {}, {}
    for workers in (1, 2):
        db = folder / f"speed{workers}.duckdb"
        stamps: list[float] = []
        t0 = time.perf_counter()
        summary = run_cohort(manifest, db, executor=LocalExecutor(workers),
                             progress=lambda counts, s=stamps: s.append(time.perf_counter()))
        walls[workers] = time.perf_counter() - t0
        steady[workers] = (stamps[-1] - stamps[2]) / (n - 2)  # after start-up
        assert summary.done == n, summary.failures
    with CohortStore.open(folder / "speed1.duckdb", read_only=True) as store:
        per_scan = store.query("SELECT median(seconds) FROM runs").iat[0, 0]
    print(f"[speed-up] {n} random trees {size}^3, mask pipeline (median {per_scan:.2f} s/scan): "
          f"wall 1 worker {walls[1]:.1f} s, 2 workers {walls[2]:.1f} s: speed-up "
          f"{walls[1] / walls[2]:.2f}x; steady state (after worker start-up) "
          f"{steady[1]:.2f} vs {steady[2]:.2f} s/scan: {steady[1] / steady[2]:.2f}x "
          f"(ideal 2.00x on 2 free cores)")


def bench_big(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    db = folder / "big.duckdb"
    with CohortStore.open(db) as store:
        con = store.con
        scans = pd.DataFrame({"scan_id": [f"s{i:05d}" for i in range(n)],
                              "subject_id": [f"p{i:05d}" for i in range(n)],
                              "centre": [f"C{i % 8}" for i in range(n)]})
        con.register("b_scans", scans)
        con.execute("INSERT INTO subjects SELECT subject_id, now() FROM b_scans")
        con.execute("INSERT INTO scans (scan_id, subject_id, centre, modality, pipeline, path, "
                    "status) SELECT scan_id, subject_id, centre, 'mask', 'mask', "
                    "'x', 'done' FROM b_scans")
        t0 = time.perf_counter()
        tree = pd.DataFrame({
            "scan_id": np.repeat(scans.scan_id.to_numpy(), 50), "scope": "tree",
            "feature_id": np.tile([f"VX.F{j:02d}" for j in range(50)], n),
            "value": rng.normal(size=50 * n), "unit": "mm"})
        seg = pd.DataFrame({
            "scan_id": np.repeat(scans.scan_id.to_numpy(), 200),
            "scope": np.tile([f"segment:{k}" for k in range(20)], 10 * n),
            "feature_id": np.tile(np.repeat([f"VX.S{j}" for j in range(10)], 20), n),
            "value": rng.normal(size=200 * n), "unit": "mm"})
        for frame in (tree, seg):
            con.register("b_rows", frame)
            con.execute("INSERT INTO features SELECT * FROM b_rows")
        build = time.perf_counter() - t0
        rows = con.execute("SELECT count(*) FROM features").fetchone()[0]
    sql = ("SELECT s.centre, f.feature_id, avg(f.value) AS mean FROM features f JOIN scans s "
           "USING (scan_id) WHERE f.scope = 'tree' GROUP BY ALL")
    with CohortStore.open(db, read_only=True) as store:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            out = store.query(sql)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        matrix = store.matrix(scope="tree", labels=False)
        t_matrix = time.perf_counter() - t
    assert len(out) == 8 * 50 and matrix.shape == (n, 5 + 50)
    with CohortStore.open(db) as store:
        result = ScanResult(scan_id="s00001", status="done", input_hash="0" * 64,
                            params_hash="0" * 16, started=time.time(), ended=time.time(),
                            host="h", pid=1, software={"vasomics": "x"},
                            output=trivial_stage(Path("s1"), TrivialParams()))
        writes = []
        for _ in range(10):
            t = time.perf_counter()
            store.write_result(result, session_id=None, pipeline="trivial", params_json="{}",
                               file_signature=(1, 1))
            writes.append(time.perf_counter() - t)
    print(f"[10k] {n} scans, {rows:,} feature rows (built in {build:.1f} s), "
          f"{db.stat().st_size / 1e6:.0f} MB: per-centre mean of 50 features: first "
          f"{times[0]:.3f} s, median {statistics.median(times):.3f} s (target <= 1 s); wide "
          f"matrix {n} x 50: {t_matrix:.2f} s; one scan's transaction in this store: median "
          f"{1000 * statistics.median(writes):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--trees", type=int, default=16)
    parser.add_argument("--tree-size", type=int, default=128,
                        help="edge of the speed-up trees in voxels (larger: work dominates)")
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--parts", default="overhead,speedup,big",
                        help="comma-separated subset of overhead, speedup, big")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, fn, n in (("overhead", bench_overhead, args.scans),
                            ("speedup", functools.partial(bench_speedup, size=args.tree_size),
                             args.trees),
                            ("big", bench_big, args.big)):
            if name not in parts:
                continue
            (tmp / name).mkdir()
            fn(tmp / name, n)
            sys.stdout.flush()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
