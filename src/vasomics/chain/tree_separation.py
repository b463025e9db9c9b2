"""Separation of a liver's vessel mask into the portal venous and hepatic venous trees, on
the graph of its centerline (step 4 of :mod:`vasomics.chain.liver_vessels`).

1. **Graph.** The vessel mask (without the IVC) is thinned
   (:func:`vasomics.chain.skeleton.skeletonize`); centerline voxels with three or more
   neighbours form junction nodes, the runs between them segments (median radius ``r`` and
   length ``L`` in mm). Before thinning, the mask's *valleys* are left out of it
   (:func:`_valleys`): voxels whose smoothed contrast lies ``valley_min_dip_sd`` SDs of the
   smoothed parenchyma below brighter voxels of the mask within ``valley_reach_mm`` on both
   sides along one of the 13 lattice directions. Where two veins run a millimetre apart the
   blurred gap between them reads above the lumen threshold and the mask merges them; thinned
   as one, the merged lumens gave one centerline to both, and the tree that reached it first
   took the other's branch beyond (phantom 622 at 0.9 mm voxels: portal segment 7, 108 mm,
   in the hepatic tree where it runs 1.1 mm from the right hepatic vein; the gap reads 30-40
   HU under both lumens, 6-7 SDs). The voxels themselves stay in the trees (step 8); only
   the centerline no longer crosses the gap. Elsewhere only the crotches of branchings read
   as valleys (a lumen on either side, diagonally), which moves a junction's centerline by
   a voxel.
2. **Competing growth** (:func:`_grow`). The two trees grow from their roots over this
   graph as one best-first (Dijkstra) search in which a segment belongs to the tree that
   reaches it first and a tree cannot pass through the other's junctions. Entering segment
   ``t`` from segment ``s`` at a junction costs ``L_t / (r_t + r0)²`` (thick lumens are
   cheap, thin necks where two trees touch are dear) plus, in units of ``penalty_mm`` of
   travel in ``s`` (``penalty_mm / (r_s + r0)²``):

   * *direction continuity*: ``turn_weight`` per 30° by which the turn from ``s`` into ``t``
     exceeds ``free_turn_deg`` (a tree continues mostly straight through its junctions; at
     a contact the other tree's vessel is entered across its axis or backwards). Defaults
     (2 per 30° beyond 30°, ``penalty_mm`` 10) chosen on 3D-IRCADb 1.1 with three noise /
     enhancement draws (tests/test_ct_ircadb.py): one case, so treat them as a first fit;
   * *radius continuity*: ``widen_weight`` per unit by which ``r_t / r_s`` exceeds
     ``free_widen`` (away from its root a tree narrows; a child much thicker than its parent
     is another tree's trunk reached through a contact).

   Hepatic roots are the segments nearest the voxels where the vessels touch the IVC; the
   portal root is the segment nearest the portal root voxel.
3. **Crossings** (:func:`_crossing_partners`). Where a portal branch crosses a hepatic vein
   the two lumens merge in the mask and the skeleton joins them at one junction or at two
   joined by a short link (a segment between two junctions no longer than
   ``crossing_link_radii`` of its radius plus a voxel). When the branches at such a junction
   (at most two nodes, four to six branches) pair up as at least two straight through
   vessels (a turn of at most ``crossing_turn_deg`` from one into the other, radii at least
   ``crossing_min_radius_mm`` and within ``crossing_radius_ratio`` of each other), a tree
   arriving along one of them passes straight through, even over the other tree's
   junction, and entering a paired branch other than from its partner (or by the tree
   that holds its partner) costs ``crossing_side_penalty`` more. Without this the tree
   that reached the crossing first took the other's vessel beyond it (phantoms 601 / 604:
   portal S7, drawn through the right hepatic vein's lumen, 0.98 of it in the hepatic
   tree). The penalty is not a ban: a portal branch whose two side branches leave it on
   one line looks like a crossing too (3D-IRCADb 1.1), and a ban let the hepatic tree take
   both through a contact at one's far end (0.07 of the portal lumen). Between 3 and 8
   units the separation of both (9 phantoms, 3D-IRCADb 1.1) is the same.
4. **Re-entry through a bend** (:func:`_straight_continuations`). After the growth, a
   segment entered with a turn sharper than ``reentry_turn_deg`` that continues a segment
   of the other tree at the same junction straight (a turn of at most
   ``reentry_straight_deg``, no more than ``reentry_widen`` times its radius) moves with
   the subtree grown from it to that tree: one vessel runs on through the junction, and the
   tree that took it turned into it from the side (phantoms 610 / 619: portal S7 entered
   from the right hepatic vein at a contact). The other tree's segment may also sit at the
   far junction of a link (no longer than ``reentry_link_radii`` of its radius plus a
   voxel, at least as thick as the segment, which is itself at least
   ``crossing_min_radius_mm``): two vessels that touch over a few mm are thinned into two
   junctions joined by their merged lumen (phantom 631 at 0.9 mm: the hepatic tree took
   portal S6 / S7, 129 mm, through a 9 mm link).
5. **Lumen HU** (:func:`_lumen_penalty`). In a portal venous scan the two trees often
   enhance differently (the portal vein 10-50 HU brighter than the hepatic veins). Given
   the smoothed image's difference from the parenchyma, each tree's lumen HU is measured on
   the segments the growth gave it (at least ``lumen_min_radius_mm`` thick and three
   centerline voxels long, the median of their mean HU along the centerline); when the two
   differ by ``lumen_min_gap_sd`` SDs of those segments' spread, the growth and step 4 run
   again, and in them entering a thick segment whose mean HU lies nearer the other tree's
   lumen costs ``lumen_weight`` units per SD (up to ``lumen_max_sd``), a tree may pass
   through the other's junction into a segment that reads as its own, and step 4 moves no
   segment against its reading. Here a thick segment of one voxel is read too (the
   contrast is smoothed over more than a voxel): where a vessel passes on beyond a contact,
   its first piece, up to the next branch's junction, is often one or two voxels long, and
   unread it had barred the tree arriving second from its own vessel (phantom 619 with the
   artery: 166 mm of portal S8 in the middle hepatic vein, portal length -0.18). A thin one
   that short reads the blur of the thicker lumens at its junctions, not its own partial
   volume, and is not read.
   A root segment pays its penalty as well: a portal branch whose tip touches the IVC's
   seed is a hepatic root, and entered at no cost the hepatic tree kept it (phantom 625: a
   22 mm portal branch at 50 HU above the parenchyma, the portal lumen 54 and the hepatic
   33).
   Where the trees touch, the first to arrive took the other's branch through a sharp
   bend and held the junction beyond which its own tree would have entered it (phantom
   616: 131 mm of portal branches in the hepatic tree). Partial volume darkens thinner
   segments towards the parenchyma whatever their tree, so a segment from
   ``lumen_thin_min_radius_mm`` up to ``lumen_min_radius_mm`` is weighed against each tree's
   lumen contrast scaled by the share ``1 - exp(-R^2 / 2 s^2)`` that the axis of a round
   lumen of radius ``R`` blurred by a Gaussian of SD ``s`` keeps (:func:`_partial_volume`:
   ``s`` fitted to the first growth's segments, the SD that of the thin segments about their
   tree's prediction). On 3D-IRCADb 1.1 (noise seeds 0 / 1) every segment that the thick
   segments' evidence left in the wrong tree was under 1.75 mm thick, the trees' lumens
   24 / 38 HU apart.
   Before the lumens are compared, a segment reading more than ``bright_max_sd`` spreads
   (and at least ``bright_min_hu``) above the brighter tree's lumen is taken for no vein,
   since partial volume only darkens a vein's lumen: bone, oral contrast, an artery in the
   arterial phase (:func:`_bright_segments`). The growth runs again without entering such
   segments (phantom 619: 215 mm of ribs, 250 HU in the wall beside the liver, were in the
   hepatic tree, its length +17 %). A thick segment reading under ``lumen_min_share`` of its
   tree's lumen is no lumen of it (a faint vessel beside it in the hilum band, an organ's
   rim) and counts neither in the lumen nor in its spread (:func:`_tree_lumens`; on
   3D-IRCADb 1.1 through the chain nine 3-6 mm pieces of the IVC's lumen beside its
   localized mask and of an artery, at 12-32 HU against a portal lumen of 71, had widened
   the portal segments' spread to 14 HU, 10 with the manual organs, and shut the gate).
   After the growth, while one tree shows no lumen of its own (fewer than three thick
   segments: its root lost, or its veins unenhanced), a segment of the other reading under
   ``dark_max_share`` of that tree's lumen (thick ones against the lumen, thinner ones
   against it at their partial volume and by three spreads) leaves the tree with what the
   tree reached through it (:func:`_dark_subtrees`): another system's vessels, entered
   through a contact because their own tree had no way in (phantom 605 with the artery,
   one noise draw of three, before the hepatic root's slices were found against the
   liver's extent: they ended below the veins' ostia, and the portal tree, 67 HU, took 822
   mm of hepatic veins at 23-30 HU). Only subtrees of at
   least ``dark_min_length_mm`` together leave (a system, not a dim piece: at 0 mm the 12
   clinical-voxel arterial phantoms with the artery, whose hepatic veins are unenhanced,
   lost portal lumen, volume median -0.035 -> -0.047). Their lumen is returned with the
   companions (step 6): no tree adopts it or grows into it afterwards.
6. **Companion arteries** (:func:`_companion_segments`). In every enhanced phase the
   hepatic artery runs beside the portal veins (the portal triads), a third of their
   calibre and a millimetre or two from their wall; where partial volume joins the two
   lumens, the thresholds take it in and the portal tree would trace it as branches
   (phantoms with the artery, portal venous, 0.9 mm voxels: portal length +0.14 to
   +0.41). A segment is a companion when at least ``companion_min_fraction`` of
   its centerline runs beside a portal segment at least ``1 / companion_radius_ratio``
   times thicker that does not meet it at a junction (a branch leaving a vein runs beside
   it near their junction): within the two median radii plus ``companion_gap_mm`` (up to
   ``companion_thin_radius_mm`` thick, ``companion_thin_gap_mm``: where it clears the
   vessels of a branching the thin artery lies farther from the vein it follows, and
   phantom 616 with the artery kept 70 mm of artery in its portal graph, pieces 3-4 mm
   from their vein among them; a thicker segment there is more often a vessel of its own,
   and with the wider gap for all 3D-IRCADb 1.1 lost portal branches of radius 1.6-2.9
   mm), in a direction within ``companion_max_angle_deg`` of the vein's (principal axes of
   the centerline within 3 mm). The artery's pieces between its contacts (bends, bridges
   to the vein) lie as near the vein in any direction: a segment meeting a companion, at
   most ``companion_continue_ratio`` times its radius and beside a vein for the same share of
   its length, is one too, repeatedly. Companions stay in the growth (the tree assignment
   of the veins around them is unchanged), but their lumen leaves both trees, except the
   voxels touching a vein's lumen: a notch there added spurs and moved the vein's junctions
   (phantom 604: portal naming 0.48 with the notches, 0.95 without). Those stay in the
   tree's lumen and are returned with the companions as well, so that the tree's
   centerline leaves them out (:func:`vasomics.chain.liver_vessels._artery_edge`). A voxel
   near an artery's centerline (within its largest radius and two voxels, or nearest it)
   lies in the lumen whose sphere it lies nearer, the artery's (no wider than its
   segment's median radius) or a vein's inscribed sphere, over the 8 nearest centerline
   voxels of each (the nearest alone may lie on a thin branch beside a thick vein's wall),
   but within half a voxel of a vein's sphere in the vein's (the blurred gap between them
   is its edge); a junction whose segments are all companions is the artery's own, one
   where an artery meets a vein neither's (before session 38 the voxels nearest such
   junctions stayed in the tree, and with them the artery's branchings and joins: phantom
   634 with the artery kept 1147 of the artery's 2536 voxels in the portal mask, 424 of
   them nearest a junction; now 503, all touching the vein, and 126 in its centerline
   mask). A centerline voxel of a companion segment as thick as the vein it would run
   beside (``companion_radius_ratio`` times its radius at least the segment's median
   radius) is that vein's: the thinning may run a stretch of the vein through a contact
   into the artery's segment. Pieces of the artery that neither tree
   reached (cut off by a gap in the mask) pass the same test, and their lumen is returned
   with the companions', so that no tree adopts it afterwards (phantom 634 with the
   artery: 26 mm, all of it flagged; 55 mm of other unreached pieces, none).
7. **Extrahepatic ends** (:func:`_drop_extrahepatic_ends`). A subtree of the growth that
   lies wholly outside the liver (the portal trunk from the hilum to its inlet face and
   beyond counts as inside) and reaches the IVC's rim is dropped: the IVC's lumen beside
   its mask and its tributaries, reached through a contact in the hilum band (on 3D-IRCADb
   1.1 through the chain the portal tree took, through the hepatic artery beside its trunk,
   a tributary of the IVC and the IVC's lumen beside its mask: 6700 voxels, portal Dice
   0.737 -> 0.787). Other subtrees in the band are kept (the portal trunk's tributaries).
8. Every vessel voxel takes the tree of its nearest centerline voxel; components reached
   by neither tree are dropped. A hepatic junction through which a portal vessel runs (one
   portal segment continues another there, with a turn of at most ``reentry_turn_deg``, or
   one at each end of a hepatic link: ``reentry_link_radii``) keeps its lumen in the
   hepatic mask; that lumen is also returned as the *crossings*, through which the portal
   tree's centerline is drawn
   (:meth:`vasomics.chain.liver_vessels.LiverVessels.centerline_mask`). Without it a portal
   branch kept through a crossing was cut there, and the portal tree, named by the lumen
   volume its branches carry, was named without the part beyond (phantom 631: the right
   posterior vein cut where a hepatic vein runs along it for 9 mm, portal naming 0.63).
   The hepatic tree gets no such bridges: its veins are named from their ostia, a piece
   cut off takes the name of the nearest named vein, and bridges across portal links
   joined neighbouring veins (phantoms 537 / 543: hepatic naming 1.00 -> 0.91 / 0.81).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy import ndimage
from scipy.spatial import cKDTree

from vasomics.chain._grid import bounding_box
from vasomics.chain.skeleton import skeletonize
from vasomics.features.fractal import lattice_directions
from vasomics.image import Image
from vasomics.params import StageParams

_MAX_CROSSING_NODES = 2  # junctions joined into one crossing
_CROSSING_BRANCHES = (4, 6)  # two through vessels and up to two tributaries
_DIRECTION_REACH_MM = 3.0  # a centerline's local direction: its axis over this reach


class TreeSeparationParams(StageParams):
    """Costs and continuity rules of the portal / hepatic tree separation (mm, degrees)."""

    cost_offset_mm: float = Field(0.5, description="r0 of the segment cost L/(r + r0)^2.")
    neck_power: float = Field(2.0, description="Exponent of (r + r0) in the segment cost.")
    free_turn_deg: float = Field(30.0, description="Turns at a junction up to this angle "
                                                   "cost nothing extra.")
    turn_weight: float = Field(2.0, description="Penalty (in penalty_mm of travel in the "
                                                "parent) per 30 degrees of turn beyond "
                                                "free_turn_deg.")
    free_widen: float = Field(1.2, description="A child up to this many times thicker than "
                                               "its parent costs nothing extra.")
    widen_weight: float = Field(1.0, description="Penalty (in penalty_mm of travel in the "
                                                 "parent) per unit of r_child/r_parent "
                                                 "beyond free_widen.")
    penalty_mm: float = Field(10.0, description="Length of parent vessel one unit of "
                                                "penalty is worth.")
    crossing_turn_deg: float = Field(35.0, description="Largest turn between two branches "
                                                       "of a junction that pair up as one "
                                                       "vessel through a crossing; 0 turns "
                                                       "the crossing rule off.")
    crossing_link_radii: float = Field(2.0, description="A segment between two junctions "
                                                        "no longer than this many times its "
                                                        "radius plus a voxel joins them into "
                                                        "one crossing.")
    crossing_min_radius_mm: float = Field(1.5, description="Branches thinner than this do "
                                                           "not pair across a crossing.")
    crossing_radius_ratio: float = Field(1.5, description="Largest ratio of the radii of two "
                                                          "branches paired across a "
                                                          "crossing.")
    crossing_side_penalty: float = Field(5.0, description="Penalty (in penalty_mm of travel "
                                                          "in the parent) for entering a "
                                                          "branch paired across a crossing "
                                                          "other than from its partner.")
    reentry_turn_deg: float = Field(60.0, description="A segment entered with a sharper "
                                                      "turn than this may move to the tree "
                                                      "whose segment it continues straight; "
                                                      "180 turns the rule off.")
    reentry_straight_deg: float = Field(40.0, description="Largest turn from the other "
                                                          "tree's segment into it that counts "
                                                          "as straight.")
    reentry_widen: float = Field(1.3, description="Largest ratio of its radius to the "
                                                  "other tree's segment's.")
    reentry_link_radii: float = Field(3.0, description="The other tree's segment may also "
                                                       "lie across one link: a segment "
                                                       "between two junctions no longer "
                                                       "than this many times its radius "
                                                       "plus a voxel and at least as thick "
                                                       "as the segment (one contact drawn "
                                                       "as two junctions joined by the "
                                                       "merged lumen), when the segment is "
                                                       "at least crossing_min_radius_mm "
                                                       "thick; 0 turns this off.")
    valley_min_dip_sd: float = Field(
        4.0, ge=0, description="Before thinning, vessel voxels lying this many SDs of the "
        "smoothed parenchyma below brighter lumen on both sides (within valley_reach_mm along "
        "a lattice direction) are left out of the centerline's mask, in sheets of at least "
        "valley_min_area_mm2: two lumens merged across the thin gap between them; 0: off.")
    valley_reach_mm: float = Field(3.0, gt=0, description="How far each side is searched for "
                                   "brighter lumen (mm).")
    valley_min_area_mm2: float = Field(0.0, ge=0, description="Smallest valley sheet (its "
                                       "voxel count times the mean voxel face, mm^2): where "
                                       "two veins touch, the merged gap is often a few "
                                       "voxels (phantom 622), so 0 keeps every valley voxel.")
    lumen_min_radius_mm: float = Field(2.0, description="Segments at least this thick (median "
                                                        "radius) carry lumen-HU evidence: "
                                                        "thinner ones read darker by partial "
                                                        "volume.")
    lumen_min_gap_sd: float = Field(3.0, description="The trees' lumen HU must differ by at "
                                                     "least this many SDs of a thick "
                                                     "segment's mean HU for the evidence to "
                                                     "count; 0 turns it off.")
    lumen_weight: float = Field(8.0, description="Penalty (in penalty_mm of travel in the "
                                                 "parent) per SD by which a segment's mean HU "
                                                 "lies nearer the other tree's lumen HU.")
    lumen_max_sd: float = Field(6.0, description="Largest number of SDs of lumen-HU evidence "
                                                 "that count.")
    bright_max_sd: float = Field(
        4.0, description="A segment whose mean HU lies more than this many lumen spreads "
        "above the brighter tree's lumen is no vein (bone, oral contrast, an artery): no tree "
        "enters it; 0 turns this off.")
    bright_min_hu: float = Field(
        25.0, ge=0, description="The margin of bright_max_sd is at least this many HU (the "
        "portal blood's HU varies along the trunk more than the spread of the segments' "
        "means).")
    lumen_min_share: float = Field(
        0.5, ge=0, description="Thick segments reading under this share of their tree's "
        "median lumen contrast are no lumen of it (a faint vessel beside it in the hilum "
        "band, an organ's rim) and are left out of its lumen and spread.")
    dark_max_share: float = Field(
        0.5, ge=0, description="After the growth, while the other tree shows no lumen of its "
        "own, a segment reading under this share of its tree's lumen contrast (thick ones: "
        "at least lumen_min_radius_mm and 1.5 voxels; thinner ones from "
        "lumen_thin_min_radius_mm against the lumen at their partial volume, by 3 spreads "
        "as well) leaves the tree, with the segments the tree reached "
        "through it (but thick ones reading as its lumen): another system's vessels taken "
        "through a contact; 0 turns this off.")
    dark_min_length_mm: float = Field(
        50.0, ge=0, description="A subtree leaves its tree by dark_max_share only when its "
        "segments measure at least this length together (mm).")
    companion_radius_ratio: float = Field(
        0.6, description="A segment at most this share of a portal vein's radius that runs "
        "beside it is its companion artery; 0 turns the companion rule off.")
    companion_gap_mm: float = Field(
        3.0, description="Largest gap (mm) between the two lumens (centerline distance minus "
        "both radii) of a companion and the vein it runs beside.")
    companion_thin_gap_mm: float = Field(
        4.0, description="The same for a segment at most companion_thin_radius_mm thick: the "
        "thin artery lies farther from its vein where it clears the vessels of a branching.")
    companion_thin_radius_mm: float = Field(
        1.5, ge=0, description="Segments up to this median radius (mm) are companions up to "
        "companion_thin_gap_mm from their vein.")
    companion_max_angle_deg: float = Field(
        30.0, description="Largest angle between a companion's direction and its vein's.")
    companion_continue_ratio: float = Field(
        1.3, description="A segment meeting a companion, at most this many times its radius "
        "and lying beside the vein for companion_min_fraction of its length in any "
        "direction, is the same artery (its bends and its bridges to the vein).")
    companion_min_fraction: float = Field(
        0.6, description="Share of a segment's centerline that must run beside a portal "
        "vein for it to be a companion.")
    lumen_thin_min_radius_mm: float = Field(
        1.0, description="Segments from this radius up to lumen_min_radius_mm carry lumen-HU "
        "evidence against each tree's lumen contrast scaled by the blur's partial volume at "
        "their radius; at lumen_min_radius_mm or above this turns it off.")


@dataclass
class _SegmentGraph:
    """Centerline voxels (``index``, ``pos`` mm, ``radius`` mm) with their ``segment`` or
    junction ``node`` (-1 where not), per-segment median ``seg_radius`` and ``seg_length``
    (mm), node positions (mm) and the segment-node incidences ``inc`` (rows ``(seg, node)``)
    with the unit direction ``inc_dir`` from the node into the segment."""

    index: np.ndarray
    pos: np.ndarray
    segment: np.ndarray
    node: np.ndarray
    seg_radius: np.ndarray
    seg_length: np.ndarray
    node_pos: np.ndarray
    inc: np.ndarray
    inc_dir: np.ndarray
    radius: np.ndarray

    @property
    def n_seg(self) -> int:
        return len(self.seg_radius)

    @property
    def n_node(self) -> int:
        return len(self.node_pos)


def _valleys(tube: np.ndarray, contrast: np.ndarray, spacing, dip: float, reach_mm: float,
             min_area_mm2: float) -> np.ndarray:
    """Voxels of ``tube`` whose ``contrast`` (HU, vessel-ward) lies at least ``dip`` below
    the brightest ``tube`` voxel within ``reach_mm`` on both sides along one of the 13
    lattice directions, kept in 26-connected sheets of at least ``min_area_mm2`` (voxel
    count times the mean voxel face): the thin gap between two lumens that the vessel mask
    merged. Only the mask's voxels count as lumen (not the IVC cut out of it, nor bone)."""
    vox = np.argwhere(tube)
    shape = np.asarray(tube.shape)
    c = contrast[tuple(vox.T)]
    lumen = np.where(tube, contrast, -np.inf)
    out = np.zeros(len(vox), bool)
    for u in lattice_directions(3):
        k_max = max(1, int(reach_mm // float(np.linalg.norm(u * spacing))))
        sides = []
        for sign in (1, -1):
            best = np.full(len(vox), -np.inf)
            for k in range(1, k_max + 1):
                q = vox + sign * k * u
                ok = np.all((q >= 0) & (q < shape), axis=1)
                best[ok] = np.maximum(best[ok], lumen[tuple(q[ok].T)])
            sides.append(best)
        out |= np.minimum(*sides) - c >= dip
    valley = np.zeros(tube.shape, bool)
    valley[tuple(vox[out].T)] = True
    lab, n = ndimage.label(valley, np.ones((3, 3, 3)))
    if n:
        face = float(np.prod(spacing)) ** (2.0 / 3.0)
        keep = np.bincount(lab.ravel(), minlength=n + 1) * face >= min_area_mm2
        keep[0] = False
        valley = keep[lab]
    return valley


def _segment_graph(tube: np.ndarray, spacing) -> _SegmentGraph:
    """Thin ``tube`` and cut its centerline into junction nodes and segments."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components


    spacing = np.asarray(spacing, float)
    sk = skeletonize(Image(tube.astype(np.uint8), spacing=tuple(spacing), modality="mask"))
    idx, rad = sk.indices, np.asarray(sk.radius, float)
    n = len(idx)
    deg = np.diff(sk.adj_offsets)
    rows, cols = np.repeat(np.arange(n), deg), np.asarray(sk.adj)
    pos = idx * spacing
    junc = deg >= 3

    def parts(select, members):
        m = select[rows] & select[cols]
        adj = sparse.coo_matrix((np.ones(m.sum()), (rows[m], cols[m])), shape=(n, n))
        _, comp = connected_components(adj, directed=False)
        out = np.full(n, -1)
        out[members] = np.unique(comp[members], return_inverse=True)[1]
        return out

    seg, node = parts(~junc, ~junc), parts(junc, junc)
    n_seg, n_node = int(seg.max()) + 1, int(node.max()) + 1
    m = junc[rows] & ~junc[cols]
    inc = np.unique(np.column_stack([seg[cols[m]], node[rows[m]]]), axis=0).reshape(-1, 2)
    elen = np.linalg.norm((idx[rows] - idx[cols]) * spacing, axis=1)
    same = ~junc[rows] & ~junc[cols]
    length = np.bincount(seg[rows[same]], elen[same], minlength=n_seg) / 2  # both directions
    length += 0.5 * float(np.mean(spacing)) * np.bincount(inc[:, 0], minlength=n_seg)
    length = np.maximum(length, 0.5 * float(spacing.min()))
    order = np.argsort(seg, kind="stable")
    bounds = np.searchsorted(seg[order], np.arange(-1, n_seg + 1))
    members = [order[bounds[s + 1]:bounds[s + 2]] for s in range(n_seg)]
    seg_radius = np.array([np.median(rad[v]) for v in members])
    node_pos = np.zeros((n_node, 3))
    np.add.at(node_pos, node[junc], pos[junc])
    node_pos /= np.maximum(np.bincount(node[junc], minlength=n_node), 1)[:, None]
    inc_dir = np.zeros((len(inc), 3))
    for i, (s, k) in enumerate(inc):
        p = pos[members[s]]
        d = np.linalg.norm(p - node_pos[k], axis=1)
        near = d <= np.clip(2.0 * seg_radius[s], 2.0, 8.0)  # the segment's first few mm
        v = (p[near] if near.any() else p).mean(0) - node_pos[k]
        inc_dir[i] = v / max(float(np.linalg.norm(v)), 1e-9)
    return _SegmentGraph(idx, pos, seg, node, seg_radius, length, node_pos, inc, inc_dir,
                         rad)


def _turn_deg(g: _SegmentGraph, i: int, j: int) -> float:
    """Turn (degrees) from travel along incidence ``i``'s segment into its node, out along
    incidence ``j``'s segment."""
    return float(np.degrees(np.arccos(np.clip(-g.inc_dir[i] @ g.inc_dir[j], -1.0, 1.0))))


def _incidences(g: _SegmentGraph) -> tuple[list[list[int]], list[list[int]]]:
    """Incidence rows per segment and per node."""
    ends: list[list[int]] = [[] for _ in range(g.n_seg)]
    at_node: list[list[int]] = [[] for _ in range(g.n_node)]
    for i, (s, k) in enumerate(g.inc):
        ends[s].append(i)
        at_node[k].append(i)
    return ends, at_node


def _crossing_partners(g: _SegmentGraph, ends, spacing, p: TreeSeparationParams) -> np.ndarray:
    """For each incidence, the incidence it pairs with as one vessel through a crossing
    (module docstring, step 3), -1 where none."""
    partner = np.full(len(g.inc), -1)
    if p.crossing_turn_deg <= 0:
        return partner
    link_max = p.crossing_link_radii * g.seg_radius + float(np.mean(spacing))
    cluster = np.arange(g.n_node)
    link = np.zeros(g.n_seg, bool)
    for s in range(g.n_seg):
        ks = {int(g.inc[i, 1]) for i in ends[s]}
        if len(ks) == 2 and g.seg_length[s] <= link_max[s]:
            link[s] = True
            a, b = sorted(cluster[list(ks)])
            cluster[cluster == b] = a
    size = np.bincount(cluster, minlength=g.n_node)
    branches: dict[int, list[int]] = {}
    for i, (s, k) in enumerate(g.inc):
        if not link[s]:
            branches.setdefault(int(cluster[k]), []).append(i)
    lo, hi = _CROSSING_BRANCHES
    for c, ext in branches.items():
        if not lo <= len(ext) <= hi or size[c] > _MAX_CROSSING_NODES:
            continue
        pairs = sorted((_turn_deg(g, i, j), i, j) for n, i in enumerate(ext) for j in ext[n + 1:]
                       if g.inc[i, 0] != g.inc[j, 0])
        used: set[int] = set()
        chosen = []
        for turn, i, j in pairs:
            if turn > p.crossing_turn_deg:
                break
            ri, rj = sorted((g.seg_radius[g.inc[i, 0]], g.seg_radius[g.inc[j, 0]]))
            if i in used or j in used or ri < p.crossing_min_radius_mm \
                    or rj > p.crossing_radius_ratio * ri:
                continue
            used |= {i, j}
            chosen.append((i, j))
        if len(chosen) >= 2:
            for i, j in chosen:
                partner[i], partner[j] = j, i
    return partner


def _grow(g: _SegmentGraph, starts, spacing, p: TreeSeparationParams,
          lumen_penalty: np.ndarray | None = None, blocked: np.ndarray | None = None):
    """Best-first growth of competing trees over the segment graph (module docstring, steps
    2, 3 and 5). ``starts``: ``(tree, segment)`` pairs entered at cost 0, or at their
    lumen penalty;
    ``lumen_penalty`` (optional, shape ``(2, n_seg)``): penalty units for each tree entering
    each segment (:func:`_lumen_penalty`); ``blocked`` (optional, per segment): segments no
    tree enters but from a start (:func:`_bright_segments`). Returns the tree of each
    segment and of each node (-1: not reached), the segment each was entered from (-1: a
    start or not reached), the incidence through which it was entered (-1 likewise) and the
    segments in the order they were reached."""
    ends, at_node = _incidences(g)
    partner = _crossing_partners(g, ends, spacing, p)
    r, r0, q = g.seg_radius, p.cost_offset_mm, p.neck_power
    unit = g.seg_length / (r + r0) ** q
    seg_tree = np.full(g.n_seg, -1)
    node_tree = np.full(g.n_node, -1)
    parent = np.full(g.n_seg, -1)
    entered = np.full(g.n_seg, -1)
    order = []
    # a root segment reading as the other tree's lumen is entered at that penalty too
    start_cost = (np.zeros((2, g.n_seg)) if lumen_penalty is None
                  else lumen_penalty * p.penalty_mm / (r + r0) ** q)
    heap = [(float(start_cost[tree, s]), int(tree), int(s), -1, -1) for tree, s in starts]
    heapq.heapify(heap)

    def push(cost, tree, s, i, j):
        t = int(g.inc[j, 0])
        if blocked is not None and blocked[t]:
            return
        penalty = (p.turn_weight * max(0.0, _turn_deg(g, i, j) - p.free_turn_deg) / 30.0
                   + p.widen_weight * max(0.0, r[t] / max(r[s], 1e-6) - p.free_widen))
        if partner[j] not in (-1, i) and seg_tree[g.inc[partner[j], 0]] != tree:
            penalty += p.crossing_side_penalty  # the other vessel of a crossing
        if lumen_penalty is not None:
            penalty += lumen_penalty[tree, t]
        heapq.heappush(heap, (cost + unit[t] + penalty * p.penalty_mm / (r[s] + r0) ** q,
                              tree, t, j, s))

    while heap:
        cost, tree, s, entry, came_from = heapq.heappop(heap)
        if seg_tree[s] != -1:
            continue
        seg_tree[s], parent[s], entered[s] = tree, came_from, entry
        order.append(s)
        for i in ends[s]:
            if i == entry:
                continue
            k = int(g.inc[i, 1])
            if partner[i] >= 0 and seg_tree[g.inc[partner[i], 0]] == -1:
                push(cost, tree, s, i, partner[i])  # straight through the crossing
            if node_tree[k] == -1:
                node_tree[k] = tree
            # a tree does not pass through the other's junctions, but into a segment whose
            # lumen reads as its own
            through = None
            if node_tree[k] != tree:
                if lumen_penalty is None:
                    continue
                through = lumen_penalty[1 - tree] > 0
            for j in at_node[k]:
                t = int(g.inc[j, 0])
                if (t != s and seg_tree[t] == -1 and j != partner[i]
                        and (through is None or through[t])):
                    push(cost, tree, s, i, j)
    return seg_tree, node_tree, parent, entered, np.asarray(order, int)


def _segment_contrast(g: _SegmentGraph, contrast: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each segment's mean ``contrast`` (HU above the parenchyma, on the graph's grid) along
    its centerline voxels; whether that mean counts in the trees' lumen statistics (at least
    three voxels, finite: a NaN in the image leaves the segment without evidence); and
    whether a thick segment is read at all, as evidence of its tree (one voxel, finite: the
    contrast is already smoothed over more than a voxel, and a short segment between two
    junctions is where one vessel passes on, phantom 619 with the artery;
    :func:`_lumen_penalty`)."""
    on = g.segment >= 0
    count = np.bincount(g.segment[on], minlength=g.n_seg)
    mean = np.bincount(g.segment[on], contrast[tuple(g.index[on].T)], minlength=g.n_seg) \
        / np.maximum(count, 1)
    finite = np.isfinite(mean)
    return mean, (count >= 3) & finite, (count >= 1) & finite


def _tree_lumens(g: _SegmentGraph, seg_tree, mean: np.ndarray, measured: np.ndarray,
                 p: TreeSeparationParams) -> tuple[np.ndarray, float]:
    """Each tree's lumen contrast (HU), the median ``mean`` over its measured segments at
    least ``lumen_min_radius_mm`` thick (NaN for a tree with fewer than three) that read at
    least ``lumen_min_share`` of a first such median, and their pooled spread about their
    tree's median (1.4826 MAD, at least 1 HU; NaN without either)."""
    thick = measured & (g.seg_radius >= p.lumen_min_radius_mm)
    lumen, deviation = np.full(2, np.nan), []
    for tree in (0, 1):
        m = thick & (seg_tree == tree)
        if np.count_nonzero(m) >= 3:
            lumen[tree] = float(np.median(mean[m]))
            if lumen[tree] > 0 and p.lumen_min_share > 0:  # pieces that are no lumen
                m &= mean >= p.lumen_min_share * lumen[tree]
                lumen[tree] = float(np.median(mean[m]))
            deviation.append(mean[m] - lumen[tree])
    if not deviation:
        return lumen, float("nan")
    return lumen, max(1.4826 * float(np.median(np.abs(np.concatenate(deviation)))), 1.0)


def _bright_segments(mean: np.ndarray, measured: np.ndarray, lumen: np.ndarray, sd: float,
                     p: TreeSeparationParams) -> np.ndarray:
    """Segments reading more than ``bright_max_sd`` spreads above the brighter tree's lumen
    (module docstring, step 5): no vein's lumen, partial volume only darkening it."""
    if p.bright_max_sd <= 0 or not np.isfinite(lumen).any():
        return np.zeros(len(mean), bool)
    return measured & (mean > np.nanmax(lumen) + max(p.bright_max_sd * sd, p.bright_min_hu))


def _dark_subtrees(g: _SegmentGraph, seg_tree, parent, order, mean: np.ndarray,
                   measured: np.ndarray, lumen: np.ndarray, spacing,
                   p: TreeSeparationParams) -> np.ndarray:
    """Segments that leave their tree (module docstring, step 5) while the other tree has
    no lumen of its own (NaN in ``lumen``: its root lost or its system unenhanced): those
    reading under ``dark_max_share`` of their tree's ``lumen`` (:func:`_tree_lumens`; thick
    ones, at least ``lumen_min_radius_mm`` and 1.5 of the coarsest voxel, against the lumen
    itself, thinner ones from ``lumen_thin_min_radius_mm`` against it at their partial
    volume (:func:`_partial_volume`) and by three of their spreads as well), and the
    segments the growth reached through them (``parent``, in growth ``order``) in the same
    tree, but thick ones reading as its lumen; of these, only subtrees of at least
    ``dark_min_length_mm`` together (a whole system taken through a contact, not a dim
    piece)."""
    thick = measured & (g.seg_radius >= max(p.lumen_min_radius_mm,
                                            1.5 * float(np.max(spacing))))
    known = np.isfinite(lumen) & (lumen > 0)
    known &= ~np.isfinite(lumen[::-1])  # only while the rival tree shows no lumen of its own
    tree_ok = (seg_tree >= 0) & known[np.maximum(seg_tree, 0)]
    expected = np.where(tree_ok, lumen[np.maximum(seg_tree, 0)], np.nan)
    out = thick & tree_ok & (mean < p.dark_max_share * expected)
    thin = measured & tree_ok & ~thick & (g.seg_radius >= p.lumen_thin_min_radius_mm)
    fit = measured & tree_ok & (g.seg_radius >= p.lumen_thin_min_radius_mm)
    if thin.any() and np.count_nonzero(fit) >= 3:
        share, thin_sd = _partial_volume(g.seg_radius, mean, np.where(known, lumen, 1.0),
                                         seg_tree, fit, thin)
        low = expected * share
        out |= thin & (mean < p.dark_max_share * low) & (low - mean >= 3.0 * max(thin_sd, 1.0))
    if not out.any():
        return out
    top = np.arange(g.n_seg)  # the first segment of each subtree that leaves
    for t in order:
        u = parent[t]
        if u < 0 or not out[u] or seg_tree[t] != seg_tree[u]:
            continue
        out[t] = not (thick[t] and mean[t] >= p.dark_max_share * expected[t])
        if out[t]:
            top[t] = top[u]
    length = np.bincount(top[out], g.seg_length[out], minlength=g.n_seg)
    return out & (length[top] >= p.dark_min_length_mm)


def _lumen_penalty(g: _SegmentGraph, seg_tree, mean: np.ndarray, measured: np.ndarray,
                   read: np.ndarray, lumen: np.ndarray, sd: float,
                   p: TreeSeparationParams) -> np.ndarray | None:
    """Penalty units (shape ``(2, n_seg)``) for each tree entering each segment whose mean
    contrast (:func:`_segment_contrast`) lies nearer the other tree's lumen (module
    docstring, step 5), the trees' ``lumen`` and spread ``sd`` from :func:`_tree_lumens`
    over ``seg_tree`` (a first growth); None when the two lumens do not differ by
    ``lumen_min_gap_sd`` spreads. Segments ``read`` at least ``lumen_min_radius_mm`` thick
    are weighed against the lumens themselves; ``measured`` ones from
    ``lumen_thin_min_radius_mm`` up against the lumens scaled by their partial volume
    (:func:`_partial_volume`), at the thin segments' own spread: a thin segment of a voxel
    or two lies between junctions, and reads the blur of the thicker lumens there, not its
    own (3D-IRCADb 1.1: a 0.9 mm piece of radius 1.3 mm read as portal at its partial volume
    took a 620 mm hepatic subtree to the portal tree). Unread and thinner segments carry no
    evidence."""
    if p.lumen_min_gap_sd <= 0 or not np.isfinite(lumen).all():
        return None
    if abs(lumen[0] - lumen[1]) < p.lumen_min_gap_sd * sd:
        return None
    thick = read & (g.seg_radius >= p.lumen_min_radius_mm)
    expected = np.broadcast_to(lumen[:, None], (2, g.n_seg)).copy()
    spread = np.full(g.n_seg, sd)
    counts = thick.copy()
    thin = measured & ~thick & (g.seg_radius >= p.lumen_thin_min_radius_mm)
    if thin.any() and lumen.min() > 0:
        share, thin_sd = _partial_volume(g.seg_radius, mean, lumen, seg_tree,
                                         measured & (seg_tree >= 0), thin)
        expected[:, thin] = np.outer(lumen, share[thin])
        spread[thin] = max(thin_sd, sd)
        counts |= thin
    distance = np.abs(mean[None, :] - expected)
    z = (distance - distance[::-1]) / spread  # > 0: nearer the other tree's lumen
    return p.lumen_weight * np.where(counts, np.clip(z, 0.0, p.lumen_max_sd), 0.0)


def _partial_volume(radius: np.ndarray, excess: np.ndarray, contrast: np.ndarray,
                    seg_tree: np.ndarray, fit: np.ndarray,
                    thin: np.ndarray) -> tuple[np.ndarray, float]:
    """Share of its tree's lumen contrast that a segment of each ``radius`` (mm) shows on
    its centerline, ``1 - exp(-R^2 / 2 s^2)`` (the axis of a round lumen blurred by a
    Gaussian of SD ``s``, :mod:`vasomics.chain.lumen_edge`), with ``s`` fitted (least
    absolute deviations) to the segments ``fit`` of the first growth: their ``excess``
    (mean HU above the parenchyma) over their tree's ``contrast``; and the robust spread
    (1.4826 MAD, HU) of the ``thin`` segments' excess about that prediction for their
    tree."""
    from scipy.optimize import minimize_scalar

    ratio = excess[fit] / contrast[seg_tree[fit]]
    r2 = radius[fit] ** 2

    def loss(s: float) -> float:
        return float(np.abs(ratio - (1.0 - np.exp(-0.5 * r2 / (s * s)))).sum())

    s = minimize_scalar(loss, bounds=(0.2, 5.0), method="bounded").x
    share = 1.0 - np.exp(-0.5 * radius ** 2 / (s * s))
    own = thin & (seg_tree >= 0)
    residual = excess[own] - contrast[seg_tree[own]] * share[own]
    thin_sd = 1.4826 * float(np.median(np.abs(residual))) if residual.size else 0.0
    return share, thin_sd


def _local_directions(g: _SegmentGraph, reach_mm: float) -> np.ndarray:
    """Unit direction of each centerline voxel's segment there: the principal axis of the
    voxels of its segment within ``reach_mm`` (zero off segments and where fewer than two)."""
    on = np.flatnonzero(g.segment >= 0)
    out = np.zeros((len(g.pos), 3))
    if len(on) < 2:
        return out
    pos = g.pos[on]
    k = min(12, len(on))
    d, j = cKDTree(pos).query(pos, k=k, distance_upper_bound=reach_mm)
    ok = np.isfinite(d)
    j = np.where(ok, j, 0)
    ok &= g.segment[on][j] == g.segment[on][:, None]
    w = ok.astype(float)
    n = np.maximum(w.sum(1), 1.0)
    centre = np.einsum("ik,ikd->id", w, pos[j]) / n[:, None]
    dev = (pos[j] - centre[:, None, :]) * w[..., None]
    cov = np.einsum("ikd,ike->ide", dev, dev)
    _, vec = np.linalg.eigh(cov)
    out[on] = np.where((w.sum(1) >= 2)[:, None], vec[:, :, -1], 0.0)
    return out


#: Thickness classes of the companion rule's vein search: a voxel seeks its vein among the
#: portal segments at least ``_VEIN_CLASS ** c`` mm thick, ``c`` the class of the radius its
#: vein needs. Among all portal voxels its own segment's crowded out a vein a few mm away
#: (24 nearest: a synthetic artery 2 mm from its vein's wall was found over 0.17 of its
#: length; docs/ct_chain_history.md, *Measured in session 31 and not kept*).
_VEIN_CLASS = 1.25


def _thick_neighbours(g: _SegmentGraph, voxels: np.ndarray, need_r: np.ndarray,
                      veins: np.ndarray, k: int, reach: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For each centerline voxel of ``voxels`` (indices into ``g.pos``), its ``k`` nearest
    voxels among ``veins`` (indices into ``g.pos``) whose segment's median radius reaches
    the class (:data:`_VEIN_CLASS`) of its ``need_r`` (mm), within ``reach`` mm. Returns the
    distances ``(len(voxels), k)`` (inf where fewer are found) and the neighbours' indices
    into ``g.pos`` (``veins[0]`` there)."""
    d = np.full((len(voxels), k), np.inf)
    j = np.full((len(voxels), k), veins[0])
    vein_r = g.seg_radius[g.segment[veins]]
    cls = np.floor(np.log(np.maximum(need_r, 1e-3)) / np.log(_VEIN_CLASS)).astype(int)
    for c in np.unique(cls):
        rows = np.flatnonzero(cls == c)
        cand = veins[vein_r >= _VEIN_CLASS ** c]
        if not len(cand):
            continue
        kk = min(k, len(cand))
        dc, jc = cKDTree(g.pos[cand]).query(g.pos[voxels[rows]], k=kk,
                                            distance_upper_bound=reach)
        dc, jc = dc.reshape(len(rows), kk), jc.reshape(len(rows), kk)  # kk = 1: 1D arrays
        found = np.isfinite(dc)
        d[rows, :kk] = dc
        j[rows, :kk] = np.where(found, cand[np.minimum(jc, len(cand) - 1)], veins[0])
    return d, j


def _companion_segments(g: _SegmentGraph, seg_tree, p: TreeSeparationParams) -> np.ndarray:
    """Segments that run beside a thicker portal vein: the companion artery of a portal
    triad (module docstring, step 6). A centerline voxel of a segment, reached by a tree or
    not (a piece of the artery cut off from the trees, which the fragment adoption would
    give to the portal tree beside it), runs beside a portal vein where, among its 24
    nearest centerline voxels of portal segments thick enough to be its vein
    (:data:`_VEIN_CLASS`), a centerline voxel of a portal segment at least
    ``1 / companion_radius_ratio`` times thicker (median radii), not meeting it at a
    junction, lies within the two segments' median radii plus ``companion_gap_mm`` (for a
    segment up to ``companion_thin_radius_mm`` thick, ``companion_thin_gap_mm``) and their
    directions differ by at most ``companion_max_angle_deg``; a segment with at least
    ``companion_min_fraction`` of its voxels beside one is a companion, and so, repeatedly,
    is a segment meeting a companion, at most ``companion_continue_ratio`` times its radius,
    with that share of its voxels within that distance of such a vein in any direction."""
    none = np.zeros(g.n_seg, bool)
    if p.companion_radius_ratio <= 0:
        return none
    on = np.flatnonzero(g.segment >= 0)
    seg = g.segment[on]
    thick_r = g.seg_radius * (1.0 / p.companion_radius_ratio)
    veins = on[(seg_tree[seg] == 0)]
    if not len(veins):
        return none
    direction = _local_directions(g, _DIRECTION_REACH_MM)
    gap = np.where(g.seg_radius <= p.companion_thin_radius_mm, p.companion_thin_gap_mm,
                   p.companion_gap_mm)
    reach = 2.0 * float(np.max(g.seg_radius)) + float(np.max(gap))
    d, jj = _thick_neighbours(g, on, thick_r[seg], veins, 24, reach)
    ok = np.isfinite(d)
    ok &= (g.segment[jj] != seg[:, None]) & (g.seg_radius[g.segment[jj]] >= thick_r[seg][:, None])
    ok &= d <= g.seg_radius[g.segment[jj]] + (g.seg_radius + gap)[seg][:, None]
    cos = np.abs(np.einsum("id,ikd->ik", direction[on], direction[jj]))
    count = np.maximum(np.bincount(seg, minlength=g.n_seg), 1)
    near = np.bincount(seg, ok.any(axis=1), minlength=g.n_seg) / count
    ok &= cos >= np.cos(np.radians(p.companion_max_angle_deg))
    # a branch leaving the vein runs beside it near their junction: not a companion
    ends = np.full((g.n_seg, 2), -1)
    for t, node in g.inc:
        ends[t, 0 if ends[t, 0] < 0 else 1] = node
    mine, theirs = ends[seg][:, None, None, :], ends[g.segment[jj]][..., :, None]
    ok &= ~((theirs == mine) & (theirs >= 0)).any(axis=(-1, -2))
    beside = np.bincount(seg, ok.any(axis=1), minlength=g.n_seg) / count
    flag = beside >= p.companion_min_fraction
    # the artery's pieces between its contacts with the vein (bridges to the vein, bends)
    # lie as near to it in any direction: taken when they continue a companion
    near_ok = near >= p.companion_min_fraction
    grown = True
    while grown:  # as thin as a companion they meet: the largest such radius per node
        at = np.zeros(g.n_node)
        f = flag[g.inc[:, 0]]
        np.maximum.at(at, g.inc[f, 1], g.seg_radius[g.inc[f, 0]])
        cand = np.zeros(g.n_seg)
        np.maximum.at(cand, g.inc[:, 0], at[g.inc[:, 1]])
        new = (g.seg_radius <= p.companion_continue_ratio * cand) & near_ok & ~flag
        grown = bool(new.any())
        flag |= new
    return flag


def _straight_continuations(g: _SegmentGraph, seg_tree, node_tree, parent, entered, order,
                            spacing, p: TreeSeparationParams,
                            lumen_penalty: np.ndarray | None = None):
    """Move to the other tree the segments entered through a sharp bend that continue one
    of its segments straight, with the subtrees grown from them (module docstring, step 4);
    with ``lumen_penalty`` (:func:`_lumen_penalty`) not one whose lumen reads as its own
    tree's. Returns new ``(seg_tree, node_tree)``."""
    ends, at_node = _incidences(g)
    link_max = p.reentry_link_radii * g.seg_radius + float(np.mean(spacing))
    children: list[list[int]] = [[] for _ in range(g.n_seg)]
    for t in order:
        if parent[t] >= 0:
            children[parent[t]].append(t)
    seg_tree, node_tree = seg_tree.copy(), node_tree.copy()
    moved = np.zeros(g.n_seg, bool)
    for t in order:
        it = entered[t]
        if parent[t] < 0 or it < 0:
            continue
        k = g.inc[it, 1]
        came = [i for i in ends[parent[t]] if g.inc[i, 1] == k]
        if not came or _turn_deg(g, came[0], it) <= p.reentry_turn_deg:
            continue
        for j in at_node[k] + _across_links(g, ends, at_node, t, parent[t], k, link_max, p):
            u = int(g.inc[j, 0])
            if (u == t or seg_tree[u] in (-1, seg_tree[t])
                    or (lumen_penalty is not None and lumen_penalty[seg_tree[u], t] > 0)
                    or _turn_deg(g, j, it) > p.reentry_straight_deg
                    or g.seg_radius[t] > p.reentry_widen * g.seg_radius[u]):
                continue
            old, new, stack = seg_tree[t], seg_tree[u], [t]
            while stack:
                x = stack.pop()
                if seg_tree[x] == old:
                    seg_tree[x] = new
                    moved[x] = True
                    stack += children[x]
            break
    for k in np.unique(g.inc[moved[g.inc[:, 0]], 1]):  # a junction goes with most branches
        trees = seg_tree[g.inc[at_node[k], 0]]
        trees = trees[trees >= 0]
        if trees.size:
            node_tree[k] = np.bincount(trees).argmax()
    return seg_tree, node_tree


def _across_links(g: _SegmentGraph, ends, at_node, t: int, came_from: int, k: int,
                  link_max: np.ndarray, p: TreeSeparationParams) -> list[int]:
    """The incidences at the far junctions of the links at node ``k`` (segments other than
    ``t`` and ``came_from`` that end at another junction within ``link_max`` mm and are at
    least as thick as ``t``), less the links themselves: where two vessels run together
    over a few mm the thinning draws their contact as two junctions joined by the merged
    lumen, and the segment that ``t`` continues may sit at the other junction; a link
    thinner than ``t`` is a bridge between vessels, not their merged lumen. None when ``t``
    is thinner than ``crossing_min_radius_mm`` (a thin segment's direction is too
    uncertain) or the rule is off."""
    if p.reentry_link_radii <= 0 or g.seg_radius[t] < p.crossing_min_radius_mm:
        return []
    out = []
    for j in at_node[k]:
        link = int(g.inc[j, 0])
        far = [i for i in ends[link] if g.inc[i, 1] != k]
        if (link in (t, came_from) or len(far) != 1 or g.seg_length[link] > link_max[link]
                or g.seg_radius[link] < g.seg_radius[t]):
            continue
        out += [i for i in at_node[int(g.inc[far[0], 1])] if g.inc[i, 0] != link]
    return out


def _drop_extrahepatic_ends(g: _SegmentGraph, seg_tree, node_tree, parent, order,
                            anchored, at_ivc):
    """Leave unreached the subtrees of the growth (``parent`` links, segments reached in
    ``order``) that hold no ``anchored`` segment (one whose voxels reach the liver or the
    portal trunk beyond the hilum) but an ``at_ivc`` one (voxels at the IVC): the IVC's lumen
    beside its mask and its tributaries, reached from a tree through a contact outside the
    liver (an artery beside the portal trunk) and leading nowhere into it. Other subtrees
    outside the liver are kept: the portal trunk's own tributaries in the hilum band.
    Returns new ``(seg_tree, node_tree)``."""
    held, reach = anchored.copy(), at_ivc.copy()
    for s in order[::-1]:  # children before parents
        if parent[s] >= 0:
            held[parent[s]] |= held[s]
            reach[parent[s]] |= reach[s]
    drop = np.zeros(g.n_seg, bool)
    for s in order:  # parents before children
        drop[s] = not held[s] and (reach[s] or (parent[s] >= 0 and drop[parent[s]]))
    seg_tree = np.where(drop, -1, seg_tree)
    node_tree = node_tree.copy()
    kept = np.zeros(g.n_node, bool)
    same = seg_tree[g.inc[:, 0]] == node_tree[g.inc[:, 1]]
    kept[g.inc[same, 1]] = True
    node_tree[~kept] = -1
    return seg_tree, node_tree


def _portal_crossings(g: _SegmentGraph, seg_tree, node_tree, spacing,
                      p: TreeSeparationParams) -> np.ndarray:
    """Centerline voxels (boolean over ``g.index``) of the hepatic tree that a portal
    vessel runs through (module docstring, step 8): a hepatic junction where one portal
    segment continues another (a turn of at most ``reentry_turn_deg`` from one into the
    other: two portal branches that merely touch the junction from two sides are not joined
    through it), and a hepatic link (a segment between two junctions no longer
    than ``reentry_link_radii`` of its radius plus a voxel: the merged lumen of two vessels
    in contact) with a portal segment at each end, with its hepatic junctions."""
    portal = np.zeros(g.n_node, int)  # portal segments at each node
    np.add.at(portal, g.inc[seg_tree[g.inc[:, 0]] == 0, 1], 1)
    ends, at_node = _incidences(g)
    nodes = set()
    for k in np.flatnonzero((node_tree == 1) & (portal >= 2)):
        rows = [i for i in at_node[k] if seg_tree[g.inc[i, 0]] == 0]
        if any(_turn_deg(g, i, j) <= p.reentry_turn_deg
               for n, i in enumerate(rows) for j in rows[n + 1:]):
            nodes.add(int(k))
    links = []
    link_max = p.reentry_link_radii * g.seg_radius + float(np.mean(spacing))
    for s in np.flatnonzero((seg_tree == 1) & (g.seg_length <= link_max)):
        ks = {int(g.inc[i, 1]) for i in ends[s]}
        if len(ks) == 2 and all(portal[k] >= 1 for k in ks):
            links.append(s)
            nodes.update(k for k in ks if node_tree[k] == 1)
    return np.isin(g.node, list(nodes)) | np.isin(g.segment, links)


def _nearest_sphere(g: _SegmentGraph, among: np.ndarray, radius: np.ndarray,
                    points: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``points`` (mm), the least distance beyond a sphere (distance to a
    centerline voxel minus its ``radius``, mm, per voxel of ``g.pos``) over its ``k``
    nearest centerline voxels of ``among`` (indices into ``g.pos``), and that voxel (the
    Euclidean nearest alone may lie on a thin branch beside a thick vein's wall)."""
    k = min(k, len(among))
    d, j = cKDTree(g.pos[among]).query(points, k=k)
    d, j = d.reshape(len(points), k), among[j.reshape(len(points), k)]
    gap = d - radius[j]
    best = np.argmin(gap, axis=1)
    rows = np.arange(len(points))
    return gap[rows, best], j[rows, best]


def separate_trees(tube: np.ndarray, ivc: np.ndarray, portal_seed: np.ndarray, spacing,
                   params: TreeSeparationParams | None = None, anchor: np.ndarray | None = None,
                   ivc_zone: np.ndarray | None = None,
                   contrast: np.ndarray | None = None, contrast_sd: float | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split the vessel mask ``tube`` (without the IVC) into the portal and hepatic venous
    trees (module docstring). ``ivc``: the IVC mask (hepatic root), ``portal_seed``:
    voxels at the portal root; ``anchor`` and ``ivc_zone`` (optional): where the trees belong
    (the liver and the portal trunk beyond it) and the IVC's rim: subtrees of the growth
    that reach the rim and not the anchor are dropped (:func:`_drop_extrahepatic_ends`); all
    boolean on one grid with ``spacing`` (mm per axis); ``contrast`` (optional): the
    smoothed image's difference from the parenchyma (HU, positive towards the vessels' side)
    on that grid, for the lumen-HU evidence (:func:`_lumen_penalty`) and the valleys left
    out of the centerline (:func:`_valleys`), whose dip is measured in ``contrast_sd``, the
    smoothed parenchyma's SD (HU; without it no valley is cut). Returns
    boolean ``(portal, hepatic, crossings, companions)`` masks: ``crossings``, the lumen of
    hepatic junctions that a portal vessel runs through (module docstring, step 8);
    ``companions``, the lumen of other vessel systems: the arteries running beside the
    portal veins (step 6; where it touches a vein's lumen it stays in that tree's mask as
    well, lumen but not centerline) and the segments that left a tree reading unlike its
    lumen (step 5)."""
    p = params or TreeSeparationParams()
    empty = np.zeros(tube.shape, bool)
    if not tube.any() or (not portal_seed.any() and not ivc.any()):
        return empty, empty.copy(), empty.copy(), empty.copy()
    spacing = np.asarray(spacing, float)
    valley = None
    if p.valley_min_dip_sd > 0 and contrast is not None and contrast_sd:
        valley = _valleys(tube, contrast, spacing, p.valley_min_dip_sd * contrast_sd,
                          p.valley_reach_mm, p.valley_min_area_mm2)
    g = _segment_graph(tube & ~valley if valley is not None else tube, spacing)
    vox = np.argwhere(tube)
    kd = cKDTree(g.pos)
    _, nearest = kd.query(vox * spacing)  # each vessel voxel's nearest centerline voxel
    owner = np.where(g.segment >= 0, g.segment, -1)

    def segments_near(points):
        if len(points) == 0:
            return set()
        _, j = kd.query(points * spacing)
        k = np.unique(j)
        seg = g.segment[k]
        if (seg < 0).any():  # a junction voxel: take the segments at that node
            nodes = set(g.node[k[seg < 0]].tolist())
            seg = np.concatenate([seg[seg >= 0], g.inc[np.isin(g.inc[:, 1], list(nodes)), 0]])
        return set(seg.tolist())

    starts = []
    if portal_seed.any():
        centre = np.argwhere(portal_seed).mean(0, keepdims=True)
        starts += [(0, s) for s in segments_near(centre)]
    if ivc.any():
        box = bounding_box(ivc, 1)
        touch = np.zeros_like(tube)
        touch[box] = tube[box] & ndimage.binary_dilation(ivc[box], np.ones((3, 3, 3)))
        portal_root = {s for _, s in starts}
        starts += [(1, s) for s in segments_near(np.argwhere(touch)) if s not in portal_root]
    seg_tree, node_tree, parent, entered, order = _grow(g, starts, spacing, p)
    seg_tree, node_tree = _straight_continuations(g, seg_tree, node_tree, parent, entered,
                                                  order, spacing, p)
    if contrast is not None:
        mean, measured, read = _segment_contrast(g, contrast)
        lumen, sd = _tree_lumens(g, seg_tree, mean, measured, p)
        blocked = _bright_segments(mean, measured, lumen, sd, p)
        if blocked.any():
            seg_tree, node_tree, parent, entered, order = _grow(g, starts, spacing, p,
                                                                blocked=blocked)
            seg_tree, node_tree = _straight_continuations(g, seg_tree, node_tree, parent,
                                                          entered, order, spacing, p)
            lumen, sd = _tree_lumens(g, seg_tree, mean, measured, p)
        penalty = _lumen_penalty(g, seg_tree, mean, measured, read, lumen, sd, p)
        if penalty is not None:
            seg_tree, node_tree, parent, entered, order = _grow(g, starts, spacing, p,
                                                                penalty, blocked)
            seg_tree, node_tree = _straight_continuations(g, seg_tree, node_tree, parent,
                                                          entered, order, spacing, p,
                                                          penalty)
    dark = np.zeros(g.n_seg, bool)
    if contrast is not None and p.dark_max_share > 0:
        lumen, _ = _tree_lumens(g, seg_tree, mean, measured, p)
        dark = _dark_subtrees(g, seg_tree, parent, order, mean, measured, lumen, spacing, p)
        seg_tree = np.where(dark, -1, seg_tree)
    companion = _companion_segments(g, seg_tree, p)
    if anchor is not None and ivc_zone is not None:  # a segment owns its nearest voxels
        flags = []
        for zone in (anchor, ivc_zone):
            seg = g.segment[nearest[zone[tuple(vox.T)]]]
            flag = np.zeros(g.n_seg, bool)
            flag[seg[seg >= 0]] = True
            flags.append(flag)
        seg_tree, node_tree = _drop_extrahepatic_ends(g, seg_tree, node_tree, parent, order,
                                                      *flags)
    # -1 (no tree) appended: owner and g.node are -1 off segments and nodes, and a vessel
    # mask may have no node at all (a lone ring) or no segment
    tree = np.where(g.segment >= 0, np.append(seg_tree, -1)[owner],
                    np.append(node_tree, -1)[g.node])
    artery = np.append(companion & (seg_tree >= 0), False)[owner]
    # a junction whose segments are all companions is the artery's own (its branchings,
    # its pieces' joins), measured against the thickest of them
    n_inc = np.bincount(g.inc[:, 1], minlength=g.n_node)
    n_comp = np.bincount(g.inc[:, 1], companion[g.inc[:, 0]] & (seg_tree[g.inc[:, 0]] >= 0),
                         minlength=g.n_node)
    node_r = np.zeros(g.n_node)
    np.maximum.at(node_r, g.inc[:, 1], g.seg_radius[g.inc[:, 0]])
    node_art = (n_inc > 0) & (n_comp == n_inc)
    artery |= np.append(node_art, False)[g.node]
    ref_r = np.where(owner >= 0, np.append(g.seg_radius, 0.0)[owner],
                     np.append(node_r, 0.0)[g.node])
    if artery.any():  # but a centerline voxel as thick as the vein it would run beside is
        # that vein's, whose stretch the thinning ran through a contact into the
        # companion's segment (no companion without a positive ratio)
        artery &= g.radius * p.companion_radius_ratio < ref_r
    if artery.any():  # a voxel near an artery's centerline lies in the lumen whose
        # inscribed sphere it lies nearer, the artery's or a vein's, but within half a voxel
        # of a vein's (the two lumens merge at a contact, and the blurred gap between them
        # is the vein's edge); the junctions where an artery meets a vein are neither's
        mixed = np.append((n_comp > 0) & ~node_art, False)[g.node]
        veins = np.flatnonzero(~artery & (tree >= 0) & ~mixed)
        arts = np.flatnonzero(artery)
        reach = float(g.radius[arts].max() + 2.0 * spacing.max())
        d1, _ = cKDTree(g.pos[arts]).query(vox * spacing, distance_upper_bound=reach)
        at = np.flatnonzero(np.isfinite(d1) | artery[nearest] | mixed[nearest])
        if len(veins) and len(at):
            # an artery's sphere no wider than its calibre (wider where a contact merges it
            # with the vein)
            gap_a, ja = _nearest_sphere(g, arts, np.minimum(g.radius, ref_r), vox[at] * spacing)
            gap_v, jv = _nearest_sphere(g, veins, g.radius, vox[at] * spacing)
            to_art = (gap_a < gap_v) & (gap_v > 0.5 * float(spacing.max()))
            was = artery[nearest[at]] | mixed[nearest[at]]
            nearest = nearest.copy()
            nearest[at] = np.where(to_art, ja, np.where(was, jv, nearest[at]))
    label = tree[nearest]
    if artery.any():  # the artery's lumen leaves the trees but its voxels touching a vein's
        # lumen stay in it (a notch in the lumen would move the vein's junctions), returned
        # with the companions as well: the tree's lumen, not its centerline
        off = artery[nearest] & (label >= 0)
        veins = np.zeros(tube.shape, bool)
        veins[tuple(vox[~off & (label >= 0)].T)] = True
        touching = ndimage.binary_dilation(veins, np.ones((3, 3, 3)))[tuple(vox.T)]
        label = np.where(off & ~touching, -1, label)
    portal, hepatic, crossings, companions = (empty, empty.copy(), empty.copy(),
                                              empty.copy())
    portal[tuple(vox[label == 0].T)] = True
    hepatic[tuple(vox[label == 1].T)] = True
    crossed = _portal_crossings(g, seg_tree, node_tree, spacing, p)[nearest] & (label == 1)
    crossings[tuple(vox[crossed].T)] = True
    companions[tuple(vox[artery[nearest]].T)] = True  # with what stays in a vein's mask
    # and the pieces of an artery that neither tree reached (no tree adopts them later)
    cut_off = np.append(companion & (seg_tree < 0), False)[owner]
    companions[tuple(vox[cut_off[nearest]].T)] = True
    companions[tuple(vox[np.append(dark, False)[owner][nearest] & (label < 0)].T)] = True
    return portal, hepatic, crossings, companions
