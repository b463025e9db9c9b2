"""Classical aorta segmentation on CT angiography: lumen tracking and outer-wall circle fits.

No learned model. The aorta is modelled as a tube whose cross-section perpendicular to its
centreline is a disc (the outer wall), which holds the contrast-filled lumen somewhere
inside it; in an aortic dissection the bright true lumen may be a crescent and the false
lumen (poorly opacified or thrombosed, HU like soft tissue) fills the rest of the disc.

Steps (geometry in "array millimetres": NumPy index times spacing, axes (z, y, x); the
result is a mask on the input grid, so the image's LPS geometry carries over unchanged):

1. The CT is smoothed (Gaussian, ``smoothing_mm``); lumen = smoothed HU above
   ``lumen_min_hu``.
2. Seeds: on axial slices every ``seed_step_mm``, lumen components of equivalent radius in
   ``seed_radius_mm``, round (largest inscribed radius / equivalent radius at least
   ``seed_roundness``) and brighter than the ring around them (``seed_ring_mm``; bone has a
   brighter cortex) are linked across slices when their centres are closer than their radii;
   chains at least ``seed_min_length_mm`` long are seeds, longest first.
3. Tracking, from a seed up and down, by steps of ``step_mm``. The direction follows the tube
   axis of the Hessian of the CT (clipped at ``lumen_ceiling_ratio`` times the seed lumen's
   HU) at a scale of ``axis_scale`` outer radii. In the plane perpendicular to it:

   * lumen: the thresholded component nearest the predicted centre, opened by a disc of
     ``opening_mm`` (cuts thin bridges to touching bright neighbours: pulmonary artery,
     veins) and limited to the current outer radius; its outermost point per ray is a lumen
     edge, unless the lumen runs on to 1.5 outer radii there (a *spilling* ray);
   * outer wall: along ``n_rays`` rays from the lumen centroid, the first fall below
     ``fat_max_hu`` (periaortic fat, lung) less ``wall_mm``;
   * a circle is fitted by RANSAC to the lumen edges and another to the outer-wall points
     (inliers within ``fit_tolerance_mm``, a weak radius-continuity prior; a circle must
     hold ``lumen_inside_fraction`` of the lumen); a fit needs ``min_inlier_fraction`` of the
     rays. The tracker follows the outer circle when there is one, else the lumen circle,
     else carries the last radius and centre offset (a wall without fat: crura, heart).
   * painted boundary: the outer circle when the non-enhancing tissue inside it is thicker
     than ``wall_max_mm`` on one side (90th percentile over rays) while the lumen comes
     within ``wall_touch_mm`` of the wall on the other (10th percentile): an eccentric false
     lumen or thrombus, part of the aorta; otherwise the lumen circle (a concentric rim is
     wall). Per ray, the edge itself replaces the circle where it lies within
     ``fit_tolerance_mm`` of it.

   Tracking stops at the volume edge; when no lumen lies near the predicted centre; after
   ``max_unfitted_steps`` sections without a circle; or, for ``spill_steps`` consecutive
   sections, when more than ``spill_fraction`` of the rays spill (a chamber: the heart), the
   radius drops below ``radius_drop`` times its recent median (a branch) or exceeds
   ``radius_growth`` times the 80th percentile of the track's radii so far (a chamber).
4. Each track is regularized (``smoothing_sections``) and painted: every section claims the
   voxels within ``step_mm`` of its plane inside its boundary; voxels darker than
   ``fat_max_hu`` are removed.
5. Selection: the aorta is the tube most seeds lead to, the track whose mask agrees best
   (sum of Dice coefficients) with the other tracks' masks.

Failure: when no seed chain exists (no contrast-filled round tube: a non-contrast CT), an
:class:`~vasomics.errors.InputError` with a one-line message.

Limits (measured, see ``benchmarks/eval_segment_aorta.py``): validated on one thoracic CT
angiogram with an aortic dissection against TotalSegmentator's aorta mask; the result is
sensitive to the parameters (a track may leave the aorta at the arch or the root), so treat
it as a classical baseline, not as a replacement for a learned segmenter.
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
    lumen_ceiling_ratio: float = Field(1.6, description="While tracking, voxels brighter than "
                                                        "this multiple of the seed lumen's "
                                                        "median HU are not lumen (undiluted "
                                                        "contrast in a vein, bone).")
    wall_max_mm: float = Field(8.0, description="Non-enhancing tissue between lumen and "
                                                "outer wall thicker than this (90th "
                                                "percentile over rays) is false lumen or "
                                                "thrombus and belongs to the aorta; thinner "
                                                "is wall, and the lumen circle is kept.")
    wall_touch_mm: float = Field(2.0, description="The outer circle is painted only if, "
                                                  "besides, the lumen comes this close to the "
                                                  "outer wall on the other side (10th "
                                                  "percentile): the lumen is eccentric.")
    axis_scale: float = Field(0.6, description="Hessian scale for the tube axis, as a "
                                               "fraction of the outer radius.")
    wall_mm: float = Field(1.5, description="Aortic wall thickness subtracted from the fat "
                                            "edge (the mask ends at the inner wall, as "
                                            "TotalSegmentator's).")
    lumen_inside_fraction: float = Field(0.9, description="Fraction of lumen edge points a "
                                                          "circle must hold (branch origins "
                                                          "may stick out).")
    max_unfitted_steps: int = Field(6, description="Consecutive sections without an accepted "
                                                   "circle that stop tracking (dropped).")
    min_inlier_fraction: float = Field(0.4, description="Fraction of rays that must agree "
                                                        "with the fitted circle.")
    ransac_iterations: int = Field(150, description="RANSAC hypotheses per section.")
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
    seed: int = Field(0, description="Random seed of the RANSAC fits.")


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
    gap_min: float = float("nan")  # 10th percentile of the lumen-to-outer-wall gap (mm)


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


def _ransac_circle(theta, r, lum_theta, lum_r, rng, rmin, rmax, prior, p: AortaParams):
    """Circle (in the section plane, origin at the lumen centroid) best supported by edge
    points given in polar form (``theta``, ``r``; one per ray, NaN where none). Hypotheses
    pass through 3 random points; a hypothesis must hold the lumen (at least
    ``lumen_inside_fraction`` of the lumen's outermost points ``lum_theta``, ``lum_r`` within
    ``fit_tolerance_mm`` outside it) and have a radius in [rmin, rmax]. Score: points within
    ``fit_tolerance_mm`` of the circle, less a weak penalty on the change of radius from
    ``prior``. The winner is refitted (least squares) to its inliers. Returns
    ((cx, cy, radius), n_inliers) or (None, 0)."""
    ok = np.isfinite(r)
    px, py = (np.cos(theta) * r)[ok], (np.sin(theta) * r)[ok]
    lx, ly = np.cos(lum_theta) * lum_r, np.sin(lum_theta) * lum_r
    n = len(px)
    if n < 5:
        return None, 0
    tol = p.fit_tolerance_mm
    idx = rng.integers(0, n, size=(p.ransac_iterations, 3))
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
    held = np.mean(np.hypot(lx[None] - ux[:, None], ly[None] - uy[:, None])
                   <= rad[:, None] + tol, axis=1) >= p.lumen_inside_fraction
    good &= held
    if not good.any():
        return None, 0
    ux, uy, rad = ux[good], uy[good], rad[good]
    inl = np.abs(np.hypot(px[None] - ux[:, None], py[None] - uy[:, None]) - rad[:, None]) < tol
    score = inl.sum(axis=1) - 0.5 * np.abs(rad - prior) / tol
    best_in = inl[int(np.argmax(score))]
    cx, cy, r_fit = _circle(px[best_in], py[best_in])
    dist = np.hypot(lx - cx, ly - cy)
    if not (rmin <= r_fit <= rmax) or np.mean(dist <= r_fit + tol) < p.lumen_inside_fraction:
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
        centroid, NaN where none or spilling) or None."""
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
        r_lum[cut] = np.nan
        spill = float(cut.mean())
        return (ca, cb), area, spill, r_lum

    def fat_edges(self, c, u, v, rmax):
        p = self.p
        rr = np.arange(0, rmax, p.ray_step_mm)
        dirs = np.cos(self.theta)[:, None] * u + np.sin(self.theta)[:, None] * v
        prof = _sample(self.s, self.sp, c + rr[None, :, None] * dirs[:, None, :], np.nan)
        below = prof < p.fat_max_hu
        # a ray that leaves the volume before reaching fat has no edge
        first_out = np.where(np.isnan(prof).any(axis=1), np.argmax(np.isnan(prof), axis=1),
                             len(rr))
        has = below.any(axis=1) & (np.argmax(below, axis=1) < first_out)
        return np.where(has, rr[np.argmax(below, axis=1)], np.nan)

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

    def track(self, c0, d0, r0, rng, level: float | None = None) -> list[Section]:
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
        for _ in range(int(p.max_length_mm / p.step_mm)):
            if np.any(c < 0) or np.any(c > self.hi):
                self.stop = "edge"
                break
            ax = self.axis(c, max(p.axis_scale * radius, 3.0), d)
            if ax is not None:
                d = 0.5 * d + ax
                d /= np.linalg.norm(d)
            u, v = _frame(d)
            lum = self.plane_lumen(c, u, v, max(radius, 6.0))
            if lum is None:
                self.stop = "lumen lost"
                break
            (la, lb), area, spill, r_lum = lum
            lc = c + la * u + lb * v
            r_lumen = np.sqrt(area / np.pi)
            rmax = min(1.5 * radius + 5, p.outer_radius_max_mm)
            r_wall = self.fat_edges(lc, u, v, rmax + 5) - p.wall_mm
            okl = np.isfinite(r_lum)
            th, rl = self.theta[okl], r_lum[okl]
            rmin = max(0.8 * r_lumen, 3.0)
            fit_l, n_l = _ransac_circle(th, rl, th, rl, rng, rmin, rmax, radius, p)
            fit_o, n_o = _ransac_circle(self.theta, r_wall, th, rl, rng, rmin, rmax, radius, p)
            ok_l = fit_l is not None and n_l >= p.min_inlier_fraction * okl.sum()
            ok_o = fit_o is not None and n_o >= p.min_inlier_fraction * p.n_rays
            # tracking follows the outer circle (the stable size of the aorta) when there is
            # one, else the lumen circle; the painted boundary is the outer circle only when
            # the non-enhancing tissue inside it is eccentric (thick on one side, the lumen
            # touching the wall on the other: false lumen, thrombus) - a concentric rim is
            # wall, and the lumen circle is painted
            fit = fit_o if ok_o else (fit_l if ok_l else None)
            paint_fit, edges = (fit_l, (th, rl)) if ok_l else (None, None)
            gap_lo = np.nan
            if ok_o:
                gap = (fit_o[2] - np.hypot(np.cos(th) * rl - fit_o[0],
                                            np.sin(th) * rl - fit_o[1]))
                gap_lo = float(np.percentile(gap, 10))
                if not ok_l or (np.percentile(gap, 90) > p.wall_max_mm
                                and np.percentile(gap, 10) < p.wall_touch_mm):
                    paint_fit, edges = fit_o, (self.theta, r_wall)
            fitted = fit is not None
            if fitted:
                centre = lc + fit[0] * u + fit[1] * v
                r_new = fit[2]
                offset = centre - lc
                unfitted = 0
                bcentre = lc + paint_fit[0] * u + paint_fit[1] * v
                rays = self.ray_radii(paint_fit, *edges)
            else:
                centre, r_new = lc + offset, radius
                bcentre, rays = centre, np.full(p.n_rays, r_new)
                unfitted += 1
                if unfitted > p.max_unfitted_steps:
                    del secs[len(secs) - unfitted + 1:]
                    self.stop = "no wall"
                    break
            secs.append(Section(centre, d.copy(), u, v, float(r_new), rays, fitted, spill,
                                bcentre, gap_lo))
            spills = spills + 1 if spill > p.spill_fraction else 0
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
            c = centre + p.step_mm * d
        return secs


