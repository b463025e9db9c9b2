"""Analytic truth of a phantom and the helpers that place a phantom on a voxel grid.

Every generator in :mod:`vasomics.phantoms` returns a :class:`Phantom`: the mask
:class:`~vasomics.image.Image` and a :class:`PhantomTruth` holding

* ``graph``: a :class:`~vasomics.vessel_graph.VesselGraph` of the analytic centerlines
  (physical LPS mm, densely sampled, with the analytic radius per point), its root, and the
  generation and Strahler order of every segment, computed from the construction (not by
  the code under test);
* ``values``: analytic scalars (``length_mm``, ``radius_mm``, ``curvature_per_mm``,
  ``torsion_per_mm``, ``inflection_count``, ``n_segments``, ``n_bifurcations``,
  ``n_endpoints``, ``max_generation``, ``max_strahler``, angles in degrees, ...), whichever
  apply to the phantom.

Lengths are axis lengths: free vessel ends are flat caps (see :mod:`.raster`), so a tube of
axis length ``L`` occupies exactly ``L`` along its axis.

Scoring an image-derived tree against a truth tree: :func:`naming_scores` (per-point,
length-weighted naming accuracy and its confusions) and :func:`scoped_tree_truth` (length
and lumen volume of the part of a truth tree inside a region, rounded ends included);
:func:`liver_tree_truth` gives the CT chain's liver and tree features for a liver CT phantom
at the scope and scale the scan shows (the rule is stated there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.phantoms.raster import rasterize_image
from vasomics.vessel_graph import VesselGraph


@dataclass(frozen=True)
class PhantomTruth:
    """Analytic answers for a phantom: ``graph`` (centerlines, radii, topology) and
    ``values`` (named analytic scalars; see the module docstring)."""

    graph: VesselGraph
    values: dict[str, float] = field(default_factory=dict)


class Phantom(NamedTuple):
    """A generated phantom: unpack as ``mask, truth = phantom``."""

    mask: Image
    truth: PhantomTruth


def rotation_matrix(angles_deg, ndim: int = 3) -> np.ndarray:
    """Rotation matrix from angles in degrees: one angle in 2D; in 3D rotations about
    x, then y, then z (``R = Rz @ Ry @ Rx``)."""
    a = np.deg2rad(np.atleast_1d(np.asarray(angles_deg, float)))
    if ndim == 2:
        c, s = np.cos(a[0]), np.sin(a[0])
        return np.array([[c, -s], [s, c]])
    if a.size != 3:
        raise InputError(f"a 3D rotation needs three angles, got {a.size}")
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(seed: int, ndim: int = 3) -> np.ndarray:
    """A uniformly random rotation matrix (seeded)."""
    rng = np.random.default_rng(seed)
    if ndim == 2:
        return rotation_matrix(rng.uniform(0, 360), 2)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def tree_graph(polylines, radii, parents, *, metadata=None) -> VesselGraph:
    """Truth graph of a tree given per-segment polylines and the parent of each segment.

    ``parents[i]`` is the index of the segment whose end point starts segment ``i`` (``-1``
    for a root segment, whose first point becomes a ``root`` node). Generation is 1 at a
    root segment and one more than the parent's; Strahler order is 1 for terminal segments
    and, for a parent, the largest child order, plus one when two or more children share it.
    """
    parents = np.asarray(parents, dtype=np.int64)
    n = len(parents)
    children = [[] for _ in range(n)]
    for i, p in enumerate(parents):
        if p >= n or p == i:
            raise InputError(f"segment {i} has an invalid parent {p}")
        if p >= 0:
            children[p].append(i)
    positions, kinds = [], []
    start = np.zeros(n, np.int64)
    end = np.zeros(n, np.int64)
    order = _topological_order(parents, children)
    for i in order:
        if parents[i] < 0:
            start[i] = len(positions)
            positions.append(polylines[i][0])
            kinds.append("root")
        else:
            start[i] = end[parents[i]]
        end[i] = len(positions)
        positions.append(polylines[i][-1])
        kinds.append("endpoint" if not children[i] else
                     "bifurcation" if len(children[i]) >= 2 else "anchor")
    generation = np.zeros(n, np.int64)
    for i in order:
        generation[i] = 1 if parents[i] < 0 else generation[parents[i]] + 1
    strahler = np.zeros(n, np.int64)
    for i in order[::-1]:
        orders = [strahler[c] for c in children[i]]
        if not orders:
            strahler[i] = 1
        else:
            top = max(orders)
            strahler[i] = top + 1 if orders.count(top) >= 2 else top
    lengths = [len(p) for p in polylines]
    radii = [np.broadcast_to(np.asarray(r, float), (len(p),)) for p, r in zip(polylines, radii,
                                                                             strict=True)]
    return VesselGraph(node_position=np.array(positions), node_kind=np.array(kinds, object),
                       segment_start=start, segment_end=end,
                       point_offsets=np.concatenate([[0], np.cumsum(lengths)]),
                       points=np.concatenate(polylines), radius=np.concatenate(radii),
                       segment_generation=generation, segment_strahler=strahler,
                       metadata=dict(metadata or {}))


def _topological_order(parents, children) -> list[int]:
    order = [i for i in range(len(parents)) if parents[i] < 0]
    k = 0
    while k < len(order):
        order.extend(children[order[k]])
        k += 1
    if len(order) != len(parents):
        raise InputError("segment parents do not form a tree")
    return order


def tree_values(graph: VesselGraph) -> dict[str, float]:
    """Counts implied by a truth tree graph (segments, bifurcations, endpoints incl. the
    root, generations, Strahler order, total length)."""
    kinds = graph.node_kind
    return {
        "n_segments": float(graph.n_segments),
        "n_bifurcations": float(np.sum(kinds == "bifurcation")),
        "n_endpoints": float(np.sum((kinds == "endpoint") | (kinds == "root"))),
        "max_generation": float(graph.segment_generation.max()),
        "max_strahler": float(graph.segment_strahler.max()),
        "total_length_mm": float(graph.segment_lengths().sum()),
    }


def place_on_grid(polylines, radii, parents, spacing, *, rotation=None, margin_mm=None,
                  values=None, shape=None, origin=None, name: str = "phantom") -> Phantom:
    """Rotate local-frame polylines about the origin, fit a grid around them and rasterize.

    ``polylines`` are in a local frame (mm); ``rotation`` (``(d, d)``) is applied first.
    ``parents`` gives each polyline's parent segment (a tree, see :func:`tree_graph`), or is
    ``None`` for a network whose polylines meet at shared end points (loops allowed).
    Without ``shape``, the grid is the bounding box of the tubes plus ``margin_mm`` (default:
    three voxels) on every side. Free ends (the root start and terminal ends) are flat caps;
    joints are round. ``values`` extend the tree counts in the truth.
    """
    spacing = tuple(float(s) for s in spacing)
    ndim = len(spacing)
    rot = np.eye(ndim) if rotation is None else np.asarray(rotation, float)
    polylines = [np.asarray(p, float) @ rot.T for p in polylines]
    radii = [np.broadcast_to(np.asarray(r, float), (len(p),)).copy()
             for p, r in zip(polylines, radii, strict=True)]
    rmax = max(float(r.max()) for r in radii)
    if shape is None:
        margin = 3 * max(spacing) if margin_mm is None else float(margin_mm)
        allp = np.concatenate(polylines)
        lo = allp.min(axis=0) - rmax - margin
        hi = allp.max(axis=0) + rmax + margin
        itk_spacing = np.asarray(spacing[::-1])
        shape = tuple(int(v) for v in (np.ceil((hi - lo) / itk_spacing) + 1)[::-1])
        origin = tuple(lo)
    if parents is None:  # a network: ends shared by several polylines are joints
        graph = VesselGraph.from_polylines(polylines, radii, merge_tol_mm=1e-6,
                                           metadata={"phantom": name})
        degree = graph.node_degree()
        caps = [(bool(degree[s] == 1), bool(degree[e] == 1))
                for s, e in zip(graph.segment_start, graph.segment_end, strict=True)]
        truth_values = network_values(graph)
    else:
        parents = np.asarray(parents, np.int64)
        has_child = np.zeros(len(parents), bool)
        has_child[parents[parents >= 0]] = True
        caps = [(bool(p < 0), not c) for p, c in zip(parents, has_child, strict=True)]
        graph = tree_graph(polylines, radii, parents, metadata={"phantom": name})
        truth_values = tree_values(graph)
    mask = rasterize_image(polylines, radii, shape, spacing, origin=origin, flat_caps=caps)
    truth_values.update(values or {})
    return Phantom(mask.with_array(mask.array, metadata={"phantom": name}),
                   PhantomTruth(graph=graph, values=truth_values))


def network_values(graph: VesselGraph) -> dict[str, float]:
    """Counts of a truth network: segments, bifurcations (degree >= 3), endpoints
    (degree 1), independent loops (segments - nodes + components), total length."""
    import networkx as nx

    degree = graph.node_degree()
    components = nx.number_connected_components(graph.to_networkx())
    return {
        "n_segments": float(graph.n_segments),
        "n_bifurcations": float(np.sum(degree >= 3)),
        "n_endpoints": float(np.sum(degree == 1)),
        "n_loops": float(graph.n_segments - graph.n_nodes + components),
        "total_length_mm": float(graph.segment_lengths().sum()),
    }


# ------------------------------------------------------- scoring image-derived trees
def naming_scores(named: VesselGraph | None, truth: VesselGraph, tol_mm: float,
                  step_mm: float = 0.5) -> dict:
    """Per-segment naming of an extracted, named graph scored against a named truth graph,
    point by point along the centerlines (length-weighted).

    Both graphs are resampled every ``step_mm`` of arc length. An extracted point is
    *matched* when the nearest truth centerline point lies within ``tol_mm``; it is named
    right when its segment's label equals that truth point's label. Inside a truth branch
    point's lumen (closer to a truth node where segments meet than the largest radius of
    those segments there) the name is ambiguous: any name of a segment meeting at that node
    counts as right. So a segment spanning two truth segments (a missed division) is scored
    for the part lying on each, never all right or all wrong.

    Returns a dict: ``accuracy`` (right / matched length; NaN when nothing matched),
    ``matched`` (matched / extracted length; 0 without a graph), ``confusion``
    (``{(truth name, extracted name): mm}`` over matched points named wrong) and
    ``by_name`` (``{truth name: (matched mm, right mm)}``).
    """
    from scipy.spatial import cKDTree

    from vasomics.chain.compare import resample_polylines

    out = {"accuracy": float("nan"), "matched": 0.0, "confusion": {}, "by_name": {}}
    if named is None or named.n_segments == 0 or truth.n_segments == 0:
        return out
    pts, labels = [], []
    for s in range(truth.n_segments):
        p, _ = resample_polylines([truth.segment_points(s)], [truth.segment_radius(s)],
                                  step_mm)
        pts.append(p)
        labels += [str(truth.segment_label[s])] * len(p)
    tree, labels = cKDTree(np.concatenate(pts)), np.asarray(labels, object)
    # truth nodes where segments meet: position, lumen radius, names there
    meet: dict[int, tuple[float, set]] = {}
    for s in range(truth.n_segments):
        r = truth.segment_radius(s)
        for node, rad in ((int(truth.segment_start[s]), float(r[0])),
                          (int(truth.segment_end[s]), float(r[-1]))):
            big, names = meet.get(node, (0.0, set()))
            meet[node] = (max(big, rad), names | {str(truth.segment_label[s])})
    nodes = [k for k, (_, names) in meet.items() if len(names) > 1]
    node_pos = truth.node_position[nodes] if nodes else np.zeros((0, truth.ndim))
    node_rad = np.array([meet[k][0] for k in nodes])
    node_names = [meet[k][1] for k in nodes]
    node_tree = cKDTree(node_pos) if nodes else None
    right = matched = total = 0.0
    confusion: dict = {}
    by_name: dict = {}
    for s in range(named.n_segments):
        p, _ = resample_polylines([named.segment_points(s)], [named.segment_radius(s)],
                                  step_mm)
        total += len(p)
        d, j = tree.query(p)
        name = str(named.segment_label[s]) if named.segment_label is not None else ""
        for k in np.nonzero(d <= tol_mm)[0]:
            want = labels[j[k]]
            ok = want == name
            if not ok and node_tree is not None:
                near = node_tree.query_ball_point(p[k], float(node_rad.max()))
                ok = any(np.linalg.norm(p[k] - node_pos[n]) <= node_rad[n]
                         and name in node_names[n] for n in near)
            matched += 1
            right += ok
            m, r = by_name.get(want, (0.0, 0.0))
            by_name[want] = (m + step_mm, r + step_mm * ok)
            if not ok:
                confusion[(want, name)] = confusion.get((want, name), 0.0) + step_mm
    out.update(accuracy=float(right / matched) if matched else float("nan"),
               matched=float(matched / total) if total else 0.0, confusion=confusion,
               by_name=by_name)
    return out


def scoped_tree_truth(graph: VesselGraph, lumen: np.ndarray, scope: np.ndarray, grid: Image,
                      step_mm: float = 0.25) -> dict[str, float]:
    """Length, lumen volume and terminal count of a truth tree inside a region, as an image
    of the grid ``grid`` shows them.

    ``lumen``: the tree's voxels (boolean, on ``grid``), ``scope``: the region (boolean).
    ``length_mm`` is the truth centerline length whose points lie in ``scope`` (nearest
    voxel, sampled every ``step_mm``) plus, at every free end of a terminal segment inside
    ``scope``, that end's radius: vessels are rasterized with rounded ends, so the imaged
    lumen runs one radius past the analytic axis end (a tree's root ends, where it joins a
    larger vessel or leaves the region, get nothing). ``volume_mm3`` is the voxel count of
    ``lumen & scope`` times the voxel volume. ``terminals`` counts the tree's endpoints (free
    ends, not its roots) that lie in ``scope``: the ends cut by the region's border are no
    terminal branches.
    """
    from vasomics.features.centerline import resample
    from vasomics.features.maskbased import in_region, length_inside

    length = length_inside(resample(graph, step_mm), grid, scope)
    ends = [s for s in range(graph.n_segments)
            if graph.node_kind[graph.segment_end[s]] == "endpoint"]
    tips = np.array([graph.segment_points(s)[-1] for s in ends]).reshape(-1, grid.ndim)
    caps = float(sum(graph.segment_radius(s)[-1] for s, ok in
                     zip(ends, in_region(tips, grid, scope), strict=True) if ok))
    free = graph.node_position[graph.node_kind == "endpoint"].reshape(-1, grid.ndim)
    return {"length_mm": length + caps, "volume_mm3":
            float(np.count_nonzero(lumen & scope) * np.prod(grid.spacing)),
            "terminals": int(np.count_nonzero(in_region(free, grid, scope)))}


def liver_tree_truth(truth, hilum_margin_mm: float = 12.0) -> dict[tuple[str, str], float]:
    """Truth of the CT chain's liver and tree features for a liver CT phantom
    (:func:`vasomics.phantoms.liver_ct.liver_ct_phantom`'s ``LiverCTTruth``), keyed
    ``(feature_id, scope)`` in the units of :mod:`vasomics.features.liver` (portal and
    hepatic venous trees, and the hepatic arterial tree when the phantom has one), at the
    scope and scale the scan shows:

    * *scope*: the chain measures each tree inside the liver and its hilum, its measured
      liver dilated by ``hilum_margin_mm`` (:func:`vasomics.features.liver.hilum_scope`; the
      default of ``vasomics.chain.liver_vessels.LiverVesselParams``); the truth counts the
      same part of each tree about the true liver: centerline and lumen voxels within
      ``hilum_margin_mm`` of ``truth.mask("liver")``. The superior mesenteric and splenic
      veins and the lower main portal vein lie outside it and are not part of the liver's
      trees;
    * *ends*: tubes are rasterized with rounded ends, so each terminal branch's imaged lumen
      runs one radius beyond its analytic axis end; that radius is added to the length
      (:func:`scoped_tree_truth`);
    * *liver*: the liver parenchyma with its intrahepatic portal and hepatic vessels
      (``truth.mask("liver")``; the IVC, which runs in a groove behind the liver, is not
      liver), the denominator of the volume fraction, length density and distal branch
      richness (the tree's terminals in scope per litre of it);
    * *attenuation*: ``VX.C.T.PV_AORTA_RATIO`` is the ratio of the HU the generator rendered
      in the portal veins and the aorta (``truth.hu``), before blur and noise.
    """
    import edt

    from vasomics.phantoms.liver_ct import LABELS

    grid = truth.labels
    lab = grid.array
    vox = float(np.prod(grid.spacing))
    liver_mask = truth.mask("liver")
    scope = edt.edt(~liver_mask, anisotropy=grid.spacing) <= hilum_margin_mm
    liver = float(np.count_nonzero(liver_mask) * vox)
    out = {("VX.A.T.LIVER_VOL", "tree"): liver / 1e3,
           ("VX.A.T.SPLEEN_VOL", "tree"): float(np.count_nonzero(lab == LABELS["spleen"])
                                                * vox) / 1e3}
    trees = [("portal", truth.portal, "vessel:portal_venous_tree"),
             ("hepatic", truth.hepatic, "vessel:hepatic_venous_tree")]
    if getattr(truth, "artery", None) is not None:
        trees.append(("artery", truth.artery, "vessel:hepatic_arterial_tree"))
    for key, graph, feat in trees:
        t = scoped_tree_truth(graph, lab == LABELS[key], scope, grid)
        out[("VX.A.V.TREE_LEN", feat)] = t["length_mm"]
        out[("VX.A.V.TREE_VOL", feat)] = t["volume_mm3"] / 1e3
        out[("VX.A.V.VESSEL_VOLUME_FRACTION", feat)] = t["volume_mm3"] / liver
        out[("VX.A.V.LENGTH_DENSITY", feat)] = t["length_mm"] / liver
        out[("VX.P.V.DISTAL_RICHNESS", feat)] = t["terminals"] / (liver / 1e6)
    out[("VX.C.T.PV_AORTA_RATIO", "tree")] = truth.hu["portal"] / truth.hu["aorta"]
    return out


def named_diameter_truth(truth) -> dict[tuple[str, str], float]:
    """Truth of ``VX.A.V.NAMED_DIAMETER`` (mm) for every vessel the liver CT phantom names,
    keyed ``("VX.A.V.NAMED_DIAMETER", "vessel:<name>")``: read by
    :func:`vasomics.features.liver.named_diameters` on the generator's own graphs (portal and
    hepatic venous trees, and the hepatic artery when the phantom has one), whose radii are
    the analytic ones. Vessels outside the traced region (the superior mesenteric and
    splenic veins) are named here, and may be absent from the chain's table."""
    from vasomics.features.liver import named_diameters

    graphs = [truth.portal, truth.hepatic, getattr(truth, "artery", None)]
    return {("VX.A.V.NAMED_DIAMETER", f"vessel:{name}"): d for g in graphs if g is not None
            for name, d in named_diameters(g).items()}
