"""Naming of the hepatic artery: the hepatic artery proper and the right and left hepatic
arteries.

Rules (geometry in LPS mm: +x patient left, +y posterior, +z superior), from the root (the
artery's end nearest the aorta, where it arrives from the celiac trunk):

* the root: the graph's ``root`` node when it has one, else, in the connected piece of
  largest tubular volume, the end nearest the given root point;
* ``hepatic_artery``: the trunk from the root to its first major division (two or more
  children each carrying ≥ ``min_share`` of the downstream tubular volume); without a
  gastroduodenal artery to mark it, the common and proper hepatic artery are one trunk;
* at that division, the major child whose subtree centroid lies farthest to the patient's
  left is the ``left_hepatic_artery`` when that centroid lies to the left of the division
  node (the left lobe lies left of the hilum); the other major children and their subtrees
  are the ``right_hepatic_artery`` (a trifurcation's middle branch, usually the right
  anterior artery, goes to the right; when no branch lies left of the division, the left
  artery is not connected there and every branch is right); minor side branches of the
  trunk keep the trunk's name;
* pieces of the artery not connected to the root's tree (an artery interrupted where it
  crosses a vein): a piece whose centroid lies left of the division is the
  ``left_hepatic_artery``, the others take the name of the nearest named centerline
  point.

Variants (replaced or accessory hepatic arteries from the left gastric or superior
mesenteric artery, about a quarter of patients) are not recognized: such a vessel, when
segmented, takes the name of the branch it is nearest to.
"""

from __future__ import annotations

import numpy as np

from vasomics.chain.naming.tree import label_subtree, rooted_tree, trunk
from vasomics.vessel_graph import VesselGraph

TRUNK, RIGHT, LEFT = "hepatic_artery", "right_hepatic_artery", "left_hepatic_artery"


def name_hepatic_artery(graph: VesselGraph, root_point_mm, min_share: float = 0.15
                        ) -> VesselGraph:
    """Label the hepatic artery's segments (module docstring). The root is the graph's
    ``root`` node when it has exactly one, else the endpoint nearest ``root_point_mm``
    (LPS mm)."""
    labels = np.full(graph.n_segments, "", dtype=object)
    if graph.n_segments == 0:
        return graph.replace(segment_label=labels)
    roots = np.nonzero(graph.node_kind == "root")[0]
    if roots.size == 1 or root_point_mm is None:
        root = int(roots[0]) if roots.size else 0
    else:  # the main piece's (largest tubular volume) end nearest the root point
        comp = graph.node_components()
        main = np.argmax(np.bincount(comp[graph.segment_start], _volumes(graph)))
        on = comp == main
        ends = on & np.isin(graph.node_kind, ("endpoint", "root"))
        idx = np.nonzero(ends if ends.any() else on)[0]
        d = np.linalg.norm(graph.node_position[idx] - np.asarray(root_point_mm, float), axis=1)
        root = int(idx[np.argmin(d)])
    tree = rooted_tree(graph, root)
    split_x = None
    if tree.first:
        start = max(tree.first, key=lambda s: tree.weight[s])
        for s in tree.first:
            label_subtree(labels, tree, s, TRUNK)
        chain, division = trunk(tree, start, min_share)
        if len(division) >= 2:
            split_x = float(graph.node_position[tree.far_node[chain[-1]], 0])
            left = max(division, key=lambda k: tree.centroid[k, 0])
            has_left = tree.centroid[left, 0] > split_x
            for k in division:
                label_subtree(labels, tree, k, LEFT if k == left and has_left else RIGHT)
    _name_detached(graph, labels, split_x)
    return graph.replace(segment_label=labels)


def _name_detached(graph: VesselGraph, labels: np.ndarray, split_x) -> None:
    """Unnamed segments (pieces not connected to the root's tree) lying to the patient's
    left of the division (centroid x beyond ``split_x``) are the left hepatic artery; the
    others take the name of the nearest named centerline point."""
    from scipy.spatial import cKDTree

    named = labels != ""
    if named.all() or not named.any():
        return
    if split_x is not None:
        comp = graph.node_components()[graph.segment_start]
        vol = _volumes(graph)
        for c in np.unique(comp[~named]):
            segs = np.nonzero((comp == c) & ~named)[0]
            cx = np.concatenate([graph.segment_points(s)[:, 0] for s in segs]).mean() \
                if vol[segs].sum() <= 0 else sum(
                    vol[s] * graph.segment_points(s)[:, 0].mean() for s in segs) / vol[segs].sum()
            if cx > split_x:
                labels[segs] = LEFT
        named = labels != ""
        if named.all():
            return
    seg = graph.point_segment()
    on = named[seg]
    kd = cKDTree(graph.points[on])
    owner = seg[on]
    for s in np.nonzero(~named)[0]:
        _, j = kd.query(graph.segment_points(s))
        values, counts = np.unique(labels[owner[j]].astype(str), return_counts=True)
        labels[s] = str(values[np.argmax(counts)])


def _volumes(graph: VesselGraph) -> np.ndarray:
    """Tubular volume Σ π r² ds of each segment (mm³)."""
    out = np.zeros(graph.n_segments)
    for s in range(graph.n_segments):
        pts, r = graph.segment_points(s), graph.segment_radius(s)
        ds = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        out[s] = float(np.sum(np.pi * 0.5 * (r[1:] ** 2 + r[:-1] ** 2) * ds))
    return out
