"""Follow a vertical tube (aorta, inferior vena cava) through a CT, slice by slice, from a
localized seed mask: a disk of fixed radius carried up and down while its lumen continues.

Used by :mod:`vasomics.chain.localize` after intensity refinement: an affine atlas covers a
90 mm slab, and beyond it the tube's intensity often matches a touching organ (the IVC and
the liver in arterial and delayed scans, the aorta and the liver in delayed ones), so growth
by intensity stops at the first contact or leaks into the organ. A disk of the tube's radius
cannot leak, and where nothing distinguishes it from the organ it keeps its course.

Geometry: ``hu`` and the masks are NumPy arrays (z, y, x) with axial slices along axis 0;
``spacing`` in mm in the same order.

1. ``candidate``: voxels within ``window_sd`` SDs of the tube's intensity (HU), not claimed by
   another organ (``blocked``).
2. Radius: every seed slice inside the atlas (``covered``) is fitted with the disk (centre
   within ``fit_mm`` of the seed section's centroid, radius ``r0 × 0.7…1.3``, ``r0`` the
   equivalent radius of the median seed section there) that maximizes ``contrast − penalty``:
   ``contrast`` = candidate fraction in the disk − that in a ``ring_mm`` ring around it,
   ``penalty`` = ``radius_penalty × |ln(r / r0)|`` (for a flattened tube every radius from
   its minor to its major semi-axis scores alike; the penalty picks the equivalent one).
   Slices whose best contrast reaches ``min_contrast`` are *good*; the radius is their median
   and the best of them is the anchor.
3. From the anchor the disk is carried up and down: on each slice the seed's components
   under the disk are kept when they hold at least half their area under it and their
   area is within ``keep_ratio`` of the disk's (the refined mask follows a real, non-circular
   section better than a disk); otherwise the disk moves to the best of the positions within
   ``slope × slice thickness`` (in-plane, at least one voxel) of its previous centre, scored
   by contrast minus ``0.05 × (shift / max shift)²`` (no evidence: straight on), and stops
   where less than ``min_fill`` of it is candidate (the tube ends or leaves the volume).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.chain._grid import largest_component
from vasomics.params import StageParams

#: Relative radii tried when fitting the disk on a seed slice.
_RADIUS_STEPS = (0.7, 0.85, 1.0, 1.15, 1.3)
#: Weight of the squared relative shift when moving the disk without a seed section.
_SHIFT_PENALTY = 0.05


class TubeTrackParams(StageParams):
    """Settings of :func:`track_tube` (see the module docstring)."""

    window_sd: float = Field(2.5, description="Candidate voxels lie within this many SDs of "
                                              "the tube's intensity.")
    slope: float = Field(0.5, description="Largest in-plane drift of the axis per mm of "
                                          "height (at least one voxel per slice).")
    min_fill: float = Field(0.5, description="Tracking stops where less than this fraction of "
                                             "the disk is candidate.")
    ring_mm: float = Field(4.0, description="Width of the ring around the disk whose "
                                            "candidate fraction is subtracted (mm).")
    fit_mm: float = Field(3.0, description="The disk fitted on a seed slice is centred within "
                                           "this distance of the seed section's centroid "
                                           "(mm).")
    min_contrast: float = Field(0.3, description="A seed slice whose fitted disk reaches this "
                                                 "contrast sets the radius and may anchor the "
                                                 "track.")
    keep_ratio: float = Field(1.6, description="A seed section under the disk is kept when its "
                                               "area is within this factor of the disk's.")
    radius_penalty: float = Field(0.3, description="Weight of |ln(r / r0)| against the "
                                                   "contrast when fitting the radius.")


def median_section_radius(mask: np.ndarray, spacing) -> float:
    """Area-equivalent radius (mm) of a tube's median axial section, ``sqrt(median A / π)``
    over the slices (axis 0) where ``mask`` has voxels; NaN for an empty mask."""
    area = np.count_nonzero(mask, axis=(1, 2)) * float(spacing[1]) * float(spacing[2])
    return float(np.sqrt(np.median(area[area > 0]) / np.pi)) if area.any() else float("nan")


def track_tube(hu: np.ndarray, seed: np.ndarray, blocked: np.ndarray, mu: float, sd: float,
               spacing, covered: np.ndarray, settings: TubeTrackParams) -> tuple[np.ndarray, dict]:
    """The tube followed from ``seed`` (see the module docstring); returns the mask and a
    summary (``radius_mm``, ``anchor`` slice, ``slices`` [first, last], ``kept``: slices
    where the seed section was kept). Returns ``seed`` unchanged when no seed slice inside
    the atlas shows the tube (no good slice)."""
    s = settings
    sp = [float(v) for v in spacing]
    rows = np.nonzero(seed.any(axis=(1, 2)))[0]
    fit_rows = [k for k in rows if (seed[k] & covered[k]).any()] or list(rows)
    if not fit_rows:
        return seed, {}
    cand = (np.abs(np.asarray(hu, np.float32) - mu) <= s.window_sd * sd) & ~blocked
    yy, xx = np.ogrid[: seed.shape[1], : seed.shape[2]]
    pix = sp[1] * sp[2]

    def disk_ring(c, r, window=(slice(None), slice(None))):
        """The disk of radius ``r`` (mm) about ``c`` (pixel index) and the ring of
        ``ring_mm`` around it, in ``window`` of the slice."""
        d2 = ((yy[window[0]] - c[0]) * sp[1]) ** 2 + ((xx[:, window[1]] - c[1]) * sp[2]) ** 2
        return d2 <= r * r, (d2 > r * r) & (d2 <= (r + s.ring_mm) ** 2)

    def contrast(k, c, r):
        # in the window holding the ring: the counts of the whole slice
        reach = [(r + s.ring_mm) / v + 1 for v in sp[1:]]
        window = tuple(slice(max(0, int(np.floor(ci - q))), max(0, int(np.ceil(ci + q)) + 1))
                       for ci, q in zip(c, reach, strict=True))
        disk, ring = disk_ring(c, r, window)
        n = np.count_nonzero(disk)
        if n == 0:
            return -1.0, 0.0
        plane = cand[k][window]
        fill = np.count_nonzero(plane & disk) / n
        return fill - np.count_nonzero(plane & ring) / max(np.count_nonzero(ring), 1), fill

    sections = {k: largest_component(seed[k]) for k in fit_rows}
    r0 = float(np.sqrt(np.median([np.count_nonzero(m) for m in sections.values()]) * pix
                       / np.pi))
    q = [int(np.ceil(s.fit_mm / v)) for v in sp[1:]]
    fits = {}
    for k in fit_rows:
        centroid = np.argwhere(sections[k]).mean(0)
        fits[k] = max(((contrast(k, centroid + (dy, dx), r)[0]
                        - s.radius_penalty * abs(np.log(r / r0)), r, tuple(centroid + (dy, dx)))
                       for r in r0 * np.asarray(_RADIUS_STEPS)
                       for dy in range(-q[0], q[0] + 1) for dx in range(-q[1], q[1] + 1)),
                      key=lambda t: t[0])
    good = [k for k in fit_rows if fits[k][0] >= s.min_contrast]
    if not good:
        return seed, {}
    r = float(np.median([fits[k][1] for k in good]))
    anchor = max(good, key=lambda k: fits[k][0])
    step = [max(1, int(np.ceil(s.slope * sp[0] / v))) for v in sp[1:]]
    shifts = [(dy, dx) for dy in np.arange(-step[0], step[0] + 0.01, 0.5)
              for dx in np.arange(-step[1], step[1] + 0.01, 0.5)]
    out = np.zeros_like(seed)
    first = last = anchor
    kept = 0
    for direction in (1, -1):
        c = np.asarray(fits[anchor][2])
        k = anchor if direction == 1 else anchor - 1
        while 0 <= k < seed.shape[0]:
            disk, _ = disk_ring(c, r)
            section = None
            if seed[k].any():
                lab, _ = ndimage.label(seed[k])
                hit = np.unique(lab[disk & seed[k]])
                section = np.isin(lab, hit[hit > 0])
                a, b = np.count_nonzero(section), np.count_nonzero(disk)
                if not (a and 2 * np.count_nonzero(section & disk) >= a
                        and b <= s.keep_ratio * a and a <= s.keep_ratio * b):
                    section = None
            if section is not None:
                out[k] = section
                c = np.argwhere(section).mean(0)
                kept += 1
            else:
                best = None
                for dy, dx in shifts:
                    con, fill = contrast(k, c + (dy, dx), r)
                    score = con - _SHIFT_PENALTY * (dy * dy + dx * dx) / (step[0] * step[1])
                    if best is None or score > best[0]:
                        best = (score, fill, c + (dy, dx))
                if best[1] < s.min_fill:
                    break
                c = best[2]
                out[k] = disk_ring(c, r)[0]
            first, last = min(first, k), max(last, k)
            k += direction
    return out, {"radius_mm": round(r, 2), "anchor": int(anchor), "slices": [int(first),
                 int(last)], "kept": kept}
