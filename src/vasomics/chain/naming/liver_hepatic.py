"""Naming of the hepatic veins: right, middle and left.

The hepatic venous graph (without the IVC) falls into trees that each drain into the IVC.
Per connected tree, the root is its node nearest the IVC's axis (the vertical line through
the given IVC point: the veins join the IVC from the side, at any height); each segment
leaving the root starts a vein. Where two veins' ostia merge in the image, their
centerlines run into each other through one segment whose middle comes nearest the IVC:
that segment is cut there (:func:`_split_at_ostium`; the returned graph then has one more
node and segment, the total length is unchanged). Where two veins touch deeper in the liver,
one vein's ostium is a free end at the IVC's wall far along the tree from the root: the
path between them is cut at its point farthest from the IVC's axis, the contact
(:func:`_part_at_contacts`), when that point lies out beyond the farther of the two ends by
more than ``ostium_factor`` times the widest radius along the path (the thinned ostium of a
wide vein can end in two tips at the wall that meet in its lumen a few millimetres out:
phantom 604, whose 5.5 mm vein was cut there and its pieces along the wall cut again into
14 one-voxel fragments). Every free end within its radius plus ``ostium_reach_mm`` of the
wall is an ostium and becomes a ``root`` node (:func:`_ostia`): the veins drain there, so no
distal branch ends there, and the distal branch richness does not count it. The free end
may lie up to ``ostium_reach_mm`` beyond the wall
(its last centimetre lost to the IVC's section or to a gap: phantom 628 at 0.9 mm, whose
left vein ended 9 mm out and reached the IVC only through a contact with the middle vein,
named middle over 101 mm; naming 0.859 -> 1.000, and 534 at 2.25 mm 0.779 -> 0.998; 12 mm
rather than 10 since the same vein in 628 drawn with the hepatic artery, another noise
draw, ended 11.6 mm outside the wall, beyond its end radius plus 10 mm, once a pinhole
ring at its end was cut: naming 0.860 -> 1.000). A tree whose trunk divides into two or
more major branches (each at least ``min_share`` of the downstream tubular volume) closer
than ``ostium_factor`` times the trunk's radius (median over its first segment, or the
widest calibre of the veins it divides into when that is larger: a stem narrower than its
branches is an ostium narrowed beside the IVC's mask, phantom 608 at 0.9 mm) to the root
or, when the IVC's radius is given, to the IVC's wall (the division's distance from the
IVC's axis less that radius: merged ostia meet in a hub outside the wall, from which a stem
is traced into the IVC's lumen, to a root near its axis), or into three or more major
branches whose centroids lie on both sides of the IVC's axis (in LPS x: one vein drains one
side; the right, middle and left veins meeting at a hub further out), holds several veins
that reach the IVC side by side (their ostia merge in the image, as the right and middle
hepatic veins often do at the IVC's wall): the major branches are veins of their own, the
short common stem takes the name of the largest. Veins whose calibre (median radius along
their trunk, down to its first major division) is at least ``min_caliber`` times the widest
are major (the three veins reach the IVC with comparable calibres; a vein's first segment
alone can be a few mm of narrowed ostium beside the IVC's mask: phantom 519's right hepatic
vein read 1.7 mm there against 3.2 mm for the left, and the middle vein, 1.5 mm, fell below
the cut); so is a vein that drains at least ``min_share`` of all the veins' tubular
volume, whatever its calibre (a noisy lumen can read a common middle / left trunk at a
third of its radius: phantom 608's drained 63 % of the tree); the major vein whose centroid
lies farthest to the
patient's right (smallest LPS x) is the ``right_hepatic_vein``, the one farthest to the left
the ``left_hepatic_vein``, any between them the ``middle_hepatic_vein``. When only two major
veins exist, the left one is divided at its first major division into
``middle_hepatic_vein`` (the more rightward branch) and ``left_hepatic_vein`` (a common
middle/left trunk, frequent in patients), unless the trunk's centerline runs on the IVC's
right (mean LPS x below the IVC's axis): then it is the middle vein itself, which reaches
the left vein's branches through a contact deeper in the liver (phantom 611 at 0.9 mm, a
54 mm trunk). Minor veins take the name of the nearest major one. A connected piece whose
node nearest the IVC's axis lies more than ``max_ostium_gap_mm`` outside the IVC's wall
(from the axis when the IVC's radius is unknown) does not drain into the IVC: it is a piece
that a gap in the lumen cut off a vein (:func:`vasomics.chain.liver_vessels._adopt_fragments`)
and takes the name of the nearest named centerline point instead of counting as a vein,
unless only two major veins reach the IVC, both on one side of its axis: then the largest
such piece of a major vein's calibre on the other side is the third vein, its ostium lost
(:func:`_lost_ostium_vein`, rooted at its free end nearest the axis; phantom 554 at 2.25 mm,
whose left vein ended 32 mm outside the wall and was named middle as a fragment: naming
0.555 -> 1.000, and 532 0.744 -> 1.000). The three veins span both sides of the IVC (the
left vein drains the left lobe), so a piece on the side no major vein reaches is that vein,
not a branch cut from one of the two.
"""

