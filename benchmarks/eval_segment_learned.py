"""Learned 2D segmenter on the held-out splits: Dice, clDice, ROC AUC, inference time, and
agreement of tree features from predicted versus manual masks.

CHASE_DB1 test split (8 images = 4 children x 2 eyes, first observer, inside the derived FOV)
with the shipped ``chase`` model; ROSSA validation split (images 101-200) with the ``rossa``
model. Feature agreement (CHASE only): total centerline length VX.A.T.LEN, box-counting
fractal dimension VX.A.T.FD and vessel fraction of the FOV VX.A.T.VFRAC, each measured by
``vasomics.extract_features`` on the predicted and on the manual mask (unit pixel spacing; all
three ICCs are invariant to the pixel size), compared by ICC(A,1) (absolute agreement, the
target) and ICC(C,1) (consistency), Pearson r, and the mean relative difference
predicted/manual - 1 (the bias that ICC(A,1) penalizes and ICC(C,1) ignores); ``--per-image``
also prints each image's predicted/manual values.

``--width`` diagnoses the vessel-fraction and fractal-dimension disagreement (see
:func:`width_diagnosis`): both features move with the vessel width by more than they differ
between images, and the first observer's vessel edges sit at different places relative to the
image in different children.

``--scales F [F ...]`` resamples the CHASE_DB1 test images and manual masks by each factor
(0.55: a field of view as wide as DRIVE's, 2.5: HRF's) and prints Dice, clDice and the
inference time with and without ``segment_learned``'s rescaling to the training scale.

``--noise SD [SD ...]`` adds Gaussian noise of each SD (fraction of the 8-bit range) to the
RGB CHASE_DB1 test images and prints Dice and time with and without ``segment_learned``'s
non-local-means de-noising (CHASE's own images hold 0.47 grey levels of noise; other cameras
more).

Inference time is printed as wall-clock and as process CPU seconds (with ``--threads 1`` the
CPU figure is what one idle core needs; the wall figure grows with machine load).

Usage: ``python benchmarks/eval_segment_learned.py [--threads 2] [--flips 4] [--no-features]
[--per-image] [--select-thin-low] [--width] [--scales 0.55 0.75 1.5 2.5]
[--noise 0.005 0.01 0.02 0.03]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vasomics.chain.segment import learned
from vasomics.metrics import segmentation as sm
from vasomics.metrics.agreement import icc

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
FEATURES = ("VX.A.T.LEN", "VX.A.T.FD", "VX.A.T.VFRAC")


def agreement(pred: np.ndarray, manual: np.ndarray) -> tuple[float, float, float, float]:
    """(ICC(A,1), ICC(C,1), Pearson r, mean relative difference predicted/manual - 1)."""
    return (icc(pred, manual), icc(pred, manual, kind="consistency"),
            float(np.corrcoef(pred, manual)[0, 1]), float(np.mean(pred / manual - 1)))


def print_agreement(items, pairs, per_image: bool) -> None:
    values = sm.paired_features(pairs, FEATURES)
    if per_image:
        print("  image: " + ", ".join(f"{i} predicted/manual" for i in FEATURES))
        for j, (iid, *_) in enumerate(items):
            print(f"  {iid}: " + ", ".join(f"{values[i][0][j]:.4g}/{values[i][1][j]:.4g}"
                                           for i in FEATURES))
    for i, (pred, manual) in values.items():
        a1, c1, r, bias = agreement(pred, manual)
        print(f"  {i}: ICC(A,1) {a1:.3f}, ICC(C,1) {c1:.3f}, Pearson r {r:.3f}, "
              f"predicted/manual - 1 {100 * bias:+.1f} % (SD of manual values "
              f"{np.std(manual, ddof=1):.4g}, mean difference {np.mean(pred - manual):+.4g})")


def select_thin_low(threads: int, flips: int) -> None:
    """The card's ``thin_low``, chosen on the CHASE_DB1 *training* split (20 images; 18 of
    them were seen in training): the low threshold of :func:`learned.recover_thin` (on top of
    the card's decision threshold) whose masks give the largest smallest ICC(A,1) of the three
    features against the manual masks."""
    items = learned.load_dataset("chase", f"{ROOT}/chase_db1", "train")
    model, card = learned.load_model("chase")
    probs = []
    for _, img, _, fov in items:
        prob = learned.predict_probability(model, learned.prepare(img, fov), card["levels"],
                                           flips)
        probs.append(np.where(fov, prob, 0))
    manual = None
    for low in (None, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
        pairs = []
        for prob, (_, _, gt, fov) in zip(probs, items, strict=True):
            mask = (prob >= card["threshold"]) & fov
            if low is not None:
                mask = learned.recover_thin(prob, mask, low, fov)
            pairs.append((mask, gt, fov))
        values = sm.paired_features(pairs, FEATURES)
        manual = manual or {i: v[1] for i, v in values.items()}
        iccs = [icc(values[i][0], manual[i]) for i in FEATURES]
        print(f"thin_low {low}: ICC(A,1) " + ", ".join(f"{i} {v:.3f}" for i, v in
                                                       zip(FEATURES, iccs, strict=True))
              + f"; smallest {min(iccs):.3f}")


def _fd_fraction(mask: np.ndarray, fov: np.ndarray) -> tuple[float, float]:
    values = sm.mask_tree_features(mask, fov)
    return values["VX.A.T.FD"], values["VX.A.T.VFRAC"]


def width_diagnosis(threads: int, flips: int) -> None:
    """Why VX.A.T.VFRAC and VX.A.T.FD disagree. Per image (training and test split): mean
    vessel width (area / skeleton pixels) of the manual and the predicted mask and the
    threshold at which the network's mask has the manual area (the card's threshold puts one
    edge for all images). Per split: ICC(A,1) of the manual masks dilated or eroded by one
    pixel (4-connected) against the unchanged ones (the width sensitivity of each feature),
    and of the predicted masks at the per-image area-matched thresholds, with the card's
    thin recovery (an oracle: the manual width known per image)."""
    import torch
    from scipy import ndimage as ndi

    torch.set_num_threads(threads)
    model, card = learned.load_model("chase")
    steps = np.round(np.arange(0.2, 0.98, 0.01), 2)
    for split in ("train", "test"):
        print(f"chase {split}: image, mean width manual/predicted (px), area-matched threshold "
              f"(card {card['threshold']})")
        manual, shifted, matched = [], {"dilated": [], "eroded": []}, []
        for iid, img, gt, fov in learned.load_dataset("chase", f"{ROOT}/chase_db1", split):
            prob = learned.predict_probability(model, learned.prepare(img, fov), card["levels"],
                                               flips)
            gt = gt & fov
            mask = (prob >= card["threshold"]) & fov
            areas = np.array([np.count_nonzero((prob >= t) & fov) for t in steps])
            thr = float(steps[np.argmin(np.abs(areas - np.count_nonzero(gt)))])
            widths = [np.count_nonzero(m) / np.count_nonzero(sm.skeleton(m)) for m in (gt, mask)]
            print(f"  {iid}: {widths[0]:.2f}/{widths[1]:.2f}, {thr:.2f}")
            manual.append(_fd_fraction(gt, fov))
            shifted["dilated"].append(_fd_fraction(ndi.binary_dilation(gt) & fov, fov))
            shifted["eroded"].append(_fd_fraction(ndi.binary_erosion(gt), fov))
            oracle = learned.recover_thin(prob, (prob >= thr) & fov, card["thin_low"], fov)
            matched.append(_fd_fraction(oracle, fov))
        man = np.array(manual)
        print(f"  manual between-image SD: VX.A.T.FD {man[:, 0].std(ddof=1):.4f}, VX.A.T.VFRAC "
              f"{100 * man[:, 1].std(ddof=1) / man[:, 1].mean():.1f} % of the mean")
        for name, vals in (*shifted.items(), ("area-matched + thin recovery", matched)):
            v = np.array(vals)
            print(f"  {name}: VX.A.T.FD ICC(A,1) {icc(v[:, 0], man[:, 0]):.3f} "
                  f"(mean difference {np.mean(v[:, 0] - man[:, 0]):+.3f}), VX.A.T.VFRAC "
                  f"{icc(v[:, 1], man[:, 1]):.3f} ({100 * np.mean(v[:, 1] / man[:, 1] - 1):+.1f} %)")


def resampled(factors, threads: int, flips: int) -> None:
    """CHASE_DB1 test images and manual masks resampled by each factor (another camera's
    pixel size), segmented with and without the rescaling to the training scale."""
    from skimage.transform import resize

    from vasomics.chain.segment.fov import fov_diameter_px, fundus_aperture, fundus_fov

    items = learned.load_dataset("chase", f"{ROOT}/chase_db1", "test")
    for factor in factors:
        cases = []
        for _, rgb, gt, _ in items:
            shape = (round(rgb.shape[0] * factor), round(rgb.shape[1] * factor))
            img = resize(rgb, shape, order=1, anti_aliasing=factor < 1,
                         preserve_range=True).astype(np.uint8)
            manual = resize(gt.astype(float), shape, order=1, anti_aliasing=factor < 1) >= 0.5
            cases.append((img, manual, fundus_fov(img)))
        for rescale in (True, False):
            rows, secs = [], []
            for img, manual, fov in cases:
                t0 = time.perf_counter()
                mask, _ = learned.segment_learned(img, "chase", fov, threads=threads,
                                                  flips=flips, rescale=rescale)
                secs.append(time.perf_counter() - t0)
                rows.append((sm.dice(mask, manual, fov), sm.cl_dice(mask, manual, fov)))
            d, c = np.mean(rows, 0)
            across = np.median([fov_diameter_px(fundus_aperture(c[0])) for c in cases])
            print(f"factor {factor}: aperture {across:.0f} px, rescale {rescale}: Dice {d:.4f} (min {min(r[0] for r in rows):.4f}), "
                  f"clDice {c:.4f}, {np.median(secs):.2f} s/image ({flips} flips, {threads} "
                  f"threads)", flush=True)


def noisy(sds, threads: int, flips: int) -> None:
    """CHASE_DB1 test images with Gaussian noise added to each RGB channel (SD a fraction of
    the 8-bit range; seed 0), segmented with and without the de-noising."""
    items = learned.load_dataset("chase", f"{ROOT}/chase_db1", "test")
    rng = np.random.default_rng(0)
    for sd in sds:
        rows = {False: [], True: []}
        secs = {False: [], True: []}
        for _, rgb, gt, fov in items:
            img = np.clip(rgb / 255 + rng.normal(0, sd, rgb.shape), 0, 1)
            img = (img * 255).round().astype(np.uint8)
            for denoise in (False, True):
                t0 = time.perf_counter()
                mask, _ = learned.segment_learned(img, "chase", fov, threads=threads,
                                                  flips=flips, denoise=denoise)
                secs[denoise].append(time.perf_counter() - t0)
                rows[denoise].append(sm.dice(mask, gt, fov))
        print(f"noise SD {sd} ({255 * sd:.1f} grey levels): Dice {np.mean(rows[False]):.4f} "
              f"without, {np.mean(rows[True]):.4f} with de-noising (min "
              f"{min(rows[True]):.4f}); {np.median(secs[False]):.2f} / "
              f"{np.median(secs[True]):.2f} s/image ({flips} flips, {threads} threads)",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flips", type=int, default=4, choices=(1, 2, 4))
    ap.add_argument("--no-features", action="store_true")
    ap.add_argument("--per-image", action="store_true", help="print each image's features")
    ap.add_argument("--select-thin-low", action="store_true",
                    help="only the training-split choice of the card's thin_low")
    ap.add_argument("--width", action="store_true",
                    help="only the vessel-width diagnosis of the feature disagreement")
    ap.add_argument("--scales", type=float, nargs="+",
                    help="only the CHASE test split resampled by these factors")
    ap.add_argument("--noise", type=float, nargs="+",
                    help="only the CHASE test split with Gaussian noise of these SDs added")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()}")
    if args.noise:
        noisy(args.noise, args.threads, args.flips)
        return
    if args.scales:
        resampled(args.scales, args.threads, args.flips)
        return
    if args.select_thin_low:
        import torch

        torch.set_num_threads(args.threads)
        select_thin_low(args.threads, args.flips)
        return
    if args.width:
        width_diagnosis(args.threads, args.flips)
        return
    for name, folder, split in (("chase", "chase_db1", "test"), ("rossa", "rossa", "val")):
        items = learned.load_dataset(name, f"{ROOT}/{folder}", split)
        learned.segment_learned(items[0][1], name, items[0][3], threads=args.threads,
                                flips=args.flips)  # warm-up
        rows, secs, cpu, pairs, thin = [], [], [], [], []
        card = learned.load_model(name)[1]
        for _, img, gt, fov in items:
            t0, c0 = time.perf_counter(), time.process_time()
            mask, prob = learned.segment_learned(img, name, fov, threads=args.threads,
                                                 flips=args.flips)
            secs.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            rows.append((sm.dice(mask, gt, fov), sm.cl_dice(mask, gt, fov),
                         sm.roc_auc(prob, gt, fov)))
            pairs.append((mask, gt, fov))
            if "thin_low" in card:  # segment_learned(..., thin_recovery=True), same network pass
                rec = learned.recover_thin(prob, mask, card["thin_low"], fov)
                thin.append((sm.dice(rec, gt, fov), sm.cl_dice(rec, gt, fov), (rec, gt, fov)))
        d, c, a = np.mean(rows, 0)
        print(f"{name} {split} ({len(items)} images): Dice {d:.4f}, clDice {c:.4f}, "
              f"ROC AUC {a:.4f}; inference median {np.median(secs):.2f} s/image wall, "
              f"{np.median(cpu):.2f} s CPU (shape {items[0][1].shape}, {args.flips} flips, "
              f"{args.threads} threads)")
        if name == "chase" and not args.no_features:
            print_agreement(items, pairs, args.per_image)
        if thin:
            print(f"{name} {split} with thin_recovery (thin_low {card['thin_low']}): Dice "
                  f"{np.mean([t[0] for t in thin]):.4f}, clDice {np.mean([t[1] for t in thin]):.4f}")
            if name == "chase" and not args.no_features:
                print_agreement(items, [t[2] for t in thin], args.per_image)


if __name__ == "__main__":
    main()
