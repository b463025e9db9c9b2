"""Liver vessel separation and portal naming on 3D-IRCADb-01 patient 1.1 (manual labels,
CC BY-NC-ND 3.0: the label map is read unmodified, every derived image stays in memory).

A CT-like portal-venous image is synthesized from the label map (HU per compartment drawn by
:func:`vasomics.phantoms.liver_ct.sample_enhancement`, seed 0; Gaussian PSF 1 mm; correlated
noise SD 12 HU), cropped to the liver's bounding box + 15 mm to keep the test fast. The organ
masks are the manual ones (liver, IVC, aorta, spleen, kidneys, extrahepatic portal vein).
Scoring domain: the liver + 12 mm (the region the chain traces). Truth: portal = labels 17
(extrahepatic portal system) + 465 (intrahepatic portal vein), hepatic = 481. The
whole-chain tests run :func:`vasomics.chain.run.characterize` (atlas localization included)
on the uncropped synthesized CT.
"""

import edt
import numpy as np
import pytest

from vasomics.chain.graph import GraphParams, mask_to_graph
from vasomics.chain.liver_vessels import segment_liver_vessels
from vasomics.chain.naming import name_portal_tree
from vasomics.chain.phase import measure_regions
from vasomics.chain.qc import estimate_noise_sd
from vasomics.image import Image
from vasomics.io.images import read_image
from vasomics.phantoms.liver_ct import (
    IRCADB_COMPARTMENTS,
    IRCADB_LIVER,
    ct_from_labels,
    ircadb_organs,
)

PORTAL, HEPATIC = (17, 465), (481,)
RIGHT_GROUP = {"right_portal_vein", "right_anterior_portal_vein",
               "right_posterior_portal_vein", "portal_S5", "portal_S6", "portal_S7",
               "portal_S8"}
LEFT_GROUP = {"left_portal_vein", "portal_S2", "portal_S3", "portal_S4"}


def _crop(img: Image, mask: np.ndarray, margin_mm: float) -> tuple[Image, tuple]:
    idx = np.argwhere(mask)
    pad = np.ceil(margin_mm / np.asarray(img.spacing)).astype(int)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, img.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    origin = img.index_to_physical(lo[None])[0]
    return Image(img.array[box], spacing=img.spacing, origin=tuple(origin),
                 direction=img.direction, modality=img.modality), box


def _manual_organs_run(shared_data, seed: int, crop: bool = True):
    """The vessel stage with the manual organs on the CT synthesized with ``seed`` (cropped
    unless ``crop`` is false): ``(labels, label array, CT, LiverVessels, scoring domain)``."""
    full = read_image(shared_data / "ircadb_01_01" / "3Dircadb0101Labeled.vti")
    lab = _crop(full, np.isin(full.array, IRCADB_LIVER), 15.0)[0] if crop else full
    a = np.asarray(lab.array)
    ct = ct_from_labels(lab, IRCADB_COMPARTMENTS, "portal_venous", noise_sd_hu=12.0,
                        seed=seed)
    organs = ircadb_organs(a)
    liver = organs["liver"]
    ves = segment_liver_vessels(ct, organs, measure_regions(ct, organs),
                                estimate_noise_sd(ct.array))
    domain = edt.edt(~liver, anisotropy=ct.spacing, parallel=1) <= 12.0
    return lab, a, ct, ves, domain


@pytest.fixture(scope="module")
def ircadb(shared_data):
    return _manual_organs_run(shared_data, 0)


def test_ircadb_faint_hepatic_veins_are_reported(shared_data):
    """Enhancement seed 2 draws hepatic veins 19 HU above the liver against an IVC 52 HU
    above it. The thresholds, set from the IVC, lie above the hepatic veins' own lumen, so the
    hepatic tree is traced only where it joins the IVC. On the whole label map (the
    benchmark) 19 % of the hepatic lumen is traced and the status warns that the tree is
    likely incomplete (core 17 HU, seed threshold 25 HU); on this crop's noise the traced
    lumen is 0.2 % of the liver's volume and the tree is left untraced. Either way the status
    says so instead of "ok"; the portal tree is unaffected (0.846 on this crop, 0.883 on the
    whole map). The warning itself is tested on a phantom
    (``test_hepatic_veins_fainter_than_the_thresholds_are_reported``)."""
    _, a, _, ves, domain = _manual_organs_run(shared_data, 2)
    hepatic = np.isin(a, HEPATIC) & domain
    recall = np.count_nonzero(ves.hepatic & hepatic) / np.count_nonzero(hepatic)
    assert recall < 0.3, recall
    assert ("hepatic tree likely incomplete" in ves.status
            or "hepatic tree not traced" in ves.status), ves.status
    assert "portal tree" not in ves.status
    assert _dice(ves.portal & domain, np.isin(a, PORTAL) & domain) >= 0.84


