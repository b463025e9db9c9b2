"""Parameters of feature extraction (the ``features`` section of a parameter file).

Every field may be left at ``None`` ("auto"); :func:`resolve_params` then replaces it by a
number derived from the data with the rule stated in the field's description, and the
resolved numbers are what is written next to the outputs, so a re-run with that file gives
the same values.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from vasomics.params import StageParams


class FeatureParams(StageParams):
    """Processing choices that feature values depend on (lengths in mm)."""

    sampling_step_mm: PositiveFloat | None = Field(
        None, description="Arc-length step at which centerlines are resampled before curvature, "
        "torsion, angles, volumes and region measurements. Auto: half the smallest voxel "
        "spacing of the source image (the mask, else graph.metadata['source_spacing']) or, without it, half the "
        "median distance between consecutive centerline points.")
    derivative_window_mm: PositiveFloat | None = Field(
        None, description="Length of the local cubic least-squares (Savitzky-Golay) window "
        "used to differentiate centerlines for curvature and torsion. Auto: the larger of 8 "
        "times the largest voxel spacing (16 times the sampling step without voxel spacing) "
        "and 4 times the median centerline radius (skeleton wander scales with the radius).")
    derivative_order: int = Field(
        3, ge=3, le=5, description="Polynomial order of the local fit (3 = cubic).")
    curvature_threshold_per_mm: PositiveFloat | None = Field(
        None, description="Curvature (1/mm) below which a point counts as straight: its "
        "normal and torsion are undefined and it is skipped when counting inflections. Auto: "
        "0.25 / derivative_window_mm, above the curvature noise measured on straight tubes "
        "extracted from masks (90th percentile ≤ 0.2 / window).")
    inflection_relative_threshold: float = Field(
        0.2, ge=0, lt=1, description="Inflections are counted between points whose curvature "
        "also exceeds this fraction of the segment's 90th-percentile curvature, so the gradual "
        "turn of the binormal through a noisy, nearly straight stretch counts once; lobes "
        "shorter than half the derivative window are dropped (VX.A.S.NINFL).")
    torsion_window_mm: PositiveFloat | None = Field(
        None, description="Signed torsion at a point is the net rotation of the osculating "
        "plane over this arc length centred on it, divided by the length (noise in the "
        "binormal enters only at the window ends), before its absolute value is taken. Auto: "
        "2 × derivative_window_mm.")
    junction_start_radii: PositiveFloat = Field(
        2.0, description="Branch directions and radii at a bifurcation are measured from this "
        "many node radii (arc length) from the node, skipping the blurred junction; the node "
        "radius is the largest radius of the incident segments at the node.")
    junction_length_radii: PositiveFloat = Field(
        4.0, description="Length, in node radii of arc length, of the stretch of each branch over "
        "which its direction (principal axis of the stretch, oriented away from the node) and "
        "radius (mean) are taken. 2 and 4 measured best on mask-derived Y phantoms (angles "
        "within 2°, vs up to 5° with 1 and 2).")
    fractal_min_box_mm: PositiveFloat | None = Field(
        None, description="Smallest box edge for box counting and lacunarity. Auto: the mean "
        "vessel thickness 2(d-1)V/A (a tube's diameter), at least 2 times the largest voxel "
        "spacing.")
    fractal_max_box_mm: PositiveFloat | None = Field(
        None, description="Largest box edge for box counting and lacunarity. Auto: 8 times the "
        "auto smallest edge (three octaves), at most half the mask's radius of gyration.")
    fractal_scales_per_octave: PositiveInt = Field(
        4, le=8, description="Box sizes per doubling, geometrically spaced from the smallest "
        "box edge.")
    lacunarity_boxes: PositiveInt = Field(
        4, le=16, description="Number of gliding-box sizes, geometrically spaced over the "
        "fractal box range, whose lacunarities are averaged.")


def resolve_params(params: FeatureParams, graph=None, mask=None,
                   foreground=None) -> FeatureParams:
    """Replace every ``None`` (auto) field by its data-derived number (see field docs).

    ``graph`` is a :class:`~vasomics.vessel_graph.VesselGraph`, ``mask`` an
    :class:`~vasomics.image.Image`; either may be None when the fields that need it are set.
    ``foreground`` (:class:`~vasomics.features.fractal.Foreground` of the mask) saves
    recomputing the mask's foreground indices.
    """
    spacing = _voxel_spacing(graph, mask)
    update: dict = {}
    step = params.sampling_step_mm
    if step is None:
        if spacing is not None:
            step = 0.5 * min(spacing)
        elif graph is not None and graph.n_segments:
            gaps = np.linalg.norm(np.diff(graph.points, axis=0), axis=1)
            same = np.diff(graph.point_segment()) == 0
            gaps = gaps[same & (gaps > 0)]
            step = 0.5 * float(np.median(gaps)) if gaps.size else 1.0
        else:
            step = 1.0
        update["sampling_step_mm"] = float(step)
    window = params.derivative_window_mm
    if window is None:
        window = 8.0 * max(spacing) if spacing is not None else 16.0 * step
        if graph is not None and graph.n_segments:
            window = max(window, 4.0 * float(np.median(graph.radius)))
        update["derivative_window_mm"] = float(window)
    if params.curvature_threshold_per_mm is None:
        update["curvature_threshold_per_mm"] = 0.25 / window
    if params.torsion_window_mm is None:
        update["torsion_window_mm"] = 2.0 * window
    if mask is not None and (params.fractal_min_box_mm is None
                             or params.fractal_max_box_mm is None):
        from vasomics.features.fractal import default_box_range

        lo, hi = default_box_range(mask.array if foreground is None else foreground,
                                   mask.spacing)
        if params.fractal_min_box_mm is None:
            update["fractal_min_box_mm"] = lo
        if params.fractal_max_box_mm is None:
            update["fractal_max_box_mm"] = hi
    return params.model_copy(update=update)


def _voxel_spacing(graph, mask) -> tuple[float, ...] | None:
    if mask is not None:
        return tuple(mask.spacing)
    if graph is not None:
        for key in ("source_spacing", "spacing"):
            if graph.metadata.get(key) is not None:
                return tuple(float(s) for s in graph.metadata[key])
    return None
