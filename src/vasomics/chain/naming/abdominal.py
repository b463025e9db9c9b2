"""Naming of the extrahepatic portal system from the localized portal/splenic vein: the
splenic vein, the superior mesenteric vein and the portal trunk, split at the confluence.

Rule (LPS mm): a segment point more than ``margin_mm`` to the patient's left of the
confluence (x larger) belongs to the ``splenic_vein``; else more than ``margin_mm`` below it
(z smaller) to the ``superior_mesenteric_vein``; else to the ``main_portal_vein``. A segment
takes the majority name of its points. The aorta and IVC are named by localization itself
(their masks are reported as such).
"""

from __future__ import annotations

import numpy as np

from vasomics.vessel_graph import VesselGraph


def name_portal_system(graph: VesselGraph, confluence_mm, margin_mm: float = 10.0
                       ) -> VesselGraph:
    """Label segments of the extrahepatic portal/splenic vein graph (module docstring)."""
    conf = np.asarray(confluence_mm, float)
    p = graph.points
    names = np.where(p[:, 0] > conf[0] + margin_mm, "splenic_vein",
                     np.where(p[:, 2] < conf[2] - margin_mm, "superior_mesenteric_vein",
                              "main_portal_vein"))
    seg = graph.point_segment()
    labels = np.full(graph.n_segments, "", dtype=object)
    for s in range(graph.n_segments):
        values, counts = np.unique(names[seg == s], return_counts=True)
        labels[s] = str(values[np.argmax(counts)])
    return graph.replace(segment_label=labels)