def _dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_ircadb_tree_separation_dice_with_manual_organs(ircadb):
    """Measured (seed 0: portal 196, hepatic 169, liver 113 HU; noise 12 HU): portal 0.867,
    hepatic 0.812; hepatic voxels given to the portal tree 1060, portal to hepatic 1150.
    Goal 0.85 per tree: hepatic not met. The segmentation bounds it: the hepatic veins are
    1-2 mm in radius and their noisy boundary voxels flip both ways (missed and spurious
    about 5000 each of 33500); the noise-free image gives 0.86. Other enhancement draws:
    seed 1 (hepatic 156 HU) 0.878 / 0.750; seed 2 (hepatic 138 HU, 19 HU above the liver)
    0.866 / 0.33 (hepatic veins barely enhanced). Since the IVC's lumen beside its mask is
    added to it (a localized mask off the lumen left a rim traced as hepatic veins at 0.9 mm
    voxels) the hepatic tree reads 0.786: the IVC's section around this oval IVC takes some
    hepatic vein lumen at the confluence that the manual mask leaves out (0.780 when the
    whole section was added, parts running on beyond it included). Since the section's disk
    narrows with the IVC (``_narrowed_radii``: 9 mm below the liver, 5.5 mm at the
    confluence, where one disk of 1.15 times the median radius took the veins' last
    millimetres): 0.802. Since the separation keeps a vessel whole through a crossing and
    gives a vessel entered through a bend back to the tree it continues
    (:mod:`vasomics.chain.tree_separation`): portal 0.875, hepatic 0.811 (0.842 / 0.772
    when a paired branch of a crossing could not be entered from the side at all: one
    portal branch with two side branches on one line, taken by the hepatic tree through a
    contact at one's far end). Since vessel pieces cut off by a gap join the tree they lie
    beside (``fragment_gap_mm``): 0.881 / 0.812 (0.877 / 0.810 without; seed 1 hepatic
    0.744 -> 0.751). Since segments 1-2 mm thick carry lumen evidence at their partial
    volume (``lumen_thin_min_radius_mm``): 0.876 / 0.808, seed 1 0.879 / 0.749 (on the
    uncropped CT's noise draws 0.865 / 0.789 -> 0.879 / 0.808 and 0.869 / 0.753 -> 0.884
    / 0.776; here a hepatic branch joined only through a portal twig follows the twig).
    With the lumen evidence at 8 units per SD instead of 4: 0.875 / 0.808, seed 1 0.881 /
    0.753 (uncropped 0.884 / 0.814, seed 1 unchanged). Since thin vessels' voxels outside
    their model lumen edge leave the lumen (``edge_peel``): 0.874 / 0.813, seed 1 0.884 /
    0.755 (uncropped 0.884 / 0.820 and 0.887 / 0.778)."""
    _, a, _, ves, domain = ircadb
    assert ves.status == "ok"
    portal, hepatic = np.isin(a, PORTAL) & domain, np.isin(a, HEPATIC) & domain
    d_portal = _dice(ves.portal & domain, portal)
    d_hepatic = _dice(ves.hepatic & domain, hepatic)
    assert d_portal >= 0.85, d_portal
    assert d_hepatic >= 0.79, d_hepatic
    assert np.count_nonzero(ves.portal & hepatic) < 1600
    assert np.count_nonzero(ves.hepatic & portal) < 1600


