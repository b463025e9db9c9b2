"""Learned 2D segmenter on the held-out splits: Dice, clDice, ROC AUC, inference time, and
agreement of tree features from predicted versus manual masks.

CHASE_DB1 test split (8 images = 4 children x 2 eyes, first observer, inside the derived FOV)
with the shipped ``chase`` model; ROSSA validation split (images 101-200) with the ``rossa``
model. Feature agreement (CHASE only): total centerline length VX.A.T.LEN, box-counting
fractal dimension VX.A.T.FD and vessel fraction of the FOV VX.A.T.VFRAC, each measured by
``vasomics.extract_features`` on the predicted and on the manual mask (unit pixel spacing; all
three ICCs are invariant to the pixel size), compared by ICC(A,1) (absolute agreement, the
target) and ICC(C,1) (consistency), with the mean relative difference predicted/manual - 1.

Inference time is printed as wall-clock and as process CPU seconds (with ``--threads 1`` the
CPU figure is what one idle core needs; the wall figure grows with machine load).

Usage: ``python benchmarks/eval_segment_learned.py [--threads 2] [--flips 4] [--no-features]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vasomics.chain.segment import learned
from vasomics.metrics import segmentation as sm

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
FEATURES = ("VX.A.T.LEN", "VX.A.T.FD", "VX.A.T.VFRAC")


def feature_agreement(pairs) -> dict[str, tuple[float, float, float]]:
    """{feature id: (ICC(A,1), ICC(C,1), mean relative difference)} over ``(mask, manual,
    fov)`` triples."""
    from vasomics.api import extract_features
    from vasomics.image import Image

    values = {i: ([], []) for i in FEATURES}
    for mask, gt, fov in pairs:
        region = Image(fov.astype(np.uint8))
        for k, m in enumerate((mask, gt & fov)):
            table = extract_features(Image(m.astype(np.uint8)), region=region)
            for i in FEATURES:
                values[i][k].append(table.value(i))
    out = {}
    for i, (pred, manual) in values.items():
        pred, manual = np.asarray(pred), np.asarray(manual)
        out[i] = (sm.icc(pred, manual), sm.icc(pred, manual, kind="consistency"),
                  float(np.mean(pred / manual - 1)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flips", type=int, default=4, choices=(1, 2, 4))
    ap.add_argument("--no-features", action="store_true")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    for name, folder, split in (("chase", "chase_db1", "test"), ("rossa", "rossa", "val")):
        items = learned.load_dataset(name, f"{ROOT}/{folder}", split)
        learned.segment_learned(items[0][1], name, items[0][3], threads=args.threads,
                                flips=args.flips)  # warm-up
        rows, secs, cpu, pairs = [], [], [], []
        for _, img, gt, fov in items:
            t0, c0 = time.perf_counter(), time.process_time()
            mask, prob = learned.segment_learned(img, name, fov, threads=args.threads,
                                                 flips=args.flips)
            secs.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            rows.append((sm.dice(mask, gt, fov), sm.cl_dice(mask, gt, fov),
                         sm.roc_auc(prob, gt, fov)))
            pairs.append((mask, gt, fov))
        d, c, a = np.mean(rows, 0)
        print(f"{name} {split} ({len(items)} images): Dice {d:.4f}, clDice {c:.4f}, "
              f"ROC AUC {a:.4f}; inference median {np.median(secs):.2f} s/image wall, "
              f"{np.median(cpu):.2f} s CPU (shape {items[0][1].shape}, {args.flips} flips, "
              f"{args.threads} threads)")
        if name == "chase" and not args.no_features:
            for i, (a1, c1, bias) in feature_agreement(pairs).items():
                print(f"  {i}: ICC(A,1) {a1:.3f}, ICC(C,1) {c1:.3f}, predicted/manual - 1 "
                      f"{100 * bias:+.1f} %")


if __name__ == "__main__":
    main()
