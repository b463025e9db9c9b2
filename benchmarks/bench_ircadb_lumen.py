"""Benchmark: what bounds the portal / hepatic tree Dice on 3D-IRCADb-01 patient 1.1 (manual
labels, CC BY-NC-ND 3.0: derived images stay in memory): the lumen itself. Usage:

    python benchmarks/bench_ircadb_lumen.py [--seeds 0 1] [--noise 12] [--filters]
        [--tube-ceiling]

For each seed a portal-venous CT is synthesized as in ``bench_ircadb_liver_vessels.py`` (PSF
1 mm, correlated noise) and the vessel stage is run with the manual organs. Scored inside the
manual liver against labels 465 + 481 (both trees together, so the separation is taken out):

* ``chain``: the vessel stage's lumen (``LiverVessels.vessels``), with the tree Dice for
  reference;
* ``noise-free``: the half-local-peak rule (hysteresis at 30 % of the hepatic veins'
  contrast, the edge at half the maximum over a ±2 mm window) on the same image without
  noise: what that edge rule reaches when only the blur remains;
* with ``--filters``: the same rule on the noisy image after each pre-filter (Gaussian
  0.8 mm as the chain; SimpleITK curvature and gradient anisotropic diffusion, bilateral),
  at edge fractions 0.45 / 0.5 / 0.55.

With ``--tube-ceiling`` (no CT needed) each tree's label is skeletonized
(:func:`vasomics.chain.graph.mask_to_graph`) and redrawn from its own centerlines as round
tubes of the graph's radii times 0.9-1.2 (:func:`vasomics.phantoms.raster.rasterize_tubes`):
the Dice against the label bounds any lumen drawn as a round section per centerline point.

Each line also splits the lumen's error by the labelled vessels' thickness (the largest
inscribed radius within a voxel or three in-plane; a false positive is charged to the
nearest labelled vessel within 2 mm): ``-missed +spurious`` voxels per band.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import edt
import numpy as np
from scipy import ndimage

from vasomics.chain.liver_vessels import segment_liver_vessels
from vasomics.chain.phase import measure_regions
from vasomics.chain.qc import estimate_noise_sd
from vasomics.io.images import read_image
from vasomics.phantoms.liver_ct import IRCADB_COMPARTMENTS, ct_from_labels, ircadb_organs

BANDS_MM = ((0.0, 1.5), (1.5, 2.5), (2.5, 4.0), (4.0, 30.0))


def dice(a, b) -> float:
    return 2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


class Scorer:
    """Lumen Dice inside the liver and its error per thickness band of the labelled vessels."""

    def __init__(self, a: np.ndarray, spacing):
        self.liver = np.isin(a, (449, 451, 465, 481))
        self.truth = np.isin(a, (465, 481)) & self.liver
        depth = edt.edt(self.truth, anisotropy=spacing)
        thick = ndimage.maximum_filter(depth, size=(3, 7, 7))
        self.outside, idx = ndimage.distance_transform_edt(~self.truth, sampling=spacing,
                                                           return_indices=True)
        self.thick = np.where(self.truth, thick, thick[tuple(idx)])

    def __call__(self, mask: np.ndarray) -> str:
        m = mask & self.liver
        t = self.truth
        bands = " ".join(
            f"{lo:g}-{hi:g} mm -{np.count_nonzero(t & ~m & (self.thick >= lo) & (self.thick < hi))}"
            f" +{np.count_nonzero(m & ~t & (self.outside <= 2) & (self.thick >= lo) & (self.thick < hi))}"
            for lo, hi in BANDS_MM)
        return f"lumen Dice {dice(m, t):.3f} (predicted / labelled {m.sum() / t.sum():.2f}) | {bands}"


def half_peak_lumen(hu: np.ndarray, a: np.ndarray, spacing, fraction: float) -> np.ndarray:
    """The edge rule with fixed thresholds: hysteresis (weak: 2.5 SDs of the parenchyma or
    10 HU; strong: 20 HU above the liver's median), then ``fraction`` of the maximum over
    a ±2 mm window of the hysteresis mask."""
    parenchyma = a == 449
    s = hu - np.median(hu[parenchyma])
    sd = 1.4826 * np.median(np.abs(s[parenchyma & (edt.edt(parenchyma, anisotropy=spacing) > 3)]))
    weak = s > max(2.5 * sd, 10.0)
    lab, _ = ndimage.label(weak, np.ones((3, 3, 3)))
    keep = np.zeros(lab.max() + 1, bool)
    keep[lab[s > 20.0]] = True
    keep[0] = False
    bright = keep[lab]
    size = np.maximum(1, np.round(4.0 / np.asarray(spacing)).astype(int) | 1)
    peak = ndimage.maximum_filter(np.where(bright, s, 0), size=tuple(size))
    return bright & (s >= fraction * peak)


def tube_ceiling(lab, a: np.ndarray, domain: np.ndarray) -> None:
    """Print the Dice of each tree's label against round tubes drawn from its own
    centerlines (module docstring)."""
    from vasomics.chain.graph import mask_to_graph
    from vasomics.image import Image
    from vasomics.phantoms.raster import rasterize_tubes

    for name, labels in (("hepatic", (481,)), ("portal", (17, 465))):
        t = np.isin(a, labels) & domain
        g = mask_to_graph(Image(t, spacing=lab.spacing, origin=lab.origin,
                                direction=lab.direction))
        lines = [g.segment_points(i) for i in range(g.n_segments)]
        radii = [g.segment_radius(i) for i in range(g.n_segments)]
        for scale in (0.9, 1.0, 1.1, 1.2):
            m = rasterize_tubes(lines, [r * scale for r in radii], a.shape, lab.spacing,
                                origin=lab.origin, direction=lab.direction, flat_caps=False)
            print(f"{name} label redrawn as round tubes, radii x {scale}: Dice "
                  f"{dice(m & domain, t):.3f}", flush=True)


def prefilters(x: np.ndarray, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(x)
    img.SetSpacing(tuple(float(v) for v in spacing[::-1]))
    step = 0.0625 * float(min(spacing))
    yield "Gaussian 0.8 mm", lambda: ndimage.gaussian_filter(x, 0.8 / np.asarray(spacing),
                                                             truncate=2.5)
    for name, f in (
            ("curvature anisotropic diffusion (5 it, k 3)",
             lambda: sitk.CurvatureAnisotropicDiffusion(img, step, 3.0, 1, 5)),
            ("gradient anisotropic diffusion (5 it, k 3)",
             lambda: sitk.GradientAnisotropicDiffusion(img, step, 3.0, 1, 5)),
            ("bilateral (0.8 mm, 15 HU)", lambda: sitk.Bilateral(img, 0.8, 15.0))):
        yield name, (lambda f=f: sitk.GetArrayFromImage(f()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--noise", type=float, default=12.0, help="noise SD (HU)")
    ap.add_argument("--filters", action="store_true")
    ap.add_argument("--tube-ceiling", action="store_true")
    args = ap.parse_args()
    lab = read_image(Path(args.data) / "ircadb_01_01" / "3Dircadb0101Labeled.vti")
    a = np.asarray(lab.array)
    organs = ircadb_organs(a)
    spacing = lab.spacing
    score = Scorer(a, spacing)
    domain = edt.edt(~organs["liver"], anisotropy=spacing) <= 12.0
    if args.tube_ceiling:
        tube_ceiling(lab, a, domain)
        return
    for seed in args.seeds:
        ct = ct_from_labels(lab, IRCADB_COMPARTMENTS, "portal_venous", noise_sd_hu=args.noise,
                            seed=seed)
        ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs),
                                    estimate_noise_sd(ct.array))
        trees = (f"portal {dice(ves.portal & domain, np.isin(a, (17, 465)) & domain):.3f}, "
                 f"hepatic {dice(ves.hepatic & domain, (a == 481) & domain):.3f}")
        print(f"seed {seed} chain ({trees}): {score(ves.vessels)}", flush=True)
        clean = ct_from_labels(lab, IRCADB_COMPARTMENTS, "portal_venous", noise_sd_hu=0.0,
                               seed=seed)
        print(f"seed {seed} noise-free, half local peak: "
              f"{score(half_peak_lumen(np.asarray(clean.array), a, spacing, 0.5))}", flush=True)
        if not args.filters:
            continue
        box = ndimage.find_objects(score.liver.astype(np.uint8))[0]
        box = tuple(slice(max(0, b.start - 4), b.stop + 4) for b in box)
        x = np.asarray(ct.array, np.float32)[box]
        for name, run in prefilters(x, spacing):
            t0 = time.perf_counter()
            hu = np.full(a.shape, -1000.0, np.float32)
            hu[box] = run()
            took = time.perf_counter() - t0
            for fraction in (0.45, 0.5, 0.55):
                print(f"seed {seed} {name}, edge fraction {fraction}: "
                      f"{score(half_peak_lumen(hu, a, spacing, fraction))} ({took:.0f} s)",
                      flush=True)


if __name__ == "__main__":
    main()
