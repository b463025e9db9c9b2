"""Liver-vessel segmentation on lvsd300_liver_slices: Dice and clDice per classical method.

Each case is a 512x512x8 NIfTI: plane 0 = manual vessel label of the middle CT slice, planes
1-7 = consecutive CT slices, liver-masked and windowed to 8 bit (header spacing is not
physical: pixel units). We segment plane 4 (the middle slice) in 2D, bright vessels, region =
the liver (non-zero pixels, eroded 3 px so the liver edge is not taken for a vessel), and
report the mean Dice and clDice inside that region over the 20 cases, for each method and a
few thresholds (Otsu x factor, or the expected vessel fraction). ``line`` is the multi-scale
line detector (bright vessels, window 35 px, image weight 0.3, the liver as region with a 3 px
rim refilled); its window was picked on these same 20 cases among 9-61 px (plateau 35-45 px),
as the rules below are, so the figures are optimistic for every method alike.

Usage: ``python benchmarks/eval_segment_lvsd300.py``
"""

from __future__ import annotations

import glob
import os

import numpy as np
from scipy import ndimage as ndi

from vasomics.chain.segment.binarize import BinarizeParams, binarize
from vasomics.chain.segment.linedetector import line_detector
from vasomics.chain.segment.vesselness import vesselness
from vasomics.io.images import read_image
from vasomics.metrics.segmentation import cl_dice, dice

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
RULES = {"otsu": BinarizeParams(low_ratio=0.5, min_size_mm=10),
         "otsu x1.5": BinarizeParams(otsu_factor=1.5, low_ratio=0.5, min_size_mm=10),
         "top 6 %": BinarizeParams(top_fraction=0.06, low_ratio=0.7, min_size_mm=10),
         "top 10 %": BinarizeParams(top_fraction=0.10, low_ratio=0.7, min_size_mm=10),
         "top 15 %": BinarizeParams(top_fraction=0.15, low_ratio=0.7, min_size_mm=10)}


def main():
    files = sorted(glob.glob(f"{ROOT}/lvsd300_liver_slices/train/*.nii.gz"))
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for path in files:
        vol = read_image(path).array
        gt, ct = vol[0] > 127, vol[4].astype(np.float32)
        region = ndi.binary_erosion(ct > 0, iterations=3)
        for method in ("frangi", "sato", "jerman", "line"):
            if method == "line":
                resp = line_detector(ct, (1, 1), window_mm=35, image_weight=0.3, bright=True,
                                     region=ct > 0, rim_mm=3)
            else:
                resp = vesselness(ct, (1, 1), method=method, scales_mm=[1.0, 1.5, 2.0, 3.0])
            for rule, params in RULES.items():
                mask = binarize(resp, params, region=region)
                scores.setdefault((method, rule), []).append(
                    (dice(mask, gt, region), cl_dice(mask, gt, region)))
    rows = sorted(scores.items(), key=lambda kv: -np.mean([d for d, _ in kv[1]]))
    print(f"{len(files)} cases; mean Dice / clDice inside the liver (plane 4):")
    for (method, rule), vals in rows:
        d, c = np.mean(vals, 0)
        print(f"  {method:7s} {rule:10s} Dice {d:.3f}  clDice {c:.3f}")


if __name__ == "__main__":
    main()