def test_ircadb_thin_segments_carry_lumen_evidence(shared_data):
    """The uncropped CT's noise draw 1 (portal lumen 190 HU, hepatic 152 HU): every segment
    the thick segments' lumen evidence left in the wrong tree was under 1.75 mm thick, and
    the thin segments weighed against each tree's contrast at their partial volume
    (``TreeSeparationParams.lumen_thin_min_radius_mm``) took the tree Dice from 0.869 /
    0.753 to 0.884 / 0.776 (centerline length in the wrong tree 257 -> 121 mm; hepatic
    voxels in the portal tree about 2000 -> 1007, portal voxels in the hepatic tree about
    500 -> 134). Since session 29 the veins' bases inside the IVC's section are hepatic
    lumen (``LiverVesselParams.ivc_vein_bases``): 0.772 -> 0.769, 231 voxels of IVC label
    (33) at the veins' confluence, where the label map ends the hepatic label."""
    _, a, _, ves, domain = _manual_organs_run(shared_data, 1, crop=False)
    portal, hepatic = np.isin(a, PORTAL) & domain, np.isin(a, HEPATIC) & domain
    d_portal = _dice(ves.portal & domain, portal)
    d_hepatic = _dice(ves.hepatic & domain, hepatic)
    assert d_portal >= 0.88 and d_hepatic >= 0.765, (d_portal, d_hepatic)
    assert np.count_nonzero(ves.portal & hepatic) < 1300
    assert np.count_nonzero(ves.hepatic & portal) < 300


def _portal_graph(lab: Image, mask: np.ndarray, root):
    sub, box = _crop(lab, mask, 2 * max(lab.spacing))
    sub = sub.with_array(mask[box].astype(np.uint8))
    return mask_to_graph(sub, GraphParams(root_point_mm=tuple(float(v) for v in root)))


def _groups(g):
    pts, seg = g.points, g.point_segment()
    lab = g.segment_label[seg]
    return {"main": pts[lab == "main_portal_vein"],
            "right": pts[np.isin(lab, list(RIGHT_GROUP))],
            "left": pts[np.isin(lab, list(LEFT_GROUP))]}


def _label_split(lab: Image, a: np.ndarray):
    """Where IRCADb's portal labels split (LPS mm): the hilum (largest interface of the
    extrahepatic label 17 with the intrahepatic 465) and the umbilical portion (largest
    interface more than 10 mm to the patient's left of it)."""
    from scipy import ndimage

    iface = (a == 17) & ndimage.binary_dilation(a == 465, np.ones((3, 3, 3)))
    comp, n = ndimage.label(ndimage.binary_dilation(iface, np.ones((3, 3, 3))) & (a == 17),
                            np.ones((3, 3, 3)))
    sizes = np.bincount(comp.ravel())[1:]
    centres = [lab.index_to_physical(np.argwhere(comp == i + 1).mean(0, keepdims=True))[0]
               for i in range(n)]
    hilum = centres[int(np.argmax(sizes))]
    left = [i for i, c in enumerate(centres) if c[0] > hilum[0] + 10]
    return hilum, centres[max(left, key=lambda i: sizes[i])]


def test_ircadb_portal_naming_against_the_labels(ircadb):
    """Main, right and left portal veins named on the separated portal tree, checked against
    where IRCADb's labels split: the extrahepatic label (17) meets the intrahepatic one (465)
    at the hilum (largest 17/465 interface), where the trunk divides; the left portal vein's
    umbilical portion is labelled 17 where it leaves the parenchyma (second-largest interface
    on the patient's left, anterior). IRCADb 1.1 has a trifurcation-like division (right
    posterior vein first, left and right anterior veins 4 mm later), named without a right
    portal vein trunk. The same rules on the manual portal mask give the same names."""
    lab, a, _, ves, domain = ircadb
    assert ves.roots["portal"] is not None
    hilum, umbilical = _label_split(lab, a)
    for mask in (ves.centerline_mask("portal"), np.isin(a, PORTAL) & domain):
        g = name_portal_tree(_portal_graph(lab, mask, ves.roots["portal"]),
                             ves.roots["portal"])
        grp = _groups(g)
        assert all(len(p) for p in grp.values()), {k: len(v) for k, v in grp.items()}
        # the main portal vein runs on the extrahepatic label and ends at the hilum
        idx = np.round(lab.physical_to_index(grp["main"])).astype(int)
        idx = np.clip(idx, 0, np.array(a.shape) - 1)
        assert np.mean(a[tuple(idx.T)] == 17) >= 0.75
        main_segs = np.nonzero(g.segment_label == "main_portal_vein")[0]
        side = np.nonzero(np.isin(g.segment_label, list(RIGHT_GROUP | LEFT_GROUP)))[0]
        shared = set(g.segment_start[main_segs]) | set(g.segment_end[main_segs])
        division = [k for k in set(g.segment_start[side]) | set(g.segment_end[side])
                    if k in shared]
        assert division
        dist = min(np.linalg.norm(g.node_position[k] - hilum) for k in division)
        assert dist <= 10.0, dist
        # right group to the patient's right of the hilum, left group to its left, and the
        # left portal vein reaches the umbilical portion
        assert grp["right"][:, 0].mean() < hilum[0] - 10
        assert grp["left"][:, 0].mean() > hilum[0] + 10
        assert np.min(np.linalg.norm(grp["left"] - umbilical, axis=1)) <= 8.0
        assert np.min(np.linalg.norm(grp["right"] - umbilical, axis=1)) > 15.0


