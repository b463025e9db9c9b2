"""Roots of the liver's venous trees: where the portal trunk enters the traced region and
the thick trunk voxel behind it at the hilum; the hepatic veins' ostia on the IVC.

The region is the localized liver dilated by the hilum margin
(:mod:`vasomics.chain.liver_vessels`). A localized liver often misses the hilum (atlas
registration: the porta hepatis is a deep notch), so the thickest vessel *inside* that
liver is then a right or left branch and the tree is named from the wrong end. The portal
trunk, however, always runs out of the region toward the portal/splenic confluence, below
the hepatic veins: it crosses the region's outer border as the thickest vessel there.

* **Inlet** (:func:`portal_inlet`): the vessel mask's cut faces on the region's outer
  border (the last voxel layer before the margin, outside the liver), below the liver's
  median height, leaving out the IVC and its partial-volume rim (``clear_mm``: the portal
  vein runs in front of the IVC, a few millimetres from it, and the two touch in the
  mask). A face's calibre is the largest distance from its voxels to the lumen wall
  inside the region, the IVC counted as wall (the region's outside counts as lumen, so a
  cut vessel keeps its radius at the cut). Faces thinner than
  ``trunk_min_radius_mm`` are surface branches; of the rest the face with the largest
  calibre minus its distance to the confluence landmark over ``confluence_mm_per_mm``
  (millimetres of distance worth one millimetre of radius) is the inlet.
* **Hilum root** (:func:`portal_hilum`): the thickest vessel voxel inside the liver
  (radius measured with the IVC as wall) within ``hilum_search_mm`` of the inlet along
  the vessel mask (geodesic distance, outside the IVC and its rim): the trunk up to its
  division, never a branch beyond that distance.
* **Extrahepatic trunk** (:func:`extend_trunk`): from the inlet face the trunk is followed
  outward through the bright lumen outside the region, of the trunk's calibre (the opening
  by a ball of ``trunk_min_radius_mm``: not the hepatic artery or small veins beside it;
  geodesic distance, outside the IVC and its rim) up to ``trunk_extension_mm`` and no farther than the inlet's distance to
  the confluence landmark (the splenic vein and the SMV join there); not followed without
  that landmark.
* **Fallback** when no face qualifies (a scan cropped at the hilum, a trunk merged with the
  liver's edge): the thickest vessel voxel inside the liver, below its median height, at
  least ``portal_ivc_gap_mm`` from the IVC, with the same preference for the confluence.
* **Hepatic root** (:func:`top_contacts`): of the IVC voxels that touch the liver's vessels,
  those within ``hepatic_band_mm`` below the highest (the hepatic veins join the IVC at the
  liver's dome; lower contacts are the IVC's own lumen beside its mask, renal veins or the
  portal trunk passing in front of it). Without an IVC (:func:`superior_root`): the
  thickest vessel on the dome's slices (:func:`dome_slices`) away from the portal root.

Arrays are boolean or float masks on one grid (numpy order z, y, x; axis 0 axial, LPS z
growing with it or against it as ``low`` says); distances in mm.
"""

from __future__ import annotations

import edt
import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.params import StageParams


class LiverRootParams(StageParams):
    """Portal and hepatic root selection (mm)."""

    trunk_min_radius_mm: float = Field(3.0, description="Cut faces on the region's border "
                                                        "thinner than this are surface "
                                                        "branches, not the portal trunk.")
    confluence_mm_per_mm: float = Field(25.0, description="Distance to the confluence "
                                                          "landmark worth 1 mm of radius "
                                                          "when choosing the trunk.")
    hilum_search_mm: float = Field(30.0, description="The hilum root is sought within this "
                                                     "distance of the inlet along the "
                                                     "vessels.")
    trunk_extension_mm: float = Field(25.0, description="The portal trunk is followed "
                                                        "beyond the inlet face, along the "
                                                        "bright lumen outside the region, "
                                                        "this far (geodesic) and never "
                                                        "farther than the confluence "
                                                        "landmark; 0: not followed.")
    hepatic_band_mm: float = Field(30.0, description="Hepatic roots are the IVC's contacts "
                                                     "with the liver's vessels within this "
                                                     "height below the highest one.")


def _confluence_penalty(idx, confluence, spacing, p: LiverRootParams) -> np.ndarray:
    if confluence is None:
        return np.zeros(len(idx))
    d = np.linalg.norm((idx - np.asarray(confluence)) * spacing, axis=1)
    return d / p.confluence_mm_per_mm


