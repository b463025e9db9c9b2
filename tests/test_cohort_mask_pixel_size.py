"""The ``mask`` pipeline on masks that store no pixel size (PNG): a QC warning when 1 mm is
assumed, and the ``spacing_mm`` parameter giving the camera's pixel size."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.cohort.executors import LocalExecutor
from vasomics.cohort.manifest import load_manifest
from vasomics.cohort.runner import run_cohort
from vasomics.cohort.store import CohortStore
from vasomics.image import Image
from vasomics.io.images import write_image


def test_png_masks_pixel_size(tmp_path):
    mask = np.zeros((40, 60), np.uint8)
    mask[18:22, 5:55] = 255  # a 50-pixel strip
    for name in ("assumed", "given", "wrong"):
        write_image(Image(mask), tmp_path / f"{name}.png")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "defaults: {centre: A, modality: mask}\n"
        "scans:\n"
        "  - {scan_id: assumed, subject_id: P1, path: assumed.png}\n"
        "  - {scan_id: given, subject_id: P2, path: given.png,\n"
        "     params: {spacing_mm: [0.02, 0.02]}}\n"
        "  - {scan_id: wrong, subject_id: P3, path: wrong.png,\n"
        "     params: {spacing_mm: [0.02, 0.02, 0.02]}}\n")
    db = tmp_path / "c.duckdb"
    summary = run_cohort(load_manifest(manifest), db, executor=LocalExecutor(1))
    assert summary.done == 2 and "3 values for a 2D mask" in dict(summary.failures)["wrong"]
    with CohortStore.open(db, read_only=True) as store:
        qc = store.query("SELECT scan_id, status FROM qc WHERE \"check\" = 'pixel_size'")
        length = store.query("SELECT scan_id, value FROM features WHERE feature_id = "
                             "'VX.A.T.LEN'")
    assert dict(zip(qc.scan_id, qc.status, strict=True)) == {"assumed": "warn", "given": "pass"}
    lengths = dict(zip(length.scan_id, length.value, strict=True))
    assert lengths["given"] == pytest.approx(lengths["assumed"] * 0.02, rel=1e-6)
    assert abs(lengths["assumed"] - 50) < 5
