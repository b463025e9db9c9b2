"""The measurement behind the skeletonizer choice: vasomics' foreground-only thinning,
``skimage.morphology.skeletonize`` (whole-volume thinning) and kimimaro (TEASAR) on the same
masks: time (after warm-up), skeleton size, and how much of the reference centerline each
recovers (recall: reference length within 1 mm of the skeleton voxels; far: skeleton voxels
farther than 1 mm from the reference).

kimimaro's defaults (``scale=1.5, const=300`` physical units) are meant for nanometre
neurons: in mm they invalidate whole trees (recall about 6 %). Here TEASAR runs with
``scale=1.5, const=1.0`` mm (an invalidation ball of 1.5 radii + 1 mm, scaled to vessels),
``anisotropy=spacing``, ``dust_threshold=0``. TEASAR needs such per-data tuning and cannot
represent loops, which is part of why it was not chosen.

Run: ``python benchmarks/bench_skeleton_choice.py`` (about a minute: 256³ and TubeTK only;
the issue's 512³ figures for kimimaro are 44.7 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from vasomics import phantoms as P
from vasomics.chain.compare import resample_polylines
from vasomics.chain.skeleton import skeletonize

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def ours(mask):
    sk = skeletonize(mask)
    return mask.index_to_physical(sk.indices)


def scikit(mask):
    from skimage.morphology import skeletonize as sk_skeletonize

    return mask.index_to_physical(np.argwhere(sk_skeletonize(mask.array > 0)))


def teasar(mask):
    import kimimaro

    params = {"scale": 1.5, "const": 1.0, "pdrf_scale": 100000, "pdrf_exponent": 4}
    skels = kimimaro.skeletonize(np.asfortranarray((mask.array > 0).astype(np.uint8)),
                                 teasar_params=params, anisotropy=mask.spacing,
                                 dust_threshold=0, progress=False)
    if not skels:
        return np.zeros((0, 3))
    verts = np.concatenate([s.vertices for s in skels.values()])
    return mask.index_to_physical(verts / np.asarray(mask.spacing))


def score(points, reference, tol=1.0):
    rp, _ = resample_polylines(*reference, 0.1)
    if len(points) == 0:
        return 0.0, float("nan")
    recall = float(np.mean(cKDTree(points).query(rp)[0] <= tol))
    far = float(np.mean(cKDTree(rp).query(points)[0] > tol))
    return recall, far


def cases():
    m, t = P.random_tree((256, 256, 256), (0.5, 0.5, 0.5), generations=9, root_radius_mm=1.2,
                         seed=0)
    g = t.graph
    yield "random tree 256^3", m, ([g.segment_points(i) for i in range(g.n_segments)],
                                   [g.segment_radius(i) for i in range(g.n_segments)])
    from vasomics.io.images import read_image
    from vasomics.io.tubetk import read_tubetk_centerlines

    folder = DATA / "tubetk_brain_mra"
    mask = read_image(folder / "labels" / "labels-002.nii.gz")
    gold = read_tubetk_centerlines(folder / "centerlines" / "VascularNetworkFixed-002.vtp", mask)
    yield "TubeTK 002", mask, (gold.polylines, gold.radii)


def main() -> None:
    warm = P.y_bifurcation(spacing=(1.0, 1.0, 1.0)).mask
    for f in (ours, scikit, teasar):
        f(warm)
    for name, mask, reference in cases():
        for label, f in (("vasomics thinning", ours), ("skimage skeletonize", scikit),
                         ("kimimaro TEASAR", teasar)):
            t0 = time.perf_counter()
            pts = f(mask)
            seconds = time.perf_counter() - t0
            recall, far = score(pts, reference)
            print(f"{name:18s} {label:20s} {seconds:6.2f} s  {len(pts):7d} points  recall "
                  f"{100 * recall:5.1f} %  far {100 * far:5.1f} %")


if __name__ == "__main__":
    main()
