"""The ``mask`` cohort pipeline: a binary vessel mask file -> QC rows, vessel segments and
the feature table.

Runs in a worker process: reads the mask with :func:`vasomics.io.images.read_mask` (only
allow-listed, non-identifying metadata is kept), checks it (:func:`mask_qc`), then
measures it. Lengths in mm, volumes in mm³.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, PositiveFloat, PositiveInt

from vasomics.cohort.pipelines import QC_COLUMNS, ScanOutput
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.params import StageParams


class MaskQCParams(StageParams):
    """Thresholds of the mask quality checks (a failed check is recorded, not fatal)."""

    min_foreground_voxels: PositiveInt = Field(
        27, description="Fewest foreground voxels for a measurable vessel mask.")
    max_anisotropy: PositiveFloat = Field(
        5.0, description="Largest ratio of the largest to the smallest voxel spacing.")
    max_border_fraction: float = Field(
        0.05, ge=0, le=1, description="Largest share of foreground voxels on the image border "
        "(vessels cut by the field of view bias lengths and counts).")


class MaskPipelineParams(StageParams):
    """Parameters of the ``mask`` pipeline, by stage."""

    qc: MaskQCParams = Field(default_factory=MaskQCParams, description="Mask quality checks.")


def mask_qc(image: Image, mask: np.ndarray, params: MaskQCParams) -> pd.DataFrame:
    """QC rows (:data:`~vasomics.cohort.pipelines.QC_COLUMNS`) of a validated boolean mask."""
    import cc3d

    n = int(np.count_nonzero(mask))
    border = np.zeros(mask.shape, bool)
    for axis in range(mask.ndim):
        index = [slice(None)] * mask.ndim
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    border_fraction = float(np.count_nonzero(mask & border)) / max(n, 1)
    anisotropy = max(image.spacing) / min(image.spacing)
    n_components = int(cc3d.connected_components(mask.astype(np.uint8),
                                                 connectivity=26 if mask.ndim == 3 else 8,
                                                 return_N=True)[1])
    rows = [
        ("foreground_voxels", n, "voxels", n >= params.min_foreground_voxels,
         f"at least {params.min_foreground_voxels} foreground voxels"),
        ("spacing_anisotropy", anisotropy, "ratio", anisotropy <= params.max_anisotropy,
         f"largest / smallest spacing at most {params.max_anisotropy:g}"),
        ("border_fraction", border_fraction, "fraction",
         border_fraction <= params.max_border_fraction,
         f"at most {params.max_border_fraction:g} of foreground voxels on the image border"),
        ("components", n_components, "count", True, "connected components (26/8-connected)"),
    ]
    return pd.DataFrame(rows, columns=list(QC_COLUMNS)).astype({"value": float, "passed": bool})


def run_mask(path: Path, params: MaskPipelineParams) -> ScanOutput:
    """The pipeline function: mask file -> :class:`~vasomics.cohort.pipelines.ScanOutput`."""
    from vasomics.io.images import read_mask

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    image, mask = read_mask(path)
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    qc = mask_qc(image, mask, params.qc)
    seconds["qc"] = time.perf_counter() - t
    t = time.perf_counter()
    voxel_mm3 = image.voxel_volume
    n = int(np.count_nonzero(mask))
    features = FeatureTable.from_records([
        ("tree", "mask_volume", n * voxel_mm3, "mm3" if image.ndim == 3 else "mm2"),
        ("tree", "mask_voxels", float(n), "voxels"),
    ])
    seconds["features"] = time.perf_counter() - t
    info = {"shape": list(image.shape), "spacing_mm": list(image.spacing),
            "stage_seconds": seconds}
    return ScanOutput(features=features, qc=qc, info=info)
