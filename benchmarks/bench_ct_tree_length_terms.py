"""Where the graph stage loses tree length on the liver CT phantom's own vessel masks.

    python benchmarks/bench_ct_tree_length_terms.py [--seeds 500 ... 507] [--shape 96 160 160]
        [--set end_side_tolerance_voxels=0]

For each seed the portal and hepatic labels within the chain's 12 mm hilum margin are traced
(``vasomics.chain.run._graph``, as ``tests/test_ct_run.py`` does) and the total length is
compared with :func:`vasomics.phantoms.truth.liver_tree_truth`. The deficit (truth - traced,
mm) is split per truth terminal branch whose tip lies in the region:

* *spur*: the branch is absent from the graph but present with pruning off
  (``prune_rounds=0``): its truth length (axis in the region + cap radius);
* *missed*: absent even without pruning (the thinning left no branch);
* *tip*: a traced branch's end short of the truth tip (axis end + cap radius), measured
  along the truth axis (extended beyond the tip, so overshoot counts negative);
* *rest*: everything else (junctions, root and region-cut ends), the remainder.

A branch is *absent* when the graph reaches less than 40 % of its truth length (the parent's
lumen covers its base). Graph points within the truth radius plus a mean voxel of the
truth axis count as reaching it.
"""

from __future__ import annotations

import argparse
import json

import edt
import numpy as np
from scipy.spatial import cKDTree

from vasomics.chain.compare import resample_polylines
from vasomics.chain.run import RunParams, _graph
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom
from vasomics.phantoms.truth import liver_tree_truth

STEP = 0.25  # mm, resampling step of truth and traced centerlines


def _points(graph) -> np.ndarray:
    return np.concatenate([resample_polylines([graph.segment_points(s)],
                                              [graph.segment_radius(s)], STEP)[0]
                           for s in range(graph.n_segments)])


def _reach(axis, radius, tip_r, pts, voxel) -> float:
    """Arc (mm) along ``axis`` extended 10 mm past its end, of the farthest of ``pts``
    within the radius plus ``voxel`` of it."""
    tangent = axis[-1] - axis[-5]
    tangent /= np.linalg.norm(tangent)
    k = np.arange(1, int((tip_r + 10.0) / STEP) + 1)
    ext = np.concatenate([axis, axis[-1] + np.outer(k * STEP, tangent)])
    rad = np.concatenate([radius, np.full(len(k), tip_r)])
    d, j = cKDTree(ext).query(pts)
    near = d <= rad[j] + voxel
    return float(j[near].max() * STEP) if near.any() else 0.0


def terms(seed, shape, overrides) -> dict:
    ct, truth = liver_ct_phantom(shape, phase="delayed", seed=seed, z_extent_mm=240.0)
    p = RunParams()
    gp = p.graph.model_copy(update=overrides)
    lab, env = truth.labels.array, truth.labels.metadata["liver_envelope"]
    region = edt.edt(~env, anisotropy=ct.spacing) <= p.vessels.hilum_margin_mm
    main = truth.portal.segment_points(
        int(np.nonzero(truth.portal.segment_label == "main_portal_vein")[0][0]))
    root = main[int(np.argmax(region[tuple(np.round(ct.physical_to_index(main)).astype(int).T)]))]
    want = liver_tree_truth(truth)
    voxel = float(np.mean(ct.spacing))
    out = {}
    for key, tg, scope, rt in (("portal", truth.portal, "vessel:portal_venous_tree", root),
                               ("hepatic", truth.hepatic, "vessel:hepatic_venous_tree", None)):
        mask = (lab == LABELS[key]) & region
        graph = _graph(ct, mask, gp, rt)
        pts = _points(graph)
        raw = _points(_graph(ct, mask, gp.model_copy(update={"prune_rounds": 0}), rt))
        t = want[("VX.A.V.TREE_LEN", scope)]
        g = float(graph.segment_lengths().sum())
        row = {"truth": t, "spur": 0.0, "missed": 0.0, "tip": 0.0, "tips": []}
        for s in np.nonzero(tg.node_kind[tg.segment_end] == "endpoint")[0]:
            axis, rad = resample_polylines([tg.segment_points(s)], [tg.segment_radius(s)], STEP)
            idx = np.round(ct.physical_to_index(axis)).astype(int)
            ok = np.all((idx >= 0) & (idx < np.array(lab.shape)), axis=1)
            inside = np.zeros(len(axis), bool)
            inside[ok] = region[tuple(idx[ok].T)]
            if len(axis) < 5 or not inside[-1]:
                continue
            length = inside.sum() * STEP + rad[-1]
            tip = (len(axis) - 1) * STEP + rad[-1]
            gap = tip - _reach(axis, rad, rad[-1], pts, voxel)
            if gap > 0.6 * length:
                raw_gap = tip - _reach(axis, rad, rad[-1], raw, voxel)
                row["spur" if raw_gap < 0.6 * length else "missed"] += length
            else:
                row["tip"] += gap
                row["tips"].append(gap)
        row["traced"] = g
        row["rest"] = t - g - row["spur"] - row["missed"] - row["tip"]
        out[key] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(500, 508)))
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 160, 160))
    ap.add_argument("--set", action="append", default=[],
                    help="GraphParams override NAME=VALUE (JSON value)")
    args = ap.parse_args()
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    total = {k: 0.0 for k in ("truth", "traced", "spur", "missed", "tip", "rest")}
    errors = {"portal": [], "hepatic": []}
    for seed in args.seeds:
        for key, row in terms(seed, tuple(args.shape), overrides).items():
            err = row["traced"] / row["truth"] - 1
            errors[key].append(err)
            for k in total:
                total[k] += row[k]
            print(f"{seed} {key:<8} truth {row['truth']:6.1f} traced {row['traced']:6.1f} "
                  f"({err:+.3f}); spur {row['spur']:5.1f} missed {row['missed']:5.1f} "
                  f"tip {row['tip']:5.1f} (median {np.median(row['tips']):+.2f} over "
                  f"{len(row['tips'])}) rest {row['rest']:+6.1f} mm", flush=True)
    print("total " + " ".join(f"{k} {v:.1f}" for k, v in total.items()) + " mm; median error "
          f"portal {np.median(errors['portal']):+.3f}, hepatic {np.median(errors['hepatic']):+.3f}")


if __name__ == "__main__":
    main()