from __future__ import annotations

import numpy as np

from vasomics.chain.naming.tree import (
    cut_at_points,
    label_subtree,
    name_fragments,
    rooted_tree,
    trunk,
)
from vasomics.vessel_graph import VesselGraph

RIGHT, MIDDLE, LEFT = "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein"


def name_hepatic_veins(graph: VesselGraph, ivc_point_mm, min_caliber: float = 0.5,
                       min_share: float = 0.15, ostium_factor: float = 2.5,
                       ivc_radius_mm: float | None = None,
                       max_ostium_gap_mm: float = 30.0,
                       ostium_reach_mm: float = 12.0) -> VesselGraph:
    """Label hepatic vein segments (see the module docstring). ``ivc_point_mm``: a point on
    the IVC axis at the level of the hepatic vein confluence (LPS mm); ``ivc_radius_mm``:
    the IVC's radius there (mm; None or NaN when unknown: stems are then measured from the
    root only)."""
    labels = np.full(graph.n_segments, "", dtype=object)
    if graph.n_segments == 0:
        return graph.replace(segment_label=labels)
    ivc = np.asarray(ivc_point_mm, float)
    wall = None if ivc_radius_mm is None or not np.isfinite(ivc_radius_mm) \
        else float(ivc_radius_mm)
    graph = _split_at_ostium(graph, ivc)
    if wall is not None:
        graph = _part_at_contacts(graph, ivc, wall, ostium_factor, ostium_reach_mm)
    labels = np.full(graph.n_segments, "", dtype=object)
    comp = graph.node_components()[graph.segment_start]
    roots = {c: _root(graph, np.nonzero(comp == c)[0], ivc) for c in np.unique(comp)}
    gap = {c: np.linalg.norm(graph.node_position[r, :2] - ivc[:2]) - (wall or 0.0)
           for c, r in roots.items()}
    draining = [c for c in roots if gap[c] <= max_ostium_gap_mm] or list(roots)
    veins = []  # (caliber, centroid, tree, first segment of the vein)
    stems = []  # (tree, common stem segments, its veins' first segments)
    for c in draining:
        root = roots[c]
        tree = rooted_tree(graph, root)
        for first in tree.first:
            for k in _split_ostium(tree, first, min_share, ostium_factor, stems, ivc,
                                   wall):
                veins.append((_caliber(tree, k, min_share), tree.centroid[k], tree, k))
    widest = max(v[0] for v in veins)
    total = sum(tree.weight[k] for _, _, tree, k in veins)
    major = sorted([v for v in veins if v[0] >= min_caliber * widest
                    or v[2].weight[v[3]] >= min_share * total], key=lambda v: v[1][0])
    if len(major) == 2:
        lost = _lost_ostium_vein(graph, comp, draining, ivc, major, min_caliber * widest,
                                 min_share)
        if lost is not None:
            veins.append(lost)
            major = sorted(major + [lost], key=lambda v: v[1][0])
    named = []  # (centroid, name)
    if len(major) >= 3:
        for i, (_, cen, tree, k) in enumerate(major):
            name = RIGHT if i == 0 else LEFT if i == len(major) - 1 else MIDDLE
            label_subtree(labels, tree, k, name)
            named.append((cen, name))
    elif len(major) == 2:
        label_subtree(labels, major[0][2], major[0][3], RIGHT)
        named.append((major[0][1], RIGHT))
        _, cen, tree, k = major[1]
        label_subtree(labels, tree, k, LEFT)
        chain, division = trunk(tree, k, 0.2)
        if len(division) >= 2:
            mid = min(division, key=lambda d: tree.centroid[d, 0])
            label_subtree(labels, tree, mid, MIDDLE)
            named.append((tree.centroid[mid], MIDDLE))
            # a trunk that runs on the IVC's right is the middle vein's (the left vein's
            # branches reached through a contact deeper in the liver), not a common trunk
            if np.concatenate([graph.segment_points(s) for s in chain])[:, 0].mean() < ivc[0]:
                labels[chain] = MIDDLE
        named.append((cen, LEFT))
    elif len(major) == 1:
        _, cen, tree, k = major[0]
        label_subtree(labels, tree, k, RIGHT if cen[0] < ivc[0] else LEFT)
        named.append((cen, labels[k]))
    for _cal, cen, tree, k in veins:
        if named and labels[k] == "":
            nearest = min(named, key=lambda n: np.linalg.norm(n[0] - cen))[1]
            label_subtree(labels, tree, k, nearest)
    for tree, stem, firsts in stems:  # a shared ostium: the largest vein's name
        name = labels[max(firsts, key=lambda k: tree.weight[k])]
        for s in stem:
            labels[s] = name
    name_fragments(graph, labels)
    kind = graph.node_kind
    if wall is not None:
        kind = np.where(_ostia(graph, ivc, wall, ostium_reach_mm), "root", kind).astype(object)
    return graph.replace(segment_label=labels, node_kind=kind)


