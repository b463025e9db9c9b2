"""Rooted-tree helpers for naming: parent/children of segments from a root node, subtree
size and centroid, and the walk down a trunk to its first major division."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from vasomics.vessel_graph import VesselGraph


@dataclass
class RootedTree:
    """Segments oriented away from ``root`` (a node index): ``children[s]`` are the segments
    leaving the far end of ``s``; ``weight[s]`` is the tubular volume (mm³, Σ π r² ds) of
    the subtree of ``s``; ``centroid[s]`` its volume-weighted centroid (LPS mm)."""

    graph: VesselGraph
    root: int
    first: list[int]
    children: dict[int, list[int]]
    far_node: dict[int, int]
    weight: np.ndarray
    centroid: np.ndarray

    def subtree(self, seg: int) -> list[int]:
        out, todo = [], [seg]
        while todo:
            s = todo.pop()
            out.append(s)
            todo.extend(self.children.get(s, []))
        return out


def rooted_tree(graph: VesselGraph, root: int, segments=None) -> RootedTree:
    """Orient the graph's segments by breadth-first search from node ``root`` (segments not
    reachable from it are left out). ``segments``: a boolean mask of the segments to walk
    (all by default); the others are left out as unreachable."""
    incident: dict[int, list[int]] = {}
    for s, (a, b) in enumerate(zip(graph.segment_start, graph.segment_end, strict=True)):
        if segments is not None and not segments[s]:
            continue
        incident.setdefault(int(a), []).append(s)
        incident.setdefault(int(b), []).append(s)
    far, children, seen = {}, {}, set()
    first = []
    queue = deque()
    for s in incident.get(root, []):
        if s not in seen:
            seen.add(s)
            far[s] = int(graph.segment_end[s] if graph.segment_start[s] == root
                         else graph.segment_start[s])
            first.append(s)
            queue.append(s)
    order = []
    while queue:
        s = queue.popleft()
        order.append(s)
        kids = []
        for t in incident.get(far[s], []):
            if t in seen:
                continue
            seen.add(t)
            far[t] = int(graph.segment_end[t] if graph.segment_start[t] == far[s]
                         else graph.segment_start[t])
            kids.append(t)
            queue.append(t)
        children[s] = kids
    vol = np.zeros(graph.n_segments)
    mom = np.zeros((graph.n_segments, graph.ndim))
    for s in range(graph.n_segments):
        pts, r = graph.segment_points(s), graph.segment_radius(s)
        ds = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        w = np.pi * (0.5 * (r[1:] ** 2 + r[:-1] ** 2)) * ds
        vol[s] = w.sum()
        mom[s] = (w[:, None] * 0.5 * (pts[1:] + pts[:-1])).sum(0) if len(w) else pts[0]
    weight, moment = vol.copy(), mom.copy()
    for s in reversed(order):
        for c in children.get(s, []):
            weight[s] += weight[c]
            moment[s] += moment[c]
    centroid = moment / np.maximum(weight, 1e-12)[:, None]
    return RootedTree(graph, root, first, children, far, weight, centroid)


def trunk(tree: RootedTree, seg: int, min_share: float = 0.15) -> tuple[list[int], list[int]]:
    """Follow ``seg`` down its largest child until a node where two or more children each
    carry at least ``min_share`` of the children's total volume. Returns the trunk segments
    and the major children at that division (empty at a terminal)."""
    chain = [seg]
    while True:
        kids = tree.children.get(chain[-1], [])
        if not kids:
            return chain, []
        total = sum(tree.weight[k] for k in kids)
        major = [k for k in kids if tree.weight[k] >= min_share * total]
        if len(major) >= 2:
            return chain, sorted(major, key=lambda k: -tree.weight[k])
        chain.append(max(kids, key=lambda k: tree.weight[k]))


def label_subtree(labels: np.ndarray, tree: RootedTree, seg: int, name: str) -> None:
    for s in tree.subtree(seg):
        labels[s] = name


def nearest_node(graph: VesselGraph, point, kinds=("endpoint", "root")) -> int:
    ok = np.isin(graph.node_kind, kinds)
    if not ok.any():
        ok[:] = True
    idx = np.nonzero(ok)[0]
    d = np.linalg.norm(graph.node_position[idx] - np.asarray(point, float), axis=1)
    return int(idx[np.argmin(d)])


def name_fragments(graph: VesselGraph, labels: np.ndarray) -> None:
    """Give each unnamed segment (``""``, e.g. of a piece that a segmentation gap cut off
    the rooted tree) the name of the nearest named centerline point (LPS mm), in place: a
    fragment lies in the territory of the branch it was cut from."""
    named = np.nonzero(labels != "")[0]
    todo = np.nonzero(labels == "")[0]
    if not named.size or not todo.size:
        return
    from scipy.spatial import cKDTree

    seg = graph.point_segment()
    on = np.isin(seg, named)
    tree = cKDTree(graph.points[on])
    owner = seg[on]
    for s in todo:
        d, j = tree.query(graph.segment_points(s))
        labels[s] = labels[owner[j[int(np.argmin(d))]]]


def cut_at_points(graph: VesselGraph, cuts) -> VesselGraph:
    """``graph`` with each segment cut at the centerline points ``cuts`` (indices into
    ``graph.points``) that lie strictly inside it: a new ``anchor`` node (degree 2) per cut,
    the cut point shared by both pieces; the total length is unchanged. New nodes are
    appended in the order of ``cuts`` sorted."""
    cuts = sorted(int(i) for i in cuts)
    if not cuts:
        return graph
    pts, rad, offsets = graph.points, graph.radius, graph.point_offsets
    node_pos, kinds = list(graph.node_position), list(graph.node_kind)
    starts, ends, pieces, copy_of = [], [], [], []
    for s in range(graph.n_segments):
        lo, hi = offsets[s], offsets[s + 1]
        cut = [i for i in cuts if lo < i < hi - 1]
        a = int(graph.segment_start[s])
        for i in cut:
            node_pos.append(pts[i])
            kinds.append("anchor")
            starts.append(a)
            ends.append(len(node_pos) - 1)
            pieces.append((lo, i + 1))
            copy_of.append(s)
            a, lo = len(node_pos) - 1, i
        starts.append(a)
        ends.append(int(graph.segment_end[s]))
        pieces.append((lo, hi))
        copy_of.append(s)
    idx = np.concatenate([np.arange(a, b) for a, b in pieces])
    return VesselGraph(node_position=np.array(node_pos), node_kind=np.array(kinds, object),
                       segment_start=np.array(starts), segment_end=np.array(ends),
                       point_offsets=np.concatenate([[0], np.cumsum([b - a for a, b in
                                                                      pieces])]),
                       points=pts[idx], radius=rad[idx],
                       segment_generation=graph.segment_generation[copy_of],
                       segment_strahler=graph.segment_strahler[copy_of],
                       metadata=dict(graph.metadata))
