"""Tree topology derived from a VesselGraph: roots, flow orientation, generations, Strahler.

Rules (documented in the catalogue):

* **Root** of each connected component: a node of kind ``root`` if the component has one;
  otherwise the endpoint (degree-1 node) whose segment has the largest mean radius (the
  inflow vessel is the thickest); a component without endpoints (a pure loop) takes the node
  of its thickest segment. Ties go to the larger radius at the node itself, then to the lowest
  node index.
* **Orientation**: breadth-first search from the root over segments. A segment's proximal
  node is the node from which it is first reached; the segment that first reaches a node is
  that node's **parent segment**. A segment whose distal node was already reached closes a
  loop (a *chord*): it gets no children.
* **Generation**: segments at the root have generation 1; a child segment has its parent's
  generation + 1 when they meet at a bifurcation (degree ≥ 3) and the same generation across
  a degree-2 anchor node.
* **Strahler order** (Strahler 1957, as used for vascular trees by Horsfield): segments
  without children have order 1; otherwise order ``m`` = the largest child order, ``m + 1``
  when at least two children have order ``m``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from vasomics.vessel_graph import VesselGraph


@dataclass(frozen=True)
class Topology:
    """Per-node and per-segment topology (arrays indexed by node or segment id)."""

    degree: np.ndarray            # (N,) segment ends at each node
    component: np.ndarray         # (N,) component label of each node
    n_components: int
    roots: np.ndarray             # (C,) root node of each component
    proximal: np.ndarray          # (S,) proximal node of each segment
    distal: np.ndarray            # (S,) distal node
    parent_segment: np.ndarray    # (N,) segment that first reached the node (-1 at roots)
    is_chord: np.ndarray          # (S,) segment closes a loop
    generation: np.ndarray        # (S,)
    strahler: np.ndarray          # (S,)
    children: list                # children[s] = list of child segment ids


def topology(graph: VesselGraph) -> Topology:
    """Compute :class:`Topology` (see module doc for the rules)."""
    n, s = graph.n_nodes, graph.n_segments
    start, end = graph.segment_start, graph.segment_end
    degree = graph.node_degree()
    adj = coo_matrix((np.ones(s), (start, end)), shape=(n, n))
    n_comp, comp = connected_components(adj, directed=False)
    mean_r = np.zeros(s)
    counts = np.diff(graph.point_offsets)
    if s:
        mean_r = np.add.reduceat(graph.radius, graph.point_offsets[:-1]) / counts
    roots = _choose_roots(graph, degree, comp, n_comp, mean_r)

    incident: list[list[int]] = [[] for _ in range(n)]
    for i in range(s):
        incident[start[i]].append(i)
        if end[i] != start[i]:
            incident[end[i]].append(i)
    proximal = start.copy()
    distal = end.copy()
    parent_segment = np.full(n, -1, np.int64)
    is_chord = np.zeros(s, bool)
    generation = np.zeros(s, np.int64)
    seen_seg = np.zeros(s, bool)
    seen_node = np.zeros(n, bool)
    children: list[list[int]] = [[] for _ in range(s)]
    order: list[int] = []
    for root in roots:
        seen_node[root] = True
        queue = deque([int(root)])
        while queue:
            u = queue.popleft()
            par = parent_segment[u]
            step = 1 if degree[u] >= 3 else 0
            for seg in incident[u]:
                if seen_seg[seg]:
                    continue
                seen_seg[seg] = True
                order.append(seg)
                v = end[seg] if start[seg] == u else start[seg]
                proximal[seg], distal[seg] = u, v
                generation[seg] = 1 if par < 0 else generation[par] + step
                if par >= 0:
                    children[par].append(seg)
                if seen_node[v]:
                    is_chord[seg] = True
                else:
                    seen_node[v] = True
                    parent_segment[v] = seg
                    queue.append(int(v))
    strahler = np.ones(s, np.int64)
    for seg in reversed(order):
        kids = children[seg]
        if kids:
            orders = strahler[kids]
            top = orders.max()
            strahler[seg] = top + 1 if np.count_nonzero(orders == top) >= 2 else top
    return Topology(degree, comp, n_comp, roots, proximal, distal, parent_segment, is_chord,
                    generation, strahler, children)


def _choose_roots(graph, degree, comp, n_comp, mean_r) -> np.ndarray:
    roots = np.full(n_comp, -1, np.int64)
    is_root = graph.node_kind == "root"
    for node in np.flatnonzero(is_root):
        if roots[comp[node]] < 0:
            roots[comp[node]] = node
    # thickest incident segment per node; ties broken by the radius at the node itself
    node_r = np.zeros(graph.n_nodes)
    end_r = np.zeros(graph.n_nodes)
    if graph.n_segments:
        off = graph.point_offsets
        np.maximum.at(node_r, graph.segment_start, mean_r)
        np.maximum.at(node_r, graph.segment_end, mean_r)
        np.maximum.at(end_r, graph.segment_start, graph.radius[off[:-1]])
        np.maximum.at(end_r, graph.segment_end, graph.radius[off[1:] - 1])
    for c in np.flatnonzero(roots < 0):
        nodes = np.flatnonzero(comp == c)
        ends = nodes[degree[nodes] == 1]
        pool = ends if ends.size else nodes
        best = np.lexsort((-pool, end_r[pool], node_r[pool]))[-1]  # last = largest
        roots[c] = pool[best]
    return roots


def horton_bifurcation_ratio(strahler: np.ndarray, children: list) -> float:
    """Horton's bifurcation ratio ``R_b = exp(−slope)`` of the least-squares line through
    ``(k, ln N_k)``, where ``N_k`` is the number of Strahler *streams* of order ``k`` (maximal
    runs of consecutive segments of the same order). NaN with fewer than two orders."""
    if strahler.size == 0:
        return float("nan")
    continues = np.zeros(strahler.size, bool)  # segment continues its parent's stream
    for seg, kids in enumerate(children):
        for k in kids:
            if strahler[k] == strahler[seg]:
                continues[k] = True
    stream_orders = strahler[~continues]
    orders, counts = np.unique(stream_orders, return_counts=True)
    if orders.size < 2:
        return float("nan")
    slope = np.polyfit(orders.astype(float), np.log(counts.astype(float)), 1)[0]
    return float(np.exp(-slope))
