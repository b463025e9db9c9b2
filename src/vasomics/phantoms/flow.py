"""Image-level microbubble flow phantoms for ultrasound localization microscopy (ULM).

A PALA-like simulation (after the in-silico benchmark of Heiles et al., "Performance
benchmarking of microbubble-localization algorithms for ultrasound localization
microscopy", Nat Biomed Eng 6, 2022), written from the paper's description:

* **Grid**: pixels of one wavelength λ (``pixel_size_wl = 1``); all positions are in pixel
  units, ``(z, x)`` with ``z`` the depth row and ``x`` the lateral column, the centre of
  pixel ``(i, j)`` at ``(i, j)``.
* **PSF** (:class:`PSFModel`): the envelope of a plane-wave beamformed point scatterer,
  modelled as a separable Gaussian with axial FWHM 1.2 λ (about a 2-cycle pulse) and lateral
  FWHM 1.5 λ (F-number about 1.5), evaluated analytically at each pixel centre (no
  oversampling, so sub-pixel positions are exact).
* **Noise** (:func:`pala_noise`): ``|IQ| + gaussian_filter(max·10^(c/20) + N(0, √(0.2·
  10^(−0.2)))·max·10^((10+c)/20), σ = 1.5 px)`` with ``max`` the ensemble maximum of
  ``|IQ|`` and ``c`` the clutter level in dB (−60 … −10; "30 dB" SNR means ``c = −30``).
* **Vessels**: polylines with a radius; each bubble keeps a radial offset ``r`` and moves
  along the vessel at the Poiseuille speed ``v_max·(1 − r²/R²)``; bubbles live a random
  number of frames and are respawned so that each frame holds about ``bubbles_per_frame``.
  Geometries: a horseshoe (:func:`horseshoe_vessels`), a gap series of parallel pairs
  (:func:`gap_vessels`) and a small bifurcating tree (:func:`tree_vessels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class PSFModel:
    """Separable Gaussian envelope PSF; FWHMs in pixels (= wavelengths on a λ grid)."""

    fwhm_z: float = 1.2
    fwhm_x: float = 1.5

    @property
    def sigma(self) -> tuple[float, float]:
        return self.fwhm_z / FWHM_PER_SIGMA, self.fwhm_x / FWHM_PER_SIGMA


def render_points(shape: tuple[int, int, int], frames: np.ndarray, z: np.ndarray,
                  x: np.ndarray, amplitude: np.ndarray | float = 1.0,
                  psf: PSFModel = PSFModel(), support: int = 4) -> np.ndarray:
    """Sum of PSFs ``(frames, Z, X)`` float32 for points at ``(frames[k], z[k], x[k])`` (pixel
    units); each PSF is evaluated within ``±support`` pixels of its point (incoherent sum)."""
    F, Z, X = shape
    out = np.zeros(shape, np.float32)
    frames, z, x = (np.asarray(a) for a in (frames, z, x))
    if frames.size == 0:
        return out
    amp = np.broadcast_to(np.asarray(amplitude, dtype=np.float32), z.shape)
    sz, sx = psf.sigma
    off = np.arange(-support, support + 1)
    iz = np.rint(z).astype(int)[:, None] + off[None]
    ix = np.rint(x).astype(int)[:, None] + off[None]
    gz = np.exp(-0.5 * ((iz - z[:, None]) / sz) ** 2)
    gx = np.exp(-0.5 * ((ix - x[:, None]) / sx) ** 2)
    val = amp[:, None, None] * gz[:, :, None] * gx[:, None, :]
    ff = np.broadcast_to(frames[:, None, None], val.shape)
    zz = np.broadcast_to(iz[:, :, None], val.shape)
    xx = np.broadcast_to(ix[:, None, :], val.shape)
    ok = (zz >= 0) & (zz < Z) & (xx >= 0) & (xx < X) & (ff >= 0) & (ff < F)
    np.add.at(out, (ff[ok], zz[ok], xx[ok]), val[ok].astype(np.float32))
    return out


def pala_noise(images: np.ndarray, clutter_db: float, seed: int = 0,
               sigma: float = 1.5) -> np.ndarray:
    """PALA's noise model added to magnitude images ``(frames, Z, X)`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    peak = float(np.max(images))
    sd = np.sqrt(0.2 * 10 ** (-0.2))
    field = (peak * 10 ** (clutter_db / 20)
             + rng.normal(0.0, sd, images.shape) * peak * 10 ** ((10 + clutter_db) / 20))
    return (images + ndimage.gaussian_filter(field, (0, sigma, sigma))).astype(np.float32)


