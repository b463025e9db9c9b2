"""Classical aorta segmentation on CT angiography: a global centreline through the arch and
outer-wall circle fits along it.

No learned model. The aorta is modelled as a tube whose cross-section perpendicular to its
centreline is a disc (the outer wall), which holds the contrast-filled lumen somewhere
inside it; in an aortic dissection the bright true lumen may be a crescent and the false
lumen (poorly opacified or thrombosed, HU like soft tissue) fills the rest of the disc.

Steps (geometry in "array millimetres": NumPy index times spacing, axes (z, y, x), worked in
with axis 0 running inferior to superior (flipped when the direction matrix says otherwise);
the result is a mask on the input grid, so the image's LPS geometry carries over unchanged):

1. The CT is smoothed (Gaussian, ``smoothing_mm``); lumen = smoothed HU above
   ``lumen_min_hu``.
2. Discs (:func:`find_discs`): on axial slices every ``seed_step_mm``, lumen components of
   equivalent radius in ``seed_radius_mm``, round (largest inscribed radius / equivalent
   radius at least ``seed_roundness``) and brighter than the ring around them
   (``seed_ring_mm``; bone has a brighter cortex). Discs linked across slices into chains at
   least ``seed_min_length_mm`` long are seeds (:func:`find_seeds`); none: not a contrast CT.
3. Arch (:func:`find_arch`, deterministic, no greedy step): the ascending and descending
   aorta are the pair of discs on one slice (radius at least ``arch_radius_min_mm``, the
   widest such pair) connected *above* that slice through lumen at least
   ``arch_core_fraction`` of the smaller radius deep (thin contacts with the pulmonary artery
   or veins do not connect); the more posterior one (direction matrix) is the descending
   aorta. The ascending disc is followed down slice by slice (:func:`_follow_down`) to where
   its lumen opens into the heart.
4. Centreline: minimal paths (:class:`skimage.graph.MCP_Geometric`) on the cost
   1 / (depth in the lumen, mm)^2, through other non-fat tissue at the cost of the thinnest
   lumen, fat and air impassable: from the descending disc down to the lowest reachable slice,
   and from it over the arch to the ascending disc (above the latter's slice). Smoothed
   (sigma ``path_smoothing`` disc radii), so that a true lumen winding inside the aorta still
   gives the aorta's axis.
5. Sections every ``step_mm`` along that fixed path (:func:`path_sections`), perpendicular
   to it:

   * lumen: the thresholded component nearest the path point (below ``lumen_ceiling_ratio``
     times the discs' median HU: undiluted contrast in a vein, bone), opened by a disc of
     ``opening_mm`` (cuts thin bridges to touching bright neighbours); its outermost point per
     ray is a lumen edge, unless it runs on to 1.5 prior radii (a *spilling* ray);
   * outer wall: along ``n_rays`` rays from the lumen centroid, the first fall below
     ``fat_max_hu`` (periaortic fat, lung) less ``wall_mm``; a ray that crosses contrast again
     (over ``opening_mm``) beyond the lumen edge has none: it ran into a neighbour;
   * a circle is fitted to the lumen edges and another to the outer-wall points by
     hypothesize-and-verify over a fixed set of point triples (:func:`_fit_circle`: inliers
     within ``fit_tolerance_mm``, a weak radius-continuity prior, the circle must hold
     ``lumen_inside_fraction`` of the lumen; no random draw); a fit needs
     ``min_inlier_fraction`` of the rays. On this fixed path an outer circle also holds when
     that fraction of the rays *that found a wall edge* agree, over at least ``min_wall_arc``
     of the rays, at the prior radius (within ``fit_tolerance_mm`` of the median of the last
     majority-held outer circles): the spine, heart or oesophagus hide the rest of the wall;
   * painted boundary (:meth:`_Tracker.region_rays`): inside the outer circle when it holds,
     else the lumen circle, the lumen plus the non-fat tissue between it and the circle where
     that layer is at least ``thrombus_min_mm`` thick (an in-plane opening: thrombus or a
     thrombosed false lumen); a thinner rim is the aortic wall and periaortic tissue, which
     TotalSegmentator's aorta label leaves out (its edge is the lumen's: median 0.0-0.6 mm
     off our lumen edge outside the false lumen, while the fat edge lies a median 1.5-10 mm
     further out);
   * regularization (:func:`_regularize`): a section whose outer circle is missing or off the
     median outer circle of the sections within ``regularize_mm`` gets that median circle
     (painted the same way).

   Below the ascending disc the aortic root is tracked (:meth:`_Tracker.track`: Hessian tube
   axis at ``axis_scale`` radii, stops at a chamber: ``spill_fraction`` of the rays spilling,
   or the radius jumping by ``radius_drop`` / ``radius_growth``, for ``spill_steps`` sections)
   for at most ``root_max_radii`` disc radii.
6. Sections are regularized (``smoothing_sections``) and painted: every section claims the
   voxels within ``step_mm`` of its plane inside its boundary; voxels darker than
   ``fat_max_hu`` are removed.

Without an arch in the field of view (abdominal CT) the aorta is tracked from the longest
seeds up and down with the same sections, and the track agreeing best with the others (sum
of Dice coefficients of their masks) is kept.

Failure: when no seed chain exists (no contrast-filled round tube: a non-contrast CT), an
:class:`~vasomics.errors.InputError` with a one-line message.

Limits (measured, see ``benchmarks/eval_segment_aorta.py``): validated on one thoracic CT
angiogram with an aortic dissection against TotalSegmentator's aorta mask (Dice 0.918;
0.870-0.919 with any one parameter moved by 20 %, except a stricter ``seed_roundness`` that
finds no arch: 0.820 with the fallback); half the remaining error voxels lie within one voxel
of the reference surface; the false lumen is missed where the wall is hidden over a long
stretch (no outer circle; false-lumen recall 0.86), and a thick layer of tissue inside an
outer circle that overreaches (towards the trachea or oesophagus) is painted. On 3D-IRCADb
1.1 rendered as an arterial CT (no arch: fallback tracker) Dice 0.75-0.77. A classical baseline, not a replacement for a learned segmenter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.params import StageParams

log = logging.getLogger(__name__)


class AortaParams(StageParams):
    """Aorta tracking settings (HU, mm)."""

    smoothing_mm: float = Field(0.75, description="Gaussian sigma applied to the CT first.")
    lumen_min_hu: float = Field(200.0, description="Contrast-filled lumen: smoothed HU above "
                                                   "this (arterial-phase CTA lumen is "
                                                   "typically 250-500 HU).")
    fat_max_hu: float = Field(-30.0, description="Outer wall edge: first fall below this along "
                                                 "a ray (midway between wall/soft tissue, "
                                                 "about +40 HU, and fat, about -100 HU); "
                                                 "darker voxels are never aorta.")
    seed_step_mm: float = Field(4.5, description="Axial slice spacing of the seed search.")
    seed_radius_mm: tuple[float, float] = Field((5.0, 30.0), description="Equivalent radius "
                                                "range of seed lumen components.")
    seed_roundness: float = Field(0.7, description="Minimum ratio of largest inscribed radius "
                                                   "to equivalent radius of a seed component.")
    seed_ring_mm: tuple[float, float] = Field((1.0, 4.0), description="Ring around a seed "
                                              "component (distance from it) whose 90th HU "
                                              "percentile must stay below the component's "
                                              "median: a lumen is brighter than its "
                                              "surroundings, bone has a brighter cortex.")
    seed_min_length_mm: float = Field(18.0, description="Minimum cranio-caudal length of a "
                                                        "seed chain.")
    n_seeds: int = Field(6, description="Longest seed chains tracked; the aorta is the track "
                                           "agreeing best with the others.")
    step_mm: float = Field(2.0, description="Tracking step along the centreline.")
    n_rays: int = Field(64, description="Rays per cross-section.")
    ray_step_mm: float = Field(0.5, description="Sampling step along rays.")
    plane_pixel_mm: float = Field(0.75, description="Pixel size of the sampled cross-section.")
    outer_radius_max_mm: float = Field(45.0, description="Largest outer radius accepted.")
    fit_tolerance_mm: float = Field(2.0, description="RANSAC inlier distance of edge points "
                                                     "to the circle; also how far a ray's own "
                                                     "edge may deviate from the circle.")
    opening_mm: float = Field(3.0, description="Radius of the in-plane opening that cuts the "
                                               "lumen from touching bright neighbours (at "
                                               "most half the lumen's inscribed radius).")
    lumen_ceiling_ratio: float = Field(2.0, description="Voxels brighter than this multiple "
                                                        "of the aorta discs' (or seed's) "
                                                        "median HU are not lumen (undiluted "
                                                        "contrast in a vein, bone).")
    axis_scale: float = Field(0.6, description="Hessian scale for the tube axis, as a "
                                               "fraction of the outer radius.")
    thrombus_min_mm: float = Field(10.0, description="Thinnest layer of non-fat tissue "
                                                    "between the lumen and the outer wall "
                                                    "that is painted (thrombus, a thrombosed "
                                                    "false lumen); a thinner rim is the "
                                                    "aortic wall, left out as in "
                                                    "TotalSegmentator's label.")
    wall_mm: float = Field(1.5, description="Aortic wall thickness subtracted from the fat "
                                            "edge (the outer circle, which bounds a painted "
                                            "thrombus layer, is the inner wall's).")
    lumen_inside_fraction: float = Field(0.9, description="Fraction of lumen edge points a "
                                                          "circle must hold (branch origins "
                                                          "may stick out).")
    max_unfitted_steps: int = Field(6, description="Consecutive sections without an accepted "
                                                   "circle that stop tracking (dropped).")
    min_inlier_fraction: float = Field(0.5, description="Fraction of rays that must agree "
                                                        "with the fitted circle (a majority).")
    min_wall_arc: float = Field(0.25, description="On the global path, an outer circle "
                                                  "that a majority of the rays with a wall "
                                                  "edge (at least this fraction of all "
                                                  "rays: where fat or lung borders the "
                                                  "aorta) agree with holds at the prior "
                                                  "radius (spine, heart and oesophagus "
                                                  "hide the rest of the wall).")
    spill_fraction: float = Field(0.4, description="Fraction of rays whose lumen reaches 1.5 "
                                                   "outer radii that marks a chamber (heart).")
    spill_steps: int = Field(3, description="Consecutive spilling steps that stop tracking.")
    radius_drop: float = Field(0.6, description="Outer radius below this fraction of the "
                                                "last 15 sections' median for spill_steps "
                                                "steps: the track entered a branch; stop.")
    radius_growth: float = Field(1.4, description="Radius above this multiple of the 80th "
                                                  "percentile of the track's radii so far for "
                                                  "spill_steps steps: the track entered a "
                                                  "chamber (heart); stop.")
    smoothing_sections: int = Field(2, description="Track regularization: centres averaged, "
                                                   "radii median-filtered over this many "
                                                   "sections either side.")
    max_length_mm: float = Field(900.0, description="Longest track in one direction.")
    arch_radius_min_mm: float = Field(8.0, description="Smallest equivalent lumen radius of "
                                                       "the ascending and descending aorta "
                                                       "discs that define the arch (adult "
                                                       "aorta: 10-20 mm).")
    root_max_radii: float = Field(1.0, description="Longest tracking of the aortic root below "
                                                   "the lowest round ascending-aorta disc, in "
                                                   "its radii (sinuses down to the valve).")
    regularize_mm: float = Field(20.0, description="Half-window along the global path over "
                                                   "which the outer wall's radius and centre "
                                                   "are taken as a median (sections without "
                                                   "a consistent outer circle get it).")
    path_smoothing: float = Field(1.0, description="Gaussian smoothing of the global "
                                                   "centreline before sections are fitted "
                                                   "on it, sigma in disc radii.")
    arch_radius_ratio: float = Field(1.5, description="Largest ratio of the two arch discs' "
                                                      "radii (ascending and descending aorta "
                                                      "are of similar size; a chamber or the "
                                                      "pulmonary trunk beside the aorta is "
                                                      "not).")
    arch_core_fraction: float = Field(0.5, description="The two discs must connect above "
                                                       "their slice through lumen at least "
                                                       "this fraction of the smaller disc "
                                                       "radius from its edge (thin contacts "
                                                       "with neighbours do not count).")


@dataclass
class _Plane:
    """A sampled cross-section: in-plane coordinates (mm) from the lumen centroid, the lumen
    component (opened) and the non-fat tissue (smoothed HU above ``fat_max_hu``)."""

    a: np.ndarray
    b: np.ndarray
    lumen: np.ndarray
    tissue: np.ndarray


@dataclass
class Section:
    """One cross-section: centre followed by the tracker (array mm), unit direction, in-plane
    axes, its radius (mm), the painted boundary as per-ray radii (mm) about
    ``boundary_centre``, whether a circle fit held and the spill fraction."""

    centre: np.ndarray
    direction: np.ndarray
    u: np.ndarray
    v: np.ndarray
    radius: float
    ray_radius: np.ndarray
    fitted: bool
    spill: float = 0.0
    boundary_centre: np.ndarray | None = None  # centre of the painted boundary (array mm)
    lumen_centre: np.ndarray | None = None  # centroid of the section's lumen (array mm)
    outer: bool = False  # the tracked circle is the outer wall's (else the lumen's)
    wall_fraction: float = 0.0  # fraction of the rays whose wall edge agrees with the outer circle


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
    u = np.cross(d, a)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _sample(vol: np.ndarray, sp: np.ndarray, pts: np.ndarray, cval: float = -1000.0):
    shape = pts.shape[:-1]
    idx = (pts / sp).reshape(-1, 3).T
    return ndi.map_coordinates(vol, idx, order=1, cval=cval).reshape(shape)


def _circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Algebraic (Kasa) circle fit: centre (x, y) and radius."""
    a = np.c_[2 * x, 2 * y, np.ones_like(x)]
    sol = np.linalg.lstsq(a, x * x + y * y, rcond=None)[0]
    cx, cy = sol[0], sol[1]
    return float(cx), float(cy), float(np.sqrt(max(sol[2] + cx * cx + cy * cy, 0.0)))


