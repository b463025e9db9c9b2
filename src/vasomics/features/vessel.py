"""Vessel-scope features. A *vessel* is the set of segments sharing one non-empty anatomical
label (``VesselGraph.segment_label``, set by the naming stage or by the user); scope
``vessel:<label>``. Without labels no vessel rows are produced.

The vessel distance metric is defined only when the vessel's segments form a single simple
path (connected, no loop, no node with more than two of its segment ends); otherwise NaN.
"""

from __future__ import annotations

import numpy as np

from vasomics.features.context import Context, Values
from vasomics.features.segment import frustum_volume

PROVIDES = ("VX.A.V.LEN", "VX.A.V.VOL", "VX.A.V.RMEAN", "VX.A.V.NSEG", "VX.A.V.DM")


def _path_chord(graph, segs: np.ndarray) -> float:
    """Distance between the two ends of a simple path of segments, else NaN."""
    ends = np.concatenate([graph.segment_start[segs], graph.segment_end[segs]])
    nodes, counts = np.unique(ends, return_counts=True)
    if np.any(counts > 2) or len(nodes) != len(segs) + 1:  # a tree on these nodes is a path
        return float("nan")
    tips = nodes[counts == 1]
    if len(tips) != 2:
        return float("nan")
    import networkx as nx

    sub = nx.Graph()
    sub.add_edges_from(zip(graph.segment_start[segs], graph.segment_end[segs], strict=True))
    if not nx.is_connected(sub):
        return float("nan")
    return float(np.linalg.norm(graph.node_position[tips[0]] - graph.node_position[tips[1]]))


def compute(ctx: Context) -> dict[str, Values]:
    g = ctx.graph
    labels = np.asarray(g.segment_label, dtype=str)
    names = sorted(set(labels.tolist()) - {""})
    if not names:
        return {}
    lengths, vols = ctx.lengths, frustum_volume(ctx)
    cl = ctx.centerlines
    r_int = cl.segment_sum(ctx.weights * cl.radius)
    rows = {fid: [] for fid in PROVIDES}
    for name in names:
        segs = np.flatnonzero(labels == name)
        length = float(lengths[segs].sum())
        chord = _path_chord(g, segs)
        rows["VX.A.V.LEN"].append(length)
        rows["VX.A.V.VOL"].append(float(vols[segs].sum()))
        rows["VX.A.V.RMEAN"].append(float(r_int[segs].sum() / length) if length > 0 else np.nan)
        rows["VX.A.V.NSEG"].append(len(segs))
        rows["VX.A.V.DM"].append(length / chord if chord > 0 else np.nan)
    scopes = np.array([f"vessel:{n}" for n in names], dtype=object)
    return {fid: Values(scopes, np.asarray(v, float)) for fid, v in rows.items()}
