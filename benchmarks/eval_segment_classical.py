"""Classical (non-learned) 2D vessel segmentation: CHASE_DB1 fundus (per image) and ROSSA OCTA.

Test split (8 images, first observer's manual labels, inside the derived field of view, as
the learned benchmark): Dice, clDice, sensitivity, specificity, ROC AUC of the score map and
time per image, for the classical methods of the ``fundus`` preset (``line``: multi-scale line
detector; ``frangi``: the earlier best Hessian filter, for comparison).

``--select`` first chooses the line detector's z-score threshold on the TRAINING split (20
images): the threshold maximizing the mean training Dice on a 0.02 grid, applied with the
preset's binarization region; the test split is never used for a choice. The value found is
what ``presets/fundus.yaml`` (and ``octa.yaml``) store (``method_binarize.line.high``).

``--datasets rossa`` does the same for the ``octa`` preset on ROSSA (threshold from the
``train_manual`` split, images 1-100; figures on ``val``, images 101-200; means only).

Data: CHASE_DB1 (Kingston University, CC BY 4.0; Fraz et al. 2012) and ROSSA (MIT; Ning et
al. 2024), read from ``$VASOMICS_SHARED_DATA``.
Usage: ``python benchmarks/eval_segment_classical.py [--select] [--methods line frangi]
[--datasets chase rossa]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage as ndi

from vasomics.chain.segment.api import load_preset, segment
from vasomics.chain.segment.learned import load_dataset
from vasomics.image import Image
from vasomics.metrics import segmentation as sm

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")


DATASETS = {"chase": ("chase_db1", "train", "test", "fundus"),
            "rossa": ("rossa", "train", "val", "octa")}


def select_threshold(dataset: str, preset) -> float:
    """Line-detector threshold maximizing the mean Dice over the data set's training split."""
    folder, train, _, _ = DATASETS[dataset]
    items = load_dataset(dataset, f"{ROOT}/{folder}", train)
    grid = np.round(np.arange(0.0, 4.0, 0.02), 2)
    curves = []
    for _, img, gt, fov in items:
        score = segment(Image(img), preset, method="line").score.array
        region = ndi.binary_erosion(fov, iterations=preset.fov_erode_px) \
            if preset.fov_erode_px else fov
        curves.append([sm.dice((score >= t) & region, gt, fov) for t in grid])
    mean = np.mean(curves, 0)
    best = int(np.argmax(mean))
    print(f"{dataset} {train} split ({len(items)} images): best threshold {grid[best]:.2f} z, "
          f"mean Dice {mean[best]:.4f} (-0.2 z: {mean[best - 10]:.4f}, +0.2 z: "
          f"{mean[min(best + 10, len(grid) - 1)]:.4f})")
    return float(grid[best])


def evaluate(method: str, preset, items, label: str, per_image: bool = True) -> np.ndarray:
    print(f"\n{method}: {label}")
    if per_image:
        print(f"{'image':10s} {'Dice':>7s} {'clDice':>7s} {'Se':>7s} {'Sp':>7s} {'AUC':>7s} "
              f"{'s':>6s}")
    rows = []
    for name, img, gt, fov in items:
        t0 = time.perf_counter()
        result = segment(Image(img), preset, method=method)
        secs = time.perf_counter() - t0
        mask, score = result.mask.array, result.score.array
        conf = sm.confusion(mask, gt, fov)
        row = (sm.dice(mask, gt, fov), sm.cl_dice(mask, gt, fov), conf["sensitivity"],
               conf["specificity"], sm.roc_auc(score, gt, fov), secs)
        rows.append(row)
        if per_image:
            print(f"{name:10s} " + " ".join(f"{v:7.4f}" for v in row[:5]) + f" {secs:6.2f}")
    rows = np.array(rows)
    print(f"{'mean':10s} " + " ".join(f"{v:7.4f}" for v in rows.mean(0)[:5])
          + f" {rows[:, 5].mean():6.2f}  ({len(rows)} images; Dice, clDice, Se, Sp, AUC, s)")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--select", action="store_true",
                    help="choose the line threshold on the training split first")
    ap.add_argument("--methods", nargs="+", default=["line", "frangi"])
    ap.add_argument("--datasets", nargs="+", default=["chase"], choices=sorted(DATASETS))
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    for dataset in args.datasets:
        folder, _, split, preset_name = DATASETS[dataset]
        preset = load_preset(preset_name)
        if args.select:
            high = select_threshold(dataset, preset)
            b = preset.method_binarize["line"].model_copy(update={"high": high})
            preset = preset.model_copy(update={"method_binarize": {"line": b}})
        print(f"{dataset}: preset {preset_name}, line threshold "
              f"{preset.method_binarize['line'].high} z")
        items = load_dataset(dataset, f"{ROOT}/{folder}", split)
        label = {"chase": "CHASE_DB1 test split, first observer, inside the FOV",
                 "rossa": "ROSSA val split (images 101-200), whole image"}[dataset]
        for method in args.methods:
            evaluate(method, preset, items, label, per_image=dataset == "chase")


if __name__ == "__main__":
    main()
