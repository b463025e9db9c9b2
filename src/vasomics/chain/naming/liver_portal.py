"""Naming of the intrahepatic portal venous tree.

Rules (geometry in LPS mm: +x patient left, +y posterior, +z superior), applied from the root:
the centerline point nearest the given root point (where the portal trunk enters the traced
region), or without one the graph's root. When the trunk was traced beyond that point (toward
the confluence), the part upstream of it is ``main_portal_vein`` and takes no part in the
rules below: rooted at a far end, the rules would see the confluence's tributaries as the
division, and rooted at the endpoint nearest the root point they start from a side twig
(3D-IRCADb 1.1: a 0.8 mm twig 11 mm from the inlet). A root point within a junction's
lumen is that junction; when three or more segments meet there and the thickest (over its
first ``root_reach_mm`` from the root) carries less volume than the others together, the
root lies at the main division itself (the traced region cut the trunk there): the thickest
is the main portal vein and the others of ``min_share`` are the division
(:func:`_division_at_root`; phantom 515 had all three named main portal vein).

* ``main_portal_vein``: the trunk from the root to its first major division (two or more
  children each carrying ≥ ``min_share`` of the downstream tubular volume), or to an
  earlier node where a child carrying at least ``left_share`` heads to the patient's left
  (its subtree centroid at least ``left_min_mm`` left of the node) while the largest child
  heads right by as much: the left portal vein, lighter than ``min_share`` when the
  separation gave some of its branches to the hepatic tree (phantom 543: S2 and S4 lost at
  a contact, the left portal vein carrying 0.148 of the volume; the division was read at
  the right portal vein's and every name below it shifted, naming 0.24). ``left_share``
  (0.10) stays above a tributary of the extrahepatic trunk (3D-IRCADb 1.1's manual mask:
  0.050 of the volume, its centroid 17 mm to the left, 30 mm before the hilum);
* a major child whose own major division lies closer to the main division than
  ``stem_factor`` times the main portal vein's radius is part of the division (a
  trifurcation imaged as two bifurcations a few mm apart, as in 3D-IRCADb 1.1, where the
  right posterior vein leaves first and the left and right anterior veins share a 4 mm
  stem; a right portal vein is typically 2-3 cm long): its major children replace it (the
  stem stays ``main_portal_vein``);
* at that division, the major child whose subtree centroid lies farthest to the patient's
  left is the ``left_portal_vein``; when one other remains it is the ``right_portal_vein``;
  when two or more remain (trifurcation, no right portal vein) they are named directly as
  the right anterior / posterior veins by the rule below;
* the right portal vein divides into ``right_anterior_portal_vein`` (subtree centroid more
  anterior, smaller y) and ``right_posterior_portal_vein``;
* at the divisions of the left portal vein and of the right anterior and posterior veins, a
  major branch whose own major division lies within ``branch_stem_factor`` (1.0) radii of
  the dividing vein from it is part of the division: two segmental branches leaving one
  lumen, thinned into a 2-3 mm stem (phantoms at 0.9 mm: 619's S3 and S4, 631's S6 and
  S7, where the stem took the name of one and both were named so). At 2 radii and more
  S4's own first division was merged on 501 and 630;
* segmental branches by Couinaud territory: below the right anterior division, the superior
  branch (larger z) is ``portal_S8`` and the inferior ``portal_S5``; below the right posterior
  division ``portal_S7`` / ``portal_S6``; the major branches of the left portal vein are
  ``portal_S4`` (the most medial, smallest x; the left portal vein's division uses a third of
  ``min_share``, its segmental branches being small), ``portal_S2`` (the most posterior-superior of
  the rest, largest y + z) and ``portal_S3`` (the others). When the left portal vein
  divides in two, one branch is a stem two segments share (S3 and S4 on the umbilical
  portion, or S2 and S3), divided once more; the stem is the branch whose division leaves
  the three segments most clearly apart (:func:`_left_separation`) and stays
  ``left_portal_vein``. Every segment below a segmental branch carries its name; minor side
  branches of a trunk carry the trunk's name;
* pieces not connected to the root (cut off by a segmentation gap) take the name of the
  nearest named centerline point.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from vasomics.chain.naming.tree import (
    cut_at_points,
    label_subtree,
    name_fragments,
    nearest_node,
    rooted_tree,
    trunk,
)
from vasomics.vessel_graph import VesselGraph


def name_portal_tree(graph: VesselGraph, root_point_mm, min_share: float = 0.15,
                     stem_factor: float = 2.5, branch_stem_factor: float = 1.0,
                     left_share: float = 0.10, left_min_mm: float = 10.0,
                     root_reach_mm: float = 10.0) -> VesselGraph:
    """Label the portal tree's segments (see the module docstring). ``root_point_mm``: a
    physical point (LPS mm) on the portal trunk where it enters the traced region, or None
    (the graph's ``root`` node when it has exactly one, else the end nearest its widest point).
    ``root_reach_mm``: the arc length from the root over which the calibre of each segment
    leaving it is read (:func:`_division_at_root`)."""
    labels = np.full(graph.n_segments, "", dtype=object)
    if graph.n_segments == 0:
        return graph.replace(segment_label=labels)
    cut, root = _root_on_trunk(graph, root_point_mm)
    labels_cut = _name(cut, root, min_share, stem_factor, branch_stem_factor, left_share,
                       left_min_mm, root_reach_mm)
    # the cut segment's two pieces (both main portal vein) map back to it
    split = cut.n_segments > graph.n_segments
    s0 = int(np.flatnonzero(cut.segment_end == root)[0]) if split else graph.n_segments
    for s in range(graph.n_segments):
        labels[s] = labels_cut[s if s <= s0 else s + 1]
    return graph.replace(segment_label=labels)


def _root_on_trunk(graph: VesselGraph, root_point_mm) -> tuple[VesselGraph, int]:
    """The graph (cut at the root when that lies inside a segment) and the root node: the
    centerline point nearest ``root_point_mm``, or without one the graph's root node (its
    end nearest its widest centerline point when it has none or several)."""
    if root_point_mm is None:
        roots = np.nonzero(graph.node_kind == "root")[0]
        if roots.size == 1:
            return graph, int(roots[0])
        return graph, nearest_node(graph, graph.points[int(np.argmax(graph.radius))])
    point = np.asarray(root_point_mm, float)
    i = int(np.argmin(np.linalg.norm(graph.points - point, axis=1)))
    junctions = np.nonzero(graph.node_kind == "bifurcation")[0]
    if junctions.size:  # a root in a junction's lumen is that junction
        d = np.linalg.norm(graph.node_position[junctions] - point, axis=1)
        if d.min() <= graph.radius[i]:
            return graph, int(junctions[np.argmin(d)])
    s = int(graph.point_segment()[i])
    lo, hi = graph.point_offsets[s], graph.point_offsets[s + 1] - 1
    if lo < i < hi - 1:
        cut = cut_at_points(graph, [i])
        return cut, cut.n_nodes - 1
    return graph, int(graph.segment_start[s] if i - lo <= hi - i else graph.segment_end[s])


def _name(graph: VesselGraph, root: int, min_share: float, stem_factor: float,
          branch_stem_factor: float | None, left_share: float,
          left_min_mm: float, root_reach_mm: float) -> np.ndarray:
    """Segment labels of ``graph`` from node ``root`` by the module's rules."""
    labels = np.full(graph.n_segments, "", dtype=object)
    tree = rooted_tree(graph, root)
    if not tree.first:
        return labels
    for s in tree.first:  # the trunk beyond the root point, toward the confluence
        label_subtree(labels, tree, s, "main_portal_vein")
    main, division = _division_at_root(tree, min_share, root_reach_mm)
    if division:  # the root lies at the main division
        origin = graph.node_position[root]
    else:
        main, division = _main_division(tree, max(tree.first, key=lambda s: tree.weight[s]),
                                        min_share, left_share, left_min_mm)
        if len(division) < 2:
            name_fragments(graph, labels)
            return labels
        origin = graph.node_position[tree.far_node[main[-1]]]
    radius = float(np.median(graph.segment_radius(main[-1])))
    division = _merge_stems(tree, radius, origin, division, min_share, stem_factor)
    c = tree.centroid
    left = max(division, key=lambda k: c[k, 0])
    rest = [k for k in division if k != left]
    if len(rest) == 1:
        _name_side(labels, tree, rest[0], "right_portal_vein", min_share,
                   partial(_right_rule, stem_factor=branch_stem_factor))
    else:  # trifurcation: right anterior and posterior veins leave the main portal vein
        _right_rule(labels, tree, [], rest, min_share, branch_stem_factor)
    _name_side(labels, tree, left, "left_portal_vein", min_share / 3, _left_rule,
               branch_stem_factor)
    name_fragments(graph, labels)
    return labels