@pytest.fixture(scope="module")
def ircadb_chain(shared_data):
    """The whole chain (:func:`vasomics.chain.run.characterize`: atlas localization, phase,
    vessels, graphs, naming) on the uncropped synthesized CT (seed 0, 12 HU; in memory)."""
    from vasomics.chain.run import characterize

    lab = read_image(shared_data / "ircadb_01_01" / "3Dircadb0101Labeled.vti")
    a = np.asarray(lab.array)
    ct = ct_from_labels(lab, IRCADB_COMPARTMENTS, "portal_venous", noise_sd_hu=12.0, seed=0)
    res = characterize(ct, force=True)
    liver = np.isin(a, IRCADB_LIVER)
    domain = edt.edt(~liver, anisotropy=lab.spacing, parallel=1) <= 12.0
    v = res.vessels
    dice = {"portal": _dice(v.portal & domain, np.isin(a, PORTAL) & domain),
            "hepatic": _dice(v.hepatic & domain, np.isin(a, HEPATIC) & domain)}
    return lab, a, res, dice


def test_ircadb_whole_chain_tree_separation(ircadb_chain):
    """Localization included: cross-subject atlas (liver Dice 0.91, the hilum and the
    posterior right lobe missed; IVC 0.57, ending 35 mm below the hepatic veins' confluence;
    aorta 0.64; right kidney missed). Measured (seed 0, 12 HU): portal 0.749, hepatic 0.740
    with the extrahepatic trunk followed beyond the region (liver_roots.extend_trunk; seed 1:
    0.790 / 0.688; without it 0.697 / 0.740, seed 1 0.732 / 0.688) and the roots of
    chain/liver_roots.py (portal root where the trunk leaves the region,
    hepatic roots the IVC's contacts within 30 mm of the highest; with every IVC contact a
    hepatic root: 0.575 / 0.599, within 20-25 mm: 0.679 / 0.745); 0.699 / 0.741 before
    them (before the organ-basin removal and the IVC completion: 0.579 / 0.652); seed 1:
    0.732 / 0.690 before them. Main, right and left portal veins named on the right sides: the main portal vein
    divides 2.7 mm from the label hilum (named from the centerline point at the trunk's
    inlet; 9.8 mm from the endpoint nearest the inlet, a 0.8 mm twig), right group 32 mm to
    the patient's right of it, left group 27 mm to the left. With the vessel stage of
    2026-12-03: 0.747 / 0.738 (seed 0), 0.788 / 0.687 (seed 1). Since the IVC's lumen beside
    its mask is added to it: 0.737 / 0.740, seed 1 0.779 / 0.688; the IVC lumen outside the
    localized mask that the hepatic tree took (410 IVC-label voxels) now goes to the portal
    tree (839), and the main portal vein divides 9.8 mm from the hilum (right group 21 mm to
    the patient's right, left 27 mm to the left). Since subtrees the trees reach outside the
    liver and that end at the IVC's rim are dropped (the portal tree had taken, through the
    hepatic artery beside its trunk, a tributary of the IVC and the IVC's lumen beside its
    mask: 6700 voxels, 4700 of them IVC label): 0.787 / 0.741, seed 1 0.790 / 0.688;
    division 9.8 mm from the hilum, right group 26 mm to the right. Since the IVC's section
    disk narrows with the IVC: 0.784 / 0.741, seed 1 0.784 / 0.689; division 2.7 mm from
    the hilum, right group 32 mm to the right. Since the trees' lumen edge layer and the
    kidney guard (session 13), the liver's thick-growth following (localized liver 0.91 ->
    0.94) and the adoption of vessel pieces cut off by a gap (session 14): 0.798 / 0.777,
    seed 1 0.818 / 0.725; division 4.2 mm from the hilum, right and left groups 29 mm to
    either side. Since liver the localized liver missed is no vessel edge in the hilum band
    (``LiverVesselParams.band_parenchyma_mm``, session 15): 0.837 / 0.780, seed 1 0.827 /
    0.736 (seed 0's portal false positives off any vessel label 4666 -> 734). Since thin
    segments carry lumen evidence (session 19): seed 0 unchanged, seed 1 0.840 / 0.757.
    Since a tree's lumen leaves out thick segments reading under half of it (nine pieces of
    the IVC's lumen and an artery in seed 0's portal tree had kept the lumen gate shut):
    seed 0 0.843 / 0.789; with the lumen evidence at 8 units per SD: 0.846 / 0.793. Since
    thin vessels' voxels outside their model lumen edge leave the trees' lumen
    (``LiverVesselParams.edge_peel``): 0.855 / 0.801, seed 1 0.853 / 0.759 (the portal
    tree past the 0.85 target on both). Since the veins' bases inside the IVC's section
    are hepatic lumen (session 29): 0.855 / 0.798, seed 1 0.852 / 0.756. Since thick segments
    of one or two centerline voxels carry lumen evidence (session 40): 0.853 / 0.793, seed 1
    0.853 / 0.758; since thin companions are sought 4 mm from their vein (session 41):
    0.853 / 0.794, seed 1 0.853 / 0.759."""
    lab, a, res, dice = ircadb_chain
    assert res.vessels.status == "ok", res.vessels.status
    assert dice["portal"] >= 0.85 and dice["hepatic"] >= 0.79, dice
    hilum, _ = _label_split(lab, a)
    g = res.portal
    grp = _groups(g)
    assert all(len(p) for p in grp.values()), {k: len(v) for k, v in grp.items()}
    main_segs = np.nonzero(g.segment_label == "main_portal_vein")[0]
    side = np.nonzero(np.isin(g.segment_label, list(RIGHT_GROUP | LEFT_GROUP)))[0]
    shared = set(g.segment_start[main_segs]) | set(g.segment_end[main_segs])
    division = [k for k in set(g.segment_start[side]) | set(g.segment_end[side]) if k in shared]
    assert division
    assert min(np.linalg.norm(g.node_position[k] - hilum) for k in division) <= 10.0
    assert grp["right"][:, 0].mean() < hilum[0] - 10
    assert grp["left"][:, 0].mean() > hilum[0] + 10


