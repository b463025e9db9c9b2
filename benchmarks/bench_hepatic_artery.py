"""Benchmark: hepatic artery segmentation in the arterial phase (chain/hepatic_artery.py).

    python benchmarks/bench_hepatic_artery.py [--seeds 501 502 7] [--shape 96 160 160]
                                              [--noise 12] [--ircadb-stride 2] [--no-ircadb]

Liver CT phantoms with the hepatic artery (``hepatic_artery=True``), arterial phase, the
generator's organ masks: venous stage, then the artery stage. Per seed: artery voxel Dice
against the truth artery, precision, artery voxels on truth portal/hepatic voxels
("stolen"), the venous portal tree's Dice before and after the artery is removed from it,
and the per-segment naming accuracy of the extracted, named artery graph. Then 3D-IRCADb
1.1 (manual labels read unmodified, the CT synthesized in memory; label 513 minus its part
holding a 5 mm ball, the aorta, is the truth), cropped to the liver + 15 mm and taken every
``--ircadb-stride`` voxels in-plane, seeds 0-2 of the enhancement draw.
"""

from __future__ import annotations

import argparse
import time

import edt
import numpy as np

from vasomics.chain.graph import GraphParams
from vasomics.chain.hepatic_artery import segment_hepatic_artery
from vasomics.chain.liver_vessels import segment_liver_vessels
from vasomics.chain.localize import _dice
from vasomics.chain.naming.liver_artery import name_hepatic_artery
from vasomics.chain.phase import measure_regions
from vasomics.chain.run import _graph
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom, naming_accuracy, truth_organs


def phantoms(seeds, shape, noise):
    for seed in seeds:
        ct, truth = liver_ct_phantom(shape, phase="arterial", seed=seed, z_extent_mm=240.0,
                                     hepatic_artery=True, noise_sd_hu=noise)
        organs = truth_organs(truth)
        hu = measure_regions(ct, organs, 2.0)
        t0 = time.process_time()
        ves = segment_liver_vessels(ct, organs, hu, truth.noise_sd_hu)
        t1 = time.process_time()
        art = segment_hepatic_artery(ct, "arterial", organs, hu, truth.noise_sd_hu, ves.portal,
                                     ves.roots.get("portal_hilum"), ves.roots.get("portal"))
        t2 = time.process_time()
        lab = truth.labels.array
        ta, tp = lab == LABELS["artery"], lab == LABELS["portal"]
        m = art.mask
        graph = _graph(ct, m, GraphParams(), art.root)
        acc = naming_accuracy(name_hepatic_artery(graph, art.root) if graph is not None
                              else None, truth.artery, 1.5 * max(ct.spacing))
        stolen = int(np.count_nonzero(m & (tp | (lab == LABELS["hepatic"]))))
        print(f"phantom {seed}: aorta {truth.hu['aorta']:.0f} portal {truth.hu['portal']:.0f} HU;"
              f" {art.status}; Dice {_dice(m, ta):.3f} precision "
              f"{np.count_nonzero(m & ta) / max(m.sum(), 1):.3f} stolen {stolen} of "
              f"{int(m.sum())}; portal Dice {_dice(ves.portal, tp):.3f} -> "
              f"{_dice(ves.portal & ~m, tp):.3f}; naming {acc[0]:.3f} (matched {acc[1]:.2f});"
              f" CPU venous {t1 - t0:.1f} s, artery {t2 - t1:.1f} s", flush=True)


def ircadb(stride):
    from pathlib import Path

    from vasomics.chain.qc import estimate_noise_sd
    from vasomics.image import Image
    from vasomics.io.images import read_image
    from vasomics.phantoms.liver_ct import (
        IRCADB_COMPARTMENTS,
        IRCADB_LIVER,
        ct_from_labels,
        ircadb_organs,
    )

    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    full = read_image(root / "ircadb_01_01" / "3Dircadb0101Labeled.vti")
    idx = np.argwhere(np.isin(full.array, IRCADB_LIVER))
    pad = np.ceil(15.0 / np.asarray(full.spacing)).astype(int)
    lo, hi = np.maximum(idx.min(0) - pad, 0), np.minimum(idx.max(0) + pad + 1, full.shape)
    a = np.ascontiguousarray(full.array[lo[0]:hi[0], lo[1]:hi[1]:stride, lo[2]:hi[2]:stride])
    sp = (full.spacing[0], stride * full.spacing[1], stride * full.spacing[2])
    lab = Image(a, spacing=sp, origin=tuple(full.index_to_physical(lo[None])[0]),
                direction=full.direction, modality="mask")
    arteries = a == 513
    depth = edt.edt(arteries, anisotropy=sp)
    aorta = arteries & (edt.edt(depth <= 5.0, anisotropy=sp) <= 5.0 + max(sp))
    truth = arteries & ~aorta
    organs = {**ircadb_organs(a), "aorta": aorta}
    liver = organs["liver"]
    domain = edt.edt(~liver, anisotropy=sp) <= 12.0
    portal = np.isin(a, (17, 465))
    for seed in (0, 1, 2):
        ct = ct_from_labels(lab, IRCADB_COMPARTMENTS, "arterial", noise_sd_hu=12.0, seed=seed)
        hu, noise = measure_regions(ct, organs), estimate_noise_sd(ct.array)
        ves = segment_liver_vessels(ct, organs, hu, noise)
        art = segment_hepatic_artery(ct, "arterial", organs, hu, noise, ves.portal,
                                     ves.roots.get("portal_hilum"), ves.roots.get("portal"))
        m = art.mask
        print(f"IRCADb 1.1 stride {stride} ({sp[1]:.2f} mm) seed {seed}: aorta "
              f"{hu['aorta']:.0f} portal {hu['portal_vein']:.0f} HU; {art.status}; Dice "
              f"{_dice(m, truth):.3f} (liver + 12 mm {_dice(m & domain, truth & domain):.3f})"
              f" precision {np.count_nonzero(m & truth) / max(m.sum(), 1):.3f}, "
              f"{np.count_nonzero(m & portal)} of {int(m.sum())} on portal labels; portal "
              f"Dice (liver + 12 mm) {_dice(ves.portal & domain, portal & domain):.3f} -> "
              f"{_dice(ves.portal & ~m & domain, portal & domain):.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[501, 502, 7])
    ap.add_argument("--shape", type=int, nargs=3, default=[96, 160, 160])
    ap.add_argument("--noise", type=float, default=12.0)
    ap.add_argument("--ircadb-stride", type=int, default=2)
    ap.add_argument("--no-ircadb", action="store_true")
    args = ap.parse_args()
    phantoms(args.seeds, tuple(args.shape), args.noise)
    if not args.no_ircadb:
        ircadb(args.ircadb_stride)


if __name__ == "__main__":
    main()