def _ostia(graph: VesselGraph, ivc, wall: float, reach_mm: float) -> np.ndarray:
    """Per node, whether it is a free end at the IVC's wall: its distance from the IVC's
    axis (the vertical line through ``ivc``) exceeds the IVC's radius ``wall`` by at most
    its own radius plus ``reach_mm`` (mm). The hepatic veins drain there; such an end is an
    ostium, never a distal branch's tip (the thinned mouth of a wide vein ends in two or
    more tips at the wall, and the lumen left between the veins' mouths and the IVC's mask
    in short pieces: 1-6 of them per phantom at 0.9 mm voxels, all within 3.2 mm plus their
    radius of the wall but one at 7 mm, while the truth's terminals lie at least 25 mm
    out)."""
    gap = np.linalg.norm(graph.node_position[:, :2] - ivc[:2], axis=1) - wall
    return (graph.node_degree() == 1) & (gap <= _end_radius(graph) + reach_mm)


def _end_radius(graph: VesselGraph) -> np.ndarray:
    """Per node, the radius (mm) at the end of a segment that ends there (0 elsewhere)."""
    end_radius = np.zeros(graph.n_nodes)
    end_radius[graph.segment_start] = graph.radius[graph.point_offsets[:-1]]
    end_radius[graph.segment_end] = graph.radius[graph.point_offsets[1:] - 1]
    return end_radius


def _lost_ostium_vein(graph: VesselGraph, comp, draining, ivc, major, min_caliber_mm: float,
                      min_share: float):
    """The third vein when the two major veins that reach the IVC both lie on one side of
    its axis (LPS x of their centroids against ``ivc``'s): the largest piece that does not
    drain into the IVC (a component of ``comp`` not in ``draining``) whose calibre is at
    least ``min_caliber_mm`` and whose centroid lies on the other side, rooted at its free
    end nearest the axis, as ``(calibre, centroid, tree, first segment)``; None when there
    is none."""
    side = np.sign([m[1][0] - ivc[0] for m in major])
    if side[0] != side[1]:
        return None
    degree = graph.node_degree()
    best = None
    for c in np.setdiff1d(np.unique(comp), draining):
        segs = np.nonzero(comp == c)[0]
        ends = np.unique(np.concatenate([graph.segment_start[segs], graph.segment_end[segs]]))
        ends = ends[degree[ends] == 1]
        if not len(ends):
            continue
        axis_distance = np.linalg.norm(graph.node_position[ends, :2] - ivc[:2], axis=1)
        tree = rooted_tree(graph, int(ends[np.argmin(axis_distance)]))
        k = tree.first[0]
        caliber, centroid = _caliber(tree, k, min_share), tree.centroid[k]
        if caliber >= min_caliber_mm and np.sign(centroid[0] - ivc[0]) == -side[0] and (
                best is None or tree.weight[k] > best[2].weight[best[3]]):
            best = (caliber, centroid, tree, k)
    return best