def _main_division(tree, seg: int, min_share: float, left_share: float,
                   left_min_mm: float) -> tuple[list[int], list[int]]:
    """The main portal vein from ``seg`` and the major children at its division
    (:func:`vasomics.chain.naming.tree.trunk`), or the trunk up to an earlier node where a
    child of at least ``left_share`` of the children's volume heads ``left_min_mm`` or more
    to the patient's left of the node (subtree centroid, LPS x) while the largest child
    heads as far right: the left portal vein and the rest of the tree (module docstring)."""
    chain, division = trunk(tree, seg, min_share)
    g, c = tree.graph, tree.centroid
    for i, s in enumerate(chain[:-1] if division else chain):
        kids = tree.children.get(s, [])
        total = sum(tree.weight[k] for k in kids)
        x = g.node_position[tree.far_node[s]][0]
        main = max(kids, key=lambda k: tree.weight[k], default=None)
        left = [k for k in kids if k != main and tree.weight[k] >= left_share * total
                and c[k, 0] >= x + left_min_mm]
        if left and c[main, 0] <= x - left_min_mm:
            return chain[:i + 1], [main, max(left, key=lambda k: tree.weight[k])]
    return chain, division


def _division_at_root(tree, min_share: float, reach_mm: float) -> tuple[list[int], list[int]]:
    """``([trunk segment], major branches)`` leaving the root node when the root lies at the
    main division (the traced region cut the trunk there), else ``([], [])``. Of three or
    more segments at the root, the thickest over its first ``reach_mm`` from the root
    (median radius there, :func:`_calibre_near`) is then the trunk toward the confluence:
    the main portal vein is wider than either of its branches, and it carries less tubular
    volume than the branches together (a thickest segment carrying more is the downstream
    trunk itself, the root lying on the trunk where a tributary joins). The others of at
    least ``min_share`` of their total volume are the division. Read over the whole segment
    the trunk's calibre can fall below a branch's: where the trunk's first junction toward
    the confluence is not drawn, its segment runs on into a thin tributary (phantom 601 in
    one of three noise draws: 11 mm of 6.4 mm radius and 27 mm of 2 mm read 3.2 mm against
    the right portal vein's 5.5, which was named main portal vein and every name below it
    shifted, naming 0.19)."""
    if len(tree.first) < 3:
        return [], []
    g = tree.graph
    thick = max(tree.first, key=lambda s: _calibre_near(g, s, tree.root, reach_mm))
    rest = [s for s in tree.first if s != thick]
    total = sum(tree.weight[s] for s in rest)
    major = [s for s in rest if tree.weight[s] >= min_share * total]
    if tree.weight[thick] >= total or len(major) < 2:
        return [], []
    return [thick], sorted(major, key=lambda s: -tree.weight[s])