# --------------------------------------------------------------------------- point grid
@dataclass(frozen=True)
class PointGrid:
    """One frame of isolated points: ``image`` (1, Z, X) and true positions ``z``, ``x``."""

    image: np.ndarray
    z: np.ndarray
    x: np.ndarray


def point_grid(n_sub: int = 21, spacing: int = 8, clutter_db: float | None = -30.0,
               psf: PSFModel = PSFModel(), seed: int = 0) -> PointGrid:
    """PALA's point grid: ``n_sub × n_sub`` sub-pixel offsets in [−0.5, 0.5) λ, one isolated
    point each, on a lattice ``spacing`` pixels apart (so their 5×5 patches never overlap)."""
    sub = np.arange(n_sub) / n_sub - 0.5 + 0.5 / n_sub
    dz, dx = np.meshgrid(sub, sub, indexing="ij")
    cz, cx = np.meshgrid(np.arange(n_sub), np.arange(n_sub), indexing="ij")
    margin = spacing
    z = (margin + cz * spacing + dz).ravel()
    x = (margin + cx * spacing + dx).ravel()
    size = 2 * margin + (n_sub - 1) * spacing + 1
    img = render_points((1, size, size), np.zeros(z.size, int), z, x, 1.0, psf)
    if clutter_db is not None:
        img = pala_noise(img, clutter_db, seed)
    return PointGrid(img, z, x)


