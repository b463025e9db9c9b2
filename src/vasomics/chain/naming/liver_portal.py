"""Naming of the intrahepatic portal venous tree.

Rules (geometry in LPS mm: +x patient left, +y posterior, +z superior), applied from the root
(the portal trunk end nearest the confluence/hilum):

* ``main_portal_vein``: the trunk from the root to its first major division (two or more
  children each carrying ≥ ``min_share`` of the downstream tubular volume);
* at that division, the major child whose subtree centroid lies farthest to the patient's
  left is the ``left_portal_vein``, the largest of the others the ``right_portal_vein``;
* the right portal vein divides into ``right_anterior_portal_vein`` (subtree centroid more
  anterior, smaller y) and ``right_posterior_portal_vein``;
* segmental branches by Couinaud territory: below the right anterior division, the superior
  branch (larger z) is ``portal_S8`` and the inferior ``portal_S5``; below the right posterior
  division ``portal_S7`` / ``portal_S6``; the major branches of the left portal vein are
  ``portal_S4`` (the most medial, smallest x; the left portal vein's division uses a third of
  ``min_share``, its segmental branches being small), ``portal_S2`` (the most posterior-superior of
  the rest, largest y + z) and ``portal_S3`` (the others). Every segment below a segmental
  branch carries its name; minor side branches of a trunk carry the trunk's name.
"""

from __future__ import annotations

import numpy as np

from vasomics.chain.naming.tree import label_subtree, nearest_node, rooted_tree, trunk
from vasomics.vessel_graph import VesselGraph


def name_portal_tree(graph: VesselGraph, root_point_mm, min_share: float = 0.15
                     ) -> VesselGraph:
    """Label the portal tree's segments (see the module docstring). The root is the graph's
    ``root`` node when it has exactly one, else the endpoint nearest ``root_point_mm`` (a
    physical point near the trunk's upstream end, e.g. the confluence)."""
    labels = np.full(graph.n_segments, "", dtype=object)
    if graph.n_segments == 0:
        return graph.replace(segment_label=labels)
    roots = np.nonzero(graph.node_kind == "root")[0]
    root = int(roots[0]) if roots.size == 1 else nearest_node(graph, root_point_mm)
    tree = rooted_tree(graph, root)
    if not tree.first:
        return graph.replace(segment_label=labels)
    start = max(tree.first, key=lambda s: tree.weight[s])
    main, division = trunk(tree, start, min_share)
    label_subtree(labels, tree, start, "main_portal_vein")
    if len(division) < 2:
        return graph.replace(segment_label=labels)
    c = tree.centroid
    left = max(division, key=lambda k: c[k, 0])
    right = max((k for k in division if k != left), key=lambda k: tree.weight[k])
    _name_side(labels, tree, right, "right_portal_vein", min_share, _right_rule)
    _name_side(labels, tree, left, "left_portal_vein", min_share / 3, _left_rule)
    return graph.replace(segment_label=labels)


def _name_side(labels, tree, seg, name, min_share, rule) -> None:
    label_subtree(labels, tree, seg, name)
    chain, division = trunk(tree, seg, min_share)
    if len(division) >= 2:
        rule(labels, tree, chain, division, min_share)


def _right_rule(labels, tree, chain, division, min_share) -> None:
    c = tree.centroid
    anterior = min(division, key=lambda k: c[k, 1])
    posterior = max((k for k in division if k != anterior), key=lambda k: tree.weight[k])
    for seg, name, names in ((anterior, "right_anterior_portal_vein", ("portal_S8", "portal_S5")),
                             (posterior, "right_posterior_portal_vein",
                              ("portal_S7", "portal_S6"))):
        label_subtree(labels, tree, seg, name)
        _, sub_div = trunk(tree, seg, min_share)
        if len(sub_div) >= 2:
            sup = max(sub_div, key=lambda k: c[k, 2])
            label_subtree(labels, tree, sup, names[0])
            for k in sub_div:
                if k != sup:
                    label_subtree(labels, tree, k, names[1])


def _left_rule(labels, tree, chain, division, min_share) -> None:
    c = tree.centroid
    branches = list(division)
    medial = min(branches, key=lambda k: c[k, 0])
    label_subtree(labels, tree, medial, "portal_S4")
    rest = [k for k in branches if k != medial]
    if len(rest) == 1:  # S2 and S3 share a trunk: divide it once more
        _, sub_div = trunk(tree, rest[0], min_share)
        rest = sub_div if len(sub_div) >= 2 else rest
    s2 = max(rest, key=lambda k: c[k, 1] + c[k, 2])
    for k in rest:
        label_subtree(labels, tree, k, "portal_S2" if k == s2 else "portal_S3")
