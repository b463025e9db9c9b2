"""The feature registry and the extraction orchestrator.

:data:`MODULES` lists the feature modules; each declares the catalogue ids it provides
(``PROVIDES``) and a pure ``compute(ctx)`` returning, for every feature whose inputs are
present, a :class:`~vasomics.features.context.Values` (scopes and values). The orchestrator
validates inputs, resolves parameters, runs the modules on one shared
:class:`~vasomics.features.context.Context` and checks each result against the catalogue
(ids, scopes, units from the catalogue, nothing missing, nothing extra).

NaN rule: a feature that is computed but undefined for an entity (torsion in 2D, the distance
metric of a loop, angles at a trifurcation, ...) is NaN, as stated in its catalogue entry
(``undefined``). A feature whose *inputs* were not supplied (no mask, region, image or labels)
is left out of the table rather than filled with NaN.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from vasomics.errors import GeometryError, InputError
from vasomics.features import bifurcation, intensity, liver, maskbased, segment, tree, vessel
from vasomics.features.catalogue import load_catalogue
from vasomics.features.context import Context
from vasomics.features.fractal import Foreground
from vasomics.features.params import FeatureParams, resolve_params
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.masks import binary_mask
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)

MODULES = (tree, segment, bifurcation, maskbased, intensity, vessel, liver)
_SCOPE_RANK = {"tree": 0, "vessel": 1, "segment": 2, "bifurcation": 3}


def implemented_ids() -> set[str]:
    """Every catalogue id some module implements."""
    return {fid for module in MODULES for fid in module.PROVIDES}


def available_inputs(graph: VesselGraph, mask=None, region=None, image=None) -> set[str]:
    """The input kinds present (``graph``, ``mask``, ``region``, ``image``, ``labels``)."""
    have = {"graph"}
    for name, value in (("mask", mask), ("region", region), ("image", image)):
        if value is not None:
            have.add(name)
    if np.any(np.asarray(graph.segment_label, dtype=str) != ""):
        have.add("labels")
    return have


def extract_features(graph: VesselGraph, mask: Image | None = None, image: Image | None = None,
                     region: Image | None = None, params: FeatureParams | None = None,
                     *, timings: dict | None = None) -> FeatureTable:
    """All catalogue features of a vessel graph, in long format (see
    :func:`extract_features_with_params`, which also returns the resolved parameters)."""
    return extract_features_with_params(graph, mask, image, region, params,
                                        timings=timings)[0]


def extract_features_with_params(graph: VesselGraph, mask: Image | None = None,
                                 image: Image | None = None, region: Image | None = None,
                                 params: FeatureParams | None = None, *,
                                 timings: dict | None = None
                                 ) -> tuple[FeatureTable, FeatureParams]:
    """All catalogue features of a vessel graph, in long format, and the parameters used
    (every auto value resolved).

    Parameters
    ----------
    graph:
        Centerlines in physical LPS mm with radii (mm).
    mask:
        The binary vessel mask the graph came from (needed for mask volume, fractal
        dimension, lacunarity, volume fraction and tree-level intensity).
    image:
        An intensity image (same grid as ``mask`` when both are given).
    region:
        A binary region mask (e.g. the liver) for volume fraction and length density; same
        grid as ``mask`` when both are given.
    params:
        :class:`FeatureParams`; ``None`` fields are resolved from the data
        (:func:`~vasomics.features.params.resolve_params`).
    timings:
        Optional dict that receives seconds per module.

    Returns
    -------
    (FeatureTable, FeatureParams)
        Rows ``(scope, feature_id, value, unit)``: ``tree``, ``vessel:<label>``,
        ``segment:<index>``, ``bifurcation:<node index>``; the resolved parameters.
    """
    if graph.n_segments == 0:
        raise InputError("vessel graph has no segments: nothing to measure")
    mask_array = region_array = None
    if mask is not None:
        _check_dims(graph, mask, "mask")
        mask_array = binary_mask(mask, mask.metadata.get("path"))
    if region is not None:
        _check_dims(graph, region, "region mask")
        if mask is not None:
            mask.require_same_geometry(region, "region mask", region.metadata.get("path"))
        region_array = binary_mask(region, region.metadata.get("path"), allow_full=True)
    if image is not None:
        _check_dims(graph, image, "image")
        if image.n_channels != 1:
            raise InputError(f"intensity image has {image.n_channels} channels; expected one",
                             image.metadata.get("path"))
        if mask is not None:
            image.require_same_geometry(mask, "mask", mask.metadata.get("path"))
    foreground = None if mask_array is None else Foreground.of(mask_array)
    params = resolve_params(params or FeatureParams(), graph, mask, foreground)
    ctx = Context(graph, params, mask, mask_array, region, region_array, image, foreground)
    have = available_inputs(graph, mask, region, image)
    catalogue = load_catalogue().by_id()
    expected = {fid for fid, f in catalogue.items() if set(f.requires) <= have}
    results = {}
    for module in MODULES:
        t0 = time.perf_counter()
        produced = module.compute(ctx)
        if timings is not None:
            timings[module.__name__.rsplit(".", 1)[-1]] = time.perf_counter() - t0
        unknown = set(produced) - set(module.PROVIDES)
        if unknown:
            raise RuntimeError(f"{module.__name__} produced undeclared features {unknown}")
        results.update(produced)
    missing, extra = expected - set(results), set(results) - expected
    if missing or extra:
        raise RuntimeError(f"feature modules disagree with the catalogue: missing "
                           f"{sorted(missing)}, unexpected {sorted(extra)}")
    return _table(results, catalogue, graph.ndim), params


def _check_dims(graph: VesselGraph, image: Image, what: str) -> None:
    if image.ndim != graph.ndim:
        raise GeometryError(f"{what} is {image.ndim}D but the vessel graph is {graph.ndim}D",
                            image.metadata.get("path"))


def _table(results: dict, catalogue: dict, ndim: int) -> FeatureTable:
    order = {fid: i for i, fid in enumerate(catalogue)}
    frames = []
    for fid, vals in results.items():
        feature = catalogue[fid]
        scopes = np.asarray(vals.scopes, dtype=object)
        kinds = np.array([s.split(":", 1)[0] for s in scopes[:1]])
        if len(scopes) and kinds[0] != feature.scope:
            raise RuntimeError(f"{fid} produced scope {scopes[0]!r}, catalogue says "
                               f"{feature.scope}")
        entity = (np.arange(len(scopes)) if feature.scope in ("segment", "bifurcation", "vessel")
                  else np.zeros(len(scopes), np.int64))
        frames.append(pd.DataFrame({
            "scope": scopes, "feature_id": fid, "value": np.asarray(vals.values, float),
            "unit": feature.unit_for(ndim), "_rank": _SCOPE_RANK[feature.scope],
            "_entity": entity, "_order": order[fid]}))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values(["_rank", "_entity", "_order"], kind="stable")
    return FeatureTable(frame.drop(columns=["_rank", "_entity", "_order"]))
