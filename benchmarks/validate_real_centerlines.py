"""Centerlines extracted from real masks against independent references.

* TubeTK brain MRA (``shared/data/tubetk_brain_mra``): manual masks → ``mask_to_graph`` →
  compared with the gold-standard centerlines (with radii): recall (gold length within 1 mm
  of ours), far fraction (our length farther than 1 mm from gold), radius errors; and, to
  separate the estimator from the data, the masks' own exact Euclidean distance transform
  at the gold points and the mask volume against the gold tubes' volume (Σ π r² Δs).
* VMTK aorta MRA: the level set (< 0) → ``mask_to_graph`` → mean distances to VMTK's
  ``aorta-centerline.vtp`` both ways (the centerline lies wholly inside the level set's
  defined region), and the radius difference to VMTK's maximum inscribed sphere radius.

Run: ``python benchmarks/validate_real_centerlines.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import edt
import numpy as np
from scipy.spatial import cKDTree

from vasomics.chain.compare import compare_centerlines, graph_polylines, resample_polylines
from vasomics.chain.graph import mask_to_graph
from vasomics.io.graphs import read_vtp_centerlines
from vasomics.io.images import read_image
from vasomics.io.tubetk import read_tubetk_centerlines

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tubetk(case: str) -> None:
    folder = DATA / "tubetk_brain_mra"
    mask = read_image(folder / "labels" / f"labels-{case}.nii.gz")
    gold = read_tubetk_centerlines(folder / "centerlines" / f"VascularNetworkFixed-{case}.vtp",
                                   mask)
    t0 = time.perf_counter()
    graph = mask_to_graph(mask)
    seconds = time.perf_counter() - t0
    r = compare_centerlines(graph, (gold.polylines, gold.radii), tol_mm=1.0)
    print(f"TubeTK {case}: mask {mask.shape} spacing {mask.spacing} mm, graph in {seconds:.2f} s:"
          f" {graph.n_segments} segments")
    print(f"  gold length {r['reference_length_mm']:.0f} mm, ours {r['extracted_length_mm']:.0f} "
          f"mm; recall (gold within 1 mm) {100 * r['recall']:.1f} % [target >= 90]; far "
          f"(ours > 1 mm from gold) {100 * r['far_fraction']:.1f} % [target <= 10]; mean "
          f"distance ours->gold {r['mean_distance_mm']:.2f} mm, gold->ours "
          f"{r['mean_distance_ref_mm']:.2f} mm")
    print(f"  radius ours - gold: median {r['radius_error_median_mm']:+.3f} mm, median |.| "
          f"{r['radius_abs_error_median_mm']:.3f} mm [target <= 0.25]")
    gp, gr = resample_polylines(gold.polylines, gold.radii, 0.1)
    dt = edt.edt(mask.array > 0, anisotropy=mask.spacing)
    idx = np.clip(np.rint(mask.physical_to_index(gp)).astype(int), 0, np.array(mask.shape) - 1)
    at_gold = dt[tuple(idx.T)]
    volume = float(np.count_nonzero(mask.array)) * mask.voxel_volume
    tubes = float(np.sum(np.pi * gr**2 * 0.1))
    print(f"  data: mask's exact EDT at gold points - gold radius: median "
          f"{np.median(at_gold - gr):+.3f} mm; mask volume / gold tube volume "
          f"{volume / tubes:.2f} (radius ratio {np.sqrt(volume / tubes):.2f})")
    for lo, hi in ((0.0, 0.8), (0.8, 1.2), (1.2, 10.0)):
        sel = (gr >= lo) & (gr < hi)
        print(f"    gold r in [{lo}, {hi}) mm: {sel.sum()} points, EDT - r median "
              f"{np.median(at_gold[sel] - gr[sel]):+.3f} mm")
    idx = np.clip(np.rint(mask.physical_to_index(graph.points)).astype(int), 0,
                  np.array(mask.shape) - 1)
    print(f"  estimator: our radius - mask EDT at our points: median "
          f"{np.median(graph.radius - dt[tuple(idx.T)]):+.3f} mm")


def vmtk_aorta() -> None:
    folder = DATA / "vmtk_aorta_mra"
    levelset = read_image(folder / "aorta-final-levelset.mha")
    mask = levelset.with_array((levelset.array < 0).astype(np.uint8))
    t0 = time.perf_counter()
    graph = mask_to_graph(mask)
    seconds = time.perf_counter() - t0
    vmtk = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS")
    vp, vr = resample_polylines(vmtk.polylines, vmtk.radii, 0.1)
    ep, er = resample_polylines(*graph_polylines(graph), 0.1)
    d_ours = cKDTree(vp).query(ep)[0]
    d_vmtk, i_vmtk = cKDTree(ep).query(vp)
    print(f"VMTK aorta: level set {mask.shape} spacing {mask.spacing} mm, graph in "
          f"{seconds:.2f} s: {graph.n_segments} segments, kinds {sorted(graph.node_kind)}")
    print(f"  mean distance ours->VMTK {d_ours.mean():.2f} mm (median {np.median(d_ours):.2f}), "
          f"VMTK->ours {d_vmtk.mean():.2f} mm (95th percentile {np.percentile(d_vmtk, 95):.2f})")
    print(f"  lengths: ours {len(ep) * 0.1:.1f} mm in {graph.n_segments} segments; VMTK "
          f"{len(vp) * 0.1:.1f} mm in {len(vmtk.polylines)} source-to-target paths that share "
          f"the aortic trunk; radius ours - VMTK (maximum inscribed sphere) median "
          f"{np.median(er[i_vmtk] - vr):+.2f} mm")


def main() -> None:
    mask_to_graph(_warm())  # numba kernels load from the on-disk cache on first use
    for case in ("002", "003"):
        tubetk(case)
    vmtk_aorta()


def _warm():
    from vasomics.phantoms import straight_tube

    return straight_tube(10.0, 2.0).mask


if __name__ == "__main__":
    main()
