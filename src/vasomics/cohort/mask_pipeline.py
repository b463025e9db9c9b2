"""The ``mask`` cohort pipeline: a binary vessel mask file -> QC rows, vessel segments and
the feature table.

Runs in a worker process: reads the mask with :func:`vasomics.io.images.read_mask` (only
allow-listed, non-identifying metadata is kept), checks it (:func:`mask_qc`), then
builds the vessel graph (:func:`vasomics.chain.graph.mask_to_graph`) and extracts the
catalogue features (:func:`vasomics.features.extract.extract_features`). Lengths in mm,
volumes in mm³.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, PositiveFloat, PositiveInt

from vasomics.chain.graph import GraphParams
from vasomics.chain.skeleton import SkeletonParams
from vasomics.cohort.pipelines import QC_COLUMNS, ScanOutput, segment_rows
from vasomics.errors import InputError
from vasomics.features.params import FeatureParams
from vasomics.image import Image
from vasomics.params import StageParams


class MaskQCParams(StageParams):
    """Thresholds of the mask quality checks. Checks are recorded (``pass``, ``warn``,
    ``fail``) and never stop the pipeline; filter on the ``qc`` table."""

    min_foreground_voxels: PositiveInt = Field(
        27, description="Fewest foreground voxels for a measurable vessel mask.")
    max_anisotropy: PositiveFloat = Field(
        5.0, description="Largest ratio of the largest to the smallest voxel spacing.")
    max_border_fraction: float = Field(
        0.05, ge=0, le=1, description="Largest share of foreground voxels on the image border "
        "(vessels cut by the field of view bias lengths and counts).")


class MaskPipelineParams(StageParams):
    """Parameters of the ``mask`` pipeline, one section per stage."""

    spacing_mm: list[PositiveFloat] | None = Field(
        None, description="Voxel size (mm per NumPy axis) of mask files that store none "
        "(PNG, most TIFFs; e.g. a fundus camera's pixel size); a file's own voxel size is "
        "kept.")
    qc: MaskQCParams = Field(default_factory=MaskQCParams, description="Mask quality checks.")
    skeleton: SkeletonParams = Field(default_factory=SkeletonParams,
                                     description="Skeletonization (vasomics.chain.skeleton).")
    graph: GraphParams = Field(default_factory=GraphParams,
                               description="Graph building (vasomics.chain.graph).")
    features: FeatureParams = Field(default_factory=FeatureParams,
                                    description="Feature extraction (vasomics.features).")


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
    def status(ok: bool, bad: str) -> str:
        return "pass" if ok else bad

    rows = [  # (check, status, value, unit, reason)
        ("foreground_voxels", status(n >= params.min_foreground_voxels, "fail"), n, "voxels",
         f"at least {params.min_foreground_voxels} foreground voxels"),
        ("spacing_anisotropy", status(anisotropy <= params.max_anisotropy, "warn"),
         anisotropy, "ratio", f"largest / smallest spacing at most {params.max_anisotropy:g}"),
        ("border_fraction", status(border_fraction <= params.max_border_fraction, "warn"),
         border_fraction, "fraction",
         f"at most {params.max_border_fraction:g} of foreground voxels on the image border"),
        ("components", "pass", n_components, "count",
         "connected components (26-connected in 3D, 8 in 2D)"),
        ("pixel_size", "warn" if image.metadata.get("spacing_known") is False else "pass",
         min(image.spacing), "mm", "a voxel size from the file or the spacing_mm parameter "
         "(PNG and most TIFFs store none: 1 mm is then assumed and lengths are in voxels)"),
    ]
    return pd.DataFrame(rows, columns=list(QC_COLUMNS)).astype({"value": float})


def run_mask(path: Path, params: MaskPipelineParams) -> ScanOutput:
    """The pipeline function: mask file -> :class:`~vasomics.cohort.pipelines.ScanOutput`."""
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.extract import extract_features
    from vasomics.io.images import read_mask

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    image, mask = read_mask(path)
    if image.metadata.get("spacing_known") is False and params.spacing_mm is not None:
        if len(params.spacing_mm) != image.ndim:
            raise InputError(f"spacing_mm has {len(params.spacing_mm)} values for a "
                             f"{image.ndim}D mask", path)
        image = image.with_array(mask, spacing=tuple(params.spacing_mm),
                                 metadata={**image.metadata, "spacing_known": True})
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    qc = mask_qc(image, mask, params.qc)
    seconds["qc"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = mask_to_graph(image, params.graph, skeleton_params=params.skeleton, path=path)
    seconds["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    features = extract_features(graph, mask=image, params=params.features)
    seconds["features"] = time.perf_counter() - t
    info = {"shape": list(image.shape), "spacing_mm": list(image.spacing),
            "n_segments": graph.n_segments, "stage_seconds": seconds}
    return ScanOutput(features=features, segments=segment_rows(graph), qc=qc, info=info)