def _hypotheses(n: int) -> np.ndarray:
    """Deterministic circle hypotheses over ``n`` edge points sorted by angle: every point with
    the points 1/12-1/6, 1/8-1/4, 1/6-1/3, 1/4-1/2 and 1/3-2/3 of the way round after it
    (short and long arcs; no random draw). Shape (5 n, 3)."""
    i = np.arange(n)
    out = [np.c_[i, (i + max(1, round(n * a))) % n, (i + max(2, round(n * b))) % n]
           for a, b in ((1 / 12, 1 / 6), (1 / 8, 1 / 4), (1 / 6, 1 / 3), (1 / 4, 1 / 2),
                        (1 / 3, 2 / 3))]
    return np.concatenate(out)


def _fit_circle(theta, r, lum_theta, lum_r, rmin, rmax, prior, p: AortaParams):
    """Circle (in the section plane, origin at the lumen centroid) best supported by edge
    points given in polar form (``theta``, ``r``; one per ray, NaN where none): hypothesize
    and verify, like RANSAC but with a fixed hypothesis set (:func:`_hypotheses`), so the
    result has no random seed. Each hypothesis passes through 3 edge points; it must hold the
    lumen (at least ``lumen_inside_fraction`` of the lumen's outermost points ``lum_theta``,
    ``lum_r`` within ``fit_tolerance_mm`` outside it) and have a radius in [rmin, rmax].
    Score: points within ``fit_tolerance_mm`` of the circle, less a weak penalty on the change
    of radius from ``prior``. The winner is refitted (least squares) to its inliers. Returns
    ((cx, cy, radius), n_inliers) or (None, 0)."""
    ok = np.isfinite(r)
    order = np.argsort(np.asarray(theta, float)[ok] % (2 * np.pi), kind="stable")
    px, py = (np.cos(theta) * r)[ok][order], (np.sin(theta) * r)[ok][order]
    lx, ly = np.cos(lum_theta) * lum_r, np.sin(lum_theta) * lum_r
    n = len(px)
    if n < 5:
        return None, 0
    tol = p.fit_tolerance_mm
    idx = _hypotheses(n)
    idx = idx[(idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])]
    ax, ay = px[idx[:, 0]], py[idx[:, 0]]
    bx, by = px[idx[:, 1]], py[idx[:, 1]]
    cx_, cy_ = px[idx[:, 2]], py[idx[:, 2]]
    d = 2 * (ax * (by - cy_) + bx * (cy_ - ay) + cx_ * (ay - by))
    good = np.abs(d) > 1e-9
    d = np.where(good, d, 1.0)
    a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx_ * cx_ + cy_ * cy_
    ux = (a2 * (by - cy_) + b2 * (cy_ - ay) + c2 * (ay - by)) / d
    uy = (a2 * (cx_ - bx) + b2 * (ax - cx_) + c2 * (bx - ax)) / d
    rad = np.hypot(ax - ux, ay - uy)
    good &= (rad >= rmin) & (rad <= rmax)
    held = len(lx) == 0 or np.mean(np.hypot(lx[None] - ux[:, None], ly[None] - uy[:, None])
                   <= rad[:, None] + tol, axis=1) >= p.lumen_inside_fraction
    good &= held
    if not good.any():
        return None, 0
    ux, uy, rad = ux[good], uy[good], rad[good]
    inl = np.abs(np.hypot(px[None] - ux[:, None], py[None] - uy[:, None]) - rad[:, None]) < tol
    score = inl.sum(axis=1) - 0.5 * np.abs(rad - prior) / tol
    best_in = inl[int(np.argmax(score))]  # first maximum: deterministic
    cx, cy, r_fit = _circle(px[best_in], py[best_in])
    dist = np.hypot(lx - cx, ly - cy)
    if not (rmin <= r_fit <= rmax) or (len(lx) and np.mean(dist <= r_fit + tol)
                                       < p.lumen_inside_fraction):
        return None, 0
    n_in = int((np.abs(np.hypot(px - cx, py - cy) - r_fit) < tol).sum())
    return (cx, cy, r_fit), n_in


