"""Learned 2D segmenter on the held-out splits: Dice, clDice, ROC AUC, inference time.

CHASE_DB1 test split (8 images, first observer, inside the derived FOV) with the shipped
``chase`` model; ROSSA validation split (images 101-200) with the ``rossa`` model.
Usage: ``python benchmarks/eval_segment_learned.py [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vasomics.chain.segment import learned
from vasomics.metrics import segmentation as sm

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    for name, folder, split in (("chase", "chase_db1", "test"), ("rossa", "rossa", "val")):
        items = learned.load_dataset(name, f"{ROOT}/{folder}", split)
        learned.segment_learned(items[0][1], name, items[0][3], threads=args.threads)  # warm-up
        rows, secs = [], []
        for _, img, gt, fov in items:
            t0 = time.perf_counter()
            mask, prob = learned.segment_learned(img, name, fov, threads=args.threads)
            secs.append(time.perf_counter() - t0)
            rows.append((sm.dice(mask, gt, fov), sm.cl_dice(mask, gt, fov),
                         sm.roc_auc(prob, gt, fov)))
        d, c, a = np.mean(rows, 0)
        print(f"{name} {split} ({len(items)} images): Dice {d:.4f}, clDice {c:.4f}, "
              f"ROC AUC {a:.4f}; inference median {np.median(secs):.2f} s/image "
              f"(shape {items[0][1].shape})")


if __name__ == "__main__":
    main()
