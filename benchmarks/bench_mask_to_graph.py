"""Speed, memory and accuracy of mask → graph (→ features → files), side by side with
scikit-image + skan on the same masks, in the same run.

Cases (seeded space-filling trees, 0.5 mm voxels; :func:`vasomics.phantoms.random_tree`):
``128``, ``256``, ``512`` sparse trees (127, 511, 2047 segments, ~0.1–0.3 % foreground) and
``dense``: a liver-like 512³ tree of 4095 segments at ~2 % foreground. Each mask is written
as NIfTI (``.nii.gz``) first; every measurement then runs in a fresh subprocess, so its peak
RSS (``ru_maxrss``) is its own:

* ``vasomics``: ``vasomics.api.run_features(mask.nii.gz, outdir)``: read → graph → all
  features → write (Parquet, CSV, VTP, JSON, parameters, provenance), per-stage seconds;
* ``vasomics-graph``: read → ``mask_to_graph`` only;
* ``skan``: read → ``skimage.morphology.skeletonize`` → ``skan.Skeleton`` →
  ``skan.summarize`` (graph and branch lengths only, as in the issue).

Time is wall time and CPU time (user + system: on a busy machine, a proxy for the wall time an
idle one would give; an overestimate where a stage runs threads) inside the subprocess after
imports
and after one warm-up run of the same
pipeline on a small Y phantom (numba compiles skan's kernels and loads vasomics' cached
ones on first use); import and warm-up seconds are printed apart ("cold" cost).
Counts: our segments/bifurcations/endpoints vs the truth, and skan's branches, junction
pixels (degree >= 3), junction-to-junction branches (type 2), tips (degree 1) and cycles.

Run: ``python benchmarks/bench_mask_to_graph.py [--cases 128 256 512 dense] [--keep DIR]``.
Numba kernels are compiled once in a warm-up subprocess (cached on disk) before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    # name: (shape, generations, root radius mm, min radius mm)
    "128": ((128, 128, 128), 7, 1.2, None),
    "256": ((256, 256, 256), 9, 1.2, None),
    "512": ((512, 512, 512), 11, 1.2, None),
    "dense": ((512, 512, 512), 12, 7.0, 1.4),
}
SPACING = (0.5, 0.5, 0.5)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_up(kind: str, folder: Path) -> None:
    from vasomics.io.images import write_image
    from vasomics.phantoms import y_bifurcation

    small = folder / "warmup_mask.nii.gz"
    if not small.exists():
        write_image(y_bifurcation(spacing=(1.0, 1.0, 1.0)).mask, small)
    worker(kind, str(small), str(folder / "warmup_out"), warm=False)


def worker(kind: str, mask_path: str, outdir: str, warm: bool = True) -> dict:
    t_import = time.perf_counter()
    if kind == "skan":
        import numpy as np
        from skan import Skeleton, summarize
        from skimage.morphology import skeletonize

        from vasomics.io.images import read_image
    else:
        import numpy as np

        from vasomics.api import run_features
        from vasomics.chain.graph import mask_to_graph
        from vasomics.io.images import read_image
    out = {"import_s": time.perf_counter() - t_import}
    if warm:  # first calls compile (skan) or load cached (vasomics) numba kernels
        t_warm = time.perf_counter()
        _warm_up(kind, Path(outdir).parent)
        out["warmup_s"] = time.perf_counter() - t_warm
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    if kind == "skan":
        mask = read_image(mask_path)
        t1 = time.perf_counter()
        skel = skeletonize(mask.array > 0)
        t2 = time.perf_counter()
        sk = Skeleton(skel, spacing=mask.spacing)
        table = summarize(sk, separator="_")
        t3 = time.perf_counter()
        types = table["branch_type"].to_numpy()
        degrees = np.asarray(sk.degrees)
        out.update(read_s=t1 - t0, skeletonize_s=t2 - t1, skan_s=t3 - t2, total_s=t3 - t0,
                   n_branches=int(len(table)), n_tips=int(np.sum(degrees == 1)),
                   n_junction_pixels=int(np.sum(degrees >= 3)),
                   n_junction_junction=int(np.sum(types == 2)),
                   n_cycles=int(np.sum(types == 3)),
                   total_length_mm=float(table["branch_distance"].sum()),
                   skeleton_pixels=int(np.count_nonzero(skel)))
    elif kind == "vasomics-graph":
        mask = read_image(mask_path)
        t1 = time.perf_counter()
        graph = mask_to_graph(mask)
        t2 = time.perf_counter()
        out.update(read_s=t1 - t0, graph_s=t2 - t1, total_s=t2 - t0, **_graph_counts(graph))
    else:
        result = run_features(mask_path, outdir)
        out.update(total_s=time.perf_counter() - t0, **{f"{k}_s": v for k, v in
                                                          result.seconds.items()},
                   n_features=int(len(result.table.frame)), **_graph_counts(result.graph))
    out["cpu_s"] = _cpu_s() - cpu0
    out["peak_rss_mb"] = _rss_mb()
    return out


def _graph_counts(graph) -> dict:
    import numpy as np

    kinds = graph.node_kind
    return {"n_segments": graph.n_segments,
            "n_bifurcations": int(np.sum(kinds == "bifurcation")),
            "n_endpoints": int(np.sum((kinds == "endpoint") | (kinds == "root"))),
            "total_length_mm": float(graph.segment_lengths().sum()),
            "max_strahler": int(graph.segment_strahler.max())}


def _run(kind: str, mask_path: Path, outdir: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, str(mask_path),
                           str(outdir)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} on {mask_path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder for the masks and outputs (default: a temporary one)")
    parser.add_argument("--no-skan", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    from vasomics.io.images import write_image
    from vasomics.phantoms import random_tree

    work = args.keep or Path(tempfile.mkdtemp(prefix="vasomics-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# cpus available: {len(os.sched_getaffinity(0))}, load average "
          f"{os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    warm = None
    for name in args.cases:
        shape, generations, r0, rmin = CASES[name]
        phantom = random_tree(shape, SPACING, generations=generations, root_radius_mm=r0,
                              min_radius_mm=rmin, seed=0)
        path = work / f"tree_{name}.nii.gz"
        write_image(phantom.mask, path)
        tv = phantom.truth.values
        if warm is None:  # compile (and cache) numba kernels outside the timings
            warm = _run("vasomics", path, work / "warmup")
        print(f"\n## case {name}: shape {shape}, {int(tv['n_segments'])} segments, "
              f"{int(tv['n_bifurcations'])} bifurcations, {int(tv['n_endpoints'])} endpoints, "
              f"foreground {100 * tv['foreground_fraction']:.3f} %, total length "
              f"{tv['total_length_mm']:.0f} mm")
        full = _run("vasomics", path, work / f"out_{name}")
        graph = _run("vasomics-graph", path, work / "unused")
        print(f"vasomics read->graph->features->write: {full['total_s']:.2f} s wall, "
              f"{full['cpu_s']:.2f} s CPU "
              f"(read {full['read_s']:.2f}, graph {full['graph_s']:.2f}, features "
              f"{full['features_s']:.2f}, write {full['write_s']:.2f}), peak RSS "
              f"{full['peak_rss_mb']:.0f} MB, {full['n_features']} feature rows; "
              f"cold extra: imports {full['import_s']:.2f} s, warm-up {full['warmup_s']:.2f} s")
        print(f"vasomics read->graph: {graph['total_s']:.2f} s wall, {graph['cpu_s']:.2f} s CPU "
              f"(graph {graph['graph_s']:.2f}), "
              f"peak RSS {graph['peak_rss_mb']:.0f} MB; segments {graph['n_segments']}, "
              f"bifurcations {graph['n_bifurcations']}, endpoints {graph['n_endpoints']}, "
              f"max Strahler {graph['max_strahler']}, length {graph['total_length_mm']:.0f} mm "
              f"({100 * (graph['total_length_mm'] / tv['total_length_mm'] - 1):+.1f} % vs truth)")
        if not args.no_skan:
            sk = _run("skan", path, work / "unused")
            print(f"skimage+skan read->skeletonize->Skeleton->summarize: {sk['total_s']:.2f} s "
                  f"wall, {sk['cpu_s']:.2f} s CPU "
                  f"(skeletonize {sk['skeletonize_s']:.2f}, skan {sk['skan_s']:.2f}), peak RSS "
                  f"{sk['peak_rss_mb']:.0f} MB; branches {sk['n_branches']}, junction pixels "
                  f"{sk['n_junction_pixels']}, junction-junction branches "
                  f"{sk['n_junction_junction']}, tips {sk['n_tips']}, cycles {sk['n_cycles']}, "
                  f"length {sk['total_length_mm']:.0f} mm "
                  f"({100 * (sk['total_length_mm'] / tv['total_length_mm'] - 1):+.1f} % vs truth); "
                  f"cold extra: imports {sk['import_s']:.2f} s, warm-up {sk['warmup_s']:.2f} s")
            print(f"ratio skan / vasomics (wall): full path {sk['total_s'] / full['total_s']:.2f}x,"
                  f" graph only {sk['total_s'] / graph['total_s']:.2f}x; (CPU): full path "
                  f"{sk['cpu_s'] / full['cpu_s']:.2f}x, graph only "
                  f"{sk['cpu_s'] / graph['cpu_s']:.2f}x")
    print(f"\n# outputs in {work}")


if __name__ == "__main__":
    main()
