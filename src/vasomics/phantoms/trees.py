"""Branching phantoms: Y-bifurcation, binary trees, a space-filling random tree, and networks
with loops (ring, ladder).

Lengths in mm, angles in degrees. Trees are built in a local frame and placed on a grid by
:func:`~vasomics.phantoms.truth.place_on_grid`; their truth graph carries the construction's
generation and Strahler order.
"""

from __future__ import annotations

import numpy as np

from vasomics.errors import InputError
from vasomics.phantoms.truth import Phantom, place_on_grid


def _line(a, b, step) -> np.ndarray:
    n = max(2, int(np.ceil(np.linalg.norm(np.subtract(b, a)) / step)) + 1)
    return np.linspace(a, b, n)


def _rotate(v, axis, angle) -> np.ndarray:
    """Rodrigues rotation of ``v`` about the unit ``axis`` by ``angle`` radians (3D)."""
    return (v * np.cos(angle) + np.cross(axis, v) * np.sin(angle)
            + axis * np.dot(axis, v) * (1 - np.cos(angle)))


def y_bifurcation(parent_length_mm: float = 25.0, child_lengths_mm=(20.0, 20.0),
                  radii_mm=(2.5, 2.0, 1.6), angles_deg=(30.0, 45.0), spacing=(0.5, 0.5, 0.5),
                  *, rotation=None) -> Phantom:
    """A parent tube along +x ending at the origin and two straight children leaving it at
    ``angles_deg`` from the parent direction, on opposite sides, in the xy plane.

    Truth values: ``angle_child1_deg``, ``angle_child2_deg`` (deviation of each child from
    the parent direction), ``angle_between_children_deg`` (their sum), ``radius_parent_mm``,
    ``radius_child1_mm``, ``radius_child2_mm`` plus the tree counts (3 segments,
    1 bifurcation, 3 endpoints incl. the root).
    """
    ndim = len(spacing)
    a1, a2 = np.deg2rad(angles_deg)
    if not (0 < a1 < np.pi and 0 < a2 < np.pi):
        raise InputError(f"Y-bifurcation angles must be in (0, 180) degrees, got {angles_deg}")
    step = min(spacing) / 4
    o = np.zeros(ndim)
    start = o.copy()
    start[0] = -parent_length_mm
    d1, d2 = o.copy(), o.copy()
    d1[:2] = np.cos(a1), np.sin(a1)
    d2[:2] = np.cos(a2), -np.sin(a2)
    polylines = [_line(start, o, step), _line(o, child_lengths_mm[0] * d1, step),
                 _line(o, child_lengths_mm[1] * d2, step)]
    values = {"angle_child1_deg": float(angles_deg[0]), "angle_child2_deg": float(angles_deg[1]),
              "angle_between_children_deg": float(angles_deg[0] + angles_deg[1]),
              "radius_parent_mm": radii_mm[0], "radius_child1_mm": radii_mm[1],
              "radius_child2_mm": radii_mm[2]}
    return place_on_grid(polylines, radii_mm, [-1, 0, 0], spacing, rotation=rotation,
                         values=values, name="y_bifurcation")


