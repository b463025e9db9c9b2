"""Benchmark: test-retest repeatability of the CT chain's features on repeated scans of the
same generated patients. Usage:

    python benchmarks/bench_ct_chain_repeatability.py [--seeds 600 601 602 603 604 605]
        [--repeats 3] [--phase portal_venous] [--shape 160 320 320] [--artery]
        [--params params.yaml]

Each phantom seed fixes a patient (anatomy, enhancement, blur); each repeat renders it with
a new noise realization (``liver_ct_phantom(noise_seed=r)``), stored as int16 HU as scanners
store it, and runs :func:`vasomics.chain.run.characterize`. Per feature (scope ``tree`` and
the ``vessel:`` scopes measured in every run) it prints the within-subject coefficient of
variation (:func:`vasomics.metrics.agreement.within_subject_cv`) and the one-way ICC(1,1)
across the phantoms (:func:`vasomics.metrics.agreement.icc`), worst first, and per phantom
each venous tree's length error against the generator's truth
(:func:`vasomics.phantoms.truth.liver_tree_truth`) and its naming accuracy in every repeat:
what one re-scan moves. Scope of the statement: noise only; no change of patient position,
breath hold, contrast timing or reconstruction.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vasomics.chain.run import RunParams, characterize
from vasomics.metrics.agreement import icc, within_subject_cv
from vasomics.params import load_params
from vasomics.phantoms.liver_ct import liver_ct_phantom
from vasomics.phantoms.truth import liver_tree_truth, naming_scores

TREES = ("portal", "hepatic")


def measure(seed: int, repeat: int, args, params) -> dict:
    """One repeated scan of phantom ``seed``: its features keyed ``(scope, feature_id)``,
    each venous tree's length error against the truth and its naming accuracy."""
    ct, truth = liver_ct_phantom(tuple(args.shape), phase=args.phase, seed=seed,
                                 z_extent_mm=args.z_extent, hepatic_artery=args.artery,
                                 noise_seed=repeat)
    ct = ct.with_array(np.round(ct.array).astype(np.int16))
    t0 = time.perf_counter()
    res = characterize(ct, params)
    wall = time.perf_counter() - t0
    frame = res.features.frame
    keep = (frame.scope == "tree") | frame.scope.str.startswith("vessel:")
    values = {(s, f): v for s, f, v in zip(frame.scope[keep], frame.feature_id[keep],
                                            frame.value[keep], strict=True)}
    expected = liver_tree_truth(truth)
    tol = 1.5 * max(ct.spacing)
    trees = {}
    for name in TREES:
        key = ("VX.A.V.TREE_LEN", f"vessel:{name}_venous_tree")
        graph = getattr(res, name)
        trees[name] = (res.features.value(*key) / expected[key] - 1,
                       naming_scores(graph, getattr(truth, name), tol)["accuracy"])
    return {"values": values, "trees": trees, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[600, 601, 602, 603, 604, 605])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--phase", default="portal_venous")
    ap.add_argument("--shape", type=int, nargs=3, default=(160, 320, 320))
    ap.add_argument("--z-extent", type=float, default=240.0)
    ap.add_argument("--artery", action="store_true",
                    help="phantoms with the hepatic artery (enhanced beside the portal vein)")
    ap.add_argument("--params", help="chain parameter file (YAML, RunParams); defaults if absent")
    args = ap.parse_args()
    if args.repeats < 2 or len(args.seeds) < 2:
        ap.error("repeatability needs at least two phantoms and two repeats")
    params = load_params(RunParams, args.params)
    runs = {}
    for seed in args.seeds:
        runs[seed] = [measure(seed, r, args, params) for r in range(args.repeats)]
        line = "; ".join(
            f"{name} length " + " ".join(f"{r['trees'][name][0]:+.3f}" for r in runs[seed])
            + " naming " + " ".join(f"{r['trees'][name][1]:.2f}" for r in runs[seed])
            for name in TREES)
        wall = np.mean([r["wall"] for r in runs[seed]])
        print(f"seed {seed}: {line} ({wall:.0f} s per run)", flush=True)
    keys = set.intersection(*(set(r["values"]) for rs in runs.values() for r in rs))
    rows = []
    for key in sorted(keys):
        y = np.array([[r["values"][key] for r in runs[s]] for s in args.seeds])
        if not np.all(np.isfinite(y)):
            continue
        rows.append((within_subject_cv(*y.T), icc(*y.T, kind="oneway"), key))
    rows.sort(key=lambda r: -np.nan_to_num(r[0], nan=np.inf))
    print(f"\n{len(args.seeds)} phantoms x {args.repeats} repeats, {args.phase}, shape "
          f"{tuple(args.shape)}{', with the hepatic artery' if args.artery else ''}: "
          f"{len(rows)} features measured in every run")
    for cv, r, (scope, fid) in rows:
        print(f"  {fid:<34} {scope:<34} wCV {100 * cv:6.2f} %  ICC(1,1) {r:+.3f}")
    cvs = np.array([r[0] for r in rows])
    iccs = np.array([r[1] for r in rows])
    print(f"wCV <= 5 %: {np.sum(cvs <= 0.05)} of {len(rows)} (NaN: {np.sum(np.isnan(cvs))}); "
          f"ICC(1,1) >= 0.9: {np.sum(iccs >= 0.9)}, >= 0.75: {np.sum(iccs >= 0.75)}")
    for name in TREES:
        spread = [np.ptp([r["trees"][name][0] for r in runs[s]]) for s in args.seeds]
        print(f"{name} length error range over repeats: median {np.nanmedian(spread):.3f}, "
              f"max {np.nanmax(spread):.3f}")


if __name__ == "__main__":
    main()
