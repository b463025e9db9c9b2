"""The ``centerlines`` cohort pipeline: a centerline or graph file (VMTK, 3D Slicer, TubeTK
or vasomics ``.vtp``; vasomics ``.json``) -> QC rows, vessel segments and the centerline
features.

Runs in a worker process: reads the file with :func:`vasomics.io.graphs.read_graph` (VMTK's
paths from the inlet to each outlet merged into one tree), checks it
(:func:`centerline_qc`) and extracts the catalogue features that need no mask
(:func:`vasomics.features.extract.extract_features`). Lengths in mm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, PositiveInt

from vasomics.cohort.pipelines import QC_COLUMNS, ScanOutput, segment_rows
from vasomics.features.params import FeatureParams
from vasomics.params import StageParams
from vasomics.vessel_graph import VesselGraph


class CenterlineReadParams(StageParams):
    """How the file is read."""

    frame: Literal["LPS", "RAS"] | None = Field(
        None, description="Frame of the file's points (default: its SPACE tag, else LPS; "
        "VMTK writes RAS). Shape features do not depend on it.")


class CenterlineQCParams(StageParams):
    """Thresholds of the centerline checks (recorded, never stopping the pipeline)."""

    min_segments: PositiveInt = Field(1, description="Fewest segments of a measurable tree.")
    max_components: PositiveInt = Field(
        1, description="Most connected components before a warning (a tree is one piece; "
        "more usually means branches that did not join).")


class CenterlinePipelineParams(StageParams):
    """Parameters of the ``centerlines`` pipeline, one section per stage."""

    read: CenterlineReadParams = Field(default_factory=CenterlineReadParams,
                                       description="Reading the file.")
    qc: CenterlineQCParams = Field(default_factory=CenterlineQCParams,
                                   description="Centerline checks.")
    features: FeatureParams = Field(default_factory=FeatureParams,
                                    description="Feature extraction (vasomics.features).")


def centerline_qc(graph: VesselGraph, params: CenterlineQCParams) -> pd.DataFrame:
    """QC rows (:data:`~vasomics.cohort.pipelines.QC_COLUMNS`) of a centerline graph."""
    from vasomics.features.topology import topology

    n_components = int(topology(graph).n_components) if graph.n_segments else 0
    radius_ok = bool(len(graph.radius)) and bool(np.all(graph.radius > 0))
    rows = [  # (check, status, value, unit, reason)
        ("segments", "pass" if graph.n_segments >= params.min_segments else "fail",
         graph.n_segments, "count", f"at least {params.min_segments} segments"),
        ("components", "pass" if n_components <= params.max_components else "warn",
         n_components, "count", f"at most {params.max_components} connected components"),
        ("radius", "pass" if radius_ok else "warn", float(np.min(graph.radius))
         if len(graph.radius) else np.nan, "mm", "every point has a positive radius"),
    ]
    return pd.DataFrame(rows, columns=list(QC_COLUMNS)).astype({"value": float})


def run_centerlines(path: Path, params: CenterlinePipelineParams) -> ScanOutput:
    """The pipeline function: centerline file -> :class:`~vasomics.cohort.pipelines.ScanOutput`."""
    from vasomics.features.extract import extract_features
    from vasomics.io.graphs import read_graph

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    graph = read_graph(path, frame=params.read.frame)
    seconds["read"] = time.perf_counter() - t
    t = time.perf_counter()
    qc = centerline_qc(graph, params.qc)
    seconds["qc"] = time.perf_counter() - t
    t = time.perf_counter()
    features = extract_features(graph, params=params.features)
    seconds["features"] = time.perf_counter() - t
    info = {"n_segments": graph.n_segments, "n_points": int(len(graph.points)),
            "stage_seconds": seconds}
    return ScanOutput(features=features, segments=segment_rows(graph), qc=qc, info=info)
