"""Where the CT chain's tree length goes, against the liver CT phantom's truth.

    python benchmarks/bench_ct_chain_length_terms.py [--seeds 501 504 507 510]
        [--phase portal_venous] [--shape 96 160 160] [--artery]

Runs :func:`vasomics.chain.run.characterize` on each phantom and splits each traced tree's
centerline length (resampled every 0.25 mm; mm) by where its points lie:

* *own*: in the lumen of the truth tree of the same kind (its label, or within the truth
  radius plus half a voxel of its axis), outside the IVC label;
* *other*: in the other venous tree's lumen (portal / hepatic swaps of the separation);
* *artery*: with ``--artery`` (the phantom's hepatic artery beside the portal veins), in
  the artery's lumen (its label, or within its truth radius plus half a voxel of its axis)
  and in neither venous tree's;
* *ivc*: in the IVC label (IVC lumen outside the chain's IVC mask);
* *parenchyma*: anywhere else (noise spurs, partial-volume rims);

and reports, of the *own* length, the *excess* over the truth axis length it covers
(points matched to their nearest truth axis point; on the generator's own masks it is
about 45 mm per tree: rounded ends and junction ends) and *parallel*, the length of
segments of which more than 60 % covers truth axis already covered by a longer segment
(strands around holes in the lumen); ``reached``: truth axis length in the region within
the truth radius plus a voxel of the traced centerline. Volume (mL): the tree mask against
the truth label in the region (``lost``: truth voxels in the other tree's mask and in the
vessel mask but in neither tree, i.e. the chain's IVC or dropped components).
``terminals``: the endpoints of the traced graph in the region (what the distal branch
richness ``VX.P.V.DISTAL_RICHNESS`` counts), those ending a segment under 5 mm, those on
components of at least 10 mm of centerline, and the truth graph's endpoints in the region.
"""

from __future__ import annotations

import argparse

import edt
import numpy as np
from scipy.spatial import cKDTree

from vasomics.chain.compare import resample_polylines
from vasomics.chain.run import characterize
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom
from vasomics.phantoms.truth import liver_tree_truth

STEP = 0.25  # mm


def _resampled(graph):
    pts, rad, seg = [], [], []
    for s in range(graph.n_segments):
        p, r = resample_polylines([graph.segment_points(s)], [graph.segment_radius(s)], STEP)
        pts.append(p)
        rad.append(r)
        seg.append(np.full(len(p), s))
    return np.concatenate(pts), np.concatenate(rad), np.concatenate(seg)


def _in_lumen(p, lp, axis, label, voxel):
    """Whether each point ``p`` (mm; ``lp`` its label) lies in the lumen of a truth tree:
    its ``label``, or within the truth radius plus half a voxel of its ``axis`` (points and
    radii from :func:`_resampled`). Returns the test and each point's nearest axis point."""
    tp, tr = axis[:2]
    d, j = cKDTree(tp).query(p)
    return (d <= tr[j] + 0.5 * voxel) | (lp == LABELS[label]), j


def _terminals(graph, region, ct) -> tuple[int, int, int]:
    """Endpoints of ``graph`` inside ``region`` (boolean on ``ct``'s grid), how many of them
    end a segment shorter than 5 mm, and how many lie on components of at least 10 mm of
    centerline."""
    ends = np.flatnonzero(graph.node_kind == "endpoint")
    idx = np.clip(np.round(ct.physical_to_index(graph.node_position[ends])).astype(int), 0,
                  np.array(region.shape) - 1)
    inside = ends[region[tuple(idx.T)]]
    lengths = graph.segment_lengths()
    short = {int(n) for s in np.flatnonzero(lengths < 5.0)
             for n in (graph.segment_start[s], graph.segment_end[s])}
    comp = graph.node_components()
    comp_length = np.bincount(comp[graph.segment_start], lengths, minlength=comp.max() + 1)
    return (len(inside), sum(int(n) in short for n in inside),
            int(np.sum(comp_length[comp[inside]] >= 10.0)))