class _Tracker:
    def __init__(self, smooth: np.ndarray, spacing, p: AortaParams):
        self.s = smooth
        self.sp = np.asarray(spacing, float)
        self.p = p
        self.theta = np.linspace(0, 2 * np.pi, p.n_rays, endpoint=False)
        self.hi = (np.array(smooth.shape) - 1) * self.sp
        self.ceiling = np.inf  # set per track from the seed's lumen level
        self.stop = ""  # why the last track stopped

    def plane_lumen(self, c, u, v, r_limit):
        """Lumen component nearest ``c`` in the plane (u, v) within ``r_limit`` mm; returns
        (centroid offset (a, b) mm, area mm^2 within ``r_limit``, spill fraction: rays
        whose lumen reaches 1.5 ``r_limit``, outermost lumen radius per ray from the
        centroid, NaN where none, inf where spilling, :class:`_Plane`) or None."""
        p = self.p
        half = 1.6 * r_limit + 5
        g = np.arange(-half, half + 1e-6, p.plane_pixel_mm)
        a, b = np.meshgrid(g, g, indexing="ij")
        pts = c + a[..., None] * u + b[..., None] * v
        vals = _sample(self.s, self.sp, pts, np.nan)
        lum = (vals > p.lumen_min_hu) & (vals < self.ceiling)  # NaN (outside): not lumen
        rad = np.hypot(a, b)
        lab, n = ndi.label(lum)
        if n == 0:
            return None
        near = lab[rad <= r_limit]
        near = near[near > 0]
        if near.size == 0:
            return None
        mid = len(g) // 2
        if lab[mid, mid] > 0:
            k = lab[mid, mid]
        else:  # nearest labelled pixel to the centre, within r_limit
            inside = (lab > 0) & (rad <= r_limit)
            j = np.argmin(np.where(inside, rad, np.inf))
            k = lab.ravel()[j]
        comp = lab == k
        # morphological opening (disc) of the component, so that thin bridges to touching
        # bright neighbours (pulmonary artery, veins, heart) do not belong to it
        dist = ndi.distance_transform_edt(comp, sampling=p.plane_pixel_mm)
        r_open = min(p.opening_mm, 0.5 * float(dist.max()))
        core_lab, _ = ndi.label(dist >= r_open)
        kk = core_lab[comp & (dist >= r_open) & (rad <= r_limit)]
        if kk.size:
            cores = core_lab > 0
            pick = np.bincount(kk).argmax()
            d_core = ndi.distance_transform_edt(core_lab != pick, sampling=p.plane_pixel_mm)
            comp &= d_core <= r_open + 0.5 * p.plane_pixel_mm
            del cores
        r_cap = 1.5 * r_limit
        inner = comp & (rad <= r_limit)
        area = inner.sum() * p.plane_pixel_mm ** 2
        ca, cb = float(a[inner].mean()), float(b[inner].mean())
        held = comp & (rad <= r_cap)
        da, db = a[held] - ca, b[held] - cb
        # outermost lumen point per ray bin (pixel centres + half a pixel); a bin whose
        # outermost point is where the lumen was cut at r_cap has no edge (NaN): spill
        k = np.round((np.arctan2(db, da) % (2 * np.pi)) / (2 * np.pi) * p.n_rays).astype(int)
        k %= p.n_rays
        r_lum = np.full(p.n_rays, np.nan)
        np.fmax.at(r_lum, k, np.hypot(da, db) + 0.5 * p.plane_pixel_mm)
        cut = np.zeros(p.n_rays, bool)
        np.logical_or.at(cut, k, rad[held] > r_cap - 1.5 * p.plane_pixel_mm)
        r_lum[cut] = np.inf
        spill = float(cut.mean())
        return (ca, cb), area, spill, r_lum, _Plane(a - ca, b - cb, comp, vals > p.fat_max_hu)

    def circle_rays(self, c, u, v, centre, radius: float) -> np.ndarray:
        """:meth:`region_rays` of the section through ``c`` (array mm) in the plane (u, v)
        for an imposed circle (``centre`` array mm, ``radius`` mm); the circle itself where
        no lumen is near."""
        lum = self.plane_lumen(c, u, v, max(radius, 6.0))
        if lum is None:
            return np.full(self.p.n_rays, radius)
        (la, lb), *_, plane = lum
        off = centre - (c + la * u + lb * v)
        return self.region_rays(plane, (off @ u, off @ v, radius))

    def region_rays(self, plane: _Plane, circle) -> np.ndarray:
        """Painted boundary per ray (mm from the circle's centre) for an aorta circle
        (cx, cy, radius; mm, from the lumen centroid) in a section: the lumen within
        ``fit_tolerance_mm`` of the circle, and the non-fat tissue between it and the circle
        where that layer is at least ``thrombus_min_mm`` thick (an in-plane opening: thrombus
        or a thrombosed false lumen); a thinner rim is the aortic wall and is left out, as in
        TotalSegmentator's label, whose edge is the lumen's. Rays that meet neither get the
        circle."""
        p = self.p
        cx, cy, rad = circle
        a, b = plane.a - cx, plane.b - cy
        rr = np.hypot(a, b)
        disc = rr <= rad
        layer = disc & plane.tissue & ~plane.lumen
        r_open = 0.5 * p.thrombus_min_mm
        core = ndi.distance_transform_edt(layer, sampling=p.plane_pixel_mm) >= r_open
        thick = layer & (ndi.distance_transform_edt(~core, sampling=p.plane_pixel_mm)
                         <= r_open + 0.5 * p.plane_pixel_mm)
        region = (plane.lumen & (rr <= rad + p.fit_tolerance_mm)) | thick
        k = np.round((np.arctan2(b[region], a[region]) % (2 * np.pi)) / (2 * np.pi)
                     * p.n_rays).astype(int) % p.n_rays
        out = np.full(p.n_rays, np.nan)
        np.fmax.at(out, k, rr[region] + 0.5 * p.plane_pixel_mm)
        return np.where(np.isfinite(out), out, rad)

    def fat_edges(self, c, u, v, rmax, r_lum=None):
        """Outer-wall edge per ray from ``c``: the first fall below ``fat_max_hu`` (mm; NaN
        where none before ``rmax`` or the volume edge). With ``r_lum`` (this lumen's edge per
        ray, mm; NaN where none, inf where spilling), a ray that meets contrast (above ``lumen_min_hu``)
        again (over at least ``opening_mm``) beyond the lumen edge before the fat has no edge
        either: it crossed into a touching neighbour (pulmonary artery, vena cava, bone)."""
        p = self.p
        rr = np.arange(0, rmax, p.ray_step_mm)
        dirs = np.cos(self.theta)[:, None] * u + np.sin(self.theta)[:, None] * v
        prof = _sample(self.s, self.sp, c + rr[None, :, None] * dirs[:, None, :], np.nan)
        below = prof < p.fat_max_hu
        # a ray that leaves the volume before reaching fat has no edge
        first_out = np.where(np.isnan(prof).any(axis=1), np.argmax(np.isnan(prof), axis=1),
                             len(rr))
        has = below.any(axis=1) & (np.argmax(below, axis=1) < first_out)
        edge = np.where(has, rr[np.argmax(below, axis=1)], np.nan)
        if r_lum is not None:
            # no lumen in that direction: any contrast on the ray is a neighbour's; a spilling
            # ray (inf) stays in this lumen's own thick component (opened), so it is kept
            r_l = np.nan_to_num(r_lum, nan=0.0, posinf=np.inf)
            beyond = ((rr[None, :] > r_l[:, None] + 2 * p.ray_step_mm)
                      & (rr[None, :] < edge[:, None]) & (prof > p.lumen_min_hu))
            # a lumen, not a speck (calcification, a partly opacified flap): contrast over at
            # least opening_mm along the ray
            run = max(1, int(round(p.opening_mm / p.ray_step_mm)))
            long = ndi.minimum_filter1d(beyond.astype(np.uint8), run, axis=1, mode="constant")
            edge[long.any(axis=1)] = np.nan
        return edge

    def axis(self, c, sigma, d):
        """Tube axis at ``c``: the eigenvector of smallest |eigenvalue| of the Hessian of the
        CT smoothed at scale ``sigma`` mm, oriented along ``d``; None when the local shape
        is not a bright tube (two strongly negative eigenvalues, a weak third)."""
        sp = self.sp
        half = 3.0 * sigma
        lo = np.maximum(np.floor((c - half) / sp).astype(int), 0)
        hi = np.minimum(np.ceil((c + half) / sp).astype(int) + 1, self.s.shape)
        if np.any(hi - lo < 3):
            return None
        sub = np.minimum(self.s[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], self.ceiling)
        sub = sub.astype(np.float64)
        axes = [np.arange(a_, b_) * q - cc
                for a_, b_, q, cc in zip(lo, hi, sp, c, strict=True)]
        g = [np.exp(-0.5 * (x / sigma) ** 2) for x in axes]
        w = g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]
        w /= w.sum()
        xs = np.meshgrid(*axes, indexing="ij", sparse=True)
        hess = np.empty((3, 3))
        for i in range(3):
            for j in range(i, 3):
                kern = w * (xs[i] * xs[j] / sigma ** 4 - (i == j) / sigma ** 2)
                hess[i, j] = hess[j, i] = float((kern * sub).sum())
        lam, vec = np.linalg.eigh(hess)
        order = np.argsort(np.abs(lam))
        lam, vec = lam[order], vec[:, order]
        if not (lam[1] < 0 and lam[2] < 0 and abs(lam[0]) < 0.5 * abs(lam[1])):
            return None
        ax = vec[:, 0]
        return ax if ax @ d >= 0 else -ax

    def ray_radii(self, fit, theta, r):
        """Outer boundary per ray from the circle's centre: the edge point itself where it
        lies within ``fit_tolerance_mm`` of the circle, else the circle (interpolated in
        angle between agreeing edge points)."""
        cx, cy, rad = fit
        ok = np.isfinite(r)
        ex, ey = np.cos(theta[ok]) * r[ok] - cx, np.sin(theta[ok]) * r[ok] - cy
        er = np.hypot(ex, ey)
        good = np.abs(er - rad) < self.p.fit_tolerance_mm
        if good.sum() < 3:
            return np.full(self.p.n_rays, rad)
        ang = np.arctan2(ey[good], ex[good]) % (2 * np.pi)
        order = np.argsort(ang)
        ang, er = ang[order], er[good][order]
        return np.interp(self.theta, np.r_[ang - 2 * np.pi, ang, ang + 2 * np.pi],
                         np.r_[er, er, er])

    def section(self, c, d, radius, offset, need_lumen: bool = True,
                partial_wall: bool = False):
        """Fit one cross-section at ``c`` (array mm) perpendicular to the unit vector ``d``,
        with the prior outer radius ``radius`` (mm) and the last outer-centre offset from the
        lumen centroid ``offset`` (array mm, carried when no circle fits). Returns the
        :class:`Section` (``fitted`` False when neither circle held) or None when no lumen lies
        within the prior radius of ``c``."""
        p = self.p
        u, v = _frame(d)
        lum = self.plane_lumen(c, u, v, max(radius, 6.0))
        if lum is None and need_lumen:
            return None
        # on a fixed path, a section without lumen (a thrombosed stretch) still has a wall
        (la, lb), area, spill, r_lum, plane = lum or ((0.0, 0.0), 0.0, 0.0,
                                                      np.full(p.n_rays, np.nan), None)
        lc = c + la * u + lb * v
        r_lumen = np.sqrt(area / np.pi)
        rmax = min(1.5 * radius + 5, p.outer_radius_max_mm)
        r_wall = self.fat_edges(lc, u, v, p.outer_radius_max_mm, r_lum) - p.wall_mm
        okl = np.isfinite(r_lum)
        th, rl = self.theta[okl], r_lum[okl]
        rmin = max(0.8 * r_lumen, 3.0)
        fit_l, n_l = _fit_circle(th, rl, th, rl, rmin, rmax, radius, p)
        fit_o, n_o = _fit_circle(self.theta, r_wall, th, rl, rmin, rmax, radius, p)
        ok_l = fit_l is not None and n_l >= p.min_inlier_fraction * okl.sum()
        # the wall is seen only where fat or lung borders the aorta: a circle that a majority
        # of the rays agree with holds; with partial_wall (a fixed path, whose prior radius is
        # the outer wall's), one that only a majority of the rays with an edge (over at least
        # min_wall_arc of the circumference) agree with holds if it keeps the prior radius
        # (spine, heart or oesophagus hide the rest of the wall)
        n_edge = int(np.isfinite(r_wall).sum())
        ok_o = fit_o is not None and (n_o >= p.min_inlier_fraction * p.n_rays or (
            partial_wall
            and n_o >= max(p.min_inlier_fraction * n_edge, p.min_wall_arc * p.n_rays)
            and abs(fit_o[2] - radius) <= p.fit_tolerance_mm))
        # tracking follows the outer circle (the stable size of the aorta) when there is
        # one, else the lumen circle; the painted boundary is the outer circle too (it holds
        # the lumen, and a thrombosed false lumen or thrombus inside the wall), else the lumen
        fit = fit_o if ok_o else (fit_l if ok_l else None)
        paint_fit, edges = ((fit_o, (self.theta, r_wall)) if ok_o else
                            (fit_l, (th, rl)) if ok_l else (None, None))
        if fit is None:
            centre = lc + offset
            rays = (np.full(p.n_rays, float(radius)) if plane is None else
                    self.region_rays(plane, (offset @ u, offset @ v, float(radius))))
            return Section(centre, np.array(d, float), u, v, float(radius), rays, False,
                           spill, centre, lc)
        centre = lc + fit[0] * u + fit[1] * v
        bcentre = lc + paint_fit[0] * u + paint_fit[1] * v
        rays = (self.ray_radii(paint_fit, *edges) if plane is None else
                self.region_rays(plane, paint_fit))
        return Section(centre, np.array(d, float), u, v, float(fit[2]), rays, True, spill,
                       bcentre, lc, bool(ok_o), n_o / p.n_rays if ok_o else 0.0)

    def track(self, c0, d0, r0, level: float | None = None,
              max_length_mm: float | None = None) -> list[Section]:
        """Track from ``c0`` (array mm) along ``d0``; ``level`` is the seed lumen's median HU,
        which sets the ceiling above which voxels are not this lumen (denser contrast in a
        vein, bone)."""
        p = self.p
        self.ceiling = np.inf if level is None else p.lumen_ceiling_ratio * level
        secs: list[Section] = []
        c, d = np.asarray(c0, float), np.asarray(d0, float) / np.linalg.norm(d0)
        radius, history = r0, [r0]
        offset = np.zeros(3)
        spills = unfitted = drops = grows = 0
        length = p.max_length_mm if max_length_mm is None else max_length_mm
        for _ in range(int(length / p.step_mm) + 1):
            if np.any(c < 0) or np.any(c > self.hi):
                self.stop = "edge"
                break
            ax = self.axis(c, max(p.axis_scale * radius, 3.0), d)
            if ax is not None:
                d = 0.5 * d + ax
                d /= np.linalg.norm(d)
            sec = self.section(c, d, radius, offset)
            if sec is None:
                self.stop = "lumen lost"
                break
            if sec.fitted:
                unfitted = 0
                offset = sec.centre - sec.lumen_centre
            else:
                unfitted += 1
                if unfitted > p.max_unfitted_steps:
                    del secs[len(secs) - unfitted + 1:]
                    self.stop = "no wall"
                    break
            r_new = sec.radius
            secs.append(sec)
            spills = spills + 1 if sec.spill > p.spill_fraction else 0
            if len(history) > 10:  # radius jumps are judged once the tube's size is known
                ref = float(np.median(history[-15:]))
                drops = drops + 1 if r_new < p.radius_drop * ref else 0
                # a chamber (heart) or a merged neighbour: the radius exceeds what the tube
                # has been so far (80th percentile of the whole track)
                grows = grows + 1 if r_new > p.radius_growth * float(
                    np.percentile(history, 80)) else 0
            if max(spills, drops, grows) >= p.spill_steps:
                del secs[-max(spills, drops, grows):]
                self.stop = ("spill" if spills >= p.spill_steps else
                             "radius drop" if drops >= p.spill_steps else "radius growth")
                break
            history.append(r_new)
            radius = float(np.median(history[-5:]))
            if len(secs) >= 4:
                chord = secs[-1].centre - secs[-4].centre
                nrm = np.linalg.norm(chord)
                if nrm > 0 and chord @ d > 0:
                    d = d + chord / nrm
                    d /= np.linalg.norm(d)
            c = sec.centre + p.step_mm * d
        return secs


