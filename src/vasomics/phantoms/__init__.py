"""Digital phantoms with analytic truth: tubes, arcs, helices, sinusoids, Y-bifurcations,
binary and random trees, and networks with loops.

Every generator returns a :class:`Phantom` ``(mask, truth)``: a ``uint8`` mask
:class:`~vasomics.image.Image` and a :class:`PhantomTruth` (truth graph + analytic values).
"""

from vasomics.phantoms.raster import rasterize_image, rasterize_tubes
from vasomics.phantoms.trees import binary_tree, ladder, random_tree, ring_tube, y_bifurcation
from vasomics.phantoms.truth import (
    Phantom,
    PhantomTruth,
    random_rotation,
    rotation_matrix,
    tree_graph,
)
from vasomics.phantoms.tubes import arc_tube, helix_tube, sinusoid_tube, straight_tube

__all__ = [
    "Phantom", "PhantomTruth", "arc_tube", "binary_tree", "helix_tube", "ladder",
    "random_rotation", "random_tree", "rasterize_image", "rasterize_tubes", "ring_tube",
    "rotation_matrix", "sinusoid_tube", "straight_tube", "tree_graph", "y_bifurcation",
]