def find_seeds(smooth: np.ndarray, spacing, p: AortaParams) -> list[dict]:
    """Chains of round lumen components on axial slices, longest first; each a dict with
    ``centre`` (array mm, the chain's middle component), ``radius`` (mm) and ``length``
    (mm)."""
    sp = np.asarray(spacing, float)
    step = max(1, int(round(p.seed_step_mm / sp[0])))
    ring_size = 2 * int(np.ceil(p.seed_ring_mm[1] / min(sp[1:]))) + 3
    chains: list[list[tuple]] = []
    open_chains: list[list[tuple]] = []
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
                        cands.append((k * sp[0], com[j], req, lvl))
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
    smooth = ndi.gaussian_filter(arr, p.smoothing_mm / sp)
    seeds = find_seeds(smooth, sp, p)
    if not seeds:
        raise InputError(f"no aorta-like structure: no round lumen above {p.lumen_min_hu:g} HU "
                         f"of radius {p.seed_radius_mm[0]:g}-{p.seed_radius_mm[1]:g} mm over "
                         f"{p.seed_min_length_mm:g} mm (is this a contrast CT?)")
    tracker = _Tracker(smooth, sp, p)
    tracks = []
    for seed in seeds[: p.n_seeds]:
        rng = np.random.default_rng(p.seed)
        r0 = 1.3 * seed["radius"]
        up = tracker.track(seed["centre"], np.array([1.0, 0, 0]), r0, rng, seed["level"])
        down = tracker.track(seed["centre"], np.array([-1.0, 0, 0]), r0, rng, seed["level"])
        secs = smooth_sections(down[::-1] + up, p.smoothing_sections)
        log.debug("seed %s: %d sections", np.round(seed["centre"], 1), len(secs))
        if secs:
            tracks.append((secs, paint(secs, arr.shape, sp, p.step_mm)))
    if not tracks:
        raise InputError("no aorta-like structure: tracking found no tube from any seed")
    # the aorta is the tube most seeds lead to: the track whose mask agrees best (sum of
    # Dice coefficients) with the other tracks' masks
    vols = [int(m.sum()) for _, m in tracks]
    support = [sum(2.0 * (m & other).sum() / max(vols[i] + vols[j], 1)
                   for j, (_, other) in enumerate(tracks) if j != i)
               for i, (_, m) in enumerate(tracks)]
    best, mask = tracks[int(np.argmax(support))]
    mask = mask & (smooth > p.fat_max_hu)  # fat and air inside a fitted circle are not aorta
    return AortaResult(image.with_array(mask, modality="mask"), best)
