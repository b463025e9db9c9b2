"""Web viewer: time to answer a filtered scan list from a 10,000-scan cohort database.

Builds a synthetic cohort (the real schema; 10,000 scans, 6 scan-level features each),
starts the viewer app in process (FastAPI TestClient: the full HTTP stack without a socket)
and times ``/api/scans`` for several filters (centre + modality, a feature range, a
substring search, no filter), 20 requests each after one warm-up. Target: <= 200 ms.

    python benchmarks/bench_viewer.py [--scans 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from vasomics.report.cohort import synthetic_cohort_db
    from vasomics.web.app import create_app

    filters = {
        "centre+modality": {"centre": "paris", "modality": "CT"},
        "feature range": {"feature": "VX.A.T.LEN", "min": 5, "max": 10},
        "id substring": {"q": "scan012"},
        "all (first 100)": {},
        "combined": {"centre": "leeds", "status": "done", "feature": "VX.A.T.FD", "min": 7},
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = synthetic_cohort_db(Path(tmp) / "c.duckdb", args.scans, seed=0)
        print(f"synthetic cohort: {args.scans} scans in {time.perf_counter() - t0:.1f} s")
        app = create_app(db, token="bench")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            headers = {"Authorization": "Bearer bench"}
            for name, params in filters.items():
                client.get("/api/scans", params=params, headers=headers)
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    r = client.get("/api/scans", params=params, headers=headers)
                    times.append(time.perf_counter() - t0)
                    r.raise_for_status()
                t = np.array(times) * 1000
                print(f"{name:<18} {r.json()['total']:>6} matches: median {np.median(t):6.1f} ms, "
                      f"p95 {np.percentile(t, 95):6.1f} ms, max {t.max():6.1f} ms "
                      f"(target <= 200 ms)")


if __name__ == "__main__":
    main()
