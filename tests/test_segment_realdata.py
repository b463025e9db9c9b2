"""Segmentation accuracy on real annotated data (classical methods; no training here)."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.chain.segment.api import segment
from vasomics.image import Image
from vasomics.metrics import segmentation as sm


@pytest.fixture(scope="module")
def chase_test(shared_data):
    from vasomics.chain.segment.learned import load_dataset

    return load_dataset("chase", shared_data / "chase_db1", "test")


def test_chase_classical_frangi(chase_test):
    """Hessian filter on the CHASE_DB1 test split (first observer), inside the FOV.

    Measured 0.656 (Frangi, fundus preset): the assertion guards the measured level. The
    issue's target (0.68) is met by the line detector (tests/test_segment_classical_chase.py)."""
    dices = []
    for _, rgb, gt, fov in chase_test:
        result = segment(Image(rgb), "fundus", method="frangi")
        dices.append(sm.dice(result.mask.array, gt, fov))
    assert np.mean(dices) >= 0.65, dices


def test_vmtk_aorta_mra(shared_data):
    """Contrast MRA preset against VMTK's level set (vessel where < 0) inside the level set's
    bounding box (the only region it covers: the aorto-iliac bifurcation)."""
    from vasomics.io.images import read_image

    folder = shared_data / "vmtk_aorta_mra"
    image = read_image(folder / "aorta.mha")
    gt = read_image(folder / "aorta-final-levelset.mha").array < 0
    idx = np.argwhere(gt)
    box = np.zeros(gt.shape, bool)
    box[tuple(slice(lo, hi + 1) for lo, hi in zip(idx.min(0), idx.max(0), strict=True))] = True
    result = segment(image, "mra_contrast")
    assert sm.dice(result.mask.array, gt, box) >= 0.85
