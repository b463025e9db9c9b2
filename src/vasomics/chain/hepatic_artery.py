"""The hepatic artery in arterial-phase CT: segmentation in the liver and hilum, separated
from the portal venous tree by intensity and calibre, traced from its root at the hilum.

Only the arterial phase shows the hepatic artery apart from the veins: the artery carries
aortic blood (its lumen reaches the aorta's HU) while the portal vein is still filling
(arterial phase: aorta ~320 HU, portal vein ~135 HU, liver ~70 HU). In the other phases the
artery is as bright as the veins it runs beside and thinner than them: there the result is
*not applicable* (``applicable`` False, empty mask, a status saying why), never an empty
tree passed off as measured.

1. **Reference HU**: the artery's lumen HU is the aorta's median (``region_hu["aorta"]``);
   the portal vein's is the median over the venous stage's portal mask eroded by one voxel
   (its lumen core; ``region_hu["portal_vein"]`` when that mask is empty). When the aorta is
   less than ``min_contrast_sd`` noise SDs brighter than the portal vein the artery is not
   traced (status says so).
2. **Region**: the liver dilated by ``surface_margin_mm`` (arteries run inside the liver)
   together with the hilum: voxels within ``hilum_radius_mm`` of the portal root at the
   hilum (``roots["portal_hilum"]`` of :func:`vasomics.chain.liver_vessels.segment_liver_vessels`;
   without it the liver dilated by ``hilum_margin_mm``), and the corridor toward the celiac
   trunk along the hepatoduodenal ligament: voxels within ``corridor_radius_mm`` of the
   straight lines from that root to the portal trunk's inlet into the venous region
   (``roots["portal"]``) and from that inlet and from the portal confluence landmark to
   their nearest voxels of the localized aorta, and of the extrahepatic portal vein (venous
   portal tree and localized portal vein outside the liver). The aorta dilated by
   ``aorta_margin_mm`` (its partial-volume rim), the kidneys and the spleen outside the liver
   are excluded.
3. **Bright thin tubes**: after Gaussian smoothing (``smoothing_mm``), voxels past the
   portal HU plus the larger of ``grow_fraction`` of the aorta-to-portal contrast and
   ``grow_sd`` SDs of the smoothed parenchyma (so portal lumen, even noisy, is never taken),
   below the aorta HU plus ``ceiling_margin_hu`` (cortical bone, calcium), are candidate
   artery. Regions holding a ball larger than ``max_radius_mm`` among the voxels past
   ``blob_fraction`` of that contrast (ribs, bowel wall, a kidney's cortex, the aorta
   itself: no hepatic artery is that thick; at the grow level an artery's halo would join
   it to what lies beside it) are removed by an opening, as in the venous stage. Voxels past
   ``seed_fraction`` of the way from the portal HU to the aorta HU are seeds. Inside the
   liver and outside the core of the venous stage's portal mask (its voxels farther than
   ``thin_portal_rim_mm`` from the mask's edge: an artery beside a portal vein may lie in
   the mask's rim) the level is lower, ``thin_sd`` SDs above the portal HU (still at least
   ``grow_fraction`` of the contrast): branches under 0.8 mm in radius peak a few tens of HU
   above the portal HU, under the grow level, and the traced portal lumen is masked. Only
   with a venous portal mask (without one, phantom 615 lost 9 % of the artery mask to
   portal veins at that level) and where the finest voxel size is at most
   ``thin_max_voxel_mm``: on coarser grids a thin portal vein the venous stage left
   untraced is a voxel or two across, has no core, and passed that level (phantom 501 at
   2.25 mm: artery precision 0.996 -> 0.910), while the branches it is for are a third of a
   voxel across (session 32; docs/ct_chain.md, *the hepatic arterial tree's features*).
4. **Tree from the root**: the candidates' pieces smaller than ``min_component_mm3`` are
   dropped, and so are those without a seed voxel unless they lie inside the liver (at
   least ``in_liver_fraction`` of them; about the liver the partial-volume shell of ribs and
   of the body wall reads as bright as a thin artery). The others are grouped by single
   linkage: two lie in one group when they come within the larger of ``bridge_mm`` and
   ``bridge_voxels`` voxel sizes of each other, or within ``bridge_in_liver_mm`` between
   voxels inside the liver (an artery interrupted where it crosses a vein or where partial
   volume thins it below the grow threshold). The artery is the group of largest volume
   that holds a seed and reaches both the liver (within ``surface_margin_mm``: a liver mask
   may leave out the arteries' own lumen, as manual labels do) and the hilum (or corridor);
   the others are dropped. Its root voxel is its voxel beyond that margin in the hilum or
   corridor nearest the aorta (the artery arrives from the celiac trunk). Thin branches
   (radius under ~1 mm at 0.9 mm voxels) rarely reach the seed level and are cut into
   pieces by partial volume and by the veins they cross: the unseeded pieces and the longer
   bridge inside the liver keep them (session 30; docs/ct_chain.md, *the hepatic arterial
   tree's features*).
5. **Half-maximum border**: the grow threshold lies below the half-way level of a thick
   artery's edge, so the tree's voxels and the voxels within ``rim_mm`` of it are kept where
   their smoothed HU lie at least half-way from the local background to the local artery
   peak (the tree's partial-volume rim joins, its halo below that level leaves); inside the
   venous portal mask a rim voxel must be brighter than the portal HU by ``rim_portal_sd``
   SDs. On 3D-IRCADb 1.1 (0.57 mm in-plane, PSF 1 mm, seeds 0-1) the rim raised the Dice
   from 0.58/0.63 to 0.70/0.74 at a precision of 0.975/0.954 (0.997/0.996 without; 1.2 mm:
   0.73/0.75 at 0.91/0.90), before session 30's grow level and border; since, seeds 0-2
   read 0.748/0.746/0.758 (0.711/0.743/0.733 before) at a precision of 0.925/0.868/0.895
   (0.972/0.951/0.958): 90 % of the voxels off the label lie one voxel (0.57 mm) outside
   its edge, where blur widens a thin artery's half-maximum width beyond its diameter
   (``bench_hepatic_artery.py --ircadb-stride 1``).

The chain (:mod:`vasomics.chain.run`) removes the artery's voxels and its halo
(:class:`HepaticArtery`) from the venous trees: the venous stage's thresholds take in every
bright vessel, and a tube brighter than the portal vein beside a portal branch is the
artery, not a portal vein.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import edt
import numpy as np
from pydantic import Field
from scipy import ndimage
from scipy.spatial import cKDTree

from vasomics.chain._grid import bounding_box, distance_to
from vasomics.image import Image
from vasomics.params import StageParams

log = logging.getLogger(__name__)


class HepaticArteryParams(StageParams):
    """Hepatic artery segmentation settings (mm, HU)."""

    surface_margin_mm: float = Field(4.0, description="Liver mask dilation within which "
                                                      "arteries are sought (besides the "
                                                      "hilum).")
    hilum_radius_mm: float = Field(40.0, description="The hilum: voxels within this distance "
                                                     "of the portal root.")
    corridor_radius_mm: float = Field(15.0, description="Radius of the corridor from the "
                                                        "hilum toward the aorta (celiac "
                                                        "trunk).")
    aorta_margin_mm: float = Field(3.0, description="The aorta mask dilated by this is "
                                                    "excluded.")
    smoothing_mm: float = Field(0.5, description="Gaussian pre-smoothing sigma.")
    seed_fraction: float = Field(0.5, description="Seed threshold position between the portal "
                                                  "(0) and aorta (1) HU.")
    grow_fraction: float = Field(0.1, description="Grow threshold: at least this fraction "
                                                   "of the aorta-portal contrast above the "
                                                   "portal HU.")
    grow_sd: float = Field(3.5, description="Grow threshold: at least this many SDs of the "
                                            "smoothed parenchyma above the portal HU.")
    thin_sd: float = Field(1.5, description="Inside the liver and outside the venous portal "
                                            "lumen's core, the grow threshold is this many "
                                            "SDs above the portal HU instead (thin "
                                            "branches).")
    thin_max_voxel_mm: float = Field(1.5, description="The thin level is used only where "
                                                       "the finest voxel size is at most "
                                                       "this.")
    thin_portal_rim_mm: float = Field(1.25, description="The venous portal lumen's core, "
                                                        "where the thin level is not used: "
                                                        "its voxels farther than this from "
                                                        "the mask's edge (an artery beside "
                                                        "the vein may lie in its rim).")
    blob_fraction: float = Field(0.25, description="Thick regions are sought among the "
                                                   "voxels at least this fraction of the "
                                                   "aorta-portal contrast above the portal "
                                                   "HU (and the grow SDs): a lower level "
                                                   "joins an artery to what lies beside it.")
    ceiling_margin_hu: float = Field(150.0, description="Voxels brighter than the aorta plus "
                                                        "this are bone or calcium.")
    min_contrast_sd: float = Field(4.0, description="Minimum aorta-to-portal contrast, in "
                                                    "noise SDs, to trace the artery at all.")
    max_radius_mm: float = Field(4.0, description="Bright regions holding a larger ball are "
                                                  "not hepatic arteries and are removed.")
    min_component_mm3: float = Field(2.0, description="Smaller pieces are dropped.")
    in_liver_fraction: float = Field(0.5, description="A piece is inside the liver when at "
                                                      "least this fraction of it lies in the "
                                                      "liver mask; only such pieces may lack "
                                                      "a seed voxel.")
    bridge_mm: float = Field(4.0, description="Pieces this close to each other form one "
                                              "group (single linkage)...")
    bridge_voxels: float = Field(2.5, description="... or this many of the largest voxel "
                                                  "size, whichever is larger...")
    bridge_in_liver_mm: float = Field(8.0, description="... or this close between voxels "
                                                       "inside the liver (an artery crossing "
                                                       "a vein, or thinned by partial "
                                                       "volume).")
    rim_mm: float = Field(0.8, description="Half-maximum border: the tree and the voxels "
                                           "this close to it are kept where their HU pass "
                                           "half-way from the local background to the "
                                           "local artery peak (0: off).")
    rim_portal_sd: float = Field(2.5, description="A rim voxel inside the venous portal mask "
                                                  "must exceed the portal HU by this many "
                                                  "SDs.")
    halo_mm: float = Field(1.5, description="The artery's halo, taken out of the venous "
                                            "trees with it, holds the voxels this close to "
                                            "its border (not the portal lumen's core).")


@dataclass
class HepaticArtery:
    """``mask``: boolean artery mask on the image grid; ``root``: its root point (LPS mm,
    the artery's end nearest the aorta at the hilum) or ``None``; ``applicable``: False
    outside the arterial phase; ``status``: ``"ok"`` or why the mask is empty;
    ``thresholds_hu``: the (seed, grow) thresholds; ``reference_hu``: the aorta and portal
    HU used; ``halo`` (or ``None``): the artery's partial-volume halo, the grown tree's
    voxels outside its half-maximum border (step 5) and the voxels within ``halo_mm`` of
    that border, less the venous portal mask's core (eroded by one voxel). Neither artery
    lumen nor venous lumen, it is taken out of the venous trees with the mask (left in
    them, it is drawn as strands along the artery)."""

    mask: np.ndarray
    root: list[float] | None = None
    applicable: bool = True
    status: str = "ok"
    thresholds_hu: tuple[float, float] = (float("nan"), float("nan"))
    reference_hu: dict[str, float] = field(default_factory=dict)
    halo: np.ndarray | None = None


def segment_hepatic_artery(image: Image, phase: str, organs: dict[str, np.ndarray],
                           region_hu: dict[str, float], noise_sd_hu: float,
                           portal_mask: np.ndarray | None = None,
                           portal_hilum_mm=None, portal_inlet_mm=None, confluence_mm=None,
                           params: HepaticArteryParams | None = None) -> HepaticArtery:
    """Segment the hepatic artery (module docstring). ``phase``: the scan's contrast phase;
    ``organs``: boolean masks on the image grid (``liver``, optional ``aorta``, ``kidney``,
    ``spleen``); ``region_hu``: median HU per region (``aorta``, ``portal_vein``,
    ``liver``); ``portal_mask``: the venous stage's portal tree; ``portal_hilum_mm``,
    ``portal_inlet_mm``: the portal root at the hilum and the portal trunk's inlet into the
    venous region (LPS mm, ``roots["portal_hilum"]`` and ``roots["portal"]`` of the venous
    stage); ``confluence_mm``: the portal confluence landmark of localization."""
    p = params or HepaticArteryParams()
    empty = np.zeros(image.shape, bool)
    if phase != "arterial":
        status = (f"not applicable: the hepatic artery is traced in the arterial phase only "
                  f"(phase {phase})")
        if phase != "native":  # enhanced beside the portal veins (docs/ct_chain.md, limits)
            status += ("; where it runs beside a portal vein it is left out of the venous "
                       "trees, but part of it may be traced as portal vein (its length read "
                       "up to about 20 % high on phantoms)")
        return HepaticArtery(empty, applicable=False, status=status)
    liver = organs.get("liver")
    if liver is None or not liver.any():
        return HepaticArtery(empty, status="no liver localized: hepatic artery not traced")
    a = image.array
    aorta_hu = float(region_hu.get("aorta", np.nan))
    portal_hu = float(region_hu.get("portal_vein", np.nan))
    if portal_mask is not None and portal_mask.any():
        core = ndimage.binary_erosion(portal_mask)
        portal_hu = float(np.median(a[core if core.any() else portal_mask]))
    ref = {"aorta": aorta_hu, "portal": portal_hu}
    if not (np.isfinite(aorta_hu) and np.isfinite(portal_hu)):
        return HepaticArtery(empty, status="aorta or portal HU not measured: hepatic artery "
                             "not traced", reference_hu=ref)
    contrast = aorta_hu - portal_hu
    if contrast < p.min_contrast_sd * max(noise_sd_hu, 1.0):
        return HepaticArtery(empty, status=f"aorta-to-portal contrast {contrast:.0f} HU is "
                             f"below {p.min_contrast_sd:g} noise SDs: hepatic artery not "
                             f"traced", reference_hu=ref)
    spacing = np.asarray(image.spacing, float)
    if portal_hilum_mm is None:
        return HepaticArtery(empty, status="no portal root at the hilum (the portal tree was "
                             "not traced): hepatic artery not traced, for it is rooted there "
                             "(bright tubes elsewhere about the liver are as often ribs)",
                             reference_hu=ref)
    reach = max(p.hilum_radius_mm, p.surface_margin_mm)
    pad = np.ceil(reach / spacing).astype(int) + 2
    box = bounding_box(liver, pad)
    offset = np.array([b.start for b in box])
    liv = liver[box]
    to_liver = edt.edt(~liv, anisotropy=tuple(spacing), parallel=2)
    aorta = organs.get("aorta", empty)[box]
    aidx = np.argwhere(aorta)  # the aorta's voxels (liver box index)

    def index(point):
        return image.physical_to_index(np.asarray([point], float))[0] - offset

    hilum = index(portal_hilum_mm)
    near_hilum = _near_segment(liv.shape, spacing, hilum, hilum, p.hilum_radius_mm)
    inlet = hilum if portal_inlet_mm is None else index(portal_inlet_mm)
    near_hilum |= _near_segment(liv.shape, spacing, hilum, inlet, p.corridor_radius_mm)
    # the hepatoduodenal ligament: along the extrahepatic portal vein
    ext = organs.get("portal_vein", empty)[box] & ~liv
    if portal_mask is not None:
        ext = ext | (portal_mask[box] & ~liv)
    if ext.any():
        near_hilum |= distance_to(ext, spacing, p.corridor_radius_mm) <= p.corridor_radius_mm
    if len(aidx):  # on toward the celiac trunk
        for start in [inlet] + ([index(confluence_mm)] if confluence_mm is not None
                                else []):
            near = np.linalg.norm((aidx - start) * spacing, axis=1)
            near_hilum |= _near_segment(liv.shape, spacing, start,
                                        aidx[int(np.argmin(near))], p.corridor_radius_mm)
    region = (to_liver <= p.surface_margin_mm) | near_hilum
    if len(aidx):
        region &= distance_to(aorta, spacing, p.aorta_margin_mm) > p.aorta_margin_mm
    region &= ~((organs.get("kidney", empty)[box] | organs.get("spleen", empty)[box]) & ~liv)
    # the rest works on the region's bounding box (a third to a half of the liver box at
    # 0.7 mm voxels), padded beyond the reach of the smoothing, the blob opening and the
    # rim's background window so that the result is the same as on the whole box
    if not region.any():
        return HepaticArtery(empty, status="empty search region: hepatic artery not traced",
                             reference_hu=ref)
    q = np.ceil((p.max_radius_mm + 2 * p.rim_mm + 2.5 * p.smoothing_mm) / spacing).astype(int)
    sub = bounding_box(region, q + 3)
    liv, region, near_hilum = liv[sub], region[sub], near_hilum[sub]
    in_liver = to_liver[sub] <= p.surface_margin_mm
    box = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in
                zip(box, sub, strict=True))
    # the aorta's voxels in mm from the region box's first voxel
    aorta_mm = (aidx - [s.start for s in sub]) * spacing if len(aidx) else None
    offset = np.array([b.start for b in box])
    hu = ndimage.gaussian_filter(np.asarray(a[box], np.float32), p.smoothing_mm / spacing,
                                 truncate=2.5)
    liver_hu = float(region_hu.get("liver", np.median(hu[liv])))
    par = hu[liv & (np.abs(hu - liver_hu) < 0.5 * max(portal_hu - liver_hu, 10.0))]
    sd = float(1.4826 * np.median(np.abs(par - np.median(par)))) if par.size else \
        float(noise_sd_hu)
    high = portal_hu + p.seed_fraction * contrast
    low = portal_hu + max(p.grow_fraction * contrast, p.grow_sd * sd)
    low = min(low, high)
    ceiling = aorta_hu + p.ceiling_margin_hu
    thin_low = min(portal_hu + max(p.grow_fraction * contrast, p.thin_sd * sd), low)
    bright = region & (hu > low) & (hu < ceiling)
    if thin_low < low and portal_mask is not None and \
            float(spacing.min()) <= p.thin_max_voxel_mm:
        core = edt.edt(portal_mask[box], anisotropy=tuple(spacing),
                       parallel=2) > p.thin_portal_rim_mm
        bright |= region & in_liver & ~core & (hu > thin_low) & (hu < ceiling)
    thick = bright & (hu > min(portal_hu + max(p.blob_fraction * contrast, p.grow_sd * sd),
                               high))
    depth = edt.edt(thick, anisotropy=tuple(spacing), parallel=2)
    blob = edt.edt(depth <= p.max_radius_mm, anisotropy=tuple(spacing),
                   parallel=2) <= p.max_radius_mm + float(spacing.max())
    tube = bright & ~blob
    # "in the liver": within the surface margin (a liver mask may leave out the arteries'
    # own lumen, as manual labels do)
    mask, root = _tree_from_root(tube, tube & (hu > high), liv, in_liver, near_hilum,
                                 aorta_mm, spacing, p)
    thresholds = (float(high), float(low))
    grown = mask
    if mask.any() and p.rim_mm > 0:
        portal = portal_mask[box] if portal_mask is not None else None
        mask = _half_maximum(mask, hu, region, portal, portal_hu, sd, ceiling, spacing, p)
    if not mask.any():
        return HepaticArtery(empty, status="no bright tube reaches the hilum: hepatic artery "
                             "not found", thresholds_hu=thresholds, reference_hu=ref)
    # the halo: the grown tree outside the border and the voxels within halo_mm of the
    # border, but not the venous portal lumen's core (a portal vein running beside it)
    halo = (grown | (distance_to(mask, spacing, p.halo_mm) <= p.halo_mm)) & ~mask
    if portal_mask is not None:
        halo &= ~ndimage.binary_erosion(portal_mask[box], np.ones((3, 3, 3)))
    full, halo_full = np.zeros(image.shape, bool), np.zeros(image.shape, bool)
    full[box], halo_full[box] = mask, halo
    root_mm = image.index_to_physical(np.asarray([root], float) + offset)[0].tolist()
    return HepaticArtery(full, root_mm, True, "ok", thresholds, ref, halo_full)


def _half_maximum(tree, hu, region, portal, portal_hu, sd, ceiling, spacing, p) -> np.ndarray:
    """Step 5 of the module docstring: the tree and the voxels within ``rim_mm`` of it (in the
    region, below the ceiling) kept at or above half-way between the local background
    (minimum of the smoothed HU within twice that distance) and the local artery peak
    (maximum over the tree within that distance); a rim voxel inside the venous portal mask
    only if brighter than the portal HU by ``rim_portal_sd`` SDs (a portal voxel beside the
    artery is not its rim)."""
    near = distance_to(tree, spacing, p.rim_mm) <= p.rim_mm
    size = np.maximum(1, np.round(2 * p.rim_mm / spacing).astype(int) | 1)
    peak = ndimage.maximum_filter(np.where(tree, hu, -np.inf), size=tuple(size))
    bg = ndimage.minimum_filter(hu, size=tuple(2 * size - 1))
    half = np.isfinite(peak) & (hu >= 0.5 * (peak + bg))
    rim = near & ~tree & region & (hu < ceiling) & half
    if portal is not None:
        rim &= ~(portal & (hu < portal_hu + p.rim_portal_sd * sd))
    return (tree & half) | rim


def _near_segment(shape, spacing, a, b, radius_mm) -> np.ndarray:
    """Voxels (of a grid ``shape``) within ``radius_mm`` of the segment from index ``a`` to
    index ``b``."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    sp = np.asarray(spacing, np.float32)
    out = np.zeros(shape, bool)
    reach = radius_mm / sp
    lo = np.maximum(np.floor(np.minimum(a, b) - reach), 0).astype(int)
    hi = np.minimum(np.ceil(np.maximum(a, b) + reach) + 1, shape).astype(int)
    if np.any(hi <= lo):
        return out
    grid = np.stack(np.meshgrid(*[np.arange(u, v, dtype=np.float32) for u, v in
                                  zip(lo, hi, strict=True)], indexing="ij"), -1)
    d = (b - a) * sp
    rel = (grid - a) * sp
    t = np.clip((rel @ d) / max(float(d @ d), 1e-9), 0, 1)
    out[tuple(slice(u, v) for u, v in zip(lo, hi, strict=True))] = \
        np.sum((rel - t[..., None] * d) ** 2, -1) <= radius_mm ** 2
    return out


def _tree_from_root(tube, seeds, liver, liv, near_hilum, aorta_mm, spacing, p):
    """Step 4 of the module docstring: the artery tree mask and its root voxel (index).
    ``seeds``: the tube's voxels past the seed threshold; ``liver``: the liver mask,
    ``liv``: within the surface margin of it; ``aorta_mm``: the aorta's voxels (mm from the
    arrays' first voxel, ``None`` without an aorta). Pieces closer than the bridge distance are
    grouped in one pass (single linkage: the components of the tube dilated by half that
    distance)."""
    lab, n = ndimage.label(tube, np.ones((3, 3, 3)))
    if n == 0:
        return tube, None
    size = np.bincount(lab.ravel(), minlength=n + 1)
    inside = np.bincount(lab[liver], minlength=n + 1) >= p.in_liver_fraction * size
    ok = size * float(np.prod(spacing)) >= p.min_component_mm3
    # a piece without a seed is a thin branch only inside the liver: about it, partial
    # volume around ribs and the body wall reads as bright as a thin artery
    ok &= (np.bincount(lab[seeds], minlength=n + 1) > 0) | inside
    ok[0] = False
    tube = ok[lab]
    bridge = max(p.bridge_mm, p.bridge_voxels * float(spacing.max()))
    # single linkage: pieces within ``bridge`` of each other, or within
    # ``bridge_in_liver_mm`` between voxels inside the liver
    joined = distance_to(tube, spacing, bridge / 2) <= bridge / 2
    if p.bridge_in_liver_mm > bridge:
        half_link = p.bridge_in_liver_mm / 2
        joined |= distance_to(tube & liver, spacing, half_link) <= half_link
    group, n_group = ndimage.label(joined, np.ones((3, 3, 3)))
    group = np.where(tube, group, 0)
    volume = np.bincount(group.ravel(), minlength=n_group + 1)
    reach = (np.bincount(group[liv].ravel(), minlength=n_group + 1) > 0) & \
        (np.bincount(group[near_hilum].ravel(), minlength=n_group + 1) > 0) & \
        (np.bincount(group[seeds].ravel(), minlength=n_group + 1) > 0)
    reach[0] = False
    if not reach.any():
        return np.zeros_like(tube), None
    tree = group == int(np.argmax(np.where(reach, volume, -1)))
    idx = np.argwhere(tree & near_hilum & ~liv)
    if len(idx) == 0:
        idx = np.argwhere(tree & near_hilum)
    if aorta_mm is not None:  # the voxel nearest the aorta
        d = cKDTree(aorta_mm).query(idx * spacing)[0]
    else:  # no aorta: the point farthest from the liver
        d = -edt.edt(~liv, anisotropy=tuple(spacing), parallel=2)[tuple(idx.T)]
    return tree, idx[int(np.argmin(d))]
