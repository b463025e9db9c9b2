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

    def near_extrapolated_end(self, reach_mm: float, factor: float | None = None) -> np.ndarray:
        """Points within ``(end_trim_radius_factor + 1) r + reach_mm`` (arc length) of a free
        end on a graph built with ``extend_ends`` (``graph.metadata['graph_params']``; ``r``:
        the segment's median radius). The graph stage re-draws about the last
        ``(f + 1) r`` of a terminal segment along a parabola (fitted to a short stretch of the
        measured centerline, then to the cross-section centres along it), whose local shape
        is less certain than inside; ``reach_mm`` adds the reach of the derivatives that see
        it. ``factor`` replaces ``f + 1``. All false for graphs without that metadata
        (analytic centerlines, imported graphs)."""
        gp = self.graph.metadata.get("graph_params") or {}
        if not gp.get("extend_ends"):
            return np.zeros(len(self.centerlines.s), bool)
        if factor is None:
            factor = float(gp.get("end_trim_radius_factor", 0.0)) + 1.0
        g = self.graph
        seg = g.point_segment()
        order = np.lexsort((g.radius, seg))
        n = np.diff(g.point_offsets)
        lo = g.point_offsets[:-1] + np.maximum(n - 1, 0) // 2
        hi = g.point_offsets[:-1] + n // 2
        r = g.radius[order]
        median = np.where(n > 0, 0.5 * (r[np.minimum(lo, len(r) - 1)]
                                        + r[np.minimum(hi, len(r) - 1)]), 0.0)
        return cl_mod.near_free_end(self.centerlines, g, factor * median + reach_mm)

    @cached_property
    def extrapolated(self) -> np.ndarray:
        """:meth:`near_extrapolated_end` with the reach of half the derivative window."""
        return self.near_extrapolated_end(0.5 * self.params.derivative_window_mm)

    @cached_property
    def drawn_ends(self) -> np.ndarray:
        """Points the graph stage drew without measuring them: within
        ``end_cap_radius_factor`` × ``r`` of a free end when the re-drawn ends were refitted
        to cross-section centres (``end_fit_iterations`` > 0 in the graph parameters: only
        that last stretch is extrapolated), else not :attr:`shape_points` (the former
        parabola through the trimmed skeleton end)."""
        gp = self.graph.metadata.get("graph_params") or {}
        if gp.get("extend_ends") and int(gp.get("end_fit_iterations", 0)) > 0:
            return self.near_extrapolated_end(
                0.0, float(gp.get("end_cap_radius_factor", 0.0)))
        return ~self.shape_points

    @cached_property
    def shape_points(self) -> np.ndarray:
        """Points over which segment means of shape quantities (curvature, torsion, SOAM) are
        taken: the measured ones (not :attr:`extrapolated`), or every point of a segment that
        has no measured point."""
        keep = ~self.extrapolated
        cl = self.centerlines
        has = np.bincount(cl.segment, weights=keep.astype(float), minlength=cl.n_segments) > 0
        return keep | ~has[cl.segment]

    @cached_property
    def torsion_smoothed(self) -> np.ndarray:
        """Signed torsion (1/mm) over ``torsion_window_mm`` centred on each point: the net
        rotation of the osculating plane about the tangent over the steps in the window
        between curved :attr:`shape_points`, divided by their length
        (:func:`~vasomics.features.centerline.windowed_torsion`); NaN in 2D, where the point
        itself is straight and where its window holds no such step."""
        if self.graph.ndim != 3:
            return np.full(len(self.curvature), np.nan)
        phi = cl_mod.plane_rotation(self.centerlines, self.derivatives,
                                    self.curved & self.shape_points)
        tau = cl_mod.windowed_torsion(self.centerlines, phi, self.params.torsion_window_mm)
        return np.where(self.curved, tau, np.nan)

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
