"""Liver vessels: segmentation restricted to the liver and hilum, and separation into the
portal venous and hepatic venous trees.

1. **Region**: the localized liver dilated by ``hilum_margin_mm`` (the hilum and vessels at
   the liver surface), on the image grid, cropped to its bounding box.
2. **Segmentation**: vessels differ from the parenchyma by their contrast: in enhanced phases
   they are brighter, in a native scan slightly darker. After a Gaussian pre-smoothing
   (``smoothing_mm``), hysteresis thresholding: voxels past ``threshold_fraction`` of the way
   from the liver's median HU to the venous median HU seed vessels, which grow through
   voxels past a low threshold (``low_threshold_sd`` SDs of the smoothed parenchyma); the
   lumen edge is then placed at half the local peak contrast (``edge_window_mm``). The venous
   HU is that of the portal vein, the IVC (measured by
   :func:`vasomics.chain.phase.measure_regions`) or the liver's ``liver_tail_percentile``,
   whichever differs most from the parenchyma. Localized kidneys, spleen and aorta are
   excluded. When that contrast is below ``min_contrast_sd`` noise SDs the trees are left
   empty and the result says why (no silently wrong tree).
3. **Roots**: regions thicker than ``max_vessel_radius_mm`` (kidney, bowel, spleen: the
   opening by a ball of that radius) are removed, and vessel components that do not reach
   into the liver are dropped.
   The hepatic venous root is the localized IVC (added to the vessel mask); the portal root
   is the thickest vessel voxel inside the liver at least ``portal_ivc_gap_mm`` from the IVC
   and below the liver's median height (the main portal vein at the hilum), with a preference for the
   portal/splenic confluence (1 mm of radius per 25 mm of distance).
4. **Separation**: a two-front geodesic competition (minimum-cost paths,
   :class:`skimage.graph.MCP_Geometric`) inside the vessel mask with a local cost
   ``1 / (r + r0)²`` from the distance to the vessel wall ``r`` (mm): fronts run fast along
   thick lumens and slowly through the thin necks where two trees touch, so contacts are
   resolved by topology and radius continuity. Components reached by neither front are
   dropped. The hepatic tree excludes the IVC itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import edt
import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.image import Image
from vasomics.params import StageParams

log = logging.getLogger(__name__)


class LiverVesselParams(StageParams):
    """Liver vessel segmentation and tree separation settings (mm, HU)."""

    hilum_margin_mm: float = Field(12.0, description="Liver mask dilation that takes in the "
                                                     "hilum and surface vessels.")
    smoothing_mm: float = Field(0.8, description="Gaussian pre-smoothing sigma before the "
                                                 "threshold.")
    threshold_fraction: float = Field(0.5, description="High (seed) threshold position between "
                                                       "liver (0) and venous (1) median HU.")
    low_threshold_sd: float = Field(2.5, description="Low (hysteresis) threshold above the "
                                                     "parenchyma, in SDs of the smoothed "
                                                     "parenchyma.")
    low_threshold_fraction: float = Field(0.2, description="Low threshold at least this "
                                                           "fraction of the contrast.")
    min_contrast_sd: float = Field(3.0, description="Minimum vessel-to-liver contrast, in "
                                                    "noise SDs, to segment at all.")
    liver_tail_percentile: float = Field(98.0, description="Percentile of the liver's HU taken "
                                                           "as vessel HU when it exceeds the "
                                                           "venous regions' contrast.")
    edge_window_mm: float = Field(2.0, description="Half-width of the window giving the local "
                                                   "peak contrast; the lumen edge is at half "
                                                   "of it.")
    ceiling_margin_hu: float = Field(150.0, description="Voxels brighter than the brightest "
                                                        "vessel region plus this are bone or "
                                                        "calcium, not lumen.")
    max_vessel_radius_mm: float = Field(11.0, description="Bright regions holding a ball "
                                                          "larger than this are organs, "
                                                          "not vessels, and are removed.")
    portal_ivc_gap_mm: float = Field(15.0, description="The portal root is sought at least "
                                                       "this far from the IVC.")
    min_component_mm3: float = Field(30.0, description="Vessel components smaller than this "
                                                       "are dropped before separation.")
    cost_offset_mm: float = Field(0.5, description="r0 of the geodesic cost 1/(r + r0)^2.")
    neck_power: float = Field(2.0, description="Exponent of the radius in the cost.")


@dataclass
class LiverVessels:
    """Boolean masks on the image grid: ``portal`` (portal venous tree incl. the extrahepatic
    trunk inside the region), ``hepatic`` (hepatic veins, without the IVC), ``vessels``
    (all segmented vessels in the region); roots in LPS mm; ``status`` explains an empty
    result."""

    portal: np.ndarray
    hepatic: np.ndarray
    vessels: np.ndarray
    roots: dict[str, list[float]] = field(default_factory=dict)
    threshold_hu: float = float("nan")  # the low (hysteresis) threshold
    status: str = "ok"


def segment_liver_vessels(image: Image, organs: dict[str, np.ndarray],
                          region_hu: dict[str, float], noise_sd_hu: float,
                          confluence_mm=None, params: LiverVesselParams | None = None
                          ) -> LiverVessels:
    """Segment and separate the liver's venous trees (see the module docstring).

    ``organs``: boolean masks on the image grid (``liver``, ``ivc``, optional ``aorta``,
    ``portal_vein``); ``region_hu``: median HU per region (``liver``, ``portal_vein``,
    ``ivc``); ``noise_sd_hu``: image noise SD.
    """
    p = params or LiverVesselParams()
    empty = np.zeros(image.shape, bool)
    liver = organs.get("liver")
    if liver is None or not liver.any():
        return LiverVessels(empty, empty, empty, status="no liver localized")
    venous = [region_hu.get(k, np.nan) for k in ("portal_vein", "ivc")]
    venous = [v for v in venous if np.isfinite(v)]
    liver_hu = region_hu.get("liver", np.nan)
    if not venous or not np.isfinite(liver_hu):
        return LiverVessels(empty, empty, empty, status="venous or liver HU not measured")
    # the venous region (or the liver's own bright tail) with the largest contrast: robust to
    # a mislocalized portal vein
    tail = float(np.percentile(image.array[liver][::7], p.liver_tail_percentile))
    vessel_hu = max(venous + [tail], key=lambda v: abs(v - liver_hu))
    contrast = vessel_hu - liver_hu
    if abs(contrast) < p.min_contrast_sd * max(noise_sd_hu, 1.0):
        return LiverVessels(empty, empty, empty, status=f"vessel-to-liver contrast "
                            f"{contrast:.0f} HU is below {p.min_contrast_sd:g} noise SDs: trees "
                            f"not traced")
    spacing = np.asarray(image.spacing)
    pad = np.ceil(p.hilum_margin_mm / spacing).astype(int) + 2
    box = ndimage.find_objects(liver.astype(np.uint8))[0]
    box = tuple(slice(max(0, b.start - q), min(n, b.stop + q)) for b, q, n in
                zip(box, pad, image.shape, strict=True))
    liv = liver[box]
    region = edt.edt(~liv, anisotropy=image.spacing, parallel=2) <= p.hilum_margin_mm
    hu = ndimage.gaussian_filter(np.asarray(image.array[box], np.float32),
                                 p.smoothing_mm / spacing, truncate=2.5)
    ceiling = max(vessel_hu, region_hu.get("aorta", -np.inf)) + p.ceiling_margin_hu
    sign = 1.0 if contrast > 0 else -1.0
    signed = sign * (hu - liver_hu)  # vessel-ward difference from the parenchyma (HU)
    parenchyma = signed[liv & (np.abs(signed) < abs(contrast) / 2)]
    sd = float(1.4826 * np.median(np.abs(parenchyma - np.median(parenchyma)))) \
        if parenchyma.size else float(noise_sd_hu)
    low = max(p.low_threshold_sd * sd, p.low_threshold_fraction * abs(contrast))
    strong = signed > p.threshold_fraction * abs(contrast)
    weak = signed > low
    if contrast > 0:
        strong &= hu < ceiling
        weak &= hu < ceiling
    lab_w, _ = ndimage.label(weak, np.ones((3, 3, 3)))
    keep = np.zeros(lab_w.max() + 1, bool)
    keep[lab_w[strong]] = True
    keep[0] = False
    bright = keep[lab_w]  # hysteresis: weak voxels connected to strong ones
    # lumen edge at half the local peak contrast (partial volume of thin vessels)
    size = np.maximum(1, np.round(2 * p.edge_window_mm / spacing).astype(int) | 1)
    peak = ndimage.maximum_filter(np.where(bright, signed, 0), size=tuple(size))
    bright &= signed >= 0.5 * peak
    ivc = organs.get("ivc", empty)[box]
    aorta = organs.get("aorta", empty)[box]
    # neighbours that enhance like vessels, outside the liver only (their masks may overlap
    # the liver's edge, where cutting would disconnect the trees)
    other = (organs.get("kidney", empty)[box] | organs.get("spleen", empty)[box]) & ~liv
    # remove blobs thicker than any liver vessel (kidney, bowel, spleen): opening by a ball
    depth = edt.edt(bright, anisotropy=image.spacing, parallel=2)
    blob = edt.edt(depth <= p.max_vessel_radius_mm, anisotropy=image.spacing,
                   parallel=2) <= p.max_vessel_radius_mm + max(spacing)
    vessels = bright & region & ~blob & ~aorta & ~other
    vessels = _drop_small(vessels, p.min_component_mm3 / float(np.prod(spacing)))
    # keep components that reach into the liver (drops kidney, bowel, spleen in the band)
    lab, _ = ndimage.label(vessels, np.ones((3, 3, 3)))
    inside = np.bincount(lab[vessels & liv], minlength=lab.max() + 1)
    inside[0] = 0
    vessels = (inside >= p.min_component_mm3 / float(np.prod(spacing)))[lab]
    hepatic_seed = ivc & region  # the IVC is the hepatic veins' root
    vessels |= hepatic_seed
    radius = edt.edt(vessels, anisotropy=image.spacing, parallel=2)
    far_from_ivc = edt.edt(~ivc, anisotropy=image.spacing, parallel=2) > p.portal_ivc_gap_mm
    # inside the liver (kidneys, bowel and spleen lie outside it)
    cand = vessels & far_from_ivc & liv
    # the hilum lies in the liver's inferior half (LPS z grows superiorly): no portal root
    # above the liver's median height. Slices are taken as axial (z along the first axis).
    offset = np.array([b.start for b in box])
    liver_idx = np.argwhere(liv)
    z_world = image.index_to_physical(liver_idx[::max(1, len(liver_idx) // 20000)] + offset)
    z_mid = float(np.median(z_world[:, 2]))
    slice_idx = np.zeros((liv.shape[0], 3))
    slice_idx[:, 0] = np.arange(liv.shape[0])
    slice_z = image.index_to_physical(slice_idx + offset)[:, 2]
    if image.direction[2, 2] != 0:
        cand &= (slice_z <= z_mid)[:, None, None]
    roots = {}
    portal_seed = np.zeros_like(vessels)
    if cand.any():
        idx = np.argwhere(cand)
        score = radius[tuple(idx.T)]
        if confluence_mm is not None:  # prefer thick voxels near the confluence
            world = image.index_to_physical(idx + offset)
            score = score - np.linalg.norm(world - np.asarray(confluence_mm), axis=1) / 25.0
        best = idx[int(np.argmax(score))]
        portal_seed = _ball_seed(vessels, best, float(radius[tuple(best)]), spacing)
        roots["portal"] = image.index_to_physical(best + offset)[0].tolist()
    if hepatic_seed.any():
        roots["hepatic"] = image.index_to_physical(np.argwhere(hepatic_seed).mean(0)
                                                   + offset)[0].tolist()
    portal, hepatic = _compete(vessels, radius, portal_seed, hepatic_seed, spacing, p)
    hepatic &= ~ivc
    full = {}
    for name, m in (("portal", portal), ("hepatic", hepatic), ("vessels", vessels)):
        out = np.zeros(image.shape, bool)
        out[box] = m
        full[name] = out
    status = "ok"
    if not portal.any() or not hepatic.any():
        status = ("portal root not found" if not portal.any() else "") + \
                 ("; " if not portal.any() and not hepatic.any() else "") + \
                 ("hepatic root (IVC) not found" if not hepatic.any() else "")
    return LiverVessels(full["portal"], full["hepatic"], full["vessels"], roots,
                        float(liver_hu + sign * low), status)


def _drop_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    lab, n = ndimage.label(mask, np.ones((3, 3, 3)))
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def _ball_seed(vessels, centre, radius_mm, spacing) -> np.ndarray:
    r = np.ceil(radius_mm / spacing).astype(int) + 1
    lo = np.maximum(np.asarray(centre) - r, 0)
    hi = np.minimum(np.asarray(centre) + r + 1, vessels.shape)
    seed = np.zeros_like(vessels)
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    seed[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = d2 <= radius_mm ** 2
    return seed & vessels


def _compete(vessels, radius, seed_a, seed_b, spacing, p: LiverVesselParams):
    """Assign each vessel voxel to the seed set with the cheaper geodesic path."""
    from skimage.graph import MCP_Geometric

    if not seed_a.any() and not seed_b.any():
        return np.zeros_like(vessels), np.zeros_like(vessels)
    cost = np.where(vessels, 1.0 / (radius + p.cost_offset_mm) ** p.neck_power, np.inf)
    out = []
    for seed in (seed_a, seed_b):
        if not seed.any():
            out.append(np.full(vessels.shape, np.inf))
            continue
        mcp = MCP_Geometric(cost, fully_connected=True, sampling=tuple(spacing))
        cum, _ = mcp.find_costs(np.argwhere(seed))
        out.append(cum)
    ca, cb = out
    reach_a, reach_b = np.isfinite(ca) & vessels, np.isfinite(cb) & vessels
    a = reach_a & (~reach_b | (ca <= cb))
    b = reach_b & (~reach_a | (cb < ca))
    return a, b
