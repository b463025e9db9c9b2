"""Tree separation drops what the trees reach only outside the liver at the IVC
(:func:`vasomics.chain.tree_separation.separate_trees` with ``anchor`` and ``ivc_zone``).

Phantom (1 mm voxels, axes z, y, x): the liver is x < 40. A portal trunk (radius 3 mm) runs
along x from the hilum inside the liver (x = 10) out to its cut face on the region's border
(x = 70). Outside the liver two branches (radius 2 mm) leave it along y: a tributary toward
y = 10 that ends in the hilum band, and a vein toward y = 70 whose end lies beside the IVC
(the IVC's lumen and its tributaries, reached through a contact outside the liver). A
hepatic vein runs inside the liver along z up to its root at the IVC.
"""

import numpy as np
import pytest

from vasomics.chain.tree_separation import separate_trees
from vasomics.phantoms.raster import rasterize_tubes

SHAPE = (60, 80, 80)


def _tube(mask, start, stop, radius):
    """Add the capsule of ``radius`` around the segment ``start``-``stop`` (voxel indices,
    1 mm voxels) to ``mask``."""
    axis = np.array([start, stop], float)[:, ::-1]  # physical points are (x, y, z)
    mask |= rasterize_tubes([axis], [radius], mask.shape, (1.0, 1.0, 1.0), flat_caps=False)


@pytest.fixture(scope="module")
def scene():
    tube = np.zeros(SHAPE, bool)
    _tube(tube, (20, 40, 10), (20, 40, 70), 3.0)  # portal trunk
    _tube(tube, (20, 40, 55), (20, 10, 55), 2.0)  # tributary in the hilum band
    _tube(tube, (20, 40, 50), (20, 70, 50), 2.0)  # vein ending at the IVC
    _tube(tube, (28, 30, 20), (55, 30, 20), 2.5)  # hepatic vein, inside the liver
    liver = np.zeros(SHAPE, bool)
    liver[..., :40] = True
    ivc = np.zeros(SHAPE, bool)
    _tube(ivc, (0, 75, 50), (59, 75, 50), 3.0)  # the IVC beside the vein's end
    hepatic_root = np.zeros(SHAPE, bool)
    hepatic_root[54:57, 28:33, 18:23] = True  # the hepatic vein's ostium on the IVC
    tube &= ~hepatic_root
    seed = np.zeros(SHAPE, bool)
    seed[18:23, 38:43, 10:16] = True  # the portal root at the hilum
    inlet = tube & (np.indices(SHAPE)[2] >= 68)  # the trunk's cut face
    rim = np.zeros(SHAPE, bool)
    _tube(rim, (0, 75, 50), (59, 75, 50), 6.0)  # within 3 mm of the IVC
    return tube, hepatic_root, seed, liver | inlet, rim


def _parts(portal):
    return {"trunk": portal[20, 40, 41:68].mean(), "tributary": portal[20, 12:30, 55].mean(),
            "to the IVC": portal[20, 50:69, 50].mean()}


def test_branch_reaching_the_ivc_outside_the_liver_is_dropped(scene):
    tube, hepatic_root, seed, anchor, rim = scene
    portal, hepatic, _, _ = separate_trees(tube, hepatic_root, seed, (1.0, 1.0, 1.0), None,
                                           anchor, rim)
    parts = _parts(portal)
    assert parts["trunk"] == 1.0 and parts["tributary"] == 1.0, parts
    assert parts["to the IVC"] == 0.0, parts
    assert not hepatic[20, 50:69, 50].any()
    assert hepatic[30:50, 30, 20].all()  # the hepatic vein keeps its tree


def test_without_anchor_the_portal_tree_takes_it(scene):
    """The same scene without ``anchor``: the branch goes to the portal tree (what the rule
    removes)."""
    tube, hepatic_root, seed, _, _ = scene
    portal, _, _, _ = separate_trees(tube, hepatic_root, seed, (1.0, 1.0, 1.0))
    parts = _parts(portal)
    assert parts["to the IVC"] == 1.0 and parts["tributary"] == 1.0, parts


def test_a_vessel_ring_without_junctions_goes_to_its_tree():
    """A vessel mask whose centerline has no junction node (a lone ring, 5 voxels thick):
    the separation used to index the empty node table (IndexError through the chain on a
    64x96x96 phantom whose localized region held such a ring). The whole ring belongs to
    the portal tree seeded on it; no hepatic root, no hepatic tree."""
    z, y, x = np.mgrid[:20, :60, :60]
    tube = (np.abs(np.hypot(y - 30, x - 30) - 18) <= 2.5) & (np.abs(z - 10) <= 2.5)
    seed = np.zeros_like(tube)
    seed[10, 30, 48] = True
    portal, hepatic, _, _ = separate_trees(tube, np.zeros_like(tube), seed, (1.0, 1.0, 1.0))
    assert np.array_equal(portal, tube) and not hepatic.any()