def find_discs(smooth: np.ndarray, spacing, p: AortaParams) -> list[list[tuple]]:
    """Round contrast-filled lumen components on axial slices every ``seed_step_mm``: per
    sampled slice a list of (z (array mm), centre (y, x) array mm, equivalent radius mm,
    median HU). A disc has an equivalent radius in ``seed_radius_mm``, a largest inscribed
    radius of at least ``seed_roundness`` times it, and is brighter than the ring around it
    (``seed_ring_mm``: 90th HU percentile below the disc's median; bone has a brighter
    cortex)."""
    sp = np.asarray(spacing, float)
    step = max(1, int(round(p.seed_step_mm / sp[0])))
    ring_size = 2 * int(np.ceil(p.seed_ring_mm[1] / min(sp[1:]))) + 3
    out = []
    for k in range(0, smooth.shape[0], step):
        lum = smooth[k] > p.lumen_min_hu
        lab, n = ndi.label(lum)
        cands = []
        if n:
            idx = np.arange(1, n + 1)
            area = ndi.sum(lum, lab, idx) * sp[1] * sp[2]
            r_eq = np.sqrt(area / np.pi)
            sel = idx[(r_eq >= p.seed_radius_mm[0]) & (r_eq <= p.seed_radius_mm[1])]
            if sel.size:
                dist = ndi.distance_transform_edt(lum, sampling=sp[1:])
                r_in = np.asarray(ndi.maximum(dist, lab, sel))
                com = np.asarray(ndi.center_of_mass(lum, lab, sel)) * sp[1:]
                near = ndi.distance_transform_edt(~lum, sampling=sp[1:])
                ring_lab = np.where((near > p.seed_ring_mm[0]) & (near <= p.seed_ring_mm[1]),
                                    ndi.grey_dilation(lab, size=ring_size), 0)
                for j, lbl in enumerate(sel):
                    req = r_eq[lbl - 1]
                    if r_in[j] < p.seed_roundness * req:
                        continue
                    lvl = float(np.median(smooth[k][lab == lbl]))
                    ring = smooth[k][ring_lab == lbl]
                    # a contrast lumen is the brightest thing around it (its wall, fat);
                    # bone has a brighter cortex
                    if ring.size and np.percentile(ring, 90) < lvl:
                        cands.append((k * sp[0], com[j], float(req), lvl))
        out.append(cands)
    return out


