"""The Python API of the measurement core: a mask in, a feature table out, in two lines::

    import vasomics
    table = vasomics.extract_features("mask.nii.gz")      # FeatureTable (long format)

:func:`run_features` does the same and writes the full, self-describing output folder that
``vasomics features`` writes (table, data dictionary, graph, parameters, provenance).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from vasomics.chain.graph import GraphParams, mask_to_graph
from vasomics.chain.skeleton import SkeletonParams
from vasomics.errors import InputError
from vasomics.features.params import FeatureParams
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.io.atomic import atomic_file, staged_output_dir
from vasomics.params import StageParams, dump_params_yaml, load_params
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)


class PipelineParams(StageParams):
    """A parameter file of ``vasomics features``: sections ``skeleton``, ``graph`` and
    ``features`` (each optional; unknown keys are errors)."""

    skeleton: SkeletonParams = Field(default_factory=SkeletonParams)
    graph: GraphParams = Field(default_factory=GraphParams)
    features: FeatureParams = Field(default_factory=FeatureParams)


@dataclass(frozen=True)
class FeatureResult:
    """What :func:`compute_features` returns: the table, the graph it was measured on, the
    parameters with every auto value resolved, seconds per stage and the validated mask."""

    table: FeatureTable
    graph: VesselGraph
    params: PipelineParams
    seconds: dict
    mask: Image | None = None


def _as_image(source, what: str, like: Image | None = None, allow_full: bool = False,
              spacing: tuple[float, ...] | None = None):
    """(Image, path or None) from a path or an Image. Masks are validated (binary, not empty,
    not full unless ``allow_full``); geometry must match ``like``; ``spacing`` (mm, NumPy
    order) overrides the file's voxel size (PNG and most TIFFs store none)."""
    from vasomics.io.images import read_image
    from vasomics.masks import binary_mask

    if source is None:
        return None, None
    path = None
    if isinstance(source, Image):
        image = source
        if spacing is not None:
            image = image.with_array(image.array, spacing=tuple(spacing))
    else:
        path = Path(source)
        image = read_image(path, spacing=spacing)
        image.metadata["path"] = str(path)
        if what == "mask" and spacing is None and image.metadata.get("spacing_known") is False:
            log.warning("%s: the file stores no pixel size; 1 mm per pixel assumed, so lengths "
                        "are in pixels (pass the spacing, e.g. --spacing 0.01,0.01)", path)
    if like is not None:
        like.require_same_geometry(image, what, path)
    if what != "image":
        array = binary_mask(image, path, allow_full=allow_full)
        image = image.with_array(array, modality="mask",
                                 metadata={**image.metadata, "path": str(path)} if path else
                                 image.metadata)
    return image, path


def _warn_outside(graph: VesselGraph, grid: Image, path) -> None:
    """Warn when most centerline points of ``graph`` fall outside ``grid`` (the features read
    there would be NaN or empty): usually a centerline file read in the wrong frame."""
    idx = grid.physical_to_index(graph.points)
    inside = np.all((idx >= -0.5) & (idx <= np.asarray(grid.shape[:graph.ndim]) - 0.5), axis=1)
    if inside.mean() < 0.5:
        log.warning("%s: %.0f %% of the centerline points lie outside this image; is the "
                    "centerline file's frame right (VMTK writes RAS: --frame RAS)?",
                    path, 100 * (1 - inside.mean()))


def compute_features(mask: str | Path | Image | VesselGraph, *, image=None, region=None,
                     params: PipelineParams | str | Path | None = None,
                     spacing: tuple[float, ...] | None = None,
                     frame: str | None = None) -> FeatureResult:
    """Mask (file or Image) → graph → features. A :class:`VesselGraph`, or a graph or
    centerline file (``.vtp``, ``.json``: :func:`vasomics.io.graphs.read_graph`, its points in
    ``frame``, e.g. ``"RAS"`` for VMTK's), may be given instead of a mask (mask-based
    features are then left out). ``image`` and ``region`` are files or Images on the mask's
    grid. ``params``: a :class:`PipelineParams` or a YAML file. ``spacing`` (mm per NumPy
    axis) overrides the voxel size of all three inputs, for formats without a physical one
    (PNG, most TIFFs)."""
    from vasomics.io.graphs import GRAPH_SUFFIXES, read_graph

    if params is None or isinstance(params, str | Path):
        params = load_params(PipelineParams, params)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if isinstance(mask, str | Path) and Path(mask).suffix.lower() in GRAPH_SUFFIXES:
        mask = read_graph(mask, frame=frame)
    if isinstance(mask, VesselGraph):
        graph, mask_image, mask_path = mask, None, None
    else:
        mask_image, mask_path = _as_image(mask, "mask", spacing=spacing)
        seconds["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = mask_to_graph(mask_image, params.graph, skeleton_params=params.skeleton,
                              path=mask_path)
        seconds["graph"] = time.perf_counter() - t0
        if graph.n_segments == 0:
            raise InputError("no vessel centerline could be extracted from the mask",
                             mask_path)
    t0 = time.perf_counter()
    image_img, image_path = _as_image(image, "image", like=mask_image, spacing=spacing)
    if image_img is not None and mask_image is not None and image_img.array.dtype.kind == "f":
        inside = image_img.array[mask_image.array != 0]
        n_bad = inside.size - int(np.count_nonzero(np.isfinite(inside)))
        if n_bad:  # the vessels' intensity features would be NaN without a word
            raise InputError(f"image holds {n_bad} NaN or infinite voxels inside the vessel "
                             f"mask", image_path)
    region_img, region_path = _as_image(region, "region mask", like=mask_image,
                                        allow_full=True, spacing=spacing)
    if mask_image is None:  # a graph: nothing ties its points to the grids but their frame
        for grid, grid_path in ((image_img, image_path), (region_img, region_path)):
            if grid is not None:
                _warn_outside(graph, grid, grid_path)
    seconds["read"] = seconds.get("read", 0.0) + time.perf_counter() - t0
    from vasomics.features.extract import extract_features_with_params

    t0 = time.perf_counter()
    table, feature_params = extract_features_with_params(
        graph, mask=mask_image, image=image_img, region=region_img, params=params.features)
    seconds["features"] = time.perf_counter() - t0
    resolved = params.model_copy(update={"features": feature_params})
    return FeatureResult(table, graph, resolved, seconds, mask_image)