def _split_at_ostium(graph: VesselGraph, ivc) -> VesselGraph:
    """Per connected tree, where its centerline point nearest the IVC's axis lies inside a
    segment, nearer the axis by more than the local radius than both of that segment's
    ends, the segment runs from one vein into another through their merged ostia: it is cut
    there (a new ``anchor`` node, degree 2), so that each vein gets its own segments."""
    seg_of = graph.point_segment()
    comp = graph.node_components()[graph.segment_start][seg_of]
    d = np.linalg.norm(graph.points[:, :2] - ivc[:2], axis=1)
    cuts = []
    for c in np.unique(comp):
        i = int(np.nonzero(comp == c)[0][np.argmin(d[comp == c])])
        s = int(seg_of[i])
        lo, hi = graph.point_offsets[s], graph.point_offsets[s + 1] - 1
        if lo < i < hi and d[i] + graph.radius[i] < min(d[lo], d[hi]):
            cuts.append(i)
    return cut_at_points(graph, cuts)


def _part_at_contacts(graph: VesselGraph, ivc, wall: float,
                      ostium_factor: float, ostium_reach_mm: float) -> VesselGraph:
    """Per connected tree, a free end other than the root that lies at the IVC's wall (its
    distance from the IVC's axis, the vertical line through ``ivc``, exceeds the IVC's
    radius ``wall`` by at most its own radius plus ``ostium_reach_mm``, mm) is another
    vein's ostium when the path from the root to it runs out beyond the farther of its two
    ends (and the wall) by more than ``ostium_factor`` times the widest radius along it
    (the two ostia's and the path's): the two veins touch deeper in the liver (phantom 634 at
    0.9 mm: the middle vein meets a branch of the left one 63 mm out, and the middle vein's
    own ostium is a free end 0.1 mm from the wall). The path is cut at its interior
    centerline point farthest from the axis, the contact between the veins (a new node per
    piece; the total length is unchanged); repeated until no tree holds two ostia so
    joined."""
    for _ in range(graph.n_segments):
        cut = _contact_point(graph, ivc, wall, ostium_factor, ostium_reach_mm)
        if cut is None:
            return graph
        graph = _detach(cut_at_points(graph, [cut]))
    return graph