def binary_tree(generations: int = 4, *, root_length_mm: float = 20.0, length_ratio: float = 0.75,
                root_radius_mm: float = 2.0, radius_ratio: float = 2 ** (-1 / 3),
                half_angle_deg: float = 35.0, asymmetry: int = 0, spacing=(0.5, 0.5, 0.5),
                rotation=None) -> Phantom:
    """A binary tree of straight segments.

    The root segment (generation 1) runs along +x. Every non-terminal segment splits into a
    major and a minor child at ``±half_angle_deg`` (asymmetric trees: the major child bends
    0.6×, the minor 1.4× that angle); lengths and radii scale by ``length_ratio`` and
    ``radius_ratio`` per generation. With ``asymmetry = 0`` the tree is full: ``2^g - 1``
    segments and Strahler order ``g``. With ``asymmetry = k > 0`` the minor child's subtree
    is ``k`` generations shallower than the major one's (at least a single terminal segment).
    In 3D the branching plane turns by 90° at every generation; in 2D all lie in the plane.
    """
    if generations < 1 or asymmetry < 0:
        raise InputError("binary tree needs generations >= 1 and asymmetry >= 0")
    ndim = len(spacing)
    step = min(spacing) / 4
    alpha = np.deg2rad(half_angle_deg)
    polylines, radii, parents = [], [], []

    def grow(start, direction, normal, depth, length, radius, parent):
        end = start + length * direction
        idx = len(polylines)
        polylines.append(_line(start, end, step))
        radii.append(radius)
        parents.append(parent)
        if depth <= 1:
            return
        pairs = ((depth - 1, 1.0 if asymmetry == 0 else 0.6),
                 (max(1, depth - 1 - asymmetry), -1.0 if asymmetry == 0 else -1.4))
        for child_depth, factor in pairs:
            if ndim == 3:
                child_dir = _rotate(direction, normal, factor * alpha)
                child_normal = np.cross(child_dir, normal)
                child_normal /= np.linalg.norm(child_normal)
            else:
                c, s = np.cos(factor * alpha), np.sin(factor * alpha)
                child_dir = np.array([c * direction[0] - s * direction[1],
                                      s * direction[0] + c * direction[1]])
                child_normal = normal
            grow(end, child_dir, child_normal, child_depth, length * length_ratio,
                 radius * radius_ratio, idx)

    e0 = np.eye(ndim)[0]
    grow(np.zeros(ndim), e0, np.eye(ndim)[-1], generations, root_length_mm, root_radius_mm, -1)
    return place_on_grid(polylines, radii, parents, spacing, rotation=rotation,
                         name="binary_tree")


def random_tree(shape=(128, 128, 128), spacing=(0.5, 0.5, 0.5), *, generations: int = 8,
                root_radius_mm: float = 2.0, radius_ratio: float = 2 ** (-1 / 3),
                min_radius_mm: float | None = None, bend: float = 0.15,
                seed: int = 0) -> Phantom:
    """A seeded space-filling tree that fills a grid of ``shape`` (NumPy order) and
    ``spacing`` (mm), with ``2^generations - 1`` segments.

    Construction: the root enters at the centre of the low-x face and ends at the centre of
    the domain. Each segment ends at the (jittered) centre of its box; the box is then split
    across its longest side through that point and each half feeds one child, so subtrees
    occupy disjoint boxes and rarely touch. Segments are quadratic Bézier curves bowed
    sideways by ``bend`` × their length; radii follow ``radius_ratio`` per generation (Murray:
    2^(-1/3)), never below ``min_radius_mm`` (default: one voxel). This is the benchmark
    tree; its truth topology assumes no two branches touch, which holds for most seeds at
    benchmark settings but is not guaranteed.
    """
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    spacing_itk = np.asarray(spacing, float)[::-1]
    extent = (np.asarray(shape[::-1]) - 1) * spacing_itk
    rmin = float(min(spacing)) if min_radius_mm is None else float(min_radius_mm)
    margin = root_radius_mm + 2 * max(spacing)
    lo, hi = np.full(ndim, margin), extent - margin
    if np.any(hi <= lo):
        raise InputError(f"grid {shape} at spacing {spacing} mm is too small for the tree")
    step = min(spacing) / 2
    polylines, radii, parents = [], [], []

    def segment(a, b, radius, parent):
        d = b - a
        length = np.linalg.norm(d)
        side = rng.normal(size=ndim)
        side -= d * np.dot(side, d) / max(length**2, 1e-12)
        side /= max(np.linalg.norm(side), 1e-12)
        ctrl = (a + b) / 2 + side * bend * length * rng.uniform(-1, 1)
        n = max(3, int(np.ceil(length / step)) + 1)
        t = np.linspace(0, 1, n)[:, None]
        curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b
        polylines.append(curve)
        radii.append(max(radius, rmin))
        parents.append(parent)
        return len(polylines) - 1

    def grow(start, box_lo, box_hi, depth, radius, parent):
        size = box_hi - box_lo
        end = box_lo + size * rng.uniform(0.35, 0.65, ndim)
        idx = segment(start, end, radius, parent)
        if depth <= 1:
            return
        axis = int(np.argmax(size))
        for half in (0, 1):
            child_lo, child_hi = box_lo.copy(), box_hi.copy()
            if half == 0:
                child_hi[axis] = end[axis]
            else:
                child_lo[axis] = end[axis]
            grow(end, child_lo, child_hi, depth - 1, radius * radius_ratio, idx)

    root_start = (lo + hi) / 2
    root_start[0] = lo[0]
    centre = (lo + hi) / 2
    root_idx = segment(root_start, centre, root_radius_mm, -1)
    if generations > 1:
        axis = int(np.argmax(hi - lo))
        for half in (0, 1):
            child_lo, child_hi = lo.copy(), hi.copy()
            if half == 0:
                child_hi[axis] = centre[axis]
            else:
                child_lo[axis] = centre[axis]
            grow(centre, child_lo, child_hi, generations - 1, root_radius_mm * radius_ratio,
                 root_idx)
    phantom = place_on_grid(polylines, radii, parents, spacing, shape=tuple(shape),
                            name="random_tree")
    fraction = float(np.count_nonzero(phantom.mask.array)) / phantom.mask.array.size
    phantom.truth.values["foreground_fraction"] = fraction
    return phantom


