"""Benchmark: the whole CT chain (``characterize``: QC → localization → phase → vessels →
graph → naming → features) on seeded liver CT phantoms, scored against the generator's
truth. Usage:

    python benchmarks/bench_ct_chain_phantoms.py [--n 8] [--shape 120 192 192]

Prints per phantom and overall: phase right/wrong, localization Dice per organ, per-segment
naming accuracy (portal, hepatic; length-weighted over extracted segments that lie within
1.5 voxels of a truth centerline) and the relative error of each tree feature against
:func:`vasomics.phantoms.liver_ct.truth_features`, with the fraction within 5 %.
Issue #4 targets: phase ≥ 95 %, naming ≥ 95 %, features within 5 %.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vasomics.chain.localize import _dice
from vasomics.chain.run import characterize
from vasomics.phantoms.liver_ct import (
    PHASES,
    liver_ct_phantom,
    naming_accuracy,
    truth_features,
    truth_organs,
)


def score(shape, seed, phase, z_extent_mm):
    ct, truth = liver_ct_phantom(shape, phase=phase, seed=seed, z_extent_mm=z_extent_mm)
    t0, c0 = time.perf_counter(), time.process_time()
    res = characterize(ct, force=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    organs = truth_organs(truth)
    dice = {k: _dice(res.localization.organs[k], organs[k]) for k in
            ("liver", "spleen", "aorta", "ivc", "portal_vein")} if res.localization else {}
    tol = 1.5 * max(ct.spacing)
    naming = {k: naming_accuracy(g, t, tol) for k, g, t in
              (("portal", res.portal, truth.portal), ("hepatic", res.hepatic, truth.hepatic))}
    errors = {}
    for (fid, scope), value in truth_features(truth).items():
        got = res.features.value(fid, scope) if res.features is not None else np.nan
        errors[(fid, scope)] = (got - value) / value
    return {"phase": res.phase.phase if res.phase else None, "true_phase": phase,
            "dice": dice, "naming": naming, "errors": errors, "wall": wall, "cpu": cpu,
            "vessels": res.vessels.status if res.vessels else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--shape", type=int, nargs=3, default=(120, 192, 192))
    ap.add_argument("--z-extent", type=float, default=240.0)
    ap.add_argument("--seed0", type=int, default=500)
    args = ap.parse_args()
    rows = []
    for i in range(args.n):
        r = score(tuple(args.shape), args.seed0 + i, PHASES[i % 4], args.z_extent)
        rows.append(r)
        d = " ".join(f"{k} {v:.2f}" for k, v in r["dice"].items())
        nm = " ".join(f"{k} {a:.2f} (matched {m:.2f})" for k, (a, m) in r["naming"].items())
        within = np.mean([abs(e) <= 0.05 for e in r["errors"].values()])
        print(f"seed {args.seed0 + i} {r['true_phase']:>13} -> {r['phase']:<13} Dice {d}; "
              f"naming {nm}; features within 5 %: {within:.2f}; vessels {r['vessels']}; "
              f"{r['wall']:.0f} s wall / {r['cpu']:.0f} s CPU", flush=True)
    n = len(rows)
    print(f"\n{n} phantoms {tuple(args.shape)}, load {os.getloadavg()[0]:.1f}")
    print(f"phase accuracy {np.mean([r['phase'] == r['true_phase'] for r in rows]):.3f}")
    for k in ("liver", "spleen", "aorta", "ivc", "portal_vein"):
        print(f"  Dice {k}: median {np.median([r['dice'][k] for r in rows]):.3f}, "
              f"min {np.min([r['dice'][k] for r in rows]):.3f}")
    for k in ("portal", "hepatic"):
        acc = [r["naming"][k][0] for r in rows]
        print(f"naming {k}: mean {np.nanmean(acc):.3f} (matched length "
              f"{np.mean([r['naming'][k][1] for r in rows]):.3f})")
    for key in rows[0]["errors"]:
        e = np.array([r["errors"][key] for r in rows])
        print(f"  {key[0]:<32} {key[1]:<28} median error {np.nanmedian(e):+.3f}, "
              f"within 5 %: {np.mean(np.abs(e) <= 0.05):.2f}")


if __name__ == "__main__":
    main()
