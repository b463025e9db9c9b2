"""Compare extracted centerlines with reference centerlines (e.g. a gold standard).

Both sides are polylines with radii in physical mm. Each is resampled to short, equal steps
(``step_mm``) so that point counts measure length. With KD-trees:

* ``recall``: fraction of the reference length lying within ``tol_mm`` of the extracted
  centerlines (overlap of reference);
* ``far_fraction``: fraction of the extracted length farther than ``tol_mm`` from the
  reference (1 − overlap of extraction);
* ``radius_error_median_mm`` / ``radius_abs_error_median_mm``: median of (extracted − reference)
  radius and of its absolute value, over reference points that have an extracted point within
  ``tol_mm`` (the radius of the nearest extracted point);
* ``mean_distance_mm``: mean distance from extracted points to the reference and
  ``mean_distance_ref_mm`` the other way round (over all points).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from vasomics.vessel_graph import VesselGraph


def resample_polylines(polylines, radii, step_mm: float):
    """Points and radii every ``step_mm`` of arc length along each polyline (ends kept)."""
    pts, rad = [], []
    for p, r in zip(polylines, radii, strict=True):
        p = np.asarray(p, float)
        r = np.broadcast_to(np.asarray(r, float), (len(p),))
        if len(p) < 2:
            continue
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        n = max(2, int(np.ceil(arc[-1] / step_mm)) + 1)
        t = np.linspace(0.0, arc[-1], n)
        pts.append(np.column_stack([np.interp(t, arc, p[:, d]) for d in range(p.shape[1])]))
        rad.append(np.interp(t, arc, r))
    if not pts:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(pts), np.concatenate(rad)


def graph_polylines(graph: VesselGraph):
    """Per-segment point and radius arrays of a graph."""
    return ([graph.segment_points(i) for i in range(graph.n_segments)],
            [graph.segment_radius(i) for i in range(graph.n_segments)])


def compare_centerlines(extracted, reference, *, tol_mm: float = 1.0,
                        step_mm: float = 0.1) -> dict[str, float]:
    """Overlap, distance and radius agreement of two centerline sets (see module docstring).

    ``extracted`` and ``reference`` are each a :class:`VesselGraph` or a pair
    ``(polylines, radii)``.
    """
    if isinstance(extracted, VesselGraph):
        extracted = graph_polylines(extracted)
    if isinstance(reference, VesselGraph):
        reference = graph_polylines(reference)
    ep, er = resample_polylines(*extracted, step_mm)
    rp, rr = resample_polylines(*reference, step_mm)
    d_ref, i_ref = cKDTree(ep).query(rp)
    d_ext, _ = cKDTree(rp).query(ep)
    matched = d_ref <= tol_mm
    err = er[i_ref[matched]] - rr[matched]
    return {
        "reference_length_mm": float(len(rp) * step_mm),
        "extracted_length_mm": float(len(ep) * step_mm),
        "recall": float(np.mean(matched)),
        "far_fraction": float(np.mean(d_ext > tol_mm)),
        "radius_error_median_mm": float(np.median(err)) if err.size else float("nan"),
        "radius_abs_error_median_mm": float(np.median(np.abs(err))) if err.size else float("nan"),
        "mean_distance_mm": float(np.mean(d_ext)),
        "mean_distance_ref_mm": float(np.mean(d_ref)),
    }
