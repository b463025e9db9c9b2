"""Per-scan pipelines the cohort runner can run, and the task/result types that travel
between the coordinator and its workers.

A pipeline is a plain function ``fn(path: Path, params) -> ScanOutput`` named by a
``"module:attribute"`` string, so that a worker process (local or on a Dask cluster)
imports it by name; nothing but the :class:`ScanTask` (plain data) is sent to workers and
nothing but the :class:`ScanResult` (plain data and DataFrames) comes back. Workers never
touch the database: only the coordinator writes.

Pipelines are keyed by name; a manifest row picks one with its ``pipeline`` column, or by
its ``modality`` (each pipeline lists the modalities it handles by default).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from vasomics.errors import ParameterError, VasomicsError
from vasomics.features.table import FeatureTable
from vasomics.params import params_dict, params_hash
from vasomics.vessel_graph import VesselGraph

#: Columns of the per-scan vessel segment rows (lengths and radii in mm, positions LPS mm).
SEGMENT_COLUMNS = ("segment_id", "start_node", "end_node", "label", "generation", "strahler",
                   "n_points", "length_mm", "chord_mm", "mean_radius_mm", "min_radius_mm",
                   "max_radius_mm", "start_x_mm", "start_y_mm", "start_z_mm", "end_x_mm",
                   "end_y_mm", "end_z_mm")
#: Columns of the per-scan quality-control rows; ``status`` is ``pass``, ``warn`` or ``fail``
#: as in :mod:`vasomics.chain.qc`, ``value`` the measured number (NaN when not numeric).
QC_COLUMNS = ("check", "status", "value", "unit", "reason")


@dataclass(frozen=True)
class Pipeline:
    """A registered per-scan pipeline.

    ``function`` and ``params`` are ``"module:attribute"`` strings: the function called as
    ``fn(path, params) -> ScanOutput`` and its :class:`~vasomics.params.StageParams` model.
    ``version`` is part of every parameter hash: bump it when the pipeline's outputs change
    for the same inputs and parameters, so cohorts recompute.
    """

    name: str
    function: str
    params: str
    modalities: tuple[str, ...] = ()
    version: str = "1"
    description: str = ""

    def params_model(self) -> type[BaseModel]:
        return _import(self.params)

    def params_hash(self, params: BaseModel) -> str:
        """SHA-256 (16 hex) of pipeline name, version and the canonical parameters."""
        text = f"{self.name}\n{self.version}\n{params_hash(params)}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_REGISTRY: dict[str, Pipeline] = {}


def register_pipeline(pipeline: Pipeline, *, replace: bool = False) -> Pipeline:
    """Add a pipeline to the registry (``replace`` to overwrite one of the same name)."""
    if pipeline.name in _REGISTRY and not replace:
        raise ParameterError(f"pipeline {pipeline.name!r} is already registered")
    _REGISTRY[pipeline.name] = pipeline
    return pipeline


def get_pipeline(name: str) -> Pipeline:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown pipeline {name!r} (known: "
                             f"{', '.join(sorted(_REGISTRY))})") from None


def pipeline_for_modality(modality: str) -> Pipeline | None:
    """The pipeline handling ``modality`` (case-insensitive), or None."""
    wanted = modality.lower()
    for p in _REGISTRY.values():
        if wanted in (m.lower() for m in p.modalities):
            return p
    return None


def known_modalities() -> list[str]:
    return sorted({m for p in _REGISTRY.values() for m in p.modalities})


def _import(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def segment_rows(graph: VesselGraph, first_id: int = 0, tree: str = "") -> pd.DataFrame:
    """One row per graph segment (:data:`SEGMENT_COLUMNS`): topology, polyline length and
    chord (mm), radius statistics (mm) and end positions (LPS mm; ``z`` is NaN for 2D
    graphs). Segment ids start at ``first_id``; a non-empty ``tree`` prefixes labels
    (``"portal:"``), so several graphs of one scan fit in one table."""
    n = graph.n_segments
    starts, ends = graph.point_offsets[:-1], graph.point_offsets[1:] - 1
    first, last = _xyz(graph.points[starts]), _xyz(graph.points[ends])
    if n:
        mean_r = np.add.reduceat(graph.radius, starts) / np.diff(graph.point_offsets)
        min_r = np.minimum.reduceat(graph.radius, starts)
        max_r = np.maximum.reduceat(graph.radius, starts)
    else:
        mean_r = min_r = max_r = np.zeros(0)
    columns = {
        "segment_id": first_id + np.arange(n), "start_node": graph.segment_start,
        "end_node": graph.segment_end,
        "label": [f"{tree}:{lab}" if tree else str(lab) for lab in graph.segment_label],
        "generation": graph.segment_generation, "strahler": graph.segment_strahler,
        "n_points": np.diff(graph.point_offsets), "length_mm": graph.segment_lengths(),
        "chord_mm": np.linalg.norm(graph.points[ends] - graph.points[starts], axis=1),
        "mean_radius_mm": mean_r, "min_radius_mm": min_r, "max_radius_mm": max_r,
    }
    for i, axis in enumerate("xyz"):
        columns[f"start_{axis}_mm"] = first[:, i]
        columns[f"end_{axis}_mm"] = last[:, i]
    return pd.DataFrame(columns)[list(SEGMENT_COLUMNS)]


def _xyz(points: np.ndarray) -> np.ndarray:
    if points.shape[1] == 3:
        return points
    return np.column_stack([points, np.full(len(points), np.nan)])


def file_signature(path: Path) -> tuple[int, int] | None:
    """``(size in bytes, latest mtime in ns)`` of a file, or summed over a folder's files;
    None when it cannot be read."""
    try:
        if path.is_dir():
            stats = [p.stat() for p in path.rglob("*") if p.is_file()]
            return (sum(s.st_size for s in stats) + len(stats),
                    max((s.st_mtime_ns for s in stats), default=0))
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None


# ------------------------------------------------------------------ task and result
@dataclass
class ScanOutput:
    """What a pipeline returns for one scan: features (long format), vessel segment rows
    (:data:`SEGMENT_COLUMNS`), QC rows (:data:`QC_COLUMNS`) and safe, non-identifying
    information (shape, spacing, seconds per stage) that goes into the run's provenance."""

    features: FeatureTable
    segments: pd.DataFrame | None = None
    qc: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.segments = _frame(self.segments, SEGMENT_COLUMNS, "segments")
        self.qc = _frame(self.qc, QC_COLUMNS, "qc")