def extract_features(mask: str | Path | Image | VesselGraph, *, image=None, region=None,
                     params: PipelineParams | str | Path | None = None,
                     spacing: tuple[float, ...] | None = None) -> FeatureTable:
    """All catalogue features of a vessel mask (or graph) as a long
    :class:`~vasomics.features.table.FeatureTable` (see :func:`compute_features`)."""
    return compute_features(mask, image=image, region=region, params=params,
                            spacing=spacing).table


def data_dictionary(table: FeatureTable) -> pd.DataFrame:
    """One row per feature id present in ``table``: id, name, category, scope, unit,
    definition, formula, when undefined, processing choices, equivalents in other tools,
    reference, the phantom validation (with its tolerance) and the catalogue version."""
    from vasomics.features.catalogue import load_catalogue

    cat = load_catalogue()
    by_id = cat.by_id()
    units = table.frame.drop_duplicates("feature_id").set_index("feature_id")["unit"]
    rows = []
    for fid in units.index:
        f = by_id[fid]
        rows.append({
            "feature_id": fid, "name": f.name, "category": f.category, "scope": f.scope,
            "unit": units[fid], "definition": " ".join(f.definition.split()),
            "formula": f.formula, "undefined_when": f.undefined or "",
            "depends_on": "; ".join(f.depends_on),
            "equivalents": "; ".join(f"{k}: {v}" for k, v in f.equivalents.items()),
            "reference": f.reference or "",
            "validated_on": f"{f.validation.phantom} (tolerance {f.validation.tolerance})",
            "catalogue_version": cat.catalogue_version,
        })
    return pd.DataFrame(rows)


def run_features(mask: str | Path | Image | VesselGraph, outdir: str | Path, *, image=None,
                 region=None,
                 params: PipelineParams | str | Path | None = None,
                 spacing: tuple[float, ...] | None = None,
                 extra_images: dict[str, Image] | None = None,
                 frame: str | None = None) -> FeatureResult:
    """Compute features (:func:`compute_features`; ``mask`` may be a graph or centerline
    file, read in ``frame``) and write ``outdir``: ``features.parquet``, ``features.csv``,
    ``features_dictionary.csv``, ``graph.vtp``, ``graph.json``, ``params.yaml`` (resolved
    parameters: re-running with it reproduces the values), ``provenance.json``, plus
    ``extra_images`` (file name → Image, e.g. a generated input). Everything is
    computed before anything is written, and written through a staging folder, so a failure
    leaves ``outdir`` unchanged."""
    from vasomics.features.catalogue import load_catalogue
    from vasomics.io.graphs import write_graph_json, write_graph_vtp
    from vasomics.io.images import write_image
    from vasomics.provenance import provenance_record

    result = compute_features(mask, image=image, region=region, params=params,
                              spacing=spacing, frame=frame)
    inputs = {role: p for role, p in (("mask", mask), ("image", image), ("region", region))
              if isinstance(p, str | Path)}
    with staged_output_dir(outdir) as stage:
        t0 = time.perf_counter()
        result.table.to_parquet(stage / "features.parquet")
        result.table.to_csv(stage / "features.csv")
        with atomic_file(stage / "features_dictionary.csv") as tmp:
            data_dictionary(result.table).to_csv(tmp, index=False)
        write_graph_vtp(result.graph, stage / "graph.vtp")
        write_graph_json(result.graph, stage / "graph.json")
        with atomic_file(stage / "params.yaml") as tmp:
            tmp.write_text(dump_params_yaml(result.params), "utf-8")
        for name, extra in (extra_images or {}).items():
            write_image(extra, stage / name)
        result.seconds["write"] = time.perf_counter() - t0
        record = provenance_record(result.params, inputs, result.seconds)
        record["feature_catalogue_version"] = load_catalogue().catalogue_version
        record["spacing_override_mm"] = None if spacing is None else list(spacing)
        record["centerline_frame"] = frame
        record["spacing_assumed"] = bool(spacing is None and result.mask is not None
                                         and result.mask.metadata.get("spacing_known") is False)
        if result.mask is not None:
            m = result.mask
            record["mask_geometry"] = {"shape": list(m.shape), "spacing_mm": list(m.spacing),
                                       "origin_mm": list(m.origin),
                                       "direction": m.direction.tolist()}
        record["graph"] = {"n_nodes": result.graph.n_nodes,
                           "n_segments": result.graph.n_segments, "ndim": result.graph.ndim}
        with atomic_file(stage / "provenance.json") as tmp:
            tmp.write_text(json.dumps(record, indent=2), "utf-8")
    log.info("features written to %s", outdir)
    return result