def _contact_point(graph: VesselGraph, ivc, wall: float, ostium_factor: float,
                   ostium_reach_mm: float) -> int | None:
    """The centerline point (index into ``graph.points``) where :func:`_part_at_contacts`
    cuts first, or None."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    length = graph.segment_lengths()
    by_pair = {}  # node pair -> its shortest segment
    for s, (a, b) in enumerate(zip(graph.segment_start, graph.segment_end, strict=True)):
        key = (int(min(a, b)), int(max(a, b)))
        if key not in by_pair or length[s] < length[by_pair[key]]:
            by_pair[key] = s
    pairs = np.array(list(by_pair), int).reshape(-1, 2)
    adj = coo_matrix((length[list(by_pair.values())] + 1e-9, (pairs[:, 0], pairs[:, 1])),
                     shape=(graph.n_nodes,) * 2).tocsr()
    end_radius = _end_radius(graph)
    at_wall = _ostia(graph, ivc, wall, ostium_reach_mm)
    axis_distance = np.linalg.norm(graph.points[:, :2] - ivc[:2], axis=1)
    node_gap = np.linalg.norm(graph.node_position[:, :2] - ivc[:2], axis=1) - wall
    seg_of = graph.point_segment()
    interior = np.ones(len(graph.points), bool)
    interior[graph.point_offsets[:-1]] = False
    interior[graph.point_offsets[1:] - 1] = False
    comp = graph.node_components()[graph.segment_start]
    for c in np.unique(comp):
        segs = np.nonzero(comp == c)[0]
        root = _root(graph, segs, ivc)
        ends = np.unique(np.concatenate([graph.segment_start[segs], graph.segment_end[segs]]))
        ostia = [v for v in ends if v != root and at_wall[v]]
        if not ostia:
            continue
        _, pred = shortest_path(adj, directed=False, indices=root, return_predecessors=True)
        for v in ostia:
            path, w = [], v
            while w != root and pred[w] >= 0:
                path.append(by_pair[(int(min(w, pred[w])), int(max(w, pred[w])))])
                w = int(pred[w])
            on = np.nonzero(interior & np.isin(seg_of, path))[0]
            if not on.size:
                continue
            i = int(on[np.argmax(axis_distance[on])])
            # how far the path runs out beyond its farther end (or the wall), against the
            # widest calibre along it: a contact lies out in the liver, not in the lumen of
            # the vein whose ostium the two ends split
            out = axis_distance[i] - wall - max(node_gap[v], node_gap[root], 0.0)
            if out > ostium_factor * max(end_radius[v], end_radius[root],
                                         graph.radius[on].max()):
                return i
    return None


def _detach(graph: VesselGraph) -> VesselGraph:
    """``graph`` with its last node (an ``anchor`` just added by
    :func:`vasomics.chain.naming.tree.cut_at_points`) split in two free ends: the second
    segment through it ends at a copy of it, so the two pieces are no longer joined."""
    node = graph.n_nodes - 1
    seg = [s for s in range(graph.n_segments)
           if node in (graph.segment_start[s], graph.segment_end[s])][-1]
    start, end = graph.segment_start.copy(), graph.segment_end.copy()
    (start if start[seg] == node else end)[seg] = node + 1
    return graph.replace(node_position=np.vstack([graph.node_position,
                                                  graph.node_position[node]]),
                         node_kind=np.array(list(graph.node_kind[:-1]) + ["endpoint"] * 2,
                                            object),
                         segment_start=start, segment_end=end)


def _root(graph: VesselGraph, segs, ivc) -> int:
    """The tree's node nearest the IVC's axis, taken as the vertical line (LPS z) through
    ``ivc``: the veins join the IVC from the side, at any height along it (a free end, or a
    junction where veins with merged ostia meet)."""
    nodes = np.unique(np.concatenate([graph.segment_start[segs], graph.segment_end[segs]]))
    d = np.linalg.norm(graph.node_position[nodes, :2] - ivc[:2], axis=1)
    return int(nodes[np.argmin(d)])


def _split_ostium(tree, first, min_share, ostium_factor, stems, ivc, wall) -> list[int]:
    """The veins of a tree entered by segment ``first``: the major branches of its first
    major division when that lies within ``ostium_factor`` trunk radii of the root or of
    the IVC's wall (its distance from the IVC's axis through ``ivc`` less the IVC's radius
    ``wall``, mm, when known: a root traced into the IVC's lumen lies past the wall), or
    when it has three or more major branches with centroids on both sides of the IVC's
    axis in x (a shared ostium, the stem recorded in ``stems``), else ``first`` itself."""
    g = tree.graph
    chain, division = trunk(tree, first, min_share)
    if len(division) < 2:
        return [first]
    # a stem narrower than the veins it divides into is an ostium narrowed beside the IVC's
    # mask: its scale is the widest of those veins' calibres
    radius = max(float(np.median(g.segment_radius(first))),
                 max(_caliber(tree, k, min_share) for k in division))
    at = g.node_position[tree.far_node[chain[-1]]]
    gap = float(np.linalg.norm(at - g.node_position[tree.root]))
    if wall is not None:
        gap = min(gap, float(np.linalg.norm(at[:2] - ivc[:2])) - wall)
    x = tree.centroid[division, 0]
    sides = len(division) >= 3 and x.min() < ivc[0] < x.max()
    if gap >= ostium_factor * radius and not sides:
        return [first]
    stems.append((tree, chain, division))
    return list(division)


def _caliber(tree, first: int, min_share: float) -> float:
    """A vein's calibre (mm): the median radius along its trunk from segment ``first``
    down to its first major division (:func:`vasomics.chain.naming.tree.trunk`)."""
    chain, _ = trunk(tree, first, min_share)
    return float(np.median(np.concatenate([tree.graph.segment_radius(s) for s in chain])))