@pytest.mark.xfail(strict=True, reason="issue #4 target (Dice >= 0.85 per tree) not reached "
                   "through the whole chain for the hepatic tree: seed 0 portal 0.852 "
                   "(session 45, the IVC's one section per slice; 0.853 in session 40, short "
                   "pieces read; 0.855 before, 0.854 in session 37), "
                   "hepatic 0.794 (session 41, thin companions; 0.793 in session 40, 0.797 from "
                   "session 34, "
                   "the valley cut; 0.798 in session 29, the "
                   "veins' bases in the IVC's section as "
                   "lumen; 0.801 in session 27, the veins' mouths as lumen; 0.824 beyond 1 mm "
                   "of the IVC label, around which the label map puts a shell of hepatic "
                   "label: 481 = liver | venous system; 0.802 in session 26, the veins' lobes "
                   "beside the IVC; 0.801 in "
                   "session 19; 0.846 / 0.793 before the thin vessels' peel; "
                   "0.837 / 0.780 in session 15, before the separation's lumen rules; "
                   "0.798 / 0.777 before liver the localized liver missed was left out of the "
                   "hilum band's vessels; 0.784 / 0.741 before the lumen edge layer, the kidney guard and the "
                   "liver's thick-growth following and the gap pieces' adoption; portal "
                   "0.697 before the trunk was followed beyond the region, 0.737 before "
                   "subtrees "
                   "ending at the IVC outside the liver were dropped). Localized "
                   "organs replaced one at a time by the manual ones (benchmarks/"
                   "bench_ircadb_liver_vessels.py --substitute, measured before "
                   "chain/liver_roots.py): liver -> portal 0.811 "
                   "(the localized liver misses the hilum: the region, liver + 12 mm, leaves "
                   "out 5700 voxels of the extrahepatic portal vein, now followed "
                   "outward from its cut face: 3441 portal voxels still missed, 7222 false "
                   "positives off any vessel label, 3800 of them IVC lumen), IVC -> hepatic 0.747, aorta -> portal "
                   "0.715, all -> 0.863 / "
                   "0.792 (the hepatic veins' noisy 1-2 mm boundaries)")
def test_ircadb_whole_chain_reaches_the_target(ircadb_chain):
    _, _, _, dice = ircadb_chain
    assert dice["portal"] >= 0.85 and dice["hepatic"] >= 0.85, dice
