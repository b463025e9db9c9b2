"""3D classical segmentation on another modality: light-sheet microscopy (vesselexpress).

``vesselexpress_lightsheet/image_000.tif`` is a uint16 100³ light-sheet volume of
microvasculature (voxel size unknown: taken as 1 mm, so the scales below are in voxels) and
``binary_000.tif`` a vessel mask whose making is not documented. For the 3D filters (Sato,
Frangi, Jerman; bright vessels, the ``mra_tof`` preset's binarization) at two scale sets,
Dice and clDice against that mask and the foreground fraction; Frangi again with its
structureness constant ``c`` fixed instead of automatic (half the largest Hessian norm of
the volume at each scale); then, to say what kind of mask the reference is, the best Dice
any global threshold of the Gaussian-smoothed image reaches (SD 0, 1, 2 voxels).

Usage: ``python benchmarks/eval_segment_lightsheet.py``
"""

from __future__ import annotations

import os
import time

import numpy as np
from scipy import ndimage as ndi

from vasomics.chain.segment.api import load_preset, segment
from vasomics.io.images import read_image
from vasomics.metrics.segmentation import cl_dice, dice

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
SCALES = {"preset (0.5-1.8)": [0.5, 0.8, 1.2, 1.8], "1.5-4": [1.5, 2.0, 3.0, 4.0]}


def main() -> None:
    folder = f"{ROOT}/vesselexpress_lightsheet"
    image = read_image(f"{folder}/image_000.tif")
    truth = read_image(f"{folder}/binary_000.tif").array > 0
    print(f"reference mask: {truth.mean():.3f} of the volume")
    preset = load_preset("mra_tof")
    for label, scales in SCALES.items():
        for method in ("sato", "frangi", "jerman"):
            params = preset.model_copy(update={"method": method, "vesselness": (
                preset.vesselness.model_copy(update={"scales_mm": scales, "method": method}))})
            t0 = time.perf_counter()
            mask = segment(image, params).mask.array > 0
            print(f"{method:6s} scales {label:16s} Dice {dice(mask, truth):.3f} clDice "
                  f"{cl_dice(mask, truth):.3f} fraction {mask.mean():.3f} "
                  f"({time.perf_counter() - t0:.1f} s)")
    wide = SCALES["1.5-4"]
    for c in (30.0, 100.0, 300.0, 1000.0):
        params = preset.model_copy(update={"method": "frangi", "vesselness": (
            preset.vesselness.model_copy(update={"scales_mm": wide, "method": "frangi",
                                                 "c": c}))})
        mask = segment(image, params).mask.array > 0
        print(f"frangi scales 1.5-4 c {c:6.0f}  Dice {dice(mask, truth):.3f} clDice "
              f"{cl_dice(mask, truth):.3f} fraction {mask.mean():.3f}")
    raw = image.array.astype(np.float32)
    for sd in (0, 1, 2):
        smooth = ndi.gaussian_filter(raw, sd) if sd else raw
        best = max((dice(smooth > t, truth), t)
                   for t in np.percentile(smooth, np.arange(80.0, 99.5, 0.5)))
        print(f"global threshold after Gaussian SD {sd} voxel(s): best Dice {best[0]:.3f} "
              f"(threshold {best[1]:.0f})")


if __name__ == "__main__":
    main()