def find_seeds(smooth: np.ndarray, spacing, p: AortaParams,
               discs: list[list[tuple]] | None = None) -> list[dict]:
    """Chains of round lumen components on axial slices (:func:`find_discs`), longest first;
    each a dict with ``centre`` (array mm, the chain's middle component), ``radius`` (mm),
    ``length`` (mm) and ``level`` (median HU)."""
    sp = np.asarray(spacing, float)
    step = max(1, int(round(p.seed_step_mm / sp[0])))
    chains: list[list[tuple]] = []
    open_chains: list[list[tuple]] = []
    for cands in (find_discs(smooth, sp, p) if discs is None else discs):
        new_open = []
        for cz, cyx, req, lvl in cands:
            host = None
            for ch in open_chains:
                last = ch[-1]
                if np.linalg.norm(last[1] - cyx) < max(last[2], req):
                    host = ch
                    break
            if host is None:
                host = []
                chains.append(host)
            host.append((cz, cyx, req, lvl))
            new_open.append(host)
        open_chains = new_open
    seeds = []
    for ch in chains:
        length = ch[-1][0] - ch[0][0] + step * sp[0]
        if length < p.seed_min_length_mm:
            continue
        cz, cyx, req, lvl = ch[len(ch) // 2]
        seeds.append({"centre": np.r_[cz, cyx], "radius": float(np.median([c[2] for c in ch])),
                      "length": float(length), "level": float(np.median([c[3] for c in ch]))})
    seeds.sort(key=lambda s: -s["length"])
    return seeds


def find_arch(smooth: np.ndarray, spacing, p: AortaParams, discs: list[list[tuple]],
              posterior: np.ndarray | None = None) -> dict | None:
    """The aortic arch as a global minimal path between the ascending and the descending
    aorta, or None (no arch in the field of view: abdominal CT).

    Candidates are pairs of discs (:func:`find_discs`) of equivalent radius at least
    ``arch_radius_min_mm`` on the same axial slice that are connected *above* that slice
    through thick lumen: voxels of the contrast lumen (``lumen_min_hu`` to
    ``lumen_ceiling_ratio`` times the discs' median HU) at least ``arch_core_fraction`` times
    the smaller disc radius from its edge (the larger radius at most ``arch_radius_ratio``
    times the smaller: not a chamber or the pulmonary trunk beside the aorta), on that slice
    or superior to it. Thin contacts (partial volume with the pulmonary artery or a vein) do
    not connect at that depth; the ascending and descending aorta do, through the arch. The
    pair with the largest smaller radius wins (the aorta is the widest artery; the lowest
    slice on exact ties). The ascending disc is then followed down to the root
    (:func:`_follow_down`), and the centreline is the minimal path (:func:`_min_path`) from
    the descending disc's deepest lumen point over the arch to the ascending one's, above the
    latter's slice.

    Axis 0 must run inferior to superior (:func:`segment_aorta` flips it otherwise);
    ``posterior`` is the patient's posterior direction in array axes (unit (z, y, x)): the
    more posterior disc is the descending aorta. Returns a dict: ``path`` (N, 3) array mm from
    the descending to the ascending disc, ``discs`` (descending, ascending) as in
    :func:`find_discs`, ``level`` their median HU, ``dist`` the lumen's distance map (mm),
    ``tissue`` the non-fat mask and ``start`` the descending disc's deepest voxel (index)."""
    sp = np.asarray(spacing, float)
    big = [[c for c in cands if c[2] >= p.arch_radius_min_mm] for cands in discs]
    if not any(len(b) >= 2 for b in big):
        return None
    level = float(np.median([c[3] for b in big for c in b]))
    lum = (smooth > p.lumen_min_hu) & (smooth < p.lumen_ceiling_ratio * level)
    dist = ndi.distance_transform_edt(lum, sampling=sp).astype(np.float32)
    tissue = smooth > p.fat_max_hu
    yy, xx = np.meshgrid(np.arange(smooth.shape[1]) * sp[1], np.arange(smooth.shape[2]) * sp[2],
                         indexing="ij")

    def deepest(c):
        """Index of the deepest lumen voxel of disc ``c`` on its slice."""
        k = int(round(c[0] / sp[0]))
        inside = np.hypot(yy - c[1][0], xx - c[1][1]) <= c[2]
        j = int(np.argmax(np.where(inside, dist[k], -1.0)))
        return (k, *np.unravel_index(j, inside.shape))

    best = None
    for b in big:
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                r_min = min(b[i][2], b[j][2])
                if (best is not None and r_min <= best[0]) or max(
                        b[i][2], b[j][2]) > p.arch_radius_ratio * r_min:
                    continue
                k = int(round(b[i][0] / sp[0]))
                lab = ndi.label(dist[k:] >= p.arch_core_fraction * r_min)[0]
                ia, ib = deepest(b[i]), deepest(b[j])
                la, lb = lab[0, ia[1], ia[2]], lab[0, ib[1], ib[2]]
                if la and la == lb:
                    best = (r_min, b[i], b[j])
    if best is None:
        return None
    _, da, db = best
    if posterior is not None and np.dot(posterior, np.r_[0.0, da[1]]) < np.dot(
            posterior, np.r_[0.0, db[1]]):
        da, db = db, da  # the descending aorta (posterior) first
    db = _follow_down(smooth, sp, p, db, p.lumen_ceiling_ratio * level)
    ia, ib = deepest(da), deepest(db)
    k = ib[0]
    path = _min_path(dist[k:], sp, (ia[0] - k, ia[1], ia[2]), (0, ib[1], ib[2]), tissue[k:])
    path[:, 0] += k
    return {"path": path * sp, "discs": (da, db), "level": level, "dist": dist,
            "tissue": tissue, "start": ia}


def _follow_down(smooth: np.ndarray, sp, p: AortaParams, disc: tuple, ceiling: float) -> tuple:
    """Follow a disc (the ascending aorta) down axial slice by slice: on each slice the lumen
    component under the previous centre (or the one most present within half a radius of
    it), as long as its equivalent radius stays within 0.5-1.3 times the disc's and its
    centroid moves less than half a radius; it ends where the lumen opens into a chamber
    (the heart at the aortic root). Returns the last such section as a disc tuple."""
    r0 = disc[2]
    k = int(round(disc[0] / sp[0]))
    cyx = np.asarray(disc[1], float)
    yy, xx = np.meshgrid(np.arange(smooth.shape[1]) * sp[1], np.arange(smooth.shape[2]) * sp[2],
                         indexing="ij")
    out, gap = disc, 0
    for kk in range(k - 1, -1, -1):
        lum = (smooth[kk] > p.lumen_min_hu) & (smooth[kk] < ceiling)
        # opened by a disc of opening_mm, so that thin contacts with neighbours do not merge
        depth = ndi.distance_transform_edt(lum, sampling=sp[1:])
        lab, _ = ndi.label(depth >= p.opening_mm)
        near = lab[(np.hypot(yy - cyx[0], xx - cyx[1]) <= 0.5 * r0) & (lab > 0)]
        if near.size == 0:
            break
        comp = lum & (ndi.distance_transform_edt(lab != np.bincount(near).argmax(),
                                                 sampling=sp[1:]) <= p.opening_mm + 0.5 * sp[1])
        r_eq = float(np.sqrt(comp.sum() * sp[1] * sp[2] / np.pi))
        if 0.5 * r0 <= r_eq <= 1.3 * r0:
            c_new = np.array([yy[comp].mean(), xx[comp].mean()])
            if np.linalg.norm(c_new - cyx) > 0.5 * r0:
                break
            cyx, gap = c_new, 0
            out = (kk * sp[0], cyx, r_eq, float(np.median(smooth[kk][comp])))
            continue
        # merged with a neighbour (a crossing pulmonary artery) or opened into a chamber:
        # carry on through at most 2 radii of such slices, centred on the part near the axis
        gap += 1
        part = comp & (np.hypot(yy - cyx[0], xx - cyx[1]) <= r0)
        if gap * sp[0] > 2 * r0 or not part.any():
            break
        cyx = np.array([yy[part].mean(), xx[part].mean()])
    return out

def _min_path(dist: np.ndarray, sp, start, end=None, tissue=None) -> np.ndarray:
    """Minimal path (voxel indices) from ``start`` to ``end`` on the cost 1 / (distance to
    the lumen edge, mm)^2 per mm within the lumen (``dist`` > 0), and 4 per mm (that of a
    lumen 0.5 mm deep: the thinnest) through other non-fat ``tissue`` (a thrombosed or
    narrowed stretch; fat and air are impassable). With ``end`` None, to the cheapest
    reachable voxel of the lowest reachable slice (the descending aorta's far end)."""
    from skimage.graph import MCP_Geometric

    cost = np.where(dist > 0, 1.0 / np.maximum(dist, 0.5) ** 2,
                    np.inf if tissue is None else np.where(tissue, 4.0, np.inf))
    mcp = MCP_Geometric(cost, fully_connected=True, sampling=tuple(sp))
    cum, _ = mcp.find_costs([start], None if end is None else [end])
    if end is None:
        fin = np.isfinite(cum)
        z0 = int(np.argmax(fin.any(axis=(1, 2))))
        j = int(np.argmin(np.where(fin[z0], cum[z0], np.inf)))
        end = (z0, *np.unravel_index(j, cum.shape[1:]))
    return np.asarray(mcp.traceback(tuple(int(i) for i in end)), float)


def path_sections(tracker: _Tracker, path: np.ndarray, r0: float, level: float) -> list[Section]:
    """Cross-sections along a fixed centreline ``path`` ((N, 3) array mm): the path is
    resampled every ``step_mm``, smoothed (Gaussian, sigma ``path_smoothing`` times ``r0``:
    a lumen that winds inside the aorta, the true lumen of a dissection, still gives the
    aorta's own axis) and a section is fitted (:meth:`_Tracker.section`, also where no lumen
    is near: a thrombosed stretch) at each point, perpendicular to the path; the prior radius
    is the median of the last 5 outer-wall radii (``r0`` at first: never a true lumen's).
    The sections are then regularized (:func:`_regularize`)."""
    p = tracker.p
    tracker.ceiling = p.lumen_ceiling_ratio * level
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.r_[0.0, np.cumsum(seg)]
    if arc[-1] < 2 * p.step_mm:
        return []
    s = np.arange(0.0, arc[-1] + 1e-9, p.step_mm)
    pts = np.stack([np.interp(s, arc, path[:, i]) for i in range(3)], 1)
    sig = max(p.path_smoothing * r0 / p.step_mm, 1.0)
    pts = np.stack([ndi.gaussian_filter1d(pts[:, i], sig, mode="nearest") for i in range(3)], 1)
    grad = np.gradient(pts, axis=0)
    secs: list[Section] = []
    on_path: list[np.ndarray] = []
    history = [r0]
    offset = np.zeros(3)
    for c, g in zip(pts, grad, strict=True):
        d = g / max(np.linalg.norm(g), 1e-9)
        sec = tracker.section(c, d, float(np.median(history[-5:])), offset, need_lumen=False,
                              partial_wall=True)
        if sec is None:
            continue
        if sec.fitted:
            offset = sec.centre - sec.lumen_centre
        # the prior is the aorta's outer size where a majority of the rays saw its wall: never
        # a lumen's (true lumen), nor a circle held by a minority of rays, which must keep it
        if sec.wall_fraction >= p.min_inlier_fraction:
            history.append(sec.radius)
        secs.append(sec)
        on_path.append(c)
    return _regularize(secs, np.array(on_path).reshape(-1, 3), tracker)


def _regularize(secs: list[Section], on_path: np.ndarray, tracker: _Tracker) -> list[Section]:
    """Robust outer wall along a fixed path: for each section, the median outer radius and
    the median outer-centre offset from the path (array mm) over the sections within
    ``regularize_mm`` along the path whose outer-wall circle held. A section whose own outer
    circle agrees with them (radius and centre within ``fit_tolerance_mm``) keeps its per-ray
    boundary; any other (no outer circle: a lumen-only fit, a wall hidden by neighbours; or a
    circle off the local tube: a merged neighbour) gets the median circle, painted as
    :meth:`_Tracker.region_rays` (lumen and thick layers inside it)."""
    p = tracker.p
    n = len(secs)
    if n == 0:
        return secs
    good = np.array([s.fitted and s.outer for s in secs])
    rad = np.array([s.radius for s in secs])
    off = np.array([s.centre for s in secs]) - on_path
    half = int(round(p.regularize_mm / p.step_mm))
    tol = p.fit_tolerance_mm
    out = []
    for i, sec in enumerate(secs):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        sel = np.flatnonzero(good[lo:hi]) + lo
        if sel.size < 3:
            out.append(sec)
            continue
        r_med = float(np.median(rad[sel]))
        o = np.median(off[sel], axis=0)
        o -= (o @ sec.direction) * sec.direction
        c_med = on_path[i] + o
        if good[i] and abs(sec.radius - r_med) <= tol and np.linalg.norm(
                sec.centre - c_med) <= tol:
            out.append(sec)
            continue
        out.append(Section(c_med, sec.direction, sec.u, sec.v, r_med,
                           tracker.circle_rays(on_path[i], sec.u, sec.v, c_med, r_med),
                           sec.fitted, sec.spill, c_med, sec.lumen_centre,
                           sec.outer))
    return out


def smooth_sections(sections: list[Section], half: int) -> list[Section]:
    """Regularize a track: centres averaged and radii (circle and per ray) median-filtered
    over ``half`` sections on either side; directions from the smoothed centres."""
    n = len(sections)
    if n < 3 or half < 1:
        return sections
    cen = np.array([s.centre for s in sections])
    off = np.array([(s.centre if s.boundary_centre is None else s.boundary_centre) - s.centre
                    for s in sections])
    rays = np.array([s.ray_radius for s in sections])
    rad = np.array([s.radius for s in sections])
    size = 2 * half + 1
    cen_s = np.stack([ndi.uniform_filter1d(cen[:, i], size, mode="nearest") for i in range(3)], 1)
    rad_s = ndi.median_filter(rad, size=size, mode="nearest")
    rays_s = ndi.median_filter(rays, size=(size, 1), mode="nearest")
    grad = np.gradient(cen_s, axis=0)
    out = []
    for i, sec in enumerate(sections):
        d = grad[i] / max(np.linalg.norm(grad[i]), 1e-9)
        if d @ sec.direction < 0:
            d = -d
        u, v = _frame(d)
        # per-ray radii are tied to (u, v): re-sample them at the new frame's angles
        o = off[i] - (off[i] @ d) * d
        out.append(Section(cen_s[i], d, u, v, float(rad_s[i]),
                           _rotate_rays(rays_s[i], sec.u, sec.v, u, v), sec.fitted, sec.spill,
                           cen_s[i] + o))
    return out


def _rotate_rays(rays: np.ndarray, u0, v0, u1, v1) -> np.ndarray:
    """Per-ray radii given at angles in frame (u0, v0), re-sampled at the same angles in
    frame (u1, v1) (both frames nearly share their normal)."""
    n = len(rays)
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    # angle of frame-1 direction theta expressed in frame 0
    dirs = np.cos(theta)[:, None] * u1 + np.sin(theta)[:, None] * v1
    t0 = np.arctan2(dirs @ v0, dirs @ u0) % (2 * np.pi)
    return np.interp(t0, np.r_[theta - 2 * np.pi, theta, theta + 2 * np.pi],
                     np.r_[rays, rays, rays])


def paint(sections: list[Section], shape, spacing, step_mm: float) -> np.ndarray:
    """Rasterize sections onto a grid of ``shape``: each section claims the voxels within
    ``step_mm`` of its plane and inside its outer boundary (per-ray radius, interpolated
    in angle); the mask is the union."""
    sp = np.asarray(spacing, float)
    mask = np.zeros(shape, bool)
    for sec in sections:
        rays = sec.ray_radius
        n_rays = len(rays)
        reach = float(rays.max()) + step_mm
        cen = sec.centre if sec.boundary_centre is None else sec.boundary_centre
        lo = np.maximum(np.floor((cen - reach) / sp).astype(int), 0)
        hi = np.minimum(np.ceil((cen + reach) / sp).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        g = np.meshgrid(*[np.arange(a_, b_) * q - c for a_, b_, q, c in
                          zip(lo, hi, sp, cen, strict=True)], indexing="ij")
        along = g[0] * sec.direction[0] + g[1] * sec.direction[1] + g[2] * sec.direction[2]
        a = g[0] * sec.u[0] + g[1] * sec.u[1] + g[2] * sec.u[2]
        b = g[0] * sec.v[0] + g[1] * sec.v[1] + g[2] * sec.v[2]
        pos = (np.arctan2(b, a) % (2 * np.pi)) / (2 * np.pi) * n_rays
        j0 = np.floor(pos).astype(int) % n_rays
        f = pos - np.floor(pos)
        r_here = (1 - f) * rays[j0] + f * rays[(j0 + 1) % n_rays]
        inside = (np.abs(along) <= step_mm) & (np.hypot(a, b) <= r_here)
        mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] |= inside
    return mask


@dataclass
class AortaResult:
    """The aorta mask (on the input grid) and the tracked sections."""

    mask: Image
    sections: list[Section]


def segment_aorta(image: Image, params: AortaParams | None = None) -> AortaResult:
    """Segment the aorta (lumen, false lumen, wall) in a contrast CT volume.

    Parameters
    ----------
    image:
        3D CT in HU, NumPy order (z, y, x), spacing in mm; axis 0 must be cranio-caudal
        (axial slices), as in any CT series.
    params:
        :class:`AortaParams`; defaults when None.

    Raises
    ------
    InputError
        For a 2D image, or when no contrast-filled aorta-like tube is found.
    """
    p = params or AortaParams()
    if len(image.spacing) != 3 or image.array.ndim != 3:
        raise InputError("aorta segmentation needs a 3D CT volume")
    sp = np.asarray(image.spacing, float)
    arr = np.asarray(image.array, np.float32)
    # work with axis 0 running inferior to superior (LPS z grows along it); flip back at the end
    flip = bool(np.asarray(image.direction)[2, 2] < 0)
    if flip:
        arr = arr[::-1]
    smooth = ndi.gaussian_filter(arr, p.smoothing_mm / sp)
    discs = find_discs(smooth, sp, p)
    seeds = find_seeds(smooth, sp, p, discs)
    if not seeds:
        raise InputError(f"no aorta-like structure: no round lumen above {p.lumen_min_hu:g} HU "
                         f"of radius {p.seed_radius_mm[0]:g}-{p.seed_radius_mm[1]:g} mm over "
                         f"{p.seed_min_length_mm:g} mm (is this a contrast CT?)")
    tracker = _Tracker(smooth, sp, p)
    direction = np.asarray(image.direction, float)
    # patient posterior (LPS +y) in array axes (z, y, x): NumPy axis i is ITK axis 2 - i
    posterior = direction[1, ::-1] * np.array([-1.0 if flip else 1.0, 1.0, 1.0])
    arch = find_arch(smooth, sp, p, discs, posterior)
    if arch is not None:
        # the arch is a global path; from its two discs the ascending aorta is tracked down to
        # the root and the descending aorta down to the end of the volume (or a stop)
        desc, asc = arch["discs"]
        top = arch["start"][0] + 1
        down = _min_path(arch["dist"][:top], sp, arch["start"], None,
                         arch["tissue"][:top])[::-1] * sp
        path = np.concatenate([down, arch["path"]])
        mid = path_sections(tracker, path, min(desc[2], asc[2]), arch["level"])
        root = tracker.track(np.r_[asc[0], asc[1]], np.array([-1.0, 0, 0]), 1.3 * asc[2],
                             asc[3], p.root_max_radii * asc[2])
        log.debug("arch between discs at z %.1f mm: %d sections, root %d", asc[0], len(mid),
                  len(root))
        best = smooth_sections(mid + root, p.smoothing_sections)
        mask = paint(best, arr.shape, sp, p.step_mm)
    else:
        tracks = []
        for seed in seeds[: p.n_seeds]:
            r0 = 1.3 * seed["radius"]
            up = tracker.track(seed["centre"], np.array([1.0, 0, 0]), r0, seed["level"])
            down = tracker.track(seed["centre"], np.array([-1.0, 0, 0]), r0, seed["level"])
            secs = smooth_sections(down[::-1] + up, p.smoothing_sections)
            log.debug("seed %s: %d sections", np.round(seed["centre"], 1), len(secs))
            if secs:
                tracks.append((secs, paint(secs, arr.shape, sp, p.step_mm)))
        if not tracks:
            raise InputError("no aorta-like structure: tracking found no tube from any seed")
        # no arch in view: the aorta is the tube most seeds lead to, the track whose mask
        # agrees best (sum of Dice coefficients) with the other tracks' masks
        vols = [int(m.sum()) for _, m in tracks]
        support = [sum(2.0 * (m & other).sum() / max(vols[i] + vols[j], 1)
                       for j, (_, other) in enumerate(tracks) if j != i)
                   for i, (_, m) in enumerate(tracks)]
        best, mask = tracks[int(np.argmax(support))]
    mask = mask & (smooth > p.fat_max_hu)  # fat and air inside a fitted circle are not aorta
    if flip:
        mask = mask[::-1]
        best = [_flip_section(sec, (arr.shape[0] - 1) * sp[0]) for sec in best]
    return AortaResult(image.with_array(np.ascontiguousarray(mask), modality="mask"), best)


def _flip_section(sec: Section, z_len: float) -> Section:
    """A section in the frame with axis 0 reversed (z -> z_len - z)."""
    f = np.array([-1.0, 1.0, 1.0])

    def pt(x):
        return None if x is None else np.r_[z_len - x[0], x[1:]]

    return Section(pt(sec.centre), sec.direction * f, sec.u * f, sec.v * f, sec.radius,
                   sec.ray_radius, sec.fitted, sec.spill, pt(sec.boundary_centre),
                   pt(sec.lumen_centre), sec.outer)