def portal_inlet(vessels, liver, to_liver, to_ivc, low, confluence, spacing,
                 margin_mm: float, clear_mm: float, p: LiverRootParams):
    """The portal trunk's cut face on the region's border (module docstring).

    ``vessels``, ``liver``: boolean masks; ``to_liver``, ``to_ivc``: distance maps (mm) to
    the liver and the IVC; ``low``: per axial slice, True below the liver's median height
    (None: no height restriction); ``confluence``: the confluence landmark as a (fractional)
    voxel index or None; ``margin_mm``: the region's margin around the liver; ``clear_mm``:
    the IVC's rim (voxels within it of the IVC mask are no inlet). Returns the face's voxels
    (boolean) or None."""
    spacing = np.asarray(spacing, float)
    region = to_liver <= margin_mm
    face = vessels & ~liver & region & (to_liver > margin_mm - float(spacing.max())) \
        & (to_ivc > clear_mm)
    if low is not None:
        face &= np.asarray(low, bool)[:, None, None]
    lab, n = ndimage.label(face, np.ones((3, 3, 3)))
    if n == 0:
        return None
    radius = edt.edt((vessels & (to_ivc > 0)) | ~region, anisotropy=tuple(spacing),
                     parallel=2)
    at = np.nonzero(face)
    which = lab[at] - 1
    calibre = np.full(n, -np.inf)  # per face: its largest radius (mm)
    np.maximum.at(calibre, which, radius[at])
    count = np.bincount(which, minlength=n)
    centres = np.column_stack([np.bincount(which, i, minlength=n) / count for i in at])
    score = np.asarray(calibre) - _confluence_penalty(centres, confluence, spacing, p)
    score[np.asarray(calibre) < p.trunk_min_radius_mm] = -np.inf
    if not np.isfinite(score).any():
        return None
    return lab == int(np.argmax(score)) + 1


def portal_hilum(vessels, liver, inlet, to_ivc, spacing, clear_mm: float,
                 p: LiverRootParams):
    """The portal root at the hilum: the thickest voxel inside the ``liver`` (radius:
    distance to the lumen wall or the IVC) within ``hilum_search_mm`` of the ``inlet``
    along ``vessels`` (geodesic distance, mm, through voxels farther than ``clear_mm`` from
    the IVC): the trunk up to its division, where a liver mask that misses the hilum still
    holds the first millimetres of the right or left portal vein. Without a liver voxel in
    reach, the thickest voxel reached. Returns its index and radius (mm), or None."""
    spacing = np.asarray(spacing, float)
    box, lo = _box_around(inlet, p.hilum_search_mm, spacing, pad=1)
    passable = vessels[box] & (to_ivc[box] > clear_mm)
    dist = _geodesic_from(inlet[box] & passable, passable, spacing)
    if dist is None:
        return None
    reached = passable & (dist <= p.hilum_search_mm)
    if (reached & liver[box]).any():
        reached &= liver[box]
    radius = edt.edt(vessels[box] & (to_ivc[box] > 0), anisotropy=tuple(spacing), parallel=2)
    idx = np.argwhere(reached)
    k = int(np.argmax(radius[tuple(idx.T)]))
    return idx[k] + lo, float(radius[tuple(idx[k])])


def extend_trunk(lumen, inlet, to_ivc, confluence, spacing, clear_mm: float,
                 p: LiverRootParams):
    """The extrahepatic portal trunk beyond the ``inlet`` face (module docstring).

    ``lumen``: boolean mask of the bright, vessel-calibre voxels outside the traced region
    (organs and the aorta removed); ``to_ivc``: distance map to the IVC (mm);
    ``confluence``: the confluence landmark as a (fractional) voxel index or None. Returns
    the trunk's voxels (boolean, without the inlet; empty when it does not leave the
    inlet, or without a confluence landmark: followed past the confluence, the splenic vein
    and the SMV became the named trunk on 3D-IRCADb 1.1)."""
    spacing = np.asarray(spacing, float)
    trunk = np.zeros_like(inlet)
    if confluence is None:  # where the trunk ends is unknown
        return trunk
    centre = np.argwhere(inlet).mean(0)
    limit = min(p.trunk_extension_mm,
                float(np.linalg.norm((np.asarray(confluence) - centre) * spacing)))
    if limit <= float(spacing.max()):
        return trunk
    box, _ = _box_around(inlet, limit, spacing, pad=2)
    passable = (lumen[box] | inlet[box]) & (to_ivc[box] > clear_mm)
    # the trunk's calibre only: the opening by a ball of trunk_min_radius_mm drops the thin
    # vessels beside it (hepatic artery, pancreatic and gastric veins)
    r = p.trunk_min_radius_mm
    depth = edt.edt(passable, anisotropy=tuple(spacing), parallel=2)
    passable &= edt.edt(depth < r, anisotropy=tuple(spacing), parallel=2) <= r
    dist = _geodesic_from(inlet[box] & passable, passable, spacing)
    if dist is None:
        return trunk
    trunk[box] = passable & ~inlet[box] & (dist <= limit)
    return trunk


