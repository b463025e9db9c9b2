"""Which radius definition at a centerline point is unbiased? Measured, not assumed.

Definitions (``GraphParams.radius_definition``, see :mod:`vasomics.chain.graph`):

* ``inscribed``: distance ``d`` from the centerline point to the nearest background voxel
  centre (the exact distance transform of the foreground; VMTK's maximum inscribed sphere);
* ``section_area``: ``sqrt(A / π)``, ``A`` the area of the mask's cross-section (union of
  voxel boxes) in the plane normal to the centerline, from 32 rays;
* ``d - s/2`` (boundary half a voxel inside the first background voxel), for reference only.

1. Digitized discs (2D, unit pixels): radius R, centre at a random sub-pixel offset, pixel
   centres within R are foreground; ``d`` from the pixel nearest the centre (the
   centerline pixel of a thinning).
2. 3D straight tubes from :mod:`vasomics.phantoms` (voxel centres within the analytic
   radius), thin ones first (1-5 voxels), random orientations, iso- and anisotropic voxels,
   through the full ``mask_to_graph``: median radius minus truth, in voxels of the smallest
   spacing.
3. An elliptic tube (semi-axes a > b): ``inscribed`` should give b, ``section_area``
   sqrt(a b).
4. A seeded random tree (256³, 0.5 mm voxels, 511 segments, radii 0.5-0.6 mm: 1-1.2
   voxels), centerlines compared with the truth (:func:`vasomics.chain.compare`).
5. Real masks: TubeTK brain MRA (gold radii converted to mm by the reader: TubeTK writes them
   in units of the x spacing; also shown misread as mm; and the masks against the gold tubes
   drawn again by TubeTK's own rule, :func:`vasomics.phantoms.raster.rasterize_points_tubetk`,
   and by voxel centres inside) and VMTK's aorta (maximum inscribed sphere radii).

Run: ``python benchmarks/bench_radius_definition.py [--skip-real]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vasomics import phantoms as P
from vasomics.chain.graph import GraphParams, mask_to_graph
from vasomics.image import Image

DEFINITIONS = ("inscribed", "section_area")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def discs() -> None:
    rng = np.random.default_rng(0)
    grid = np.mgrid[-15:16, -15:16].reshape(2, -1).T
    print("digitized discs (pixels): R, mean and max |error| of d and of d - 0.5")
    for radius in (1.2, 1.7, 2.2, 2.5, 3.0, 3.3, 4.1, 5.6, 7.3, 10.4):
        d = []
        for _ in range(300):
            centre = rng.uniform(-0.5, 0.5, 2)
            inside = ((grid - centre) ** 2).sum(axis=1) <= radius**2
            d.append(np.sqrt((grid[~inside] ** 2).sum(axis=1)).min())
        err = np.array(d) - radius
        print(f"  R={radius:5.1f}: d: mean {err.mean():+.3f} max {np.abs(err).max():.3f} | "
              f"d-0.5: mean {err.mean() - 0.5:+.3f} max {np.abs(err - 0.5).max():.3f}")


def tubes(seeds: int = 4) -> None:
    print("3D straight tubes through mask_to_graph: median radius - truth, in voxels of the "
          f"smallest spacing, {seeds} random orientations each")
    worst = dict.fromkeys(DEFINITIONS, 0.0)
    for spacing in ((0.5, 0.5, 0.5), (0.8, 0.5, 0.5), (0.5, 0.4, 0.6)):
        for voxels in (1.0, 1.5, 2.0, 3.0, 5.0):
            radius = voxels * min(spacing)
            line = f"  spacing {spacing}, r={radius:.2f} mm ({voxels} vox):"
            for definition in DEFINITIONS:
                params = GraphParams(radius_definition=definition)
                errs = []
                for seed in range(seeds):
                    mask, _ = P.straight_tube(30.0, radius, spacing,
                                              rotation=P.random_rotation(seed))
                    errs.append((np.median(mask_to_graph(mask, params).radius) - radius)
                                / min(spacing))
                worst[definition] = max(worst[definition], float(np.max(np.abs(errs))))
                line += f" {definition} {np.round(errs, 2)}"
            print(line)
    print("  largest |error| (voxels): " + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()))


def elliptic_tube(a: float, b: float, spacing, seed: int, length: float = 30.0) -> Image:
    """Voxel centres within an elliptic cylinder (semi-axes ``a`` > ``b`` mm, axis length
    ``length`` mm, flat ends), randomly rotated, on a grid of ``spacing`` (numpy order)."""
    rot = P.random_rotation(seed)
    half = 0.5 * length + a
    shape = [int(np.ceil(2 * (half + 2) / s)) + 1 for s in spacing]
    idx = np.indices(shape).reshape(3, -1).T
    pts = idx * np.asarray(spacing) - 0.5 * (np.asarray(shape) - 1) * np.asarray(spacing)
    local = pts @ rot  # columns: axis, a-direction, b-direction
    inside = ((np.abs(local[:, 0]) <= 0.5 * length)
              & ((local[:, 1] / a) ** 2 + (local[:, 2] / b) ** 2 <= 1.0))
    return Image(inside.reshape(shape).astype(np.uint8), spacing=tuple(spacing))


def ellipses() -> None:
    print("elliptic tubes (a, b mm), spacing 0.5 mm: median radius (inscribed should be b, "
          "section_area sqrt(a b))")
    for a, b in ((3.0, 2.0), (2.0, 1.0), (1.5, 1.0)):
        for seed in range(2):
            mask = elliptic_tube(a, b, (0.5, 0.5, 0.5), seed)
            got = {d: float(np.median(mask_to_graph(mask, GraphParams(radius_definition=d))
                                      .radius)) for d in DEFINITIONS}
            print(f"  a={a} b={b} seed {seed}: inscribed {got['inscribed']:.3f} (b {b}), "
                  f"section_area {got['section_area']:.3f} (sqrt(ab) {np.sqrt(a * b):.3f})")


def tree() -> None:
    from vasomics.chain.compare import compare_centerlines

    phantom = P.random_tree((256, 256, 256), (0.5, 0.5, 0.5), generations=9,
                            root_radius_mm=1.2, seed=0)
    truth = phantom.truth.graph
    line = (f"random tree 256^3 (truth radius 5/50/95 %: "
            f"{np.round(np.percentile(truth.radius, [5, 50, 95]), 2)} mm): ours - truth median "
            "(median |.|):")
    for definition in DEFINITIONS:
        graph = mask_to_graph(phantom.mask, GraphParams(radius_definition=definition))
        r = compare_centerlines(graph, truth, tol_mm=1.0)
        line += (f" {definition} {r['radius_error_median_mm']:+.3f} "
                 f"({r['radius_abs_error_median_mm']:.3f}) mm;")
    print(line)


def real() -> None:
    from scipy.spatial import cKDTree

    from vasomics.chain.compare import compare_centerlines, graph_polylines, resample_polylines
    from vasomics.chain.localize import _dice
    from vasomics.io.graphs import read_vtp_centerlines
    from vasomics.io.images import read_image
    from vasomics.io.tubetk import read_tubetk_centerlines
    from vasomics.phantoms.raster import rasterize_points_tubetk, rasterize_tubes

    print("TubeTK brain MRA: our radius - gold radius, median (median |.|) in mm")
    for case in ("002", "003"):
        folder = DATA / "tubetk_brain_mra"
        mask = read_image(folder / "labels" / f"labels-{case}.nii.gz")
        gold = read_tubetk_centerlines(
            folder / "centerlines" / f"VascularNetworkFixed-{case}.vtp", mask)
        sx = float(mask.spacing[-1])
        for definition in DEFINITIONS:
            graph = mask_to_graph(mask, GraphParams(radius_definition=definition))
            line = f"  {case} {definition}:"
            for name, scale in ((f"gold (stored x {sx:.3f} mm)", 1.0),
                                ("gold misread as mm", 1.0 / sx)):
                r = compare_centerlines(graph, (gold.polylines,
                                                [g * scale for g in gold.radii]), tol_mm=1.0)
                line += (f" {name} {r['radius_error_median_mm']:+.3f} "
                         f"({r['radius_abs_error_median_mm']:.3f});")
            gp, gr = resample_polylines(gold.polylines, gold.radii, 0.1)
            ep, er = resample_polylines(*graph_polylines(graph), 0.1)
            dist, i = cKDTree(ep).query(gp)
            ok = dist <= 1.0
            slope, icept = np.polyfit(gr[ok], er[i[ok]], 1)
            line += f" fit ours = {slope:.3f} x gold + {icept:.3f} mm"
            print(line)
        drawn = rasterize_points_tubetk(np.concatenate(gold.polylines),
                                        np.concatenate(gold.radii), mask.shape, mask.spacing,
                                        origin=mask.origin, direction=mask.direction)
        centres = rasterize_tubes(gold.polylines, gold.radii, mask.shape, mask.spacing,
                                  origin=mask.origin, direction=mask.direction, flat_caps=False)
        fg = mask.array > 0
        print(f"  {case} mask against the gold tubes drawn again: TubeTK's rule Dice "
              f"{_dice(drawn, fg):.4f} ({np.count_nonzero(drawn)} voxels), voxel centres "
              f"inside {_dice(centres, fg):.4f} ({np.count_nonzero(centres)}); the mask "
              f"{np.count_nonzero(fg)}")
    folder = DATA / "vmtk_aorta_mra"
    levelset = read_image(folder / "aorta-final-levelset.mha")
    mask = levelset.with_array((levelset.array < 0).astype(np.uint8))
    vmtk = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS")
    vp, vr = resample_polylines(vmtk.polylines, vmtk.radii, 0.1)
    line = "VMTK aorta: our radius - VMTK maximum inscribed sphere radius, median:"
    for definition in DEFINITIONS:
        graph = mask_to_graph(mask, GraphParams(radius_definition=definition))
        ep, er = resample_polylines(*graph_polylines(graph), 0.1)
        i = cKDTree(ep).query(vp)[1]
        line += f" {definition} {np.median(er[i] - vr):+.2f} mm;"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-real", action="store_true", help="phantoms only")
    args = parser.parse_args()
    discs()
    tubes()
    ellipses()
    tree()
    if not args.skip_real:
        real()


if __name__ == "__main__":
    main()
