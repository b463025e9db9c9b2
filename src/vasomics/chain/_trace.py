"""Compiled kernel: centerline voxels + adjacency → nodes and voxel paths of segments.

Voxels with two neighbours are path voxels; the others are node voxels. Neighbouring
voxels with three or more neighbours (junction voxels) are merged into one node (a junction
cluster); every voxel with one neighbour is an endpoint node. Segments are the voxel paths
between node voxels; cycles made only of path voxels (pure loops) get one anchor node at
their first voxel.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, nogil=True)
def trace(adj_offsets, adj):  # pragma: no cover - compiled
    """Return ``(node_of_voxel, n_nodes, seg_nodes, path_offsets, path)``.

    ``node_of_voxel[i]`` is the node id of node voxel ``i`` (``-1`` for path voxels);
    segment ``s`` joins nodes ``seg_nodes[s, 0]`` and ``seg_nodes[s, 1]`` through voxels
    ``path[path_offsets[s]:path_offsets[s + 1]]``, which start and end with node voxels.
    """
    n = len(adj_offsets) - 1
    deg = adj_offsets[1:] - adj_offsets[:-1]
    parent = np.arange(n)
    for i in range(n):
        if deg[i] >= 3:
            for k in range(adj_offsets[i], adj_offsets[i + 1]):
                j = adj[k]
                if deg[j] >= 3:
                    a, b = _find(parent, i), _find(parent, j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    node_of = np.full(n, -1, np.int64)
    n_nodes = 0
    for i in range(n):  # roots of clusters come first in index order
        if deg[i] != 2 and _find(parent, i) == i:
            node_of[i] = n_nodes
            n_nodes += 1
    for i in range(n):
        if deg[i] != 2:
            node_of[i] = node_of[_find(parent, i)]
    visited = np.zeros(n, np.bool_)
    seg_nodes = np.empty((max(16, n), 2), np.int64)
    path_offsets = np.zeros(max(16, n) + 1, np.int64)
    path = np.empty(3 * n + 16, np.int64)  # interior voxels once, node voxels per end
    n_seg = 0
    n_path = 0
    for v in range(n):
        if deg[v] == 2:
            continue
        for k in range(adj_offsets[v], adj_offsets[v + 1]):
            u = adj[k]
            if deg[u] != 2:
                if node_of[u] == node_of[v] or u < v:
                    continue  # inside one junction cluster, or emitted from the other side
                seg_nodes[n_seg, 0], seg_nodes[n_seg, 1] = node_of[v], node_of[u]
                path[n_path], path[n_path + 1] = v, u
                n_path += 2
                n_seg += 1
                path_offsets[n_seg] = n_path
                continue
            if visited[u]:
                continue
            path[n_path] = v
            n_path += 1
            prev, cur = v, u
            while True:
                path[n_path] = cur
                n_path += 1
                if deg[cur] != 2:
                    break
                visited[cur] = True
                a, b = adj[adj_offsets[cur]], adj[adj_offsets[cur] + 1]
                nxt = b if a == prev else a
                prev, cur = cur, nxt
            seg_nodes[n_seg, 0], seg_nodes[n_seg, 1] = node_of[v], node_of[cur]
            n_seg += 1
            path_offsets[n_seg] = n_path
    # pure loops: cycles of path voxels never reached from a node
    for v in range(n):
        if deg[v] != 2 or visited[v]:
            continue
        node_of[v] = n_nodes
        visited[v] = True
        path[n_path] = v
        n_path += 1
        prev, cur = v, adj[adj_offsets[v]]
        while cur != v:
            visited[cur] = True
            path[n_path] = cur
            n_path += 1
            a, b = adj[adj_offsets[cur]], adj[adj_offsets[cur] + 1]
            nxt = b if a == prev else a
            prev, cur = cur, nxt
        path[n_path] = v
        n_path += 1
        seg_nodes[n_seg, 0], seg_nodes[n_seg, 1] = n_nodes, n_nodes
        n_seg += 1
        path_offsets[n_seg] = n_path
        n_nodes += 1
    return node_of, n_nodes, seg_nodes[:n_seg].copy(), path_offsets[: n_seg + 1].copy(), \
        path[:n_path].copy()
