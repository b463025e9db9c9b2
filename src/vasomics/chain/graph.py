"""Graph building: centerline voxels → :class:`~vasomics.vessel_graph.VesselGraph`.

``mask_to_graph(mask)`` runs :func:`vasomics.chain.skeleton.skeletonize` and then, in order:

1. **Tracing.** Junction voxels (three or more centerline neighbours) that touch each other
   form one bifurcation node at their centroid; voxels with one neighbour are endpoints;
   segments are the voxel paths between nodes; a cycle with no node gets one ``anchor``.
2. **Pruning** (repeated until nothing changes, at most ``prune_rounds`` times):

   * *spurs*: a terminal segment (one end of degree 1, the other of degree ≥ 3) is removed
     when its voxel-path length is below ``spur_radius_factor × r_j + spur_min_voxels × v``,
     where ``r_j`` is the radius at the junction (largest over its voxels) and ``v`` the mean
     voxel size. Such a branch does not reach farther than about half a radius beyond the
     parent's wall: surface bumps and the corner branches thinning leaves at flat vessel
     ends. If every segment at a junction qualifies, the longest is kept. With
     ``root_point_mm``, the terminal segment of the endpoint nearest that point is the
     trunk and is kept however short (a portal trunk cut by the traced region a few
     millimetres past its division);
   * *wall strands* (with ``spur_reach_factor`` > 0; off by default, on in the CT chain): a
     terminal segment whose points all stay within ``spur_reach_factor × r_j`` of the walls
     of the other segments at its junction (distance to their nearest centerline point
     less that point's radius) is removed however long it is: a strand running along a
     noisy lumen's wall, which the length rule keeps (at 0.9 mm voxels in delayed scans,
     8-22 mm strands 2-4 mm outside the portal trunk's lumen);
   * *thin stubs* (with ``thin_spur_reach_factor`` > 0; off by default, on in the CT
     chain): a terminal segment whose median radius is at most ``thin_spur_radius_ratio ×
     r_j`` and which reaches less than ``thin_spur_reach_factor × r_j`` beyond those walls:
     a stub that thin and that short carries no measurable branch (a companion artery's
     remnant, a noise cluster on the wall), however long its path inside the parent;
   * *small loops*: a segment returning to its own node, or the shorter of two segments
     joining the same two nodes, is removed when shorter than
     ``2 r_j + spur_min_voxels × v``: such cycles come from pinholes of the mask, not from
     vessel loops (a loop around a real vessel is at least 2πr long);
   * nodes left with two segments are dissolved and their segments joined.

   With ``break_loops`` (structures known to be trees, such as the liver's venous trees),
   loops that are strands of one lumen are then cut (:meth:`_Network.break_loops`: of
   each independent loop, the segment the maximum spanning forest by median radius leaves
   out, when it runs within twice the two radii of the forest's path between its ends, or
   a segment returning to its own junction within twice the junction's other segments'
   radius of it, or within its own width and a voxel: a pinhole)
   and the spurs this leaves are pruned as above: parallel strands around holes of a noisy
   lumen count a vessel's length twice. Components shorter than
   ``min_component_length_mm`` are dropped afterwards.
3. **Smoothing.** Each segment's voxel path (mm) is resampled at a fixed arc step
   (``resample_step_mm``, default: the smallest voxel size) and smoothed with a Gaussian of
   ``σ = max(smoothing_radius_factor × median radius, smoothing_min_voxels × smallest voxel
   size)``, capped at a quarter of the segment length; the ends are held fixed (odd
   reflection padding). With ``recenter`` (default), every interior point is then moved to
   the centre of its cross-section, found by casting 16 rays in the plane normal to the
   centerline to the mask boundary (:mod:`vasomics.chain._sections`; points whose rays run
   into another vessel stay), and the segment is smoothed again. The radius at each point
   (mm; ``radius_definition``, see :func:`_radius_at`), smoothed with the same kernel, is

   * ``inscribed`` (default): the distance to the nearest background voxel centre (exact,
     anisotropic; outside the grid is background), the radius of the largest inscribed
     sphere as VMTK defines it (its aorta centerline radii: matched within +0.07 mm);
   * ``section_area``: ``sqrt(A / π)``, ``A`` the area of the mask's cross-section (the
     union of its voxel boxes) in the plane normal to the centerline, from 32 rays: the
     radius of the circle of equal lumen area, larger than ``inscribed`` where the lumen is
     flattened (an ellipse of semi-axes a > b: sqrt(a b) against b).

   Both equal the radius of a circular lumen without any half-voxel correction: on tube
   phantoms of 1-5 voxels radius (iso- and anisotropic voxels, random orientations) the
   median error is at most 0.36 voxel (``inscribed``) and 0.14 voxel (``section_area``)
   (``benchmarks/bench_radius_definition.py``, ``tests/test_radius.py``).
   (Radii are measured after the next step.) Bifurcation nodes are moved to where their
   branches' axes meet (``relocate_bifurcations``): thinning branches off a radius or so
   downstream of that point, which shortens branches and blunts angles (details in
   :func:`_relocate_bifurcations`).
4. **End correction.** Thinning stops about one radius short of a vessel's end, often bending
   towards the rim of the end face (within about √2 r of the tip). A terminal segment
   therefore loses its points closer to the tip than ``end_trim_radius_factor`` × its median
   radius ``r`` (at most half its points) and is then continued from the new tip along the
   parabola (per coordinate, in arc length) fitted to its last ``max(2 r, 3 v)`` of arc
   length, shifted to pass through the tip, up to the mask boundary, taken as the face of the first background
   voxel on that ray (probed every quarter of the smallest voxel; on segments at most
   ``end_side_max_radius_voxels`` smallest voxels in median radius a probe also counts as
   inside while a point ``end_side_tolerance_voxels`` across the curve lies in the mask, so
   a curve slightly off the axis of a lumen about one voxel in radius does not leave it
   sideways at once). The parabola is then
   refitted ``end_fit_iterations`` times to those points and the centres of the
   cross-sections along it (every half smallest voxel, rays in its normal plane as in
   recentring) up to ``end_cap_radius_factor`` × ``r`` before the boundary, where the flat
   end face starts to cut the sections (:func:`vasomics.chain._sections.trace_end`): the
   re-drawn end follows the mask's walls, and only that last stretch is extrapolated. A vessel's length is thus its extent in the
   mask: the axis length for a flat (cut) end, axis length plus the cap for a rounded end.
   On those thin segments, where the re-drawn end does not reach past the dropped skeleton
   end (along its own direction), the skeleton end is kept.
5. **Root, generation, Strahler.** Per connected component the root is the endpoint whose
   terminal segment has the largest median radius (components without endpoints start
   from their widest node). With ``root_point_mm`` (where the tree starts: a portal trunk,
   the IVC the hepatic veins drain into), every component is rooted at the widest terminal
   segment (median radius) among its endpoint nearest the point and its endpoints whose
   terminal segment's lumen holds the point (a centerline point within its radius of it):
   a point at a trunk's division lies nearer a side branch's tip than the trunk's end, and
   a hepatic vein cut off from the others at the IVC drains at its end nearest the IVC,
   however wide a peripheral branch is (components without endpoints start from their node
   nearest the point). A breadth-first search from the root gives each
   segment its generation (root segment 1, +1 per branching). Strahler order is computed on
   that search tree (terminal 1; max child order, +1 when two children share it); a segment
   that closes a loop is treated as a terminal branch of the node it was reached from.

All positions are physical LPS mm (:meth:`vasomics.image.Image.index_to_physical`).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from typing import Literal

import numpy as np
from pydantic import Field

from vasomics.chain._trace import trace
from vasomics.chain.skeleton import Skeleton, SkeletonParams, skeletonize
from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.params import StageParams, params_dict
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)


#: A ring ending a vessel (a junction with one other segment) is a strand of that vessel's
#: lumen, not its branches joined, when its median radius is at most this fraction of the
#: vessel's (:meth:`_Network.break_loops`).
THIN_RING_RATIO = 0.4


class GraphParams(StageParams):
    """Parameters of graph building (see the module docstring for each step)."""

    spur_radius_factor: float = Field(
        1.5, ge=0, description="Spur rule: a terminal branch shorter than this many junction "
        "radii (plus spur_min_voxels voxels) is removed.")
    spur_min_voxels: float = Field(
        2.0, ge=0, description="Spur rule: constant part of the threshold, in mean voxel sizes.")
    prune_rounds: int = Field(10, ge=0, description="Maximum pruning rounds (0: no pruning).")
    min_component_length_mm: float = Field(
        0.0, ge=0, description="Drop connected components whose total centerline length (mm) "
        "is below this; 0 keeps all.")
    resample_step_mm: float | None = Field(
        None, gt=0, description="Arc-length step (mm) of the output centerline points; "
        "default: the smallest voxel size.")
    smoothing_radius_factor: float = Field(
        1.0, ge=0, description="Gaussian smoothing sigma as a multiple of the segment's "
        "median radius.")
    smoothing_min_voxels: float = Field(
        1.0, ge=0, description="Lower bound of the smoothing sigma in smallest voxel sizes "
        "(0 with smoothing_radius_factor 0 disables smoothing).")
    radius_definition: Literal["inscribed", "section_area"] = Field(
        "inscribed", description="Radius at each centerline point: 'inscribed' = distance to "
        "the nearest background voxel centre (largest inscribed sphere, as VMTK's "
        "MaximumInscribedSphereRadius); 'section_area' = sqrt(A/pi) of the mask's "
        "cross-section area A in the plane normal to the centerline (equals 'inscribed' for "
        "circular lumens, larger for flattened ones).")
    recenter: bool = Field(
        True, description="Move smoothed centerline points to the centre of their "
        "cross-section (ray casting in the normal plane), then smooth again.")
    relocate_bifurcations: bool = Field(
        True, description="Move each bifurcation node to the point nearest to its branches' "
        "axes (extrapolated from beyond the junction) and join the branches to it straight.")
    extend_ends: bool = Field(
        True, description="Re-draw terminal segments up to the mask boundary (trimmed, then "
        "continued along a parabola fitted to their end and refitted to cross-section "
        "centres).")
    end_trim_radius_factor: float = Field(
        1.5, ge=0, description="Before extending, drop the points of a terminal segment "
        "closer to its tip than this many median radii (where thinning bends towards the "
        "rim of the vessel end).")
    end_fit_iterations: int = Field(
        3, ge=0, description="Times the end parabola is refitted to the centres of the "
        "cross-sections along it (ray casting normal to it), so the re-drawn end follows "
        "the mask's walls; 0: the parabola through the trimmed skeleton end.")
    end_cap_radius_factor: float = Field(
        0.5, ge=0, description="The end refit leaves out the sections closer to the mask "
        "boundary than this many median radii (the flat end face cuts them); that last "
        "stretch alone is extrapolated.")
    end_side_tolerance_voxels: float = Field(
        0.5, ge=0, description="While following the re-drawn end to the mask boundary, a "
        "probe counts as inside while it or a point this many smallest voxels from it "
        "across the curve lies in the mask (vessels about one voxel in radius, whose "
        "voxelized lumen a slightly tilted curve leaves sideways); 0: the probe alone.")
    end_side_max_radius_voxels: float = Field(
        2.0, ge=0, description="end_side_tolerance_voxels, and keeping the skeleton end where "
        "the re-drawn end falls short of it, apply only to segments whose median radius is "
        "at most this many smallest voxels (wider lumens are not left sideways; there the "
        "tolerance would carry a curve past an oblique end face).")
    spur_reach_factor: float = Field(
        0.0, ge=0, description="Also a spur: a terminal segment whose points all stay "
        "within this many junction radii of the walls of the other segments at its junction, "
        "however long (a strand running along a noisy lumen's wall); 0: off.")
    thin_spur_reach_factor: float = Field(
        0.0, ge=0, description="Also a spur: a terminal segment at most "
        "thin_spur_radius_ratio times as wide as its junction that reaches less than this "
        "many junction radii beyond the walls of the other segments there; 0: off.")
    thin_spur_radius_ratio: float = Field(
        0.6, ge=0, le=1, description="Thin-stub rule: the largest ratio of the segment's "
        "median radius to the junction radius that counts as thin.")
    break_loops: bool = Field(
        False, description="Cut the loops left after pruning whose thinnest segment runs "
        "within twice the two radii of the rest of the loop (strands around a hole of the "
        "lumen), then prune again: for structures known to be trees.")
    root_point_mm: tuple[float, ...] | None = Field(
        None, description="Physical LPS point (mm) near the wanted root; default: per "
        "component, the endpoint of the widest terminal segment.")


def mask_to_graph(mask: Image, params: GraphParams | None = None, *,
                  skeleton_params: SkeletonParams | None = None, path=None) -> VesselGraph:
    """Binary vessel mask (2D or 3D, any spacing and orientation) → :class:`VesselGraph`.

    Centerline points and node positions are physical LPS mm; radii in mm. ``path`` names the
    mask file in error messages.
    """
    params = params or GraphParams()
    skeleton = skeletonize(mask, skeleton_params, path=path)
    graph = skeleton_to_graph(skeleton, params)
    meta = dict(graph.metadata)
    meta["skeleton_params"] = params_dict(skeleton_params or SkeletonParams())
    return graph.replace(metadata=meta)


def skeleton_to_graph(skeleton: Skeleton, params: GraphParams | None = None) -> VesselGraph:
    """Build the graph from a :class:`~vasomics.chain.skeleton.Skeleton` (steps 1–5)."""
    params = params or GraphParams()
    mask = skeleton.mask
    spacing = np.asarray(mask.spacing, float)
    if params.root_point_mm is not None and len(params.root_point_mm) != mask.ndim:
        raise InputError(f"root_point_mm {params.root_point_mm} needs {mask.ndim} coordinates")
    net = _Network.from_skeleton(skeleton)
    stats = net.prune(params, float(spacing.mean()))
    if params.break_loops:
        broken = net.break_loops(float(spacing.mean()))
        if broken:
            again = net.prune(params, float(spacing.mean()))
            stats = {k: stats[k] + again[k] for k in stats}
        stats["broken_loops"] = broken
    net.drop_short_components(params.min_component_length_mm)
    step = params.resample_step_mm or float(spacing.min())
    medians = _medians(net.radii)
    sigmas = _sigmas(medians, params, spacing, step)
    polylines = _smooth_all([_resample(p, step) for p in net.points], sigmas, odd=True)
    if params.recenter:
        polylines = _smooth_all(_recenter(mask, polylines, medians), sigmas, odd=True)
    seg_a, seg_b = np.array(net.seg_a, np.int64), np.array(net.seg_b, np.int64)
    node_pos = net.node_pos.copy()
    degree = np.bincount(np.concatenate([seg_a, seg_b]), minlength=len(node_pos))
    if params.relocate_bifurcations:
        _relocate_bifurcations(polylines, seg_a, seg_b, node_pos, net.node_r, degree, step,
                               float(spacing.mean()))
    radii = [r[:, 0] for r in _smooth_all([r[:, None] for r in _radius_at(
        mask, polylines, medians, params.radius_definition)],
                                          sigmas, odd=False)]
    if params.extend_ends:
        for s in range(len(polylines)):
            for at_end, node in ((False, seg_a[s]), (True, seg_b[s])):
                if degree[node] == 1:
                    polylines[s], radii[s] = _extend(polylines[s], radii[s], at_end, mask,
                                                     step, float(spacing.mean()),
                                                     float(medians[s]), params)
                    node_pos[node] = polylines[s][-1 if at_end else 0]
    graph = _assemble(node_pos, seg_a, seg_b, polylines, radii, params)
    meta = {
        "source_shape": list(mask.shape), "source_spacing": list(mask.spacing),
        "source_origin": list(mask.origin), "source_direction": mask.direction.tolist(),
        "graph_params": params_dict(params), **stats,
    }
    return graph.replace(metadata=meta)


def measure_radii(graph: VesselGraph, mask: Image, params: GraphParams) -> VesselGraph:
    """``graph`` with the radius at each centerline point measured again on ``mask`` (the
    binary mask it was traced from, same grid) by ``params.radius_definition`` and smoothed
    with the graph stage's kernel (σ from ``smoothing_radius_factor`` × the segment's median
    radius, at least ``smoothing_min_voxels`` smallest voxels). Points, nodes and labels are
    kept: a tree traced and named on one radius definition reports another (the CT chain
    names on ``inscribed`` radii and reports ``section_area`` ones)."""
    if graph.n_segments == 0:
        return graph
    spacing = np.asarray(mask.spacing, float)
    polylines = [graph.segment_points(s) for s in range(graph.n_segments)]
    medians = _medians([graph.segment_radius(s) for s in range(graph.n_segments)])
    sigmas = _sigmas(medians, params, spacing, params.resample_step_mm or float(spacing.min()))
    radii = [r[:, 0] for r in _smooth_all([r[:, None] for r in _radius_at(
        mask, polylines, medians, params.radius_definition)], sigmas, odd=False)]
    meta = dict(graph.metadata)
    meta["graph_params"] = {**meta.get("graph_params", {}),
                            "radius_definition": params.radius_definition}
    return graph.replace(radius=np.concatenate(radii), metadata=meta)


class _Network:
    """Mutable node/segment lists used while pruning (physical mm)."""

    def __init__(self, node_pos, node_r, seg_a, seg_b, points, radii):
        self.node_pos = node_pos
        self.node_r = node_r
        self.seg_a, self.seg_b = list(seg_a), list(seg_b)
        self.points, self.radii = list(points), list(radii)

    @classmethod
    def from_skeleton(cls, sk: Skeleton) -> _Network:
        if sk.n_voxels == 0:
            raise InputError("mask has no centerline voxels")
        node_of, n_nodes, seg_nodes, offsets, path = trace(sk.adj_offsets, sk.adj)
        phys = sk.mask.index_to_physical(sk.indices)
        is_node = node_of >= 0
        counts = np.bincount(node_of[is_node], minlength=n_nodes).astype(float)
        node_idx = np.zeros((n_nodes, sk.indices.shape[1]))
        for d in range(node_idx.shape[1]):
            node_idx[:, d] = np.bincount(node_of[is_node], weights=sk.indices[is_node, d],
                                         minlength=n_nodes) / np.maximum(counts, 1)
        node_pos = sk.mask.index_to_physical(node_idx)
        node_r = np.zeros(n_nodes)
        np.maximum.at(node_r, node_of[is_node], sk.radius[is_node])
        points, radii = [], []
        for s in range(len(seg_nodes)):
            ids = path[offsets[s]:offsets[s + 1]]
            p = phys[ids]
            p[0], p[-1] = node_pos[seg_nodes[s, 0]], node_pos[seg_nodes[s, 1]]
            points.append(p)
            radii.append(sk.radius[ids])
        return cls(node_pos, node_r, seg_nodes[:, 0], seg_nodes[:, 1], points, radii)

    # ------------------------------------------------------------ pruning
    def _length(self, s: int) -> float:
        return float(np.linalg.norm(np.diff(self.points[s], axis=0), axis=1).sum())

    def _degree(self) -> np.ndarray:
        return np.bincount(np.array(self.seg_a + self.seg_b, np.int64),
                           minlength=len(self.node_pos))

    def prune(self, params: GraphParams, voxel: float) -> dict:
        spurs = loops = 0
        self._merge_degree_two()
        for _ in range(params.prune_rounds):
            degree = self._degree()
            lengths = [float(np.sum(np.sqrt(np.sum(np.diff(p, axis=0) ** 2, axis=1))))
                       for p in self.points]
            remove: set[int] = set()
            by_junction: dict[int, list[int]] = defaultdict(list)
            pairs: dict[tuple[int, int], list[int]] = defaultdict(list)
            kept = self._root_end(params.root_point_mm, degree)
            incident: dict[int, list[int]] = defaultdict(list)
            if params.spur_reach_factor > 0 or params.thin_spur_reach_factor > 0:
                for s, (a, b) in enumerate(zip(self.seg_a, self.seg_b, strict=True)):
                    incident[a].append(s)
                    incident[b].append(s)
            for s, (a, b) in enumerate(zip(self.seg_a, self.seg_b, strict=True)):
                pairs[(min(a, b), max(a, b))].append(s)
                if a == b:
                    if lengths[s] < 2 * self.node_r[a] + params.spur_min_voxels * voxel:
                        remove.add(s)
                        loops += 1
                    continue
                j = b if degree[a] == 1 and degree[b] >= 3 else \
                    a if degree[b] == 1 and degree[a] >= 3 else -1
                if j < 0 or kept in (a, b):
                    continue
                limit = params.spur_radius_factor * self.node_r[j] + \
                    params.spur_min_voxels * voxel
                reach_limit = self._reach_limit(s, j, params)
                if lengths[s] < limit or (reach_limit > 0 and
                                          self._reach(s, incident[j]) < reach_limit):
                    by_junction[j].append(s)
            for (a, b), segs in pairs.items():
                if a != b and len(segs) > 1:
                    segs = sorted(segs, key=lambda s: lengths[s])
                    limit = 2 * max(self.node_r[a], self.node_r[b]) + params.spur_min_voxels * voxel
                    for s in segs[:-1]:
                        if lengths[s] < limit and s not in remove:
                            remove.add(s)
                            loops += 1
            for j, segs in by_junction.items():
                segs = sorted(s for s in segs if s not in remove)
                segs.sort(key=lambda s: lengths[s])
                if len(segs) >= degree[j]:
                    segs = segs[:-1]
                remove.update(segs)
                spurs += len(segs)
            if not remove:
                break
            self._remove(remove)
            self._merge_degree_two()
        return {"pruned_spurs": spurs, "removed_small_loops": loops}

    def _reach_limit(self, s: int, j: int, params: GraphParams) -> float:
        """The reach (mm) under which terminal segment ``s`` at junction ``j`` is a wall
        strand or a thin stub (0: neither rule applies)."""
        factor = params.spur_reach_factor
        if np.median(self.radii[s]) <= params.thin_spur_radius_ratio * self.node_r[j]:
            factor = max(factor, params.thin_spur_reach_factor)
        return factor * self.node_r[j]

    def _reach(self, s: int, at_junction: list[int]) -> float:
        """How far terminal segment ``s`` reaches beyond the walls of the other segments at
        its junction (mm): the largest, over its points, of the distance to the nearest
        point of those segments less that point's radius."""
        from scipy.spatial import cKDTree

        others = [t for t in at_junction if t != s]
        if not others:
            return np.inf
        pts = np.concatenate([self.points[t] for t in others])
        rad = np.concatenate([self.radii[t] for t in others])
        d, i = cKDTree(pts).query(self.points[s])
        return float(np.max(d - rad[i]))

    def break_loops(self, voxel: float) -> int:
        """Cut the loops that are strands of one lumen: the maximum spanning forest by
        segment median radius (Kruskal; ties: the longer segment first) leaves out one
        segment per independent loop; it is removed when every point of it lies within
        ``2 (r_s + r_p) + voxel`` of the forest's path between its ends (``r_s``: its median
        radius, ``r_p``: the largest on the path), so the loop encloses no more than a hole
        as wide as the strands (two strands around a hole of width ``w`` run ``w + r_s +
        r_p`` apart). A segment returning to its own junction (its loop's other nodes
        dissolved) is removed when it stays within ``2 r_p + voxel`` of that junction,
        ``r_p`` the largest median radius of the junction's other segments (at least two): a
        strand around a hole of the junction's lumen; a wider loop through a node is distinct
        vessels that touch elsewhere, and a ring ending a vessel (a node with one other
        segment) may be its branches joined, unless its median radius is at most
        :data:`THIN_RING_RATIO` of that segment's (phantom 622 at 160×320×320: a ring of
        voxel-path radius 1.1 mm ending a hepatic vein of 3.9 mm, 3 mm from its node, a
        pinhole strand at its end, ratio 0.29; 548's right posterior portal vein at 2.4 mm
        voxels, drawn as a ring ending the right portal vein, 1.9 mm against 3.7, 0.51),
        or unless it stays within ``2 r_s + voxel`` of its junction (``r_s`` its own median
        radius): it then encloses a hole under a voxel wide, a pinhole whatever the ratio
        (phantom 628 with the hepatic artery at 0.9 mm voxels: a ring of voxel-path radius
        0.9 mm reaching 2 mm out ended the left hepatic vein, ratio 0.7). Loops between
        distinct vessels (a contact) are kept. Nodes left with two segments are dissolved.
        Returns the number of segments removed."""
        from scipy.spatial import cKDTree

        order = sorted(range(len(self.seg_a)), key=lambda s: (
            -float(np.median(self.radii[s])), -self._length(s)))
        parent = list(range(len(self.node_pos)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        forest: dict[int, list[tuple[int, int]]] = defaultdict(list)
        closing = []
        for s in order:
            a, b = self.seg_a[s], self.seg_b[s]
            ra, rb = find(a), find(b)
            if ra == rb:
                closing.append(s)
            else:
                parent[ra] = rb
                forest[a].append((b, s))
                forest[b].append((a, s))
        at_node: dict[int, list[int]] = defaultdict(list)
        for t, (a, b) in enumerate(zip(self.seg_a, self.seg_b, strict=True)):
            if a != b:
                at_node[a].append(t)
                at_node[b].append(t)
        remove = set()
        for s in closing:
            a, b = self.seg_a[s], self.seg_b[s]
            if a == b:  # returning to its own junction: around a hole of the junction's lumen?
                far = np.linalg.norm(self.points[s] - self.node_pos[a], axis=1).max()
                r_s = float(np.median(self.radii[s]))
                r_p = max((float(np.median(self.radii[t])) for t in at_node[a]), default=0.0)
                strand = len(at_node[a]) >= 2 or r_s <= THIN_RING_RATIO * r_p
                pinhole = far <= 2 * r_s + voxel
                if at_node[a] and ((strand and far <= 2 * r_p + voxel) or pinhole):
                    remove.add(s)
                continue
            path = _forest_path(forest, a, b)
            if not path:
                continue
            pts = np.concatenate([self.points[t] for t in path])
            reach = 2 * (float(np.median(self.radii[s])) + max(
                float(np.median(self.radii[t])) for t in path)) + voxel
            if cKDTree(pts).query(self.points[s])[0].max() <= reach:
                remove.add(s)
        if remove:
            self._remove(remove)
            self._merge_degree_two()
        return len(remove)

    def _root_end(self, root_point_mm, degree) -> int:
        """The endpoint nearest ``root_point_mm`` (-1 without one): the root's terminal
        segment is the tree's trunk, however short the image cuts it, never a spur."""
        ends = np.flatnonzero(degree == 1)
        if root_point_mm is None or not len(ends):
            return -1
        d = np.linalg.norm(self.node_pos[ends] - np.asarray(root_point_mm, float), axis=1)
        return int(ends[np.argmin(d)])

    def _remove(self, remove: set[int]) -> None:
        keep = [s for s in range(len(self.seg_a)) if s not in remove]
        self.seg_a = [self.seg_a[s] for s in keep]
        self.seg_b = [self.seg_b[s] for s in keep]
        self.points = [self.points[s] for s in keep]
        self.radii = [self.radii[s] for s in keep]

    def _merge_degree_two(self) -> None:
        """Join the two segments at every node of degree 2 (unless it only closes a loop)."""
        incident: dict[int, list[int]] = defaultdict(list)
        for s, (a, b) in enumerate(zip(self.seg_a, self.seg_b, strict=True)):
            incident[a].append(s)
            incident[b].append(s)
        dead: set[int] = set()
        for node in list(incident):
            segs = incident[node]
            if len(segs) != 2 or segs[0] == segs[1]:
                continue
            s1, s2 = segs
            p1, r1 = self._oriented(s1, end_at=node)
            p2, r2 = self._oriented(s2, start_at=node)
            a = self.seg_b[s1] if self.seg_a[s1] == node else self.seg_a[s1]
            b = self.seg_b[s2] if self.seg_a[s2] == node else self.seg_a[s2]
            self.seg_a[s1], self.seg_b[s1] = a, b
            self.points[s1] = np.concatenate([p1, p2[1:]])
            self.radii[s1] = np.concatenate([r1, r2[1:]])
            dead.add(s2)
            incident[b] = [s1 if s == s2 else s for s in incident[b]]
            incident[node] = []
        if dead:
            self._remove(dead)

    def _oriented(self, s: int, *, end_at: int | None = None, start_at: int | None = None):
        p, r = self.points[s], self.radii[s]
        flip = (end_at is not None and self.seg_b[s] != end_at) or \
            (start_at is not None and self.seg_a[s] != start_at)
        return (p[::-1], r[::-1]) if flip else (p, r)

    def drop_short_components(self, min_length: float) -> None:
        if min_length <= 0 or not self.seg_a:
            return
        labels = _components(len(self.node_pos), np.array(self.seg_a), np.array(self.seg_b))
        total = defaultdict(float)
        for s, a in enumerate(self.seg_a):
            total[labels[a]] += self._length(s)
        self._remove({s for s, a in enumerate(self.seg_a) if total[labels[a]] < min_length})


def _forest_path(forest: dict[int, list[tuple[int, int]]], a: int, b: int) -> list[int]:
    """Segments on the path from node ``a`` to node ``b`` in a forest given as adjacency
    ``node -> [(neighbour, segment)]`` (breadth-first; empty when ``a == b`` or not
    connected)."""
    if a == b:
        return []
    came = {a: (-1, -1)}
    queue = [a]
    while queue and b not in came:
        nxt = []
        for n in queue:
            for m, s in forest.get(n, ()):
                if m not in came:
                    came[m] = (n, s)
                    nxt.append(m)
        queue = nxt
    if b not in came:
        return []
    path, n = [], b
    while n != a:
        n, s = came[n]
        path.append(s)
    return path


def _sigmas(medians: np.ndarray, params: GraphParams, spacing: np.ndarray,
            step: float) -> np.ndarray:
    """Smoothing σ per segment, in samples of ``step`` mm: ``smoothing_radius_factor`` ×
    its median radius, at least ``smoothing_min_voxels`` smallest voxels."""
    return np.maximum(params.smoothing_radius_factor * medians,
                      params.smoothing_min_voxels * float(spacing.min())) / step


def _medians(arrays) -> np.ndarray:
    """Median of each array in a list, in one sort."""
    if not arrays:
        return np.zeros(0)
    sizes = np.array([len(a) for a in arrays])
    owner = np.repeat(np.arange(len(arrays)), sizes)
    values = np.concatenate(arrays)
    order = np.lexsort((values, owner))
    values = values[order]
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return 0.5 * (values[start + (sizes - 1) // 2] + values[start + sizes // 2])


def _components(n_nodes: int, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = coo_matrix((np.ones(len(seg_a)), (seg_a, seg_b)), shape=(n_nodes, n_nodes))
    return connected_components(m, directed=False)[1]


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline at a uniform arc step (mm); the ends are kept."""
    seg = np.sqrt(np.sum(np.diff(points, axis=0) ** 2, axis=1))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    length = arc[-1]
    if length <= 0:
        return points[[0, -1]]
    n = max(2, int(round(length / step)) + 1)
    t = np.linspace(0.0, length, n)
    return np.column_stack([np.interp(t, arc, points[:, d]) for d in range(points.shape[1])])


def _smooth_all(arrays, sigmas, *, odd: bool) -> list[np.ndarray]:
    """Gaussian smoothing of each ``(n_i, d)`` array along its rows with σ = ``sigmas[i]``
    samples (see :mod:`vasomics.chain._polyline`): ``odd`` reflection keeps the end values
    (positions), even reflection suits per-point quantities (radii)."""
    from vasomics.chain._polyline import smooth_csr

    if not arrays:
        return []
    sizes = np.array([len(a) for a in arrays])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    out = smooth_csr(np.concatenate(arrays).astype(float), offsets,
                     np.asarray(sigmas, float), odd)
    return np.split(out, offsets[1:-1])


def _section_frame(mask: Image, polylines, medians):
    """Centerline points and unit tangents in the grid frame of the section kernels
    (:mod:`vasomics.chain._sections`: NumPy index × spacing, 3D; a 2D mask becomes one slice
    of a 3D grid), with the array, spacing, per-point ray bound ``3 r + 3 v`` (``r``: the
    segment's median radius, ``v``: mean voxel size), rays per section and recentring gain."""
    sizes = [len(p) for p in polylines]
    points = np.concatenate(polylines)
    tangents = np.concatenate([np.gradient(p, axis=0) if len(p) > 1 else np.zeros_like(p)
                               for p in polylines])
    norm = np.linalg.norm(tangents, axis=1, keepdims=True)
    tangents = np.divide(tangents, norm, out=np.zeros_like(tangents), where=norm > 0)
    grid = ((points - np.asarray(mask.origin)) @ mask.direction)[:, ::-1]
    tgrid = (tangents @ mask.direction)[:, ::-1]
    spacing = np.asarray(mask.spacing, float)
    array = mask.array
    if mask.ndim == 2:  # two rays across the vessel, in the plane
        grid = np.column_stack([np.zeros(len(grid)), grid])
        tgrid = np.column_stack([np.zeros(len(tgrid)), tgrid])
        spacing = np.concatenate([[1e9], spacing])
        array = array[None]
        n_rays, gain = 2, 1.0
    else:
        n_rays, gain = 16, 2.0
    voxel = float(np.mean(mask.spacing))
    max_len = np.repeat(3 * np.asarray(medians, float) + 3 * voxel, sizes)
    return grid, tgrid, array, spacing, max_len, n_rays, gain


def _recenter(mask: Image, polylines, medians) -> list[np.ndarray]:
    """Move interior centerline points to the centre of their cross-section (see
    :mod:`vasomics.chain._sections`); segment end points stay."""
    from vasomics.chain._sections import recenter

    if not polylines:
        return []
    grid, tgrid, array, spacing, max_len, n_rays, gain = _section_frame(mask, polylines,
                                                                         medians)
    moved_grid, _ = recenter(array, grid, tgrid, spacing, max_len, n_rays, gain)
    local = moved_grid[:, ::-1] if mask.ndim == 3 else moved_grid[:, :0:-1]
    moved = local @ mask.direction.T + np.asarray(mask.origin)
    out = np.split(moved, np.cumsum([len(p) for p in polylines])[:-1])
    for new, old in zip(out, polylines, strict=True):
        new[0], new[-1] = old[0], old[-1]
    return out


def _relocate_bifurcations(polylines, seg_a, seg_b, node_pos, node_r, degree, step: float,
                           voxel: float) -> None:
    """Move every node of degree >= 3 to where its branches' axes meet (in place).

    Thinning branches off where the inscribed sphere touches all walls, a radius or so
    downstream of where the vessel axes cross, so branches come out short and angles are
    blunted. For each branch the axis is the line through the mean of its (smoothed) points
    between ``r_j`` and ``r_j + max(2 r_j, 3 v)`` of arc length from the node (``r_j``: the
    junction radius) along their chord; the new node is the least-squares point nearest to these lines. It is
    used when every branch is long enough (twice that window) and the point lies within
    ``2 r_j`` of the old node; branches then lose their points closer than ``r_j`` and are
    joined to the new node straight.
    """
    ends: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for s_id, (a, b) in enumerate(zip(seg_a, seg_b, strict=True)):
        if a == b:
            ends[a].append((-1, False))  # loops at the node: leave it alone
            continue
        ends[a].append((s_id, False))
        ends[b].append((s_id, True))
    for node, incident in ends.items():
        if degree[node] < 3 or any(s_id < 0 for s_id, _ in incident):
            continue
        r_j = float(node_r[node])
        a0, a1 = r_j, r_j + max(2 * r_j, 3 * voxel)
        lines, cuts = [], []
        prefix = int(np.ceil(4 * a1 / step)) + 4  # points are about one step apart
        for s_id, at_end in incident:
            pts = polylines[s_id][::-1] if at_end else polylines[s_id]
            head = pts[:prefix]
            arc = np.concatenate([[0.0], np.cumsum(np.sqrt(np.sum(np.diff(head, axis=0) ** 2,
                                                                  axis=1)))])
            if arc[-1] < 2 * a1:
                break
            window = head[(arc >= a0) & (arc <= a1)]
            if len(window) < 3:
                break
            chord = window[-1] - window[0]  # the window is smoothed: its chord is its axis
            lines.append((window.mean(axis=0), chord / np.sqrt(chord @ chord)))
            cuts.append(int(np.searchsorted(arc, a0)))
        else:
            centres = np.array([c for c, _ in lines])
            dirs = np.array([d for _, d in lines])
            # least squares: sum_i (I - d_i d_i^T) (x - c_i) = 0
            lhs = len(lines) * np.eye(dirs.shape[1]) - dirs.T @ dirs
            rhs = centres.sum(axis=0) - dirs.T @ np.einsum("ij,ij->i", dirs, centres)
            try:
                target = np.linalg.solve(lhs, rhs)
            except np.linalg.LinAlgError:
                continue
            if np.linalg.norm(target - node_pos[node]) > 2 * r_j:
                continue
            for (s_id, at_end), cut in zip(incident, cuts, strict=True):
                pts = polylines[s_id][::-1] if at_end else polylines[s_id]
                rest = pts[cut:]
                gap = np.linalg.norm(rest[0] - target)
                n_new = max(1, int(np.ceil(gap / step)))
                joint = target + (np.arange(n_new) / n_new)[:, None] * (rest[0] - target)
                new = np.concatenate([joint, rest])
                polylines[s_id] = new[::-1] if at_end else new
            node_pos[node] = target


def _radius_at(mask: Image, polylines, medians, definition: str) -> list[np.ndarray]:
    """Lumen radius (mm) at each centerline point, before smoothing.

    ``inscribed``: the distance to the nearest background voxel centre (exact, anisotropic;
    outside the grid is background), the radius of the largest sphere centred there that
    holds only mask voxel centres. ``section_area``: the area-equivalent radius
    ``sqrt(A / π)`` of the mask's cross-section in the plane normal to the centerline, the
    mask read as the union of its voxel boxes, ``A`` from 32 rays
    (:func:`vasomics.chain._sections.section_radius`; a 2D mask: half the width across the
    vessel). Where a section is open (a ray runs into another vessel or does not leave the
    mask: junctions, touching vessels) the radius is interpolated in arc length between the
    segment's closed sections (held constant beyond the outermost ones); a segment without
    any closed section takes the inscribed radius.
    """
    from vasomics.chain._sections import section_radius
    from vasomics.chain._thinning import radius_at_points

    if not polylines:
        return []
    splits = np.cumsum([len(p) for p in polylines])[:-1]
    grid, tgrid, array, spacing, max_len, n_rays, _ = _section_frame(mask, polylines, medians)
    inscribed = np.split(radius_at_points(array, grid / spacing, spacing), splits)
    if definition == "inscribed":
        return inscribed
    radius, closed = section_radius(array, grid, tgrid, spacing, max_len,
                                    2 if n_rays == 2 else 32)
    out = []
    for p, r, ok, fallback in zip(polylines, np.split(radius, splits),
                                  np.split(closed, splits), inscribed, strict=True):
        if ok.all():
            out.append(r)
        elif ok.any():
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0),
                                                                  axis=1))])
            out.append(np.interp(arc, arc[ok], r[ok]))
        else:
            out.append(fallback)
    return out


def _extend(points, radius, at_end: bool, mask: Image, step: float, voxel: float,
            tip_r: float, params: GraphParams):
    """Re-draw one end of a polyline (:func:`vasomics.chain._sections.trace_end`): drop the
    points closer to the tip than ``end_trim_radius_factor`` × ``tip_r`` (the segment's
    median radius; never more than half the points), fit a parabola to the end of what is
    left, refit it ``end_fit_iterations`` times to the centres of the cross-sections along
    it (up to ``end_cap_radius_factor`` × ``tip_r`` before the mask boundary; sections more
    than 0.9 smallest voxel narrower than their median are cut by the end face and left
    out: the two ray ends are each quantized to half a voxel, and 0.9 lies off the lattice of
    probe steps, so no width ties the bound), then follow it up to the mask boundary. On a
    thin segment (``tip_r`` at most ``end_side_max_radius_voxels`` smallest voxels), probes
    within ``end_side_tolerance_voxels`` of the mask across the curve count as inside, and
    when the re-drawn end still does not reach past the dropped skeleton end (measured along
    the re-drawn direction from the last kept point: the voxelized lumen was left sideways at
    once), the polyline is returned unchanged. (On wider segments that test would keep
    skeleton ends bent towards the rim of a flat end: bench_centerline_shape.py crest-ended
    sinusoids 63 -> 62/72 exact, zero-inflection masks 72 -> 70/72.)"""
    from vasomics.chain._sections import trace_end

    if not at_end:
        p, r = _extend(points[::-1], radius[::-1], True, mask, step, voxel, tip_r, params)
        return p[::-1], r[::-1]
    origin = np.asarray(mask.origin, float)
    grid = ((points - origin) @ mask.direction)[:, ::-1]
    spacing = np.asarray(mask.spacing, float)
    array = mask.array
    if mask.ndim == 2:  # one slice of a 3D grid, two rays across the vessel (as _recenter)
        grid = np.column_stack([np.zeros(len(grid)), grid])
        spacing = np.concatenate([[1e9], spacing])
        array = array[None]
        n_rays, gain = 2, 1.0
    else:
        n_rays, gain = 16, 2.0
    thin = tip_r <= params.end_side_max_radius_voxels * float(spacing.min())
    side = params.end_side_tolerance_voxels * float(spacing.min()) if thin else 0.0
    keep, new = trace_end(array, np.ascontiguousarray(grid), spacing, tip_r, voxel, step,
                          params.end_trim_radius_factor, 2 * tip_r, params.end_cap_radius_factor,
                          params.end_fit_iterations, n_rays, gain, 0.9,
                          side)
    local = new[:, ::-1] if mask.ndim == 3 else new[:, :0:-1]
    new = local @ mask.direction.T + origin
    reach = new[-1] - points[keep - 1] if len(new) else np.zeros(points.shape[1])
    if thin and np.dot(reach, reach) <= np.dot(reach, points[-1] - points[keep - 1]):
        return points, radius  # the re-drawn end falls short of the skeleton's: keep that
    return (np.concatenate([points[:keep], new]),
            np.concatenate([radius[:keep], np.full(len(new), radius[keep - 1])]))


def _assemble(node_pos, seg_a, seg_b, polylines, radii, params: GraphParams) -> VesselGraph:
    """Drop unused nodes, choose roots, assign kinds, generation and Strahler order."""
    used = np.zeros(len(node_pos), bool)
    used[seg_a] = used[seg_b] = True
    remap = np.cumsum(used) - 1
    node_pos, seg_a, seg_b = node_pos[used], remap[seg_a], remap[seg_b]
    n = len(node_pos)
    degree = np.bincount(np.concatenate([seg_a, seg_b]), minlength=n)
    kind = np.where(degree == 1, "endpoint", np.where(degree >= 3, "bifurcation", "anchor"))
    kind = kind.astype(object)
    generation = np.full(len(seg_a), -1, np.int64)
    strahler = np.full(len(seg_a), -1, np.int64)
    if len(seg_a):
        incident: list[list[int]] = [[] for _ in range(n)]
        for s, (a, b) in enumerate(zip(seg_a, seg_b, strict=True)):
            incident[a].append(s)
            if b != a:
                incident[b].append(s)
        seg_radius = _medians(radii)
        labels = _components(n, seg_a, seg_b)
        roots = _choose_roots(node_pos, degree, labels, incident, seg_radius,
                              (polylines, radii), params)
        for root in roots:
            if degree[root] == 1:
                kind[root] = "root"
            _orders(root, seg_a, seg_b, incident, generation, strahler)
    return VesselGraph(node_position=node_pos, node_kind=kind, segment_start=seg_a,
                       segment_end=seg_b,
                       point_offsets=np.concatenate([[0], np.cumsum([len(p) for p in polylines])]),
                       points=np.concatenate(polylines) if polylines else np.zeros((0, 3)),
                       radius=np.concatenate(radii) if radii else np.zeros(0),
                       segment_generation=generation, segment_strahler=strahler)


def _choose_roots(node_pos, degree, labels, incident, seg_radius, lines,
                  params) -> list[int]:
    """One root node per component (see the module docstring, step 5); ``lines``: the
    segments' centerline points (mm) and radii (mm)."""
    seed = None if params.root_point_mm is None else np.asarray(params.root_point_mm, float)
    roots = []
    for c in range(labels.max() + 1):
        members = np.flatnonzero(labels == c)
        ends = members[degree[members] == 1]
        if seed is not None and len(ends):
            roots.append(_root_end_near(seed, ends, node_pos, incident, seg_radius, lines))
        elif seed is not None:
            roots.append(int(members[np.argmin(np.linalg.norm(node_pos[members] - seed,
                                                              axis=1))]))
        else:
            # widest end: terminal segment median radius for endpoints, widest segment
            # otherwise
            pool = ends if len(ends) else members
            width = [max((seg_radius[s] for s in incident[i]), default=0.0) for i in pool]
            roots.append(int(pool[np.argmax(width)]))
    return roots


def _root_end_near(seed, ends, node_pos, incident, seg_radius, lines) -> int:
    """Of ``ends`` (endpoint nodes), the root for the point ``seed`` (mm): of the nearest end
    and the ends whose terminal segment's lumen holds the seed (a centerline point within
    its radius of it), the one whose terminal segment has the largest median radius. A
    seed inside the trunk or at its division (the portal root voxel where no trunk leaves
    the traced region) can lie nearer a side branch's tip than the trunk's own end."""
    points, radii = lines
    terminal = np.array([incident[e][0] for e in ends])
    holds = np.array([np.any(np.linalg.norm(points[s] - seed, axis=1) <= radii[s])
                      for s in terminal])
    holds[np.argmin(np.linalg.norm(node_pos[ends] - seed, axis=1))] = True
    return int(ends[holds][np.argmax(seg_radius[terminal[holds]])])


def _orders(root, seg_a, seg_b, incident, generation, strahler) -> None:
    """Breadth-first generation from ``root`` and Strahler order on the search tree."""
    children: dict[int, list[int]] = defaultdict(list)
    order: list[int] = []
    seen_node = {root}
    queue = deque([(root, -1)])
    while queue:
        node, via = queue.popleft()
        gen = 0 if via < 0 else generation[via]
        for s in incident[node]:
            if generation[s] >= 0:
                continue
            generation[s] = gen + 1
            order.append(s)
            if via >= 0:
                children[via].append(s)
            other = seg_b[s] if seg_a[s] == node else seg_a[s]
            if other not in seen_node:
                seen_node.add(other)
                queue.append((other, s))
    for s in reversed(order):
        kids = [strahler[c] for c in children.get(s, [])]
        if not kids:
            strahler[s] = 1
        else:
            top = max(kids)
            strahler[s] = top + 1 if kids.count(top) >= 2 else top