def _frame(frame: pd.DataFrame | None, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    missing = set(columns) - set(frame.columns)
    if missing:
        raise VasomicsError(f"pipeline returned {what} without columns {sorted(missing)}")
    return frame.loc[:, list(columns)].reset_index(drop=True)


@dataclass(frozen=True)
class ScanTask:
    """Everything a worker needs to process one scan (plain, picklable data)."""

    scan_id: str
    path: str
    pipeline: str
    function: str
    params_model: str
    params: dict[str, Any]
    params_hash: str
    coordinator_version: str

    @classmethod
    def make(cls, scan_id: str, path: Path, pipeline: Pipeline, params: BaseModel,
             version: str) -> ScanTask:
        return cls(scan_id=scan_id, path=str(path), pipeline=pipeline.name,
                   function=pipeline.function, params_model=pipeline.params,
                   params=params_dict(params), params_hash=pipeline.params_hash(params),
                   coordinator_version=version)


@dataclass
class ScanResult:
    """A worker's answer for one scan: ``status`` is ``done`` (with ``output``) or
    ``failed`` (with a one-line ``error`` and, for unexpected failures, a traceback in
    ``detail``). Times are UNIX seconds measured on the worker."""

    scan_id: str
    status: str
    input_hash: str | None
    params_hash: str
    started: float
    ended: float
    host: str
    pid: int
    software: dict[str, str]
    file_signature: tuple[int, int] | None = None
    output: ScanOutput | None = None
    error: str | None = None
    detail: str | None = None


_single_threaded = False


def _single_threaded_math() -> None:
    """Limit BLAS/OpenMP to one thread in this worker process, once.

    The runner parallelises over scans, so more math threads would only oversubscribe the
    CPUs; and the summation order of threaded BLAS depends on the thread count, which would
    make a scan's features differ in the last bits between local processes and Dask
    workers (whose nanny already sets one thread). One thread everywhere gives identical
    tables whatever the executor.
    """
    global _single_threaded
    if not _single_threaded:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        _single_threaded = True


def execute(task: ScanTask) -> ScanResult:
    """Run one scan's pipeline; never raises (failures become ``failed`` results)."""
    from vasomics.provenance import file_sha256, software_versions

    _single_threaded_math()
    started = time.time()
    software = software_versions()
    out = dict(scan_id=task.scan_id, params_hash=task.params_hash, host=socket.gethostname(),
               pid=os.getpid(), software=software, started=started)
    input_hash = None
    try:
        if software["vasomics"] != task.coordinator_version:
            raise VasomicsError(f"worker runs vasomics {software['vasomics']} but the "
                                f"coordinator runs {task.coordinator_version}; install the "
                                f"same version everywhere")
        path = Path(task.path)
        if not path.exists():
            raise VasomicsError("file not found on the worker (is the storage shared and "
                                "mounted at the same path?)", path)
        out["file_signature"] = file_signature(path)  # before reading: binds hash and state
        input_hash = file_sha256(path)
        params = _import(task.params_model).model_validate(task.params)
        output = _import(task.function)(path, params)
        if not isinstance(output, ScanOutput):
            raise VasomicsError(f"pipeline {task.pipeline} returned {type(output).__name__}, "
                                f"not a ScanOutput")
        return ScanResult(status="done", input_hash=input_hash, ended=time.time(),
                          output=output, **out)
    except VasomicsError as exc:
        return ScanResult(status="failed", input_hash=input_hash, ended=time.time(),
                          error=str(exc), **out)
    except MemoryError:
        return ScanResult(status="failed", input_hash=input_hash, ended=time.time(),
                          error="out of memory on the worker", **out)
    except Exception as exc:  # a bug or an unforeseen input: record it, keep the run going
        return ScanResult(status="failed", input_hash=input_hash, ended=time.time(),
                          error=f"internal error: {type(exc).__name__}: {exc}",
                          detail=traceback.format_exc(), **out)


register_pipeline(Pipeline(
    name="mask", function="vasomics.cohort.mask_pipeline:run_mask",
    params="vasomics.cohort.mask_pipeline:MaskPipelineParams", modalities=("mask",),
    description="binary vessel mask -> vessel graph -> feature table, segments and QC"))
register_pipeline(Pipeline(
    name="centerlines", function="vasomics.cohort.centerline_pipeline:run_centerlines",
    params="vasomics.cohort.centerline_pipeline:CenterlinePipelineParams",
    modalities=("centerlines",),
    description="centerline or graph file (VMTK, 3D Slicer, TubeTK, vasomics) -> vessel "
                "graph -> centerline features, segments and QC"))
register_pipeline(Pipeline(
    name="ct", function="vasomics.cohort.ct_pipeline:run_ct",
    params="vasomics.cohort.ct_pipeline:CTPipelineParams", modalities=("ct",),
    description="contrast-enhanced abdominal CT -> the CT vessel chain (QC, organs, phase, "
                "named portal and hepatic trees, liver features)"))
