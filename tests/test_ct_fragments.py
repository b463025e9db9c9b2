"""Vessel pieces cut off the trees by a gap in the lumen (``liver_vessels._adopt_fragments``)."""

import numpy as np

from vasomics.chain.liver_vessels import _adopt_fragments

SPACING = (1.0, 0.5, 0.5)  # mm, z y x


def _rod(shape, z, y, x0, x1):
    m = np.zeros(shape, bool)
    m[z - 1:z + 2, y - 2:y + 3, x0:x1] = True
    return m


def test_a_piece_beyond_a_gap_joins_the_tree_it_continues():
    """Portal and hepatic rods 20 mm apart; a piece on the hepatic rod's line past a 2 mm
    gap joins it; one on the portal rod's line past a 5.5 mm gap stays out (beyond
    ``gap_mm`` 3), and so does a 45-voxel piece 1.5 mm beside the hepatic rod (below the
    60-voxel minimum)."""
    shape = (20, 80, 120)
    portal = _rod(shape, 10, 10, 0, 60)
    hepatic = _rod(shape, 10, 50, 0, 60)
    cont = _rod(shape, 10, 50, 64, 90)  # 4 voxels = 2 mm past the hepatic rod's end
    far = _rod(shape, 10, 10, 70, 90)  # 11 voxels = 5.5 mm past the portal rod's end
    small = np.zeros(shape, bool)
    small[9:12, 55:58, 20:25] = True  # 45 voxels, 3 voxels = 1.5 mm beside the hepatic rod
    free = cont | far | small
    p, h = _adopt_fragments(portal, hepatic, free, SPACING, 60, 3.0, 2.0)
    assert h[cont].all() and not p[cont].any()
    assert not ((p | h) & (far | small)).any()
    assert (p == portal).all() and (h == (hepatic | cont)).all()


def test_a_piece_near_both_trees_is_left_out():
    """A piece 1 mm from the portal rod and 2.5 mm from the hepatic one: within the gap of
    both, the portal tree only 1.5 mm nearer (margin 2 mm): neither takes it; with a 1 mm
    margin the portal tree does."""
    shape = (20, 40, 60)
    portal = _rod(shape, 10, 10, 0, 30)
    hepatic = _rod(shape, 10, 22, 0, 30)
    piece = np.zeros(shape, bool)
    piece[9:12, 14:16, 0:30] = True  # y 14-15: 1.0 mm from y 12 (portal), 2.5 mm from y 20
    p, h = _adopt_fragments(portal, hepatic, piece, SPACING, 10, 3.0, 2.0)
    assert (p == portal).all() and (h == hepatic).all()
    p, h = _adopt_fragments(portal, hepatic, piece, SPACING, 10, 3.0, 1.0)
    assert p[piece].all() and (h == hepatic).all()
