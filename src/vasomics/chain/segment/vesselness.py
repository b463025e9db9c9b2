"""Multi-scale Hessian vesselness filters (Frangi, Sato, Jerman) for 2D and 3D images.

Units and conventions
---------------------
* ``scales_mm`` are Gaussian standard deviations in millimetres. On an image with spacing
  ``(s_z, s_y, s_x)`` mm the Gaussian has sigma ``scale / s_axis`` voxels per axis, so one
  scale means the same physical blur on anisotropic voxels.
* The Hessian is in physical units (intensity / mm^2): second differences of the smoothed
  image are divided by the spacing products. It is scale-normalized by ``scale_mm ** gamma``
  (``gamma=2``, Lindeberg's normalization for second derivatives as used by Frangi 1998), so
  responses of different scales are comparable and the maximum over scales is taken.
* Eigenvalues are computed in closed form per voxel (2x2: quadratic formula; symmetric
  3x3: Smith's trigonometric method) inside a fused numba kernel that also evaluates the
  response, so no Hessian or eigenvalue arrays are ever stored.
* ``bright=True`` finds bright vessels on a dark background (CTA, MRA, OCTA); ``False`` dark
  vessels (fundus green channel). Internally the image is negated for bright vessels, so
  vessel cross-sections always have *positive* eigenvalues below.

Responses (eigenvalues sorted ``|l1| <= |l2| <= |l3|``; ``l1`` along the vessel)
------------------------------------------------------------------------------
* Frangi 1998, 3D: 0 unless ``l2, l3 > 0``; ``(1-exp(-Ra^2/2a^2)) exp(-Rb^2/2b^2)
  (1-exp(-S^2/2c^2))`` with ``Ra=|l2|/|l3|``, ``Rb=|l1|/sqrt(|l2 l3|)``, ``S`` the Frobenius
  norm. 2D: ``exp(-Rb^2/2b^2)(1-exp(-S^2/2c^2))`` with ``Rb=|l1|/|l2|``, 0 unless ``l2 > 0``.
  ``c`` defaults to half the maximum ``S`` of the image at that scale (as skimage).
* Sato 1998, 3D: ``lc = min(l2, l3)``; ``lc exp(-l1^2 / 2 (a lc)^2)`` with ``a = 0.5`` when
  ``l1`` has the vessel sign (<= 0 after our negation) else ``a = 2``; 0 unless ``lc > 0``.
  2D: ``max(l2, 0)``. Sato responses are in scale-normalized intensity units.
* Jerman 2016: ``lr = l3`` if ``l3 > tau max(l3)``, ``tau max(l3)`` if ``0 < l3 <= tau max``,
  else 0; response 1 if ``l2 >= lr/2 > 0``, ``l2^2 (lr - l2) 27 / (l2 + lr)^3`` if ``l2 > 0``
  and ``lr > 0``, else 0. In 2D ``l2`` plays both roles (``l3 := l2``). Values in [0, 1].

Memory: the volume is processed in slabs along axis 0 with a halo of ``4 sigma_max`` voxels;
peak memory is about the input (float32) + the output + 3 slabs. Frangi with ``c=None`` and
Jerman need one global statistic per scale, gathered in a first cheaper pass.

Gaussian smoothing: FIR (``scipy.ndimage.gaussian_filter1d``, truncate 4) for sigma < 3 voxels,
the Young-van Vliet recursive Gaussian (constant cost per voxel, numba) above.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numba as nb
import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from vasomics.errors import DependencyError, InputError, ParameterError
from vasomics.params import StageParams

log = logging.getLogger(__name__)

Method = Literal["frangi", "sato", "jerman"]
_METHOD_CODE = {"frangi": 0, "sato": 1, "jerman": 2}
IIR_MIN_SIGMA = 3.0  # voxels: recursive Gaussian at or above, FIR below


class VesselnessParams(StageParams):
    """Parameters of :func:`vesselness`."""

    method: Method = "frangi"  # frangi, sato or jerman
    scales_mm: list[float] = Field(default=[1.0, 2.0, 3.0, 4.0], min_length=1)  # Gaussian sigmas (mm)
    bright: bool = True  # True: bright vessels on dark background; False: dark vessels
    gamma: float = 2.0  # scale normalization exponent (Hessian x scale_mm**gamma)
    alpha: float = 0.5  # Frangi plate-vs-line sensitivity (3D only)
    beta: float = 0.5  # Frangi blob-vs-line sensitivity
    c: float | None = None  # Frangi structureness; None: half the max Hessian norm per scale
    tau: float = 0.75  # Jerman regularization (fraction of the max eigenvalue per scale)
    slab_voxels: int = 48  # slab thickness along axis 0 (voxels, without halo)


# ----------------------------------------------------------------------------- smoothing

def _yvv_coefficients(sigma: float) -> tuple[float, float, float, float]:
    """Young & van Vliet (1995) recursive Gaussian: (B, b1/b0, b2/b0, b3/b0)."""
    q = 0.98711 * sigma - 0.96330 if sigma >= 2.5 else \
        3.97156 - 4.14554 * math.sqrt(1 - 0.26891 * sigma)
    b0 = 1.57825 + 2.44413 * q + 1.4281 * q * q + 0.422205 * q ** 3
    b1 = 2.44413 * q + 2.85619 * q * q + 1.26661 * q ** 3
    b2 = -(1.4281 * q * q + 1.26661 * q ** 3)
    b3 = 0.422205 * q ** 3
    return 1 - (b1 + b2 + b3) / b0, b1 / b0, b2 / b0, b3 / b0


@nb.njit(parallel=True, cache=True, fastmath=True)
def _iir_mid(x, coef):  # pragma: no cover - compiled
    """In-place recursive Gaussian along axis 1 of a 3D array (A, N, B), edges replicated."""
    big_b, c1, c2, c3 = coef[0], coef[1], coef[2], coef[3]
    n_a, n, n_b = x.shape
    for a in nb.prange(n_a):
        end = np.empty(n_b, np.float32)
        for i in range(n):
            for b in range(n_b):
                w1 = x[a, i - 1, b] if i >= 1 else x[a, 0, b]
                w2 = x[a, i - 2, b] if i >= 2 else x[a, 0, b]
                w3 = x[a, i - 3, b] if i >= 3 else x[a, 0, b]
                x[a, i, b] = big_b * x[a, i, b] + c1 * w1 + c2 * w2 + c3 * w3
        for b in range(n_b):
            end[b] = x[a, n - 1, b]
        for i in range(n - 1, -1, -1):
            for b in range(n_b):
                y1 = x[a, i + 1, b] if i + 1 < n else end[b]
                y2 = x[a, i + 2, b] if i + 2 < n else end[b]
                y3 = x[a, i + 3, b] if i + 3 < n else end[b]
                x[a, i, b] = big_b * x[a, i, b] + c1 * y1 + c2 * y2 + c3 * y3


def _fir_smooth(out: np.ndarray, sigma: float, axis: int) -> None:
    """In-place FIR Gaussian (SciPy, truncated at 4 sigma) along ``axis``, the array split
    along another axis over numba's thread count (SciPy releases the GIL; the pieces are
    independent, so the result is the same as one call)."""
    other = 0 if axis != 0 else 1
    n_threads = min(nb.get_num_threads(), out.shape[other]) if out.ndim > 1 else 1
    if n_threads <= 1:
        ndi.gaussian_filter1d(out, sigma, axis=axis, output=out, mode="nearest", truncate=4.0)
        return
    bounds = np.linspace(0, out.shape[other], n_threads + 1).astype(int)

    def piece(k: int) -> None:
        index = [slice(None)] * out.ndim
        index[other] = slice(bounds[k], bounds[k + 1])
        view = out[tuple(index)]
        ndi.gaussian_filter1d(view, sigma, axis=axis, output=view, mode="nearest",
                              truncate=4.0)

    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(piece, range(n_threads)))


def gaussian_smooth(array: np.ndarray, sigma_vox: Sequence[float]) -> np.ndarray:
    """Gaussian smoothing (float32 copy) with one sigma (voxels) per axis (see module doc)."""
    out = np.array(array, dtype=np.float32, order="C", copy=True)
    for axis, s in enumerate(sigma_vox):
        if s <= 0:
            continue
        if s < IIR_MIN_SIGMA or out.shape[axis] < 8:
            _fir_smooth(out, float(s), axis)
            continue
        coef = np.array(_yvv_coefficients(float(s)), np.float32)
        if out.ndim == 2:
            view = out[None] if axis == 0 else out.reshape(out.shape[0], out.shape[1], 1)
        elif axis == 0:
            view = out.transpose(1, 0, 2)
        elif axis == 1:
            view = out
        else:
            view = out.reshape(-1, out.shape[2], 1)
        _iir_mid(view, coef)
    return out


# ----------------------------------------------------------------------------- kernels

@nb.njit(cache=True, inline="always")
def _sort3(a, b, c):  # pragma: no cover - compiled
    """Sort three values by absolute value."""
    if abs(a) > abs(b):
        a, b = b, a
    if abs(b) > abs(c):
        b, c = c, b
    if abs(a) > abs(b):
        a, b = b, a
    return a, b, c


@nb.njit(cache=True, inline="always")
def _eig3(a11, a22, a33, a12, a13, a23):  # pragma: no cover - compiled
    """Eigenvalues of a symmetric 3x3 matrix (Smith 1961), sorted by absolute value."""
    p1 = a12 * a12 + a13 * a13 + a23 * a23
    q = (a11 + a22 + a33) / 3.0
    d1, d2, d3 = a11 - q, a22 - q, a33 - q
    p2 = d1 * d1 + d2 * d2 + d3 * d3 + 2.0 * p1
    if p2 <= 1e-30:
        return q, q, q
    p = math.sqrt(p2 / 6.0)
    inv = 1.0 / p
    b11, b22, b33 = d1 * inv, d2 * inv, d3 * inv
    b12, b13, b23 = a12 * inv, a13 * inv, a23 * inv
    r = 0.5 * (b11 * (b22 * b33 - b23 * b23) - b12 * (b12 * b33 - b23 * b13)
               + b13 * (b12 * b23 - b22 * b13))
    r = min(1.0, max(-1.0, r))
    phi = math.acos(r) / 3.0
    e1 = q + 2.0 * p * math.cos(phi)
    e3 = q + 2.0 * p * math.cos(phi + 2.0943951023931953)
    return _sort3(e1, 3.0 * q - e1 - e3, e3)


@nb.njit(cache=True, inline="always")
def _eig2(a11, a22, a12):  # pragma: no cover - compiled
    """Eigenvalues of a symmetric 2x2 matrix, sorted by absolute value."""
    m = 0.5 * (a11 + a22)
    d = math.sqrt(0.25 * (a11 - a22) ** 2 + a12 * a12)
    e1, e2 = m + d, m - d
    return (e1, e2) if abs(e1) <= abs(e2) else (e2, e1)


@nb.njit(cache=True, inline="always")
def _response(l1, l2, l3, three_d, method, alpha, beta, c, rho_max):  # pragma: no cover
    """Vesselness from sorted eigenvalues (vessel cross-section eigenvalues positive)."""
    if method == 0:  # Frangi
        if l2 <= 0.0 or (three_d and l3 <= 0.0):
            return 0.0
        s2 = l1 * l1 + l2 * l2 + l3 * l3
        if three_d:
            ra = l2 / l3
            rb2 = l1 * l1 / (l2 * l3)
            v = 1.0 - math.exp(-ra * ra / (2 * alpha * alpha))
        else:
            rb2 = l1 * l1 / (l2 * l2)
            v = 1.0
        return v * math.exp(-rb2 / (2 * beta * beta)) * (1.0 - math.exp(-s2 / (2 * c * c)))
    if method == 1:  # Sato
        if not three_d:
            return max(l2, 0.0)
        lc = min(l2, l3)
        if lc <= 0.0:
            return 0.0
        a = 0.5 if l1 <= 0.0 else 2.0
        return lc * math.exp(-l1 * l1 / (2 * (a * lc) ** 2))
    # Jerman
    big = l3 if three_d else l2
    if big > rho_max:
        lr = big
    elif big > 0.0:
        lr = rho_max
    else:
        lr = 0.0
    if l2 <= 0.0 or lr <= 0.0:
        return 0.0
    if l2 >= 0.5 * lr:
        return 1.0
    return l2 * l2 * (lr - l2) * 27.0 / (l2 + lr) ** 3


@nb.njit(parallel=True, cache=True, fastmath=True)
def _slab3(L, lo, hi, inv, norm, method, alpha, beta, c, rho_max, out, stats):  # pragma: no cover
    """Hessian by central differences on smoothed slab ``L`` for planes ``lo..hi-1``;
    ``out`` (planes hi-lo) gets the max response; ``stats[z]`` = (max S, max l3). ``method``
    -1: statistics of S only (Frangi), -2: S and l3 (Jerman), >= 0: responses."""
    nz, ny, nx = L.shape
    izz, iyy, ixx, izy, izx, iyx = inv[0], inv[1], inv[2], inv[3], inv[4], inv[5]
    for z in nb.prange(lo, hi):
        zm, zp = max(z - 1, 0), min(z + 1, nz - 1)
        smax = 0.0
        lmax = 0.0
        for y in range(ny):
            ym, yp = max(y - 1, 0), min(y + 1, ny - 1)
            for x in range(nx):
                xm, xp = max(x - 1, 0), min(x + 1, nx - 1)
                c0 = 2.0 * L[z, y, x]
                hzz = (L[zp, y, x] + L[zm, y, x] - c0) * izz * norm
                hyy = (L[z, yp, x] + L[z, ym, x] - c0) * iyy * norm
                hxx = (L[z, y, xp] + L[z, y, xm] - c0) * ixx * norm
                hzy = (L[zp, yp, x] - L[zp, ym, x] - L[zm, yp, x] + L[zm, ym, x]) * izy * norm
                hzx = (L[zp, y, xp] - L[zp, y, xm] - L[zm, y, xp] + L[zm, y, xm]) * izx * norm
                hyx = (L[z, yp, xp] - L[z, yp, xm] - L[z, ym, xp] + L[z, ym, xm]) * iyx * norm
                if method == -1:  # statistics pass, Frobenius norm only (no eigenvalues)
                    s = math.sqrt(hzz * hzz + hyy * hyy + hxx * hxx
                                  + 2.0 * (hzy * hzy + hzx * hzx + hyx * hyx))
                    smax = max(smax, s)
                    continue
                l1, l2, l3 = _eig3(hzz, hyy, hxx, hzy, hzx, hyx)
                if method < 0:  # statistics pass with eigenvalues
                    smax = max(smax, math.sqrt(l1 * l1 + l2 * l2 + l3 * l3))
                    lmax = max(lmax, l3)
                    continue
                v = _response(l1, l2, l3, True, method, alpha, beta, c, rho_max)
                if v > out[z - lo, y, x]:
                    out[z - lo, y, x] = v
        stats[z, 0] = smax
        stats[z, 1] = lmax


@nb.njit(parallel=True, cache=True, fastmath=True)
def _plane2(L, inv, norm, method, alpha, beta, c, rho_max, out, stats):  # pragma: no cover
    """2D counterpart of :func:`_slab3` (stats per row)."""
    ny, nx = L.shape
    iyy, ixx, iyx = inv[0], inv[1], inv[2]
    for y in nb.prange(ny):
        ym, yp = max(y - 1, 0), min(y + 1, ny - 1)
        smax = 0.0
        lmax = 0.0
        for x in range(nx):
            xm, xp = max(x - 1, 0), min(x + 1, nx - 1)
            c0 = 2.0 * L[y, x]
            hyy = (L[yp, x] + L[ym, x] - c0) * iyy * norm
            hxx = (L[y, xp] + L[y, xm] - c0) * ixx * norm
            hyx = (L[yp, xp] - L[yp, xm] - L[ym, xp] + L[ym, xm]) * iyx * norm
            l1, l2 = _eig2(hyy, hxx, hyx)
            if method < 0:
                smax = max(smax, math.sqrt(l1 * l1 + l2 * l2))
                lmax = max(lmax, l2)
                continue
            v = _response(l1, l2, l2, False, method, alpha, beta, c, rho_max)
            if v > out[y, x]:
                out[y, x] = v
        stats[y, 0] = smax
        stats[y, 1] = lmax


# ----------------------------------------------------------------------------- driver

def _check(array: np.ndarray, spacing: Sequence[float], p: VesselnessParams) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] in (3, 4) and len(spacing) == 2:
        raise InputError(f"vesselness takes a scalar image; got colour shape {a.shape} "
                         "(convert with vasomics.chain.segment.fov.to_grey)")
    if a.ndim not in (2, 3) or len(spacing) != a.ndim:
        raise InputError(f"vesselness takes a 2D or 3D scalar image with one spacing per axis; "
                         f"got shape {a.shape} and spacing {tuple(spacing)}")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"vesselness needs a numeric image, got dtype {a.dtype}")
    if any(s <= 0 for s in p.scales_mm):
        raise ParameterError(f"scales_mm must be positive, got {p.scales_mm}")
    if np.issubdtype(a.dtype, np.floating):
        n_bad = int(np.count_nonzero(~np.isfinite(a)))
        if n_bad:
            raise InputError(f"image holds {n_bad} NaN or infinite voxels; mask or fill them "
                             "first (e.g. numpy.nan_to_num with the background value)")
    extent = min(n * s for n, s in zip(a.shape, spacing, strict=True))
    if max(p.scales_mm) * 2 > extent:
        raise InputError(f"largest scale {max(p.scales_mm)} mm is too large for an image "
                         f"whose smallest extent is {extent:.3g} mm (need extent >= 2 x scale)")
    return a


def vesselness(array: np.ndarray, spacing: Sequence[float] | None = None,
               params: VesselnessParams | None = None, *,
               progress: Callable[[float], None] | None = None,
               backend: Literal["cpu", "cupy"] = "cpu", **overrides) -> np.ndarray:
    """Maximum over scales of the vesselness response (float32, same shape as ``array``).

    Parameters
    ----------
    array:
        2D ``(y, x)`` or 3D ``(z, y, x)`` scalar image of any numeric type (converted to
        float32; integer values are not rescaled).
    spacing:
        Voxel size in mm per NumPy axis (default 1 mm).
    params, overrides:
        :class:`VesselnessParams`, or keyword overrides of its fields.
    progress:
        Called with the fraction done (0..1).
    backend:
        ``"cpu"`` (reference, numba) or ``"cupy"`` (optional GPU path; needs CuPy and a GPU).
    """
    p = params or VesselnessParams()
    if overrides:
        p = p.model_copy(update=overrides)
        p = VesselnessParams.model_validate(p.model_dump())
    spacing = tuple(float(s) for s in (spacing or (1.0,) * np.ndim(array)))
    a = _check(array, spacing, p)
    if backend == "cupy":
        return _vesselness_cupy(a, spacing, p)
    if backend != "cpu":
        raise ParameterError(f"unknown vesselness backend {backend!r} (cpu or cupy)")
    sign = -1.0 if p.bright else 1.0
    method = _METHOD_CODE[p.method]
    need_stats = (p.method == "frangi" and p.c is None) or p.method == "jerman"
    out = np.zeros(a.shape, np.float32)
    spacing_arr = np.asarray(spacing)
    steps = len(p.scales_mm) * (2 if need_stats else 1)
    done = 0
    for scale in p.scales_mm:
        sigma = scale / spacing_arr
        norm = scale ** p.gamma
        c, rho = (p.c or 1.0), 0.0
        # smoothed once per scale; the statistics pass and the response pass share it
        smoothed = _smoothed(a, sign, sigma, p.slab_voxels)
        if need_stats:
            stats_code = -2 if p.method == "jerman" else -1
            stats = _run(smoothed, spacing_arr, norm, stats_code, p, 1.0, 0.0, None)
            c = p.c or max(0.5 * float(stats[:, 0].max()), 1e-12)
            rho = p.tau * float(stats[:, 1].max())
            done += 1
            if progress:
                progress(done / steps)
        _run(smoothed, spacing_arr, norm, method, p, c, rho, out)
        del smoothed
        done += 1
        if progress:
            progress(done / steps)
        log.debug("vesselness %s scale %.3g mm done", p.method, scale)
    return out


def _smoothed(a, sign, sigma, slab_voxels):
    """``sign * a`` smoothed with ``sigma`` (voxels per axis): one array in 2D; in 3D a list
    of ``(z0, z1, h0, L)`` slabs along axis 0, each smoothed with a halo of ``4 sigma + 1``
    planes so planes ``z0..z1-1`` (``L[z0-h0 : z1-h0]``) match a whole-volume smoothing."""
    if a.ndim == 2:
        return gaussian_smooth(sign * a.astype(np.float32), sigma)
    halo = int(math.ceil(4 * sigma[0])) + 1
    nz = a.shape[0]
    slabs = []
    for z0 in range(0, nz, slab_voxels):
        z1 = min(z0 + slab_voxels, nz)
        h0, h1 = max(z0 - halo, 0), min(z1 + halo, nz)
        slab = a[h0:h1].astype(np.float32)
        if sign < 0:
            np.negative(slab, out=slab)
        slabs.append((z0, z1, h0, gaussian_smooth(slab, sigma)))
    return slabs


def _run(smoothed, spacing, norm, method, p, c, rho, out):
    """One pass of the Hessian kernels over :func:`_smoothed` output at one scale; returns
    the per-plane statistics (max Frobenius norm or max ``l3``)."""
    if not isinstance(smoothed, list):
        inv = np.array([1 / spacing[0] ** 2, 1 / spacing[1] ** 2,
                        1 / (4 * spacing[0] * spacing[1])])
        stats = np.zeros((smoothed.shape[0], 2))
        _plane2(smoothed, inv, norm, method, p.alpha, p.beta, c, rho,
                out if out is not None else np.zeros((1, 1), np.float32), stats)
        return stats
    sz, sy, sx = spacing
    inv = np.array([1 / sz ** 2, 1 / sy ** 2, 1 / sx ** 2, 1 / (4 * sz * sy), 1 / (4 * sz * sx),
                    1 / (4 * sy * sx)])
    stats = np.zeros((smoothed[-1][1], 2))
    for z0, z1, h0, L in smoothed:
        sub = np.zeros((L.shape[0], 2))
        _slab3(L, z0 - h0, z1 - h0, inv, norm, method, p.alpha, p.beta, c, rho,
               out[z0:z1] if out is not None else np.zeros((1, 1, 1), np.float32), sub)
        stats[z0:z1] = sub[z0 - h0:z1 - h0]
    return stats


def _vesselness_cupy(a, spacing, p):  # pragma: no cover - needs a GPU
    """Optional GPU path: smoothing, Hessian and eigenvalues on the GPU (CuPy), the same
    response kernel as the CPU path applied to the eigenvalues on the host."""
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cndi
    except ImportError:
        raise DependencyError("the cupy vesselness backend needs CuPy and a CUDA GPU: pip "
                              "install cupy-cuda12x (or use backend='cpu')") from None
    sign = -1.0 if p.bright else 1.0
    out = np.zeros(a.shape, np.float32)
    g = cp.asarray(sign * a.astype(np.float32))
    for scale in p.scales_mm:
        L = cndi.gaussian_filter(g, [scale / s for s in spacing], mode="nearest")
        grads = cp.gradient(L, *spacing)
        h = cp.stack([cp.stack(cp.gradient(gi, *spacing), -1) for gi in grads], -1)
        ev = cp.linalg.eigvalsh(h * scale ** p.gamma)
        order = cp.argsort(cp.abs(ev), -1)
        ev = cp.asnumpy(cp.take_along_axis(ev, order, -1)).reshape(-1, a.ndim)
        s = np.sqrt((ev ** 2).sum(1))
        c = p.c or max(0.5 * float(s.max()), 1e-12)
        rho = p.tau * float(ev[:, -1].max())
        resp = _responses(ev.astype(np.float64), a.ndim == 3, _METHOD_CODE[p.method], p.alpha,
                          p.beta, c, rho).reshape(a.shape)
        np.maximum(out, resp, out=out)
    return out


@nb.njit(parallel=True, cache=True)
def _responses(ev, three_d, method, alpha, beta, c, rho):  # pragma: no cover - GPU path
    out = np.empty(ev.shape[0], np.float32)
    last = ev.shape[1] - 1
    for i in nb.prange(ev.shape[0]):
        out[i] = _response(ev[i, 0], ev[i, 1], ev[i, last], three_d, method, alpha, beta, c, rho)
    return out