def _box_around(mask, reach_mm: float, spacing, pad: int):
    """The box (slices) reaching ``reach_mm`` plus ``pad`` voxels around the centroid of
    ``mask``, clipped to its shape, and the box's lower corner (voxel index)."""
    centre = np.argwhere(mask).mean(0)
    reach = np.ceil(reach_mm / spacing).astype(int) + pad
    lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(centre).astype(int) + reach + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), lo


def _geodesic_from(starts, passable, spacing):
    """Geodesic distance (mm) from the ``starts`` voxels through ``passable`` (boolean
    masks on one grid; infinite elsewhere), or None without a start."""
    from skimage.graph import MCP_Geometric

    idx = np.argwhere(starts)
    if not len(idx):
        return None
    dist, _ = MCP_Geometric(np.where(passable, 1.0, np.inf),
                            sampling=tuple(spacing)).find_costs(idx)
    return dist


def thickest_in_liver(cand, radius, confluence, spacing, p: LiverRootParams):
    """Fallback hilum root: the voxel of ``cand`` (vessels inside the liver, below its
    median height, away from the IVC) with the largest radius minus its distance to the
    confluence over ``confluence_mm_per_mm``. Returns its index and radius (mm), or None."""
    if not cand.any():
        return None
    idx = np.argwhere(cand)
    score = radius[tuple(idx.T)] - _confluence_penalty(idx, confluence, spacing, p)
    best = idx[int(np.argmax(score))]
    return best, float(radius[tuple(best)])


def dome_slices(vessels, slice_z, quantile: float) -> np.ndarray:
    """Axial slices (boolean per slice) at or above the ``quantile`` of the heights
    (``slice_z``, LPS mm per slice) of the ``vessels`` voxels (those in the liver): the
    liver's dome, where the hepatic veins join the IVC. All slices when ``vessels`` is
    empty."""
    per_slice = vessels.sum(axis=(1, 2))
    if not per_slice.any():
        return np.ones(len(slice_z), bool)
    order = np.argsort(slice_z)
    cum = np.cumsum(per_slice[order]) / per_slice.sum()
    top = slice_z[order][int(np.searchsorted(cum, quantile))]
    return slice_z >= top


def superior_root(vessels, radius, portal_seed, dome, spacing, gap_mm: float):
    """Hepatic root without an IVC at the dome: the thickest voxel of ``vessels`` (those in
    the liver) on the ``dome`` slices and farther than ``gap_mm`` from the ``portal_seed``
    voxels (``radius``: distance to the lumen wall, mm). Returns its index and radius, or
    None."""
    cand = vessels & np.asarray(dome, bool)[:, None, None]
    if portal_seed.any():
        cand &= edt.edt(~portal_seed, anisotropy=tuple(np.asarray(spacing, float)),
                        parallel=2) > gap_mm
    if not cand.any():
        return None
    idx = np.argwhere(cand)
    best = idx[int(np.argmax(radius[tuple(idx.T)]))]
    return best, float(radius[tuple(best)])


def top_contacts(contacts, slice_z, p: LiverRootParams) -> np.ndarray:
    """The voxels of ``contacts`` (the IVC where it touches the liver's vessels) on axial
    slices within ``hepatic_band_mm`` below the highest one (``slice_z``: LPS height per
    slice, mm): the hepatic veins' ostia at the liver's dome; lower contacts are the IVC's
    own lumen beside its mask, renal veins or the portal trunk passing in front of it."""
    rows = np.nonzero(contacts.any(axis=(1, 2)))[0]
    if rows.size == 0:
        return contacts
    top = float(np.max(slice_z[rows]))
    return contacts & (slice_z >= top - p.hepatic_band_mm)[:, None, None]
