"""Naming of the hepatic veins: right, middle and left.

The hepatic venous graph (without the IVC) falls into trees that each drain into the IVC.
Per connected tree, the root is its node nearest the IVC. Trees whose trunk (widest segment
at the root, median radius) is at least ``min_caliber`` times the widest trunk are major
(the three veins reach the IVC with comparable calibres); the major tree whose centroid lies
farthest to the patient's right (smallest LPS x) is the ``right_hepatic_vein``, the one
farthest to the left the ``left_hepatic_vein``, any between them the ``middle_hepatic_vein``.
When only two major trees exist, the left one is divided at its first major division into
``middle_hepatic_vein`` (the more rightward branch) and ``left_hepatic_vein`` (a common
middle/left trunk, frequent in patients). Minor trees take the name of the nearest major one.
"""

from __future__ import annotations

import numpy as np

from vasomics.chain.naming.tree import label_subtree, rooted_tree, trunk
from vasomics.vessel_graph import VesselGraph

RIGHT, MIDDLE, LEFT = "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"


def name_hepatic_veins(graph: VesselGraph, ivc_point_mm, min_caliber: float = 0.5
                       ) -> VesselGraph:
    """Label hepatic vein segments (see the module docstring). ``ivc_point_mm``: a point on
    the IVC axis at the level of the hepatic vein confluence (LPS mm)."""
    labels = np.full(graph.n_segments, "", dtype=object)
    if graph.n_segments == 0:
        return graph.replace(segment_label=labels)
    comp = _components(graph)
    ivc = np.asarray(ivc_point_mm, float)
    trees = []
    for c in np.unique(comp):
        segs = np.nonzero(comp == c)[0]
        nodes = np.unique(np.concatenate([graph.segment_start[segs], graph.segment_end[segs]]))
        root = int(nodes[np.argmin(np.linalg.norm(graph.node_position[nodes] - ivc, axis=1))])
        tree = rooted_tree(graph, root)
        vol = sum(tree.weight[s] for s in tree.first)
        cen = sum(tree.weight[s] * tree.centroid[s] for s in tree.first) / max(vol, 1e-12)
        caliber = max(float(np.median(graph.segment_radius(s))) for s in tree.first)
        trees.append((caliber, cen, tree))
    widest = max(t[0] for t in trees)
    major = sorted([t for t in trees if t[0] >= min_caliber * widest], key=lambda t: t[1][0])
    named = []  # (centroid, name)
    if len(major) >= 3:
        for i, (_, cen, tree) in enumerate(major):
            name = RIGHT if i == 0 else LEFT if i == len(major) - 1 else MIDDLE
            _label_tree(labels, tree, name)
            named.append((cen, name))
    elif len(major) == 2:
        _label_tree(labels, major[0][2], RIGHT)
        named.append((major[0][1], RIGHT))
        tree = major[1][2]
        _label_tree(labels, tree, LEFT)
        start = max(tree.first, key=lambda s: tree.weight[s])
        _, division = trunk(tree, start, 0.2)
        if len(division) >= 2:
            mid = min(division, key=lambda k: tree.centroid[k, 0])
            label_subtree(labels, tree, mid, MIDDLE)
            named.append((tree.centroid[mid], MIDDLE))
        named.append((major[1][1], LEFT))
    elif len(major) == 1:
        _label_tree(labels, major[0][2], RIGHT if major[0][1][0] < ivc[0] else LEFT)
        named.append((major[0][1], labels[major[0][2].first[0]]))
    for _vol, cen, tree in trees:
        if named and all(labels[s] == "" for s in tree.first):
            nearest = min(named, key=lambda n: np.linalg.norm(n[0] - cen))[1]
            _label_tree(labels, tree, nearest)
    return graph.replace(segment_label=labels)


def _label_tree(labels, tree, name) -> None:
    for s in tree.first:
        label_subtree(labels, tree, s, name)


def _components(graph: VesselGraph) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = graph.n_nodes
    adj = coo_matrix((np.ones(graph.n_segments), (graph.segment_start, graph.segment_end)),
                     shape=(n, n))
    _, node_comp = connected_components(adj, directed=False)
    return node_comp[graph.segment_start]
