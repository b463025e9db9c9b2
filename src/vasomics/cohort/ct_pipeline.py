"""The ``ct`` cohort pipeline: a contrast-enhanced abdominal CT (file or DICOM folder) ->
the CT vessel characterization chain (:func:`vasomics.chain.run.characterize`: QC, organ
localization, phase, liver vessels, named portal and hepatic graphs, liver features).

A scan that fails quality control is recorded as failed with the QC reasons (unless
``force``); otherwise its QC checks, the segments of the named trees (labels prefixed
``portal:`` / ``hepatic:``, and ``artery:`` for the hepatic artery traced in an arterial
scan) and the feature table are stored.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from pydantic import Field

from vasomics.chain.run import RunParams
from vasomics.cohort.pipelines import QC_COLUMNS, ScanOutput, segment_rows
from vasomics.params import StageParams


class CTPipelineParams(StageParams):
    """Parameters of the ``ct`` pipeline."""

    chain: RunParams = Field(default_factory=RunParams,
                             description="Every stage of the CT chain (as `vasomics run`).")
    phase: str = Field("auto", description="Contrast phase: auto (recognized) or one of "
                       "native, arterial, portal_venous, delayed to override recognition.")
    force: bool = Field(False, description="Continue past failed QC checks.")


def qc_rows(report) -> pd.DataFrame:
    """QC rows (:data:`~vasomics.cohort.pipelines.QC_COLUMNS`) of a
    :class:`~vasomics.chain.qc.QCReport`; non-numeric values go to the reason."""
    rows = []
    for c in report.checks:
        numeric = isinstance(c.value, (int, float)) and not isinstance(c.value, bool)
        value = float(c.value) if numeric else math.nan
        reason = c.reason if numeric or c.value is None else f"{c.reason} ({c.value})"
        rows.append((c.name, c.status, value, "", reason))
    return pd.DataFrame(rows, columns=list(QC_COLUMNS)).astype({"value": float})


def run_ct(path: Path, params: CTPipelineParams) -> ScanOutput:
    """The pipeline function: CT file -> :class:`~vasomics.cohort.pipelines.ScanOutput`."""
    from vasomics.chain.qc import QCFailed
    from vasomics.chain.run import characterize
    from vasomics.io.images import read_image

    image = read_image(path)
    result = characterize(image, params.chain, phase=params.phase, force=params.force)
    if result.stopped:
        raise QCFailed(f"scan failed quality control: {result.stopped} (set the ct "
                       f"pipeline parameter force: true to continue)", path)
    segments, first = [], 0
    for tree, graph in (("portal", result.portal), ("hepatic", result.hepatic),
                        ("artery", result.artery_graph)):
        if graph is not None:
            segments.append(segment_rows(graph, first_id=first, tree=tree))
            first += graph.n_segments
    info = {"shape": list(image.shape), "spacing_mm": list(image.spacing),
            "phase": result.phase.phase if result.phase else None,
            "stage_seconds": dict(result.stage_seconds)}
    return ScanOutput(features=result.features, qc=qc_rows(result.qc),
                      segments=pd.concat(segments, ignore_index=True) if segments else None,
                      info=info)
