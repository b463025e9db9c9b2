"""The :class:`VesselGraph`: a columnar vessel tree (or network) in physical coordinates.

Structure only: nodes, segments and per-segment centerline points with radii. Measurements
live in :mod:`vasomics.features`; building a graph from a mask lives in
:mod:`vasomics.chain.skeleton` and :mod:`vasomics.chain.graph`.

Coordinates are physical, in mm, LPS ``(x, y, z)`` (``(x, y)`` in 2D), as returned by
:meth:`vasomics.image.Image.index_to_physical`. Every segment's point list starts at the
position of its start node and ends at the position of its end node, so segment lengths add
up to the tree length without gaps. A segment whose start and end node are the same is a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vasomics.errors import InputError

#: Node kinds: ``root`` (where a tree is fed), ``bifurcation`` (three or more segments meet),
#: ``endpoint`` (one segment ends) and ``anchor`` (a degree-2 node that only closes a loop).
NODE_KINDS = ("root", "bifurcation", "endpoint", "anchor")


@dataclass(frozen=True, eq=False)
class VesselGraph:
    """Nodes, segments and centerline points of a vessel network.

    Attributes
    ----------
    node_position : (N, d) float
        Node positions in mm (LPS ``(x, y, z)``, or ``(x, y)`` in 2D).
    node_kind : (N,) str
        One of :data:`NODE_KINDS`.
    segment_start, segment_end : (S,) int
        Node index at each end of each segment.
    point_offsets : (S + 1,) int
        Segment ``i`` owns ``points[point_offsets[i]:point_offsets[i + 1]]`` (CSR layout).
    points : (P, d) float
        Centerline points in mm, ordered from the start node to the end node of each segment.
    radius : (P,) float
        Lumen radius in mm at each centerline point.
    segment_label : (S,) str
        Anatomical name (``""`` when unnamed).
    segment_generation : (S,) int
        Generation counted from the root (root segment = 1); ``-1`` when not assigned.
    segment_strahler : (S,) int
        Strahler order (terminal segments = 1); ``-1`` when not assigned.
    metadata : dict
        Provenance such as the source image geometry and the parameters used.
    """

    node_position: np.ndarray
    node_kind: np.ndarray
    segment_start: np.ndarray
    segment_end: np.ndarray
    point_offsets: np.ndarray
    points: np.ndarray
    radius: np.ndarray
    segment_label: np.ndarray | None = None
    segment_generation: np.ndarray | None = None
    segment_strahler: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = np.asarray(self.node_position, dtype=float)
        d = pos.shape[1] if pos.ndim == 2 else 3
        pos = pos.reshape(-1, d)
        points = np.asarray(self.points, dtype=float).reshape(-1, d)
        n_seg = len(np.asarray(self.segment_start))
        offsets = np.asarray(self.point_offsets, dtype=np.int64)
        fields = {
            "node_position": pos,
            "node_kind": np.asarray(self.node_kind, dtype=object).reshape(-1),
            "segment_start": np.asarray(self.segment_start, dtype=np.int64).reshape(-1),
            "segment_end": np.asarray(self.segment_end, dtype=np.int64).reshape(-1),
            "point_offsets": offsets,
            "points": points,
            "radius": np.asarray(self.radius, dtype=float).reshape(-1),
            "segment_label": _column(self.segment_label, n_seg, object, ""),
            "segment_generation": _column(self.segment_generation, n_seg, np.int64, -1),
            "segment_strahler": _column(self.segment_strahler, n_seg, np.int64, -1),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        self._check()

    def _check(self) -> None:
        n, s = len(self.node_position), len(self.segment_start)
        problems = []
        if self.node_position.shape[1] not in (2, 3):
            problems.append(f"points must be 2D or 3D, got {self.node_position.shape[1]}")
        if len(self.node_kind) != n:
            problems.append("node_kind length differs from node count")
        if len(self.segment_end) != s or len(self.point_offsets) != s + 1:
            problems.append("segment columns have different lengths")
        if s and (self.segment_start.min() < 0 or max(self.segment_start.max(),
                                                      self.segment_end.max()) >= n):
            problems.append("segment refers to a missing node")
        if len(self.point_offsets) and (self.point_offsets[0] != 0
                                        or self.point_offsets[-1] != len(self.points)
                                        or np.any(np.diff(self.point_offsets) < 1)):
            problems.append("point_offsets do not partition the points")
        if len(self.radius) != len(self.points):
            problems.append("radius length differs from point count")
        if not (np.all(np.isfinite(self.points)) and np.all(np.isfinite(self.radius))):
            problems.append("points or radii are not finite")
        bad_kinds = set(self.node_kind.tolist()) - set(NODE_KINDS)
        if bad_kinds:
            problems.append(f"unknown node kinds {sorted(bad_kinds)}")
        if problems:
            raise InputError("invalid vessel graph: " + "; ".join(problems))

    # -------------------------------------------------------------- sizes
    @property
    def ndim(self) -> int:
        """2 or 3."""
        return self.node_position.shape[1]

    @property
    def n_nodes(self) -> int:
        return len(self.node_position)

    @property
    def n_segments(self) -> int:
        return len(self.segment_start)

    # ------------------------------------------------------------ access
    def segment_points(self, i: int) -> np.ndarray:
        """Centerline points (mm) of segment ``i``, start node first."""
        return self.points[self.point_offsets[i]:self.point_offsets[i + 1]]

    def segment_radius(self, i: int) -> np.ndarray:
        """Radii (mm) along segment ``i``."""
        return self.radius[self.point_offsets[i]:self.point_offsets[i + 1]]

    def point_segment(self) -> np.ndarray:
        """Segment index of every point, shape ``(P,)``."""
        return np.repeat(np.arange(self.n_segments), np.diff(self.point_offsets))

    def node_degree(self) -> np.ndarray:
        """Number of segment ends at each node (a loop counts twice)."""
        ends = np.concatenate([self.segment_start, self.segment_end])
        return np.bincount(ends, minlength=self.n_nodes)

    def node_components(self) -> np.ndarray:
        """Connected component label (0, 1, ...) of each node, segments read as undirected
        edges."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        adj = coo_matrix((np.ones(self.n_segments), (self.segment_start, self.segment_end)),
                         shape=(self.n_nodes, self.n_nodes))
        return connected_components(adj, directed=False)[1]

    def segment_lengths(self) -> np.ndarray:
        """Polyline length (mm) of each segment: sum of distances between consecutive points."""
        if self.n_segments == 0:
            return np.zeros(0)
        step = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        same_segment = np.diff(self.point_segment()) == 0
        step = np.where(same_segment, step, 0.0)
        cumulative = np.concatenate([[0.0], np.cumsum(step)])
        return cumulative[self.point_offsets[1:] - 1] - cumulative[self.point_offsets[:-1]]

    # ------------------------------------------------------------ derive
    def replace(self, **changes: Any) -> VesselGraph:
        """A copy with some columns replaced (validated again)."""
        return replace(self, **changes)

    def to_networkx(self):
        """A ``networkx.MultiGraph``: nodes carry ``position`` and ``kind``; edges carry the
        segment index as key and attribute ``segment``, plus ``length`` (mm), ``label``."""
        import networkx as nx

        g = nx.MultiGraph()
        for i, (p, k) in enumerate(zip(self.node_position, self.node_kind, strict=True)):
            g.add_node(i, position=tuple(p), kind=k)
        lengths = self.segment_lengths()
        for i in range(self.n_segments):
            g.add_edge(int(self.segment_start[i]), int(self.segment_end[i]), key=i, segment=i,
                       length=float(lengths[i]), label=self.segment_label[i])
        return g

    @classmethod
    def from_polylines(cls, polylines, radii, *, merge_tol_mm: float = 1e-6,
                       labels=None, metadata=None) -> VesselGraph:
        """Build a graph from centerline polylines (each ``(n_i, d)`` in mm) and their radii.

        Polyline ends closer than ``merge_tol_mm`` become one node. Node kinds follow the
        degree: 1 → endpoint, ≥ 3 → bifurcation, 2 → anchor. No root is chosen here.
        """
        polylines = [np.asarray(p, dtype=float) for p in polylines]
        radii = [np.broadcast_to(np.asarray(r, dtype=float), (len(p),))
                 for p, r in zip(polylines, radii, strict=True)]
        if not polylines or any(len(p) < 2 for p in polylines):
            raise InputError("every polyline needs at least two points")
        ends = np.array([p[[0, -1]] for p in polylines]).reshape(-1, polylines[0].shape[1])
        # Greedy in end order: an end joins the first-created node (represented by the end
        # that created it) within merge_tol_mm, else creates a node. A KD-tree limits the
        # candidates, so thousands of polylines merge in milliseconds.
        from scipy.spatial import cKDTree

        neighbours = cKDTree(ends).query_ball_point(ends, r=merge_tol_mm)
        node_of_end = np.full(len(ends), -1)
        nodes: list[np.ndarray] = []
        for i, e in enumerate(ends):
            reps = [j for j in neighbours[i] if j < i and node_of_end[j] >= 0
                    and np.array_equal(ends[j], nodes[node_of_end[j]])]
            if reps:
                node_of_end[i] = min(node_of_end[j] for j in reps)
            else:
                node_of_end[i] = len(nodes)
                nodes.append(e)
        start, end = node_of_end[0::2], node_of_end[1::2]
        degree = np.bincount(np.concatenate([start, end]), minlength=len(nodes))
        kind = np.where(degree == 1, "endpoint", np.where(degree >= 3, "bifurcation", "anchor"))
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in polylines])])
        return cls(node_position=np.array(nodes), node_kind=kind.astype(object),
                   segment_start=start, segment_end=end, point_offsets=offsets,
                   points=np.concatenate(polylines), radius=np.concatenate(radii),
                   segment_label=labels, metadata=dict(metadata or {}))


def _column(values, n: int, dtype, fill) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    out = np.asarray(values, dtype=dtype).reshape(-1)
    if len(out) != n:
        raise InputError(f"segment column has {len(out)} values for {n} segments")
    return out