def _terms(ct, truth, graph, mask, vessels, other_mask, key, other):
    lab = truth.labels.array
    region = edt.edt(~truth.labels.metadata["liver_envelope"], anisotropy=ct.spacing) <= 12.0
    voxel = float(np.mean(ct.spacing))
    p, _, seg = _resampled(graph)
    w = float(graph.segment_lengths().sum()) / len(p)
    idx = np.clip(np.round(ct.physical_to_index(p)).astype(int), 0, np.array(lab.shape) - 1)
    lp = lab[tuple(idx.T)]
    ivc = lp == LABELS["ivc"]
    tp, tr, _ = _resampled(getattr(truth, key))
    own, jt = _in_lumen(p, lp, (tp, tr), key, voxel)
    own &= ~ivc
    oth = _in_lumen(p, lp, _resampled(getattr(truth, other)), other, voxel)[0] & ~own & ~ivc
    art = np.zeros_like(own)
    if truth.artery is not None:
        art = _in_lumen(p, lp, _resampled(truth.artery), "artery", voxel)[0] \
            & ~own & ~oth & ~ivc
    out = {"own": own.sum() * w, "other": oth.sum() * w, "artery": art.sum() * w,
           "ivc": ivc.sum() * w, "parenchyma": (~own & ~oth & ~art & ~ivc).sum() * w}
    out["excess"] = out["own"] - len(np.unique(jt[own])) * STEP
    cover = {s: set(jt[own & (seg == s)].tolist()) for s in np.unique(seg[own])}
    seen, parallel = set(), 0.0
    for s in sorted(cover, key=lambda q: -len(cover[q])):
        if len(cover[s] & seen) > 0.6 * len(cover[s]):
            parallel += np.sum(own & (seg == s)) * w
        seen |= cover[s]
    out["parallel"] = parallel
    tidx = np.clip(np.round(ct.physical_to_index(tp)).astype(int), 0, np.array(lab.shape) - 1)
    inside = region[tuple(tidx.T)]
    near = cKDTree(p).query(tp)[0] <= tr + voxel
    out["reached"], out["truth_axis"] = (inside & near).sum() * STEP, inside.sum() * STEP
    vv = float(np.prod(ct.spacing)) / 1e3
    t = (lab == LABELS[key]) & region
    out["vol"], out["vol_truth"] = mask.sum() * vv, t.sum() * vv
    out["lost_other"] = np.sum(t & other_mask) * vv
    out["lost_ivc"] = np.sum(t & vessels & ~mask & ~other_mask) * vv
    out["terminals"], out["terminals_short"], out["terminals_10mm"] = _terminals(graph,
                                                                                  region, ct)
    out["terminals_truth"] = _terminals(getattr(truth, key), region, ct)[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[501, 504, 507, 510])
    ap.add_argument("--phase", default="portal_venous")
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 160, 160))
    ap.add_argument("--artery", action="store_true",
                    help="phantoms with the hepatic artery beside the portal vein")
    args = ap.parse_args()
    for seed in args.seeds:
        ct, truth = liver_ct_phantom(tuple(args.shape), phase=args.phase, seed=seed,
                                     z_extent_mm=240.0, hepatic_artery=args.artery)
        res = characterize(ct, force=True)
        want = liver_tree_truth(truth)
        v = res.vessels
        for key, other, graph, mask, omask in (
                ("portal", "hepatic", res.portal, v.portal, v.hepatic),
                ("hepatic", "portal", res.hepatic, v.hepatic, v.portal)):
            if graph is None:
                print(f"{seed} {key:<7} not traced")
                continue
            scope = f"vessel:{'portal_venous_tree' if key == 'portal' else 'hepatic_venous_tree'}"
            t = want[("VX.A.V.TREE_LEN", scope)]
            g = float(graph.segment_lengths().sum())
            r = _terms(ct, truth, graph, mask, v.vessels, omask, key, other)
            print(f"{seed} {key:<7} length {g:6.1f} / truth {t:6.1f} ({g / t - 1:+.3f}): own "
                  f"{r['own']:6.1f} (excess {r['excess']:+6.1f}, parallel {r['parallel']:5.1f}) "
                  f"other {r['other']:5.1f} artery {r['artery']:5.1f} ivc {r['ivc']:5.1f} "
                  f"parenchyma {r['parenchyma']:5.1f}"
                  f"; reached {r['reached']:5.1f} of {r['truth_axis']:5.1f} mm; volume "
                  f"{r['vol']:5.2f} / {r['vol_truth']:5.2f} mL, truth lost to the other tree "
                  f"{r['lost_other']:4.2f}, to the IVC mask {r['lost_ivc']:4.2f}; terminals "
                  f"{r['terminals']} ({r['terminals_short']} on segments under 5 mm, "
                  f"{r['terminals_10mm']} on components of 10 mm or more) / truth "
                  f"{r['terminals_truth']}", flush=True)


if __name__ == "__main__":
    main()