# --------------------------------------------------------------------------- vessels
@dataclass(frozen=True)
class Vessel:
    """A vessel: centreline polyline ``points`` (P, 2) as (z, x) pixels and radius (pixels)."""

    points: np.ndarray
    radius: float

    def arclength(self) -> np.ndarray:
        seg = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(seg)])

    def at(self, s: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Positions (N, 2) at arclength ``s`` and signed normal offset ``r`` (pixels)."""
        cum = self.arclength()
        s = np.clip(s, 0, cum[-1])
        i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(cum) - 2)
        d = self.points[i + 1] - self.points[i]
        length = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        t = d / length[:, None]
        p = self.points[i] + t * ((s - cum[i]) / length)[:, None] * length[:, None]
        normal = np.stack([-t[:, 1], t[:, 0]], axis=1)
        return p + normal * r[:, None]


def horseshoe_vessels(size: tuple[int, int] = (64, 96), radius: float = 0.6) -> list[Vessel]:
    """A U-shaped vessel: two vertical legs joined by a half circle, plus a straight vessel."""
    Z, X = size
    rc = min(Z, X) * 0.22
    cz, cx = Z * 0.35, X * 0.4
    th = np.linspace(np.pi, 0, 60)
    arc = np.stack([cz - rc * np.sin(th), cx + rc * np.cos(th)], axis=1)
    left = np.stack([np.linspace(Z * 0.9, cz, 20), np.full(20, cx - rc)], axis=1)
    right = np.stack([np.linspace(cz, Z * 0.9, 20), np.full(20, cx + rc)], axis=1)
    shoe = np.concatenate([left, arc[1:], right[1:]])
    straight = np.stack([np.linspace(Z * 0.1, Z * 0.9, 30), np.linspace(X * 0.8, X * 0.9, 30)],
                        axis=1)
    return [Vessel(shoe, radius), Vessel(straight, radius * 0.7)]


def gap_vessels(gaps: tuple[float, ...] = (0.5, 1.0, 1.5), size: tuple[int, int] = (48, 64),
                radius: float = 0.05) -> list[Vessel]:
    """Pairs of parallel vertical vessels whose centrelines are ``gap`` pixels (λ) apart."""
    Z, X = size
    out = []
    xs = np.linspace(X * 0.2, X * 0.8, len(gaps))
    for g, xc in zip(gaps, xs, strict=True):
        for side in (-0.5, 0.5):
            pts = np.array([[Z * 0.1, xc + side * g], [Z * 0.9, xc + side * g]])
            out.append(Vessel(pts, radius))
    return out


def tree_vessels(size: tuple[int, int] = (64, 64), radius: float = 0.5) -> list[Vessel]:
    """A small tree: a trunk bifurcating twice (radii shrink by 2^(−1/3) per generation)."""
    Z, X = size
    root = np.array([Z * 0.9, X * 0.5])
    split = np.array([Z * 0.55, X * 0.5])
    out = [Vessel(np.stack([root, split]), radius)]
    r1 = radius * 2 ** (-1 / 3)
    for sx in (-1, 1):
        tip = split + np.array([-Z * 0.2, sx * X * 0.2])
        out.append(Vessel(np.stack([split, tip]), r1))
        for sx2 in (-1, 1):
            end = tip + np.array([-Z * 0.15, sx2 * X * 0.08])
            out.append(Vessel(np.stack([tip, end]), r1 * 2 ** (-1 / 3)))
    return out


@dataclass(frozen=True)
class FlowPhantom:
    """Simulated ULM acquisition: ``images`` (frames, Z, X) float32 magnitudes, and the truth
    as columnar arrays ``frame``, ``z``, ``x`` (pixels), ``track`` (bubble id) per bubble
    position, plus the ``vessels``."""

    images: np.ndarray
    frame: np.ndarray
    z: np.ndarray
    x: np.ndarray
    track: np.ndarray
    vessels: list[Vessel]


def flow_phantom(vessels: list[Vessel], size: tuple[int, int], n_frames: int = 200,
                 bubbles_per_frame: int = 20, v_max: float = 0.6,
                 lifetime: tuple[int, int] = (10, 40), clutter_db: float | None = -30.0,
                 psf: PSFModel = PSFModel(), seed: int = 0) -> FlowPhantom:
    """Bubbles flowing through ``vessels`` (Poiseuille profile, ``v_max`` pixels/frame on the
    axis), rendered through the PSF with PALA's noise at ``clutter_db`` (None: no noise).

    Each bubble picks a vessel (with probability proportional to length × radius²), a start
    point, a radial offset and a lifetime; it is dropped when it leaves the vessel. New
    bubbles start every frame so that the expected count per frame is ``bubbles_per_frame``.
    """
    rng = np.random.default_rng(seed)
    lengths = np.array([v.arclength()[-1] for v in vessels])
    weight = lengths * np.array([max(v.radius, 0.05) ** 2 for v in vessels])
    weight /= weight.sum()
    mean_life = 0.5 * (lifetime[0] + lifetime[1])
    n_bubbles = int(np.ceil(bubbles_per_frame * (n_frames + lifetime[1]) / mean_life))
    frames, zs, xs, ids = [], [], [], []
    which = rng.choice(len(vessels), n_bubbles, p=weight)
    start = rng.integers(-lifetime[1], n_frames, n_bubbles)
    life = rng.integers(lifetime[0], lifetime[1] + 1, n_bubbles)
    for vi, v in enumerate(vessels):
        sel = np.flatnonzero(which == vi)
        if sel.size == 0:
            continue
        s0 = rng.uniform(0, lengths[vi], sel.size)
        r = v.radius * np.sqrt(rng.uniform(0, 1, sel.size)) * rng.choice([-1, 1], sel.size)
        speed = v_max * (1 - (r / max(v.radius, 1e-9)) ** 2)
        t = np.arange(lifetime[1] + 1)
        s = s0[:, None] + speed[:, None] * t[None]
        f = start[sel, None] + t[None]
        alive = (t[None] < life[sel, None]) & (s <= lengths[vi]) & (f >= 0) & (f < n_frames)
        b = np.broadcast_to(sel[:, None], s.shape)[alive]
        pos = v.at(s[alive], np.broadcast_to(r[:, None], s.shape)[alive])
        frames.append(f[alive])
        zs.append(pos[:, 0])
        xs.append(pos[:, 1])
        ids.append(b)
    frame = np.concatenate(frames)
    order = np.lexsort((np.concatenate(ids), frame))
    frame = frame[order]
    z, x, track = (np.concatenate(a)[order] for a in (zs, xs, ids))
    brightness = rng.uniform(0.6, 1.0, n_bubbles)
    images = render_points((n_frames, *size), frame, z, x, brightness[track], psf)
    if clutter_db is not None:
        images = pala_noise(images, clutter_db, seed + 1)
    return FlowPhantom(images, frame, z, x, track, vessels)


# --------------------------------------------------------------------------- IQ level
@dataclass(frozen=True)
class SteeredAcquisition:
    """Parameters of :func:`steered_iq` (lengths mm, angles degrees, frequencies Hz).

    ``angles`` lists (transmit, receive) steering pairs. The beamformer assumes
    ``sound_speed_m_s``; the medium may differ (``medium_sound_speed_m_s``), which bends the
    transmitted angle (Snell: sin α_medium = sin α · c_medium / c). The echo spectrum is
    centred ``(1 − spectrum_shift)·f0`` (frequency-dependent attenuation), received over an
    aperture of half-angle atan(1 / (2·f_number)) around the receive angle, weighted by a
    Hann apodization and the element directivity ``cos β · sinc(element_width · sin β / λ)``.
    """

    center_frequency_hz: float = 5e6
    fractional_bandwidth: float = 0.6
    sound_speed_m_s: float = 1540.0
    medium_sound_speed_m_s: float = 1540.0
    spectrum_shift: float = 0.1
    f_number: float = 1.0
    element_width_wl: float = 1.0
    frame_rate_hz: float = 10_000.0
    angles: tuple[tuple[float, float], ...] = ((-15.0, -15.0), (0.0, 0.0), (15.0, 15.0))

    @property
    def wavelength_mm(self) -> float:
        return self.sound_speed_m_s / self.center_frequency_hz * 1e3


def _psf_spectrum(acq: SteeredAcquisition, tx: float, rx: float, kz: np.ndarray,
                  kx: np.ndarray) -> np.ndarray:
    """Baseband PSF spectrum on the FFT grid (rad/mm) for one (tx, rx) pair.

    Each RF wave vector κ = k_f·(t + r) of the two-way spectrum is produced by exactly one
    temporal frequency (k_f = |κ|² / (2 κ·t)) and one receive direction r = κ/k_f − t, so the
    spectrum is evaluated densely on the grid: weight = pulse spectrum(f) × apodization(β) ×
    directivity(β).
    """
    c, cm = acq.sound_speed_m_s, acq.medium_sound_speed_m_s
    f0 = acq.center_frequency_hz
    fc = f0 * (1 - acq.spectrum_shift)
    sd = acq.fractional_bandwidth * fc / FWHM_PER_SIGMA
    alpha = np.arcsin(np.clip(np.sin(np.radians(tx)) * cm / c, -1, 1))
    t = np.array([np.cos(alpha), np.sin(alpha)])
    kd = 4 * np.pi * f0 / (c * 1e3)
    KZ, KX = np.meshgrid(kz + kd, kx, indexing="ij")  # RF wave vectors of the grid
    dot = KZ * t[0] + KX * t[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        kf = (KZ ** 2 + KX ** 2) / (2 * dot)
        rz, rx_ = KZ / kf - t[0], KX / kf - t[1]
    beta = np.arctan2(rx_, rz)
    f = kf * c * 1e3 / (2 * np.pi)
    half = np.arctan(1 / (2 * acq.f_number))
    u = (beta - np.radians(rx)) / half
    apod = np.where(np.abs(u) <= 1, 0.5 * (1 + np.cos(np.pi * np.clip(u, -1, 1))), 0.0)
    directivity = np.clip(np.cos(beta) * np.sinc(acq.element_width_wl * np.sin(beta)), 0, None)
    H = np.exp(-0.5 * ((f - fc) / sd) ** 2) * apod * directivity
    H = np.where((dot > 0) & np.isfinite(H), H, 0.0)
    return H / H.max()


def steered_iq(positions, shape: tuple[int, int], pixel_mm: float,
               acq: SteeredAcquisition = SteeredAcquisition(), n_frames: int = 32,
               amplitudes: np.ndarray | None = None, noise_db: float | None = -40.0,
               pad: int = 24, seed: int = 0, static_positions: np.ndarray | None = None,
               static_amplitudes: np.ndarray | float = 1.0) -> np.ndarray:
    """Beamformed baseband IQ ``(angles, frames, Z, X)`` complex64 of point scatterers.

    ``positions(t)`` returns scatterer positions ``(N, 2)`` as (z, x) mm at time ``t`` s
    (pixel (0, 0) at (0, 0) mm); each frame is the linear image of the scatterers through
    the steered PSF (:class:`SteeredAcquisition`), computed in k-space on a grid padded by
    ``pad`` pixels (scatterers outside it alias in from the opposite side: keep the flow
    inside the padded field). ``noise_db`` adds white complex noise relative to the mean
    signal power. ``static_positions`` ``(M, 2)`` mm are motionless scatterers (tissue) with
    ``static_amplitudes``, computed once.
    """
    rng = np.random.default_rng(seed)
    Z, X = shape
    NZ, NX = Z + 2 * pad, X + 2 * pad
    kz = 2 * np.pi * np.fft.fftfreq(NZ, pixel_mm)
    kx = 2 * np.pi * np.fft.fftfreq(NX, pixel_mm)
    Hs = [_psf_spectrum(acq, tx, rx, kz, kx) for tx, rx in acq.angles]
    support = np.zeros((NZ, NX), bool)
    for H in Hs:
        support |= H > 1e-6
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    # scatterer spectrum at the RF wave numbers: demodulation multiplies the image by
    # exp(−i·kd·z) at fixed pixels, so motion phases follow the RF wave vector
    kd = 4 * np.pi * acq.center_frequency_hz / (acq.sound_speed_m_s * 1e3)
    def spectrum(p, a):
        zz, xx = p[:, 0] + pad * pixel_mm, p[:, 1] + pad * pixel_mm
        Ez = np.exp(-1j * (kz[rows, None] + kd) * zz[None]).astype(np.complex64)
        Ex = np.exp(-1j * xx[:, None] * kx[None, cols]).astype(np.complex64)
        return (Ez * np.asarray(a, np.float32)[None]) @ Ex

    static = 0
    if static_positions is not None:
        sp = np.asarray(static_positions, float)
        static = spectrum(sp, np.broadcast_to(static_amplitudes, (len(sp),)))
    out = np.zeros((len(Hs), n_frames, Z, X), np.complex64)
    # the per-frame products are small: BLAS threads only spin (measured 5× CPU time)
    with threadpool_limits(limits=1, user_api="blas"):
        for t in range(n_frames):
            p = np.asarray(positions(t / acq.frame_rate_hz), float)
            a = np.ones(len(p)) if amplitudes is None else amplitudes
            S = np.zeros((NZ, NX), np.complex64)
            S[np.ix_(rows, cols)] = spectrum(p, a) + static
            for i, H in enumerate(Hs):
                img = np.fft.ifft2(S * H)
                out[i, t] = img[pad:pad + Z, pad:pad + X]
    if noise_db is not None:
        power = np.mean(np.abs(out) ** 2)
        sd = np.sqrt(power * 10 ** (noise_db / 10) / 2)
        out += (rng.normal(0, sd, out.shape) + 1j * rng.normal(0, sd, out.shape)).astype(
            np.complex64)
    return out


def poiseuille_tube(center_mm: tuple[float, float], angle_deg: float, radius_mm: float,
                    v_max_m_s: float, length_mm: float, density_per_mm2: float = 60.0,
                    seed: int = 0):
    """Scatterers in a straight tube (axis through ``center_mm`` (z, x) at ``angle_deg``
    from the lateral x axis, towards +x and −z for positive angles) with Poiseuille flow;
    returns ``positions(t)`` for :func:`steered_iq` and the velocity function
    ``velocity(z, x) -> (vz, vx)`` in m/s (zero outside the lumen). Scatterers leaving one
    end re-enter at the other (periodic along the axis)."""
    rng = np.random.default_rng(seed)
    n = int(density_per_mm2 * 2 * radius_mm * length_mm)
    s0 = rng.uniform(-length_mm / 2, length_mm / 2, n)
    r = rng.uniform(-radius_mm, radius_mm, n)
    th = np.radians(angle_deg)
    axis = np.array([-np.sin(th), np.cos(th)])  # (z, x)
    normal = np.array([np.cos(th), np.sin(th)])
    speed_mm_s = v_max_m_s * 1e3 * (1 - (r / radius_mm) ** 2)
    c = np.asarray(center_mm, float)

    def positions(t: float) -> np.ndarray:
        s = (s0 + speed_mm_s * t + length_mm / 2) % length_mm - length_mm / 2
        return c + s[:, None] * axis + r[:, None] * normal

    def velocity(z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = (np.asarray(z) - c[0]) * normal[0] + (np.asarray(x) - c[1]) * normal[1]
        v = np.where(np.abs(d) < radius_mm, v_max_m_s * (1 - (d / radius_mm) ** 2), 0.0)
        return v * axis[0], v * axis[1]

    return positions, velocity


def rotating_disk(center_mm: tuple[float, float], radius_mm: float, omega_rad_s: float,
                  density_per_mm2: float = 60.0, seed: int = 0):
    """Scatterers in a disk rotating rigidly at ``omega_rad_s`` (counter-clockwise in the
    (x, −z) display plane); returns ``positions(t)`` and ``velocity(z, x)`` (m/s)."""
    rng = np.random.default_rng(seed)
    n = int(density_per_mm2 * np.pi * radius_mm ** 2)
    r = radius_mm * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    c = np.asarray(center_mm, float)

    def positions(t: float) -> np.ndarray:
        a = phi + omega_rad_s * t
        return c + np.stack([r * np.sin(a), r * np.cos(a)], axis=1)

    def velocity(z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dz, dx = np.asarray(z) - c[0], np.asarray(x) - c[1]
        inside = np.hypot(dz, dx) < radius_mm
        vz = np.where(inside, omega_rad_s * dx * 1e-3, 0.0)
        vx = np.where(inside, -omega_rad_s * dz * 1e-3, 0.0)
        return vz, vx

    return positions, velocity
