"""Vector flow imaging: multi-angle Doppler → 2D velocity, uncertainty, dealiasing, wall shear,
vorticity and flow dispersion.

Model. For steering pair ``a`` (transmit and/or receive steered; Dunmire et al., "Cross-beam
vector Doppler ultrasound for angle-independent velocity measurements", UMB 26(8), 2000;
Yiu, Lai & Yu, "Vector projectile imaging", IEEE TUFFC 61(8), 2014; Ekroll et al.,
"Combined vector velocity and spectral Doppler imaging for improved imaging of complex
blood flow in the carotid arteries", UMB 40(7), 2014) the lag-one autocorrelation phase of
the clutter-filtered IQ is ``φ_a = −T · k_a · v`` with ``T`` the frame interval, ``v = (v_z,
v_x)`` and ``k_a`` the *effective* wave vector of that pair (the centroid of the RF point-
spread spectrum; positive phase = motion towards the probe). The velocity is the weighted
least-squares solution over all pairs.

Calibration. Nominal wave vectors ``k_a = 2π f0 / c · (cos α + cos β, sin α + sin β)``
ignore the element directivity, apodization, the attenuation-downshifted centre frequency
and sound-speed errors, and bias the lateral velocity. vasomics estimates ``k_a`` from the
data (:func:`calibrate_wavevectors`, method ``speckle``): the phase of the spatial lag-one
autocorrelation of the IQ along z and x is the power-weighted centroid of the baseband
spectrum, and adding the demodulation wave number ``4π f0 / c`` along z gives the effective
RF wave vector (Jensen & Munk's lateral-oscillation reasoning applied to each steering).
With a flow of known velocity (a rotating-disk or string phantom) method ``reference``
fits ``k_a`` by least squares instead (:func:`calibrate_from_reference`).

Uncertainty: each pair's phase variance is modelled from its correlation coefficient
``ρ = |R1| / R0`` as ``(1 − ρ²) / (2 n ρ²)`` (n = samples averaged), which sets the
least-squares weights ``W``; the velocity covariance is ``s² (Aᵀ W A)⁻¹`` with ``s²`` the
fit's reduced χ² averaged over ``uncertainty_window`` pixels (≥ 3 pairs; with 2 pairs
``s² = 1``). The scaling matters: speckle makes the frames of an ensemble far from
independent, and the ρ model alone underestimated the velocity SD about five-fold in
simulation, while the residual-scaled SD matched the spread over independent realizations
within 10 %. Dealiasing (≥ 3 pairs): every combination of phase
wraps ``φ_a + 2π m_a`` with ``m_a ∈ {−1, 0, 1}`` is solved; a wrapped solution replaces the
unwrapped one only where some phase exceeds π/2 in magnitude, the unwrapped weighted
residual is implausible (χ² > 16) and the wrapped one is at least ten times smaller. This resolves wraps of *some* pairs (the
redundancy detects them); a wrap common to all pairs with similar axial wave numbers is
nearly invisible to the residual and is left alone (it needs a spatial continuity prior).

Units: positions mm, velocities m/s, shear rate and vorticity 1/s, shear stress Pa. Arrays
are ``(z, x)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.errors import InputError
from vasomics.params import StageParams
from vasomics.ultrasound.doppler import lag_one_autocorrelation


class VFIParams(StageParams):
    """Parameters of vector flow imaging (section ``vfi``)."""

    calibration: Literal["speckle", "nominal"] = Field(
        "speckle", description="Effective wave vectors from the data ('speckle') or from the "
        "nominal steering angles ('nominal', biased; for comparison only).")
    kernel: tuple[int, int] = Field((3, 3), description="Pixels (z, x) averaged into each "
                                    "autocorrelation estimate.")
    dealias: bool = Field(False, description="Resolve phase wraps from the redundancy of ≥ 3 "
                          "steering pairs (enable when velocities approach the Nyquist "
                          "limit; off by default because on noisy pixels it can pick "
                          "spurious wraps).")
    blood_threshold_db: float = Field(-20.0, le=0, description="Blood mask: power Doppler "
                                      "within this many dB of its 99th percentile.")
    viscosity_pa_s: float = Field(4.0e-3, gt=0, description="Blood dynamic viscosity for "
                                  "wall shear stress (Pa·s).")
    wall_exclusion_mm: float = Field(0.6, ge=0, description="Band (mm) next to each detected "
                                     "wall left out of the profile fit (PSF and kernel blur).")
    wall_max_depth_mm: float = Field(8.0, gt=0, description="Longest chord (mm) sampled along "
                                     "the inward normal of a wall point.")
    uncertainty_window: int = Field(9, ge=3, description="Window (pixels) over which the "
                                    "fit's reduced χ² is averaged to scale the velocity "
                                    "uncertainty.")
    dispersion_window: int = Field(5, ge=3, description="Window (pixels) of the flow-"
                                   "dispersion index.")


@dataclass(frozen=True)
class VectorField:
    """2D velocity (m/s) with its 1-σ uncertainty per component, blood mask and wave vectors
    used (rad/mm, rows (k_z, k_x) per steering pair)."""

    vz: np.ndarray
    vx: np.ndarray
    sd_z: np.ndarray
    sd_x: np.ndarray
    mask: np.ndarray
    wavevectors: np.ndarray

    @property
    def speed(self) -> np.ndarray:
        return np.hypot(self.vz, self.vx)


def nominal_wavevectors(angles_deg, center_frequency_hz: float,
                        sound_speed_m_s: float = 1540.0) -> np.ndarray:
    """``(n, 2)`` nominal (k_z, k_x) in rad/mm for (transmit, receive) angle pairs."""
    a = np.radians(np.asarray(angles_deg, float).reshape(-1, 2))
    k = 2 * np.pi * center_frequency_hz / (sound_speed_m_s * 1e3)
    return k * np.stack([np.cos(a[:, 0]) + np.cos(a[:, 1]),
                         np.sin(a[:, 0]) + np.sin(a[:, 1])], axis=1)


def calibrate_wavevectors(iq: np.ndarray, pixel_size_mm: tuple[float, float],
                          center_frequency_hz: float, sound_speed_m_s: float = 1540.0,
                          weight: np.ndarray | None = None) -> np.ndarray:
    """Effective wave vectors ``(n, 2)`` (k_z, k_x) rad/mm from the speckle of each steering
    pair's IQ ``(n, frames, z, x)`` (see module docstring); ``weight`` (z, x) restricts the
    estimate (e.g. to the blood mask)."""
    iq = np.asarray(iq)
    if iq.ndim != 4:
        raise InputError(f"calibration needs IQ (pairs, frames, z, x), got shape {iq.shape}")
    dz, dx = pixel_size_mm
    w = np.ones(iq.shape[2:]) if weight is None else np.asarray(weight, float)
    kd = 4 * np.pi * center_frequency_hz / (sound_speed_m_s * 1e3)
    out = []
    for s in iq:
        rz = np.sum((s[:, 1:, :] * np.conj(s[:, :-1, :])).sum(0) * w[1:, :] * w[:-1, :])
        rx = np.sum((s[:, :, 1:] * np.conj(s[:, :, :-1])).sum(0) * w[:, 1:] * w[:, :-1])
        out.append([np.angle(rz) / dz + kd, np.angle(rx) / dx])
    return np.asarray(out)


def calibrate_from_reference(phases: np.ndarray, vz: np.ndarray, vx: np.ndarray,
                             frame_rate_hz: float) -> np.ndarray:
    """Least-squares wave vectors ``(n, 2)`` rad/mm from measured phases ``(n, z, x)`` and a
    known velocity field (m/s) over the pixels where it is non-zero."""
    sel = (np.hypot(vz, vx) > 0)
    V = -np.stack([vz[sel], vx[sel]], axis=1) * 1e3 / frame_rate_hz  # mm per frame
    return np.stack([np.linalg.lstsq(V, p[sel], rcond=None)[0] for p in phases])


def _blood_mask(power: np.ndarray, threshold_db: float) -> np.ndarray:
    ref = np.percentile(power, 99)
    return power >= ref * 10 ** (threshold_db / 10)


def vector_velocity(iq: np.ndarray, pixel_size_mm: tuple[float, float], frame_rate_hz: float,
                    center_frequency_hz: float, angles_deg=None,
                    sound_speed_m_s: float = 1540.0, params: VFIParams | None = None,
                    wavevectors: np.ndarray | None = None) -> VectorField:
    """2D velocity from clutter-filtered multi-angle IQ ``(pairs, frames, z, x)``.

    ``angles_deg`` ((transmit, receive) per pair) is needed for ``nominal`` calibration;
    ``wavevectors`` overrides any calibration (e.g. from :func:`calibrate_from_reference`).
    """
    params = params or VFIParams()
    iq = np.asarray(iq)
    if iq.ndim != 4 or iq.shape[0] < 2:
        raise InputError(f"vector flow needs IQ (pairs ≥ 2, frames, z, x), got {iq.shape}")
    if not np.iscomplexobj(iq):
        raise InputError("vector flow needs complex IQ")
    n = iq.shape[0]
    r0s, r1s = zip(*(lag_one_autocorrelation(s, params.kernel) for s in iq), strict=True)
    r0, r1 = np.stack(r0s), np.stack(r1s)
    mask = _blood_mask(r0.mean(axis=0), params.blood_threshold_db)
    if wavevectors is not None:
        K = np.asarray(wavevectors, float)
    elif params.calibration == "nominal":
        if angles_deg is None:
            raise InputError("nominal calibration needs the steering angles")
        K = nominal_wavevectors(angles_deg, center_frequency_hz, sound_speed_m_s)
    else:
        K = calibrate_wavevectors(iq, pixel_size_mm, center_frequency_hz, sound_speed_m_s,
                                  weight=mask.astype(float))
    if K.shape != (n, 2):
        raise InputError(f"need one wave vector per steering pair ({n}), got {K.shape}")
    T = 1.0 / frame_rate_hz
    A = -T * K * 1e3  # phase per (m/s): k rad/mm × 1e3 mm/m × T s
    phi = np.angle(r1).reshape(n, -1)
    rho = np.clip(np.abs(r1) / np.maximum(r0, 1e-30), 1e-3, 0.999).reshape(n, -1)
    n_ind = max(iq.shape[1] - 1, 1) * np.prod(params.kernel) / 2.0
    var = (1 - rho ** 2) / (2 * n_ind * rho ** 2)
    W = 1.0 / var  # (n, P)
    # weighted normal equations per pixel
    AtWA = np.einsum("ni,np,nj->pij", A, W, A)
    cov = np.linalg.inv(AtWA + 1e-12 * np.eye(2)[None])
    v = np.einsum("pij,nj,np,np->pi", cov, A, W, phi)
    if params.dealias and n >= 3:
        v = _dealias(phi, A, W, cov, v)
    shape = iq.shape[2:]
    if n >= 3:  # scale by the locally averaged reduced χ² of the fit
        res = np.angle(np.exp(1j * (phi - A @ v.T)))
        chi2 = (np.sum(W * res ** 2, axis=0) / (n - 2)).reshape(shape)
        scale = ndimage.uniform_filter(chi2, params.uncertainty_window).ravel()
        cov = cov * scale[:, None, None]
    vz, vx = v[:, 0].reshape(shape), v[:, 1].reshape(shape)
    sd_z = np.sqrt(cov[:, 0, 0]).reshape(shape)
    sd_x = np.sqrt(cov[:, 1, 1]).reshape(shape)
    return VectorField(vz, vx, sd_z, sd_x, mask, K)


def _dealias(phi, A, W, cov, v0, accept_ratio: float = 0.1, min_chi2: float = 16.0):
    """Replace ``v0`` where a combination of phase wraps fits far better (see module doc)."""
    n = phi.shape[0]

    def cost_of(p):
        v = np.einsum("pij,nj,np,np->pi", cov, A, W, p)
        return v, np.sum(W * (p - A @ v.T) ** 2, axis=0)

    _, cost0 = cost_of(phi)
    best_cost, best = cost0.copy(), v0.copy()
    for m in itertools.product((-1, 0, 1), repeat=n):
        if not any(m):
            continue
        v, cost = cost_of(phi + 2 * np.pi * np.asarray(m, float)[:, None])
        better = cost < best_cost
        best_cost = np.where(better, cost, best_cost)
        best[better] = v[better]
    near_wrap = np.abs(phi).max(axis=0) > np.pi / 2
    use = (cost0 > min_chi2) & (best_cost < accept_ratio * cost0) & near_wrap
    return np.where(use[:, None], best, v0)


# --------------------------------------------------------------------------- derived fields
def vorticity(vz: np.ndarray, vx: np.ndarray, pixel_size_mm: tuple[float, float]) -> np.ndarray:
    """``∂v_z/∂x − ∂v_x/∂z`` in 1/s (2Ω for a rigid rotation of rate Ω in the sense of
    :func:`vasomics.phantoms.flow.rotating_disk`)."""
    dz, dx = pixel_size_mm
    return (np.gradient(vz, dx, axis=1) - np.gradient(vx, dz, axis=0)) * 1e3


def flow_dispersion_index(vz: np.ndarray, vx: np.ndarray, mask: np.ndarray,
                          window: int = 5) -> np.ndarray:
    """Local flow-dispersion (turbulence) index ``1 − |⟨v⟩| / ⟨|v|⟩`` over a ``window``² box
    of blood pixels: 0 for uniform (laminar) flow, towards 1 for disordered directions."""
    m = np.asarray(mask, float)
    mz = ndimage.uniform_filter(vz * m, window)
    mx = ndimage.uniform_filter(vx * m, window)
    ms = ndimage.uniform_filter(np.hypot(vz, vx) * m, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        fdi = 1 - np.hypot(mz, mx) / ms
    return np.where(mask & (ms > 0), np.clip(fdi, 0, 1), np.nan)


@dataclass(frozen=True)
class WallShear:
    """Wall shear rate (1/s) and stress (Pa) at wall pixels ``(z, x)`` (pixel indices)."""

    z: np.ndarray
    x: np.ndarray
    shear_rate: np.ndarray
    shear_stress: np.ndarray

    @property
    def median_shear_rate(self) -> float:
        return float(np.nanmedian(self.shear_rate)) if self.shear_rate.size else float("nan")


def wall_shear(field: VectorField, pixel_size_mm: tuple[float, float],
               params: VFIParams | None = None, mask: np.ndarray | None = None) -> WallShear:
    """Wall shear rate and stress at the walls of the blood mask.

    For each wall pixel (blood pixel touching background) the speed is sampled along the
    inward normal (gradient of the smoothed signed distance) across the lumen to the
    opposite wall; leaving out ``wall_exclusion_mm`` at both ends (where the PSF blurs the
    profile), a quadratic ``v(s)`` is fitted and extrapolated to its zero crossing near the
    wall (the no-slip wall, which need not coincide with the blurred mask edge); the shear
    rate is the slope there. Exact for Poiseuille profiles; for blunter profiles it
    underestimates.
    """
    params = params or VFIParams()
    mask = field.mask if mask is None else np.asarray(mask, bool)
    mask = ndimage.binary_opening(ndimage.binary_fill_holes(mask), iterations=1)
    dz, dx = pixel_size_mm
    sdist = (ndimage.distance_transform_edt(mask, sampling=(dz, dx))
             - ndimage.distance_transform_edt(~mask, sampling=(dz, dx)))
    sm = ndimage.gaussian_filter(sdist, 1.0)
    gz, gx = np.gradient(sm, dz, dx)
    wall = mask & ~ndimage.binary_erosion(mask)
    wz, wx = np.nonzero(wall)
    norm = np.hypot(gz[wz, wx], gx[wz, wx])
    ok = norm > 1e-6
    wz, wx = wz[ok], wx[ok]
    nz, nx = gz[wz, wx] / norm[ok], gx[wz, wx] / norm[ok]
    step = 0.25 * min(dz, dx)
    s = np.arange(0.0, params.wall_max_depth_mm, step)
    pz = wz[:, None] + nz[:, None] * s[None] / dz
    px = wx[:, None] + nx[:, None] * s[None] / dx
    speed = np.hypot(np.nan_to_num(field.vz), np.nan_to_num(field.vx))
    prof = ndimage.map_coordinates(speed, [pz.ravel(), px.ravel()], order=1,
                                   mode="nearest").reshape(pz.shape)
    inside = ndimage.map_coordinates(mask.astype(float), [pz.ravel(), px.ravel()], order=0,
                                     mode="constant").reshape(pz.shape) > 0
    # chord: from the wall pixel to where the normal first leaves the lumen
    out = ~inside
    out[:, -1] = True
    chord = s[np.argmax(out, axis=1)]
    ex = params.wall_exclusion_mm
    use = (s[None] >= ex) & (s[None] <= chord[:, None] - ex)
    w = use.astype(float)
    X = np.stack([np.ones_like(s), s, s ** 2], axis=1)
    XtWX = np.einsum("si,ps,sj->pij", X, w, X)
    XtWy = np.einsum("si,ps,ps->pi", X, w, prof)
    ok_fit = use.sum(axis=1) >= 6
    XtWX[~ok_fit] = np.eye(3)
    coef = np.linalg.solve(XtWX, XtWy[:, :, None])[:, :, 0].T  # (3, n_wall)
    c0, c1, c2 = coef
    disc = c1 ** 2 - 4 * c2 * c0
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.sqrt(np.maximum(disc, 0))
        roots = np.stack([(-c1 + sq) / (2 * c2), (-c1 - sq) / (2 * c2)])
        lin = -c0 / c1
    roots = np.where(np.abs(c2) > 1e-12, roots, lin)
    # the zero crossing nearest the wall pixel, before the fitted range starts
    pick = np.argmin(np.where(roots < ex, np.abs(roots), np.inf), axis=0)
    s0 = roots[pick, np.arange(roots.shape[1])]
    rate = (c1 + 2 * c2 * s0) * 1e3  # (m/s)/mm -> 1/s
    good = np.isfinite(rate) & (disc >= 0) & ok_fit & (rate > 0)
    rate = np.where(good, rate, np.nan)
    return WallShear(wz, wx, rate, rate * params.viscosity_pa_s)