def ring_tube(ring_radius_mm: float = 10.0, radius_mm: float = 1.5, spacing=(0.5, 0.5, 0.5), *,
              rotation=None) -> Phantom:
    """A closed circular tube (torus): one independent loop, no endpoints.

    Truth values: ``length_mm`` = 2 π R, ``n_loops`` = 1, ``curvature_per_mm`` = 1/R.
    """
    ndim = len(spacing)
    n = max(16, int(np.ceil(2 * np.pi * ring_radius_mm / (min(spacing) / 4))))
    t = np.linspace(0, 2 * np.pi, n + 1)
    axis = np.zeros((n + 1, ndim))
    axis[:, 0], axis[:, 1] = ring_radius_mm * np.cos(t), ring_radius_mm * np.sin(t)
    axis[-1] = axis[0]
    values = {"length_mm": 2 * np.pi * ring_radius_mm, "radius_mm": radius_mm,
              "curvature_per_mm": 1 / ring_radius_mm}
    return place_on_grid([axis], [radius_mm], None, spacing, rotation=rotation, values=values,
                         name="ring_tube")


def ladder(rungs: int = 3, *, rail_length_mm: float = 40.0, rail_gap_mm: float = 12.0,
           radius_mm: float = 1.5, spacing=(0.5, 0.5, 0.5), rotation=None) -> Phantom:
    """Two parallel rails joined by ``rungs`` evenly spaced rungs (inside the rail ends):
    ``rungs - 1`` independent loops, ``2 rungs`` bifurcations, 4 endpoints.

    Truth values: ``n_loops``, ``n_bifurcations``, ``n_endpoints``, ``n_segments``
    (``3 rungs + 2``), ``total_length_mm``.
    """
    if rungs < 2:
        raise InputError("a ladder needs at least two rungs")
    ndim = len(spacing)
    step = min(spacing) / 4
    xs = np.linspace(-rail_length_mm / 2, rail_length_mm / 2, rungs + 2)
    polylines = []
    for y in (-rail_gap_mm / 2, rail_gap_mm / 2):
        for a, b in zip(xs[:-1], xs[1:], strict=True):
            pa, pb = np.zeros(ndim), np.zeros(ndim)
            pa[:2], pb[:2] = (a, y), (b, y)
            polylines.append(_line(pa, pb, step))
    for x in xs[1:-1]:
        pa, pb = np.zeros(ndim), np.zeros(ndim)
        pa[:2], pb[:2] = (x, -rail_gap_mm / 2), (x, rail_gap_mm / 2)
        polylines.append(_line(pa, pb, step))
    return place_on_grid(polylines, [radius_mm] * len(polylines), None, spacing,
                         rotation=rotation, name="ladder")
