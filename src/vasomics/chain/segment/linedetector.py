"""Multi-scale line detector for 2D images (fundus photographs): Nguyen et al. 2013.

Method
------
Ricci & Perfetti (IEEE TMI 26:1357, 2007) line detector, made multi-scale by Nguyen, Bhuiyan,
Park & Ramamohanarao (Pattern Recognition 46:703-715, 2013). On an image ``I`` where vessels
are *bright* (the fundus green channel is negated first, ``bright=False``):

* ``R_L(p) = max_theta mean_{line L, theta}(I)(p) - mean_{W x W window}(I)(p)``: the mean
  intensity along a straight line of length ``L`` centred on ``p``, maximized over
  ``n_orientations`` equally spaced orientations in [0, pi), minus the mean of the square
  window of side ``W`` (``window_mm``) centred on ``p``;
* line lengths ``L`` from ``line_step_mm`` up to ``W`` in steps of ``line_step_mm``;
* every ``R_L`` and the image itself are standardized (zero mean, unit standard deviation
  inside the region) and averaged: ``R = (1 - w) mean_L z(R_L) + w z(I)``. Nguyen et al. weight
  all terms equally (``w = 1 / (n_L + 1)``, ``image_weight: null``); a larger ``w`` widens the
  response to the full vessel calibre (the fundus preset uses a value chosen on the CHASE_DB1
  training split);
* the result is standardized again inside the region, so it is in z-score units and one
  threshold transfers between images of different brightness and contrast.

A long line averages across the central light reflex of retinal arteries, which splits the
response of second-derivative (Hessian) filters into two thin ridges.

Field of view
-------------
Pixels outside ``region`` (and inside a band of ``rim_mm`` along its edge, where fundus
photographs show a bright or dark rim) are replaced before filtering by a smooth
continuation of the inside (:func:`vasomics.chain.segment.fov.fill_outside`), so the FOV
edge does not respond as a dark line. Statistics are taken inside ``region``.

Units and conventions
---------------------
``(y, x)`` NumPy order, ``spacing`` in mm per axis (pixel units: spacing 1 and every ``*_mm``
length is in pixels). Line samples are taken every ``min(spacing)`` mm along the line and
rounded to the pixel grid, so anisotropic pixels are handled; the window has
``round(window_mm / spacing)`` pixels per axis (the next odd number when even). Output float32, same shape.
Work is ``n_orientations x W / min(spacing)`` additions per pixel (a fused numba kernel);
memory one float32 map per line length.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numba as nb
import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from vasomics.errors import InputError, ParameterError
from vasomics.params import StageParams, validate_params

log = logging.getLogger(__name__)


class LineDetectorParams(StageParams):
    """Parameters of :func:`line_detector` (lengths in mm; pixels when spacing is 1)."""

    window_mm: float = Field(default=15.0, gt=0)  # W: window side and longest line
    # (Nguyen 2013: 15 px on DRIVE, 565 px wide; about twice the widest vessel)
    line_step_mm: float = Field(default=2.0, gt=0)  # line lengths step, step*2, ... <= W
    n_orientations: int = Field(default=12, ge=2)  # orientations in [0, pi)
    image_weight: float | None = Field(default=None, ge=0, lt=1)  # w of z(image); None:
    # 1 / (number of line lengths + 1) as Nguyen 2013
    bright: bool | None = None  # True: bright vessels; False or None: dark (fundus green
    # channel); through segment(), None takes the preset's vesselness.bright
    rim_mm: float = Field(default=0.0, ge=0)  # band inside the region edge refilled too


@nb.njit(parallel=True, cache=True, fastmath=True)
def _line_max(img, pad, offs, rec, out):  # pragma: no cover - compiled
    """``out[j, y, x]`` = max over orientations of the mean of ``img`` along the line of
    half-length ``rec[j]`` samples (``offs[o, k-1]`` = pixel offset of sample ``k``); rows
    are processed as contiguous vectors."""
    n_len, ny, nx = out.shape
    n_or, half, _ = offs.shape
    for y in nb.prange(ny):
        yy = y + pad
        acc = np.empty(nx, np.float32)
        for o in range(n_or):
            for x in range(nx):
                acc[x] = img[yy, x + pad]
            j = 0
            for k in range(1, half + 1):
                dy = offs[o, k - 1, 0]
                dx = offs[o, k - 1, 1]
                a0 = yy + dy
                a1 = yy - dy
                for x in range(nx):
                    acc[x] += img[a0, x + pad + dx] + img[a1, x + pad - dx]
                if j < n_len and k == rec[j]:
                    inv = 1.0 / (2 * k + 1)
                    for x in range(nx):
                        m = acc[x] * inv
                        if m > out[j, y, x]:
                            out[j, y, x] = m
                    j += 1


def line_geometry(spacing: Sequence[float], p: LineDetectorParams):
    """Sample offsets ``(n_orientations, n_samples, 2)`` (pixels, (dy, dx)), the sample
    counts at which each line length is recorded, and the window size per axis (pixels)."""
    sy, sx = (float(s) for s in spacing)
    ds = min(sy, sx)
    n_half = int(math.floor(p.window_mm / 2 / ds + 1e-9))
    if n_half < 1:
        raise ParameterError(f"window_mm {p.window_mm} is smaller than two pixels "
                             f"({ds:.3g} mm)")
    rec = sorted({min(n_half, max(1, round(i * p.line_step_mm / 2 / ds)))
                  for i in range(1, int(p.window_mm / p.line_step_mm + 1e-9) + 1)})
    ks = np.arange(1, n_half + 1) * ds
    offs = np.zeros((p.n_orientations, n_half, 2), np.int64)
    for o in range(p.n_orientations):
        theta = math.pi * o / p.n_orientations
        offs[o, :, 0] = np.round(ks * math.sin(theta) / sy)
        offs[o, :, 1] = np.round(ks * math.cos(theta) / sx)
    window = tuple(int(round(p.window_mm / s)) | 1 for s in (sy, sx))  # odd, >= 1
    return offs, np.array(rec, np.int64), window


def _standardize(a: np.ndarray, region: np.ndarray) -> np.ndarray:
    v = a[region]
    mean, sd = float(v.mean()), float(v.std())
    return ((a - mean) / sd if sd > 0 else a * 0.0).astype(np.float32)


def line_detector(array: np.ndarray, spacing: Sequence[float] | None = None,
                  params: LineDetectorParams | None = None, *,
                  region: np.ndarray | None = None,
                  progress: Callable[[float], None] | None = None,
                  **overrides) -> np.ndarray:
    """Multi-scale line response (float32, z-score units inside ``region``; see module doc).

    Parameters
    ----------
    array:
        2D scalar image ``(y, x)`` (e.g. the fundus green channel), any numeric type.
    spacing:
        Pixel size in mm per axis (default 1: lengths in pixels).
    params, overrides:
        :class:`LineDetectorParams`, or keyword overrides of its fields.
    region:
        Boolean field of view; outside it the image is replaced by a smooth continuation
        and statistics ignore it. ``None``: the whole image.
    """
    from vasomics.chain.segment.fov import fill_outside

    p = params or LineDetectorParams()
    if overrides:
        p = validate_params(LineDetectorParams, {**p.model_dump(), **overrides})
    a = np.asarray(array)
    if a.ndim != 2:
        raise InputError(f"the line detector takes a 2D scalar image, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"the line detector needs a numeric image, got dtype {a.dtype}")
    spacing = tuple(float(s) for s in (spacing or (1.0, 1.0)))
    if len(spacing) != 2 or min(spacing) <= 0:
        raise InputError(f"spacing must be two positive numbers (mm), got {spacing}")
    img = a.astype(np.float32)
    if not np.all(np.isfinite(img)):
        raise InputError("image holds NaN or infinite pixels")
    if not p.bright:  # dark vessels (False or None): negate
        img = -img
    if region is None:
        region = np.ones(a.shape, bool)
    else:
        region = np.asarray(region, bool)
        if region.shape != a.shape:
            raise InputError(f"region shape {region.shape} does not match the image {a.shape}")
        if not region.any():
            raise InputError("region mask is empty")
        trusted = region
        if p.rim_mm > 0:
            trusted = ndi.distance_transform_edt(region, sampling=spacing) > p.rim_mm
            if not trusted.any():
                raise InputError(f"region is thinner than rim_mm={p.rim_mm}")
        if not trusted.all():
            img = fill_outside(img, trusted, spacing, scale_mm=p.window_mm)
    offs, rec, window = line_geometry(spacing, p)
    pad = int(np.abs(offs).max()) if offs.size else 0
    padded = np.pad(img, pad, mode="reflect") if pad else img
    lines = np.full((len(rec),) + a.shape, -np.inf, np.float32)
    _line_max(np.ascontiguousarray(padded, np.float32), pad, offs, rec, lines)
    if progress:
        progress(0.8)
    local = ndi.uniform_filter(img, window, mode="reflect")
    total = np.zeros(a.shape, np.float32)
    for j in range(len(rec)):
        total += _standardize(lines[j] - local, region)
    del lines
    w = p.image_weight if p.image_weight is not None else 1.0 / (len(rec) + 1)
    combined = (1.0 - w) * total / len(rec) + w * _standardize(img, region)
    out = _standardize(combined, region)
    if progress:
        progress(1.0)
    log.debug("line detector: %d lengths, window %s px, image weight %.3f", len(rec), window, w)
    return out
