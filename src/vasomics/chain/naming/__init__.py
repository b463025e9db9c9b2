"""Anatomical naming of vessel graphs, one module per territory.

Each territory module exposes ``name_<territory>(graph, ...) -> VesselGraph`` returning a copy
whose ``segment_label`` holds anatomical names (``""`` where no rule applies), using only the
graph's own topology and physical LPS geometry (``x`` towards the patient's left, ``y``
posterior, ``z`` superior). Shared tree helpers live in :mod:`.tree`. New territories (for
example the Circle of Willis) add a module with the same shape.

Territories: :mod:`.liver_portal` (main, right, left portal vein, right anterior/posterior,
segmental branches S2–S8 by Couinaud territory), :mod:`.liver_hepatic` (right, middle and left
hepatic veins), :mod:`.abdominal` (aorta, IVC, splenic vein, superior mesenteric vein, portal
trunk from the localized masks).
"""

from vasomics.chain.naming.abdominal import name_portal_system
from vasomics.chain.naming.liver_hepatic import name_hepatic_veins
from vasomics.chain.naming.liver_portal import name_portal_tree

__all__ = ["name_hepatic_veins", "name_portal_system", "name_portal_tree"]