def _calibre_near(graph: VesselGraph, seg: int, node: int, reach_mm: float) -> float:
    """Median radius (mm) of segment ``seg`` over its first ``reach_mm`` of arc length from
    its end at ``node``."""
    pts, r = graph.segment_points(seg), graph.segment_radius(seg)
    if graph.segment_start[seg] != node:
        pts, r = pts[::-1], r[::-1]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return float(np.median(r[arc <= reach_mm]))


def _merge_stems(tree, radius: float, origin, division, min_share, stem_factor) -> list[int]:
    """Replace a major branch whose own major division lies closer than ``stem_factor``
    times the dividing vessel's ``radius`` (mm) to its division at ``origin`` (LPS mm;
    straight distance between the two nodes) by that division's major branches: such a
    stem lies within the division itself (a trifurcation seen as two close bifurcations).
    The stem keeps the parent's name (set before)."""
    g = tree.graph
    out = []
    for k in division:
        chain, sub = trunk(tree, k, min_share)
        gap = float(np.linalg.norm(g.node_position[tree.far_node[chain[-1]]] - origin))
        out.extend(sub if len(sub) >= 2 and gap < stem_factor * radius else [k])
    return out


def _name_side(labels, tree, seg, name, min_share, rule, stem_factor=None) -> None:
    """Name the subtree of ``seg`` ``name`` and its branches by ``rule`` at its first major
    division; with ``stem_factor``, the division's stems shorter than that many times the
    vessel's radius are merged into it first (:func:`_merge_stems`)."""
    label_subtree(labels, tree, seg, name)
    chain, division = _major_division(tree, seg, min_share, stem_factor)
    if len(division) >= 2:
        rule(labels, tree, chain, division, min_share)


