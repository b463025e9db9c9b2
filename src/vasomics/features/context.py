"""The shared, lazily computed intermediate results that feature modules draw on.

A :class:`Context` is built once per extraction; each derived quantity (resampled centerlines,
derivatives, curvature, topology, junction measurements) is computed on first use and reused
by every module, so no measurement is computed twice and modules stay pure functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from vasomics.features import centerline as cl_mod
from vasomics.features.params import FeatureParams
from vasomics.features.topology import Topology, topology
from vasomics.image import Image
from vasomics.vessel_graph import VesselGraph


@dataclass(frozen=True)
class Values:
    """Values of one feature: ``scopes[i]`` (e.g. ``segment:3``) holds ``values[i]``."""

    scopes: np.ndarray
    values: np.ndarray

    @classmethod
    def tree(cls, value: float) -> Values:
        return cls(np.array(["tree"], dtype=object), np.array([float(value)]))


class Context:
    """Inputs of one extraction plus cached intermediate results.

    ``params`` must be resolved (:func:`vasomics.features.params.resolve_params`).
    ``mask_array`` is the boolean vessel mask on ``mask``'s grid (None without a mask);
    ``foreground`` its :class:`~vasomics.features.fractal.Foreground`.
    """

    def __init__(self, graph: VesselGraph, params: FeatureParams, mask: Image | None = None,
                 mask_array: np.ndarray | None = None, region: Image | None = None,
                 region_array: np.ndarray | None = None, image: Image | None = None,
                 foreground=None):
        self.graph = graph
        self.params = params
        self.mask = mask
        self.mask_array = mask_array
        self.region = region
        self.region_array = region_array
        self.image = image
        self.foreground = foreground  # fractal.Foreground of mask_array (indices, shape)

    # ---------------------------------------------------------------- centerlines
    @cached_property
    def centerlines(self) -> cl_mod.Centerlines:
        return cl_mod.resample(self.graph, self.params.sampling_step_mm)

    @cached_property
    def derivatives(self) -> cl_mod.Derivatives:
        return cl_mod.derivatives(self.centerlines, self.params.derivative_window_mm,
                                  self.params.derivative_order)

    @cached_property
    def curvature(self) -> np.ndarray:
        return cl_mod.curvature(self.derivatives)

    @cached_property
    def curved(self) -> np.ndarray:
        """Points whose curvature exceeds the straightness threshold."""
        return self.curvature > self.params.curvature_threshold_per_mm

    @cached_property
    def torsion(self) -> np.ndarray:
        """Signed torsion (1/mm); NaN in 2D and at straight points."""
        if self.graph.ndim != 3:
            return np.full(len(self.curvature), np.nan)
        return np.where(self.curved, cl_mod.torsion(self.derivatives), np.nan)

    @cached_property
    def torsion_smoothed(self) -> np.ndarray:
        """Signed torsion averaged (arc-length weighted, defined points only) over
        ``torsion_window_mm`` centred on each point within its segment; NaN where the
        point's own torsion is undefined."""
        tau = self.torsion
        ok = np.isfinite(tau)
        if not ok.any():
            return tau
        cl = self.centerlines
        w = np.where(ok, self.weights, 0.0)
        key = cl.s + (cl.length.cumsum() - cl.length + 2.0 * self.params.torsion_window_mm
                      * np.arange(cl.n_segments))[cl.segment]  # segments kept apart
        half = 0.5 * self.params.torsion_window_mm
        lo = np.searchsorted(key, key - half, side="left")
        hi = np.searchsorted(key, key + half, side="right")
        cw = np.concatenate([[0.0], np.cumsum(w)])
        ctw = np.concatenate([[0.0], np.cumsum(w * np.where(ok, tau, 0.0))])
        total = cw[hi] - cw[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok & (total > 0), (ctw[hi] - ctw[lo]) / total, np.nan)

    @cached_property
    def weights(self) -> np.ndarray:
        return self.centerlines.weights()

    @cached_property
    def lengths(self) -> np.ndarray:
        """Polyline length (mm) of each segment, from the graph's own points."""
        return self.graph.segment_lengths()

    @cached_property
    def topology(self) -> Topology:
        return topology(self.graph)

    # ------------------------------------------------------------------- scopes
    @cached_property
    def segment_scopes(self) -> np.ndarray:
        return np.array([f"segment:{i}" for i in range(self.graph.n_segments)], dtype=object)

    def segment_values(self, values) -> Values:
        return Values(self.segment_scopes, np.asarray(values, dtype=float))

    # ------------------------------------------------------------------ helpers
    def segment_mean(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """Arc-length weighted mean of per-point ``values`` per segment (only over points
        where ``where`` is true; NaN for segments without such points)."""
        w = self.weights if where is None else np.where(where, self.weights, 0.0)
        values = np.where(w > 0, values, 0.0)
        total = self.centerlines.segment_sum(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, self.centerlines.segment_sum(w * values) / total, np.nan)
