"""Classical (non-learned) fundus vessel segmentation on CHASE_DB1: per-image and mean figures.

Test split (8 images, first observer's manual labels, inside the derived field of view, as
the learned benchmark): Dice, clDice, sensitivity, specificity, ROC AUC of the score map and
time per image, for the classical methods of the ``fundus`` preset (``line``: multi-scale line
detector; ``frangi``: the earlier best Hessian filter, for comparison).

``--select`` first chooses the line detector's z-score threshold on the TRAINING split (20
images): the threshold maximizing the mean training Dice on a 0.02 grid, applied with the
preset's binarization region; the test split is never used for a choice. The value found is
what ``presets/fundus.yaml`` stores (``method_binarize.line.high``).

Data: CHASE_DB1 (Kingston University, CC BY 4.0; Fraz et al. 2012), read from
``$VASOMICS_SHARED_DATA/chase_db1``.
Usage: ``python benchmarks/eval_segment_classical.py [--select] [--methods line frangi]``
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


def select_threshold(preset) -> float:
    """Line-detector threshold maximizing the mean Dice over the CHASE_DB1 training split."""
    items = load_dataset("chase", f"{ROOT}/chase_db1", "train")
    grid = np.round(np.arange(0.0, 2.0, 0.02), 2)
    curves = []
    for _, rgb, gt, fov in items:
        score = segment(Image(rgb), preset, method="line").score.array
        region = ndi.binary_erosion(fov, iterations=preset.fov_erode_px)
        curves.append([sm.dice((score >= t) & region, gt, fov) for t in grid])
    mean = np.mean(curves, 0)
    best = int(np.argmax(mean))
    print(f"training split ({len(items)} images): best threshold {grid[best]:.2f} z, mean "
          f"Dice {mean[best]:.4f} (0.70 z: {mean[35]:.4f}, 1.00 z: {mean[50]:.4f})")
    return float(grid[best])


def evaluate(method: str, preset, items) -> np.ndarray:
    print(f"\n{method}: CHASE_DB1 test split, first observer, inside the FOV")
    print(f"{'image':10s} {'Dice':>7s} {'clDice':>7s} {'Se':>7s} {'Sp':>7s} {'AUC':>7s} {'s':>6s}")
    rows = []
    for name, rgb, gt, fov in items:
        t0 = time.perf_counter()
        result = segment(Image(rgb), preset, method=method)
        secs = time.perf_counter() - t0
        mask, score = result.mask.array, result.score.array
        conf = sm.confusion(mask, gt, fov)
        row = (sm.dice(mask, gt, fov), sm.cl_dice(mask, gt, fov), conf["sensitivity"],
               conf["specificity"], sm.roc_auc(score, gt, fov), secs)
        rows.append(row)
        print(f"{name:10s} " + " ".join(f"{v:7.4f}" for v in row[:5]) + f" {secs:6.2f}")
    rows = np.array(rows)
    print(f"{'mean':10s} " + " ".join(f"{v:7.4f}" for v in rows.mean(0)[:5])
          + f" {rows[:, 5].mean():6.2f}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--select", action="store_true",
                    help="choose the line threshold on the training split first")
    ap.add_argument("--methods", nargs="+", default=["line", "frangi"])
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    preset = load_preset("fundus")
    if args.select:
        high = select_threshold(preset)
        b = preset.method_binarize["line"].model_copy(update={"high": high})
        preset = preset.model_copy(update={"method_binarize": {"line": b}})
    print(f"line threshold: {preset.method_binarize['line'].high} z")
    items = load_dataset("chase", f"{ROOT}/chase_db1", "test")
    for method in args.methods:
        evaluate(method, preset, items)


if __name__ == "__main__":
    main()