def _major_division(tree, seg, min_share, stem_factor=None) -> tuple[list[int], list[int]]:
    """:func:`vasomics.chain.naming.tree.trunk` from ``seg``; with ``stem_factor``, the
    division's stems shorter than that many times the trunk's radius (its last segment's
    median) are merged into it (:func:`_merge_stems`)."""
    chain, division = trunk(tree, seg, min_share)
    if stem_factor is not None and len(division) >= 2:
        g = tree.graph
        division = _merge_stems(tree, float(np.median(g.segment_radius(chain[-1]))),
                                g.node_position[tree.far_node[chain[-1]]], division,
                                min_share, stem_factor)
    return chain, division


def _right_rule(labels, tree, chain, division, min_share, stem_factor=None) -> None:
    c = tree.centroid
    anterior = min(division, key=lambda k: c[k, 1])
    posterior = max((k for k in division if k != anterior), key=lambda k: tree.weight[k])
    for seg, name, names in ((anterior, "right_anterior_portal_vein", ("portal_S8", "portal_S5")),
                             (posterior, "right_posterior_portal_vein",
                              ("portal_S7", "portal_S6"))):
        label_subtree(labels, tree, seg, name)
        _, sub_div = _major_division(tree, seg, min_share, stem_factor)
        if len(sub_div) >= 2:
            sup = max(sub_div, key=lambda k: c[k, 2])
            label_subtree(labels, tree, sup, names[0])
            for k in sub_div:
                if k != sup:
                    label_subtree(labels, tree, k, names[1])


def _left_rule(labels, tree, chain, division, min_share) -> None:
    c = tree.centroid
    branches = _left_segmental_branches(tree, division, min_share)
    medial = min(branches, key=lambda k: c[k, 0])
    label_subtree(labels, tree, medial, "portal_S4")
    rest = [k for k in branches if k != medial]
    s2 = max(rest, key=lambda k: c[k, 1] + c[k, 2])
    for k in rest:
        label_subtree(labels, tree, k, "portal_S2" if k == s2 else "portal_S3")


def _left_segmental_branches(tree, division, min_share) -> list[int]:
    """The left portal vein's segmental branches from its major ``division``. Two branches
    hold three segments: one of them is a stem two segments share (S3 and S4 on the
    umbilical portion, or S2 and S3), divided once more at its own major division. Of the
    two readings, the one whose segments lie most clearly apart is kept
    (:func:`_left_separation`): 604 through the chain in two of three noise draws, S3 left
    S4's branch 7-12 mm from the division, and divided the other way S4 took S3 and the
    left portal vein ran on into S2 (naming 0.88 / 0.84)."""
    if len(division) != 2:
        return list(division)
    readings = [list(division)]
    for i, stem in enumerate(division):
        split = trunk(tree, stem, min_share)[1]
        if len(split) >= 2:
            readings.append([division[1 - i], *split])
    return max(readings, key=lambda r: _left_separation(tree.centroid, r))


def _left_separation(c, branches) -> float:
    """How clearly ``branches`` read as the left lobe's segments (mm, subtree centroids
    ``c`` in LPS mm): the lesser of S4's margin (the most medial branch, smallest x) to
    the others' x, and S2's (the most posterior-superior of the others, largest y + z) to
    the rest's y + z; -inf for fewer than three branches."""
    if len(branches) < 3:
        return -np.inf
    medial = min(branches, key=lambda k: c[k, 0])
    rest = [k for k in branches if k != medial]
    s2 = max(rest, key=lambda k: c[k, 1] + c[k, 2])
    return min(min(c[k, 0] for k in rest) - c[medial, 0],
               c[s2, 1] + c[s2, 2] - max(c[k, 1] + c[k, 2] for k in rest if k != s2))
