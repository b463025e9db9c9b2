"""Power and colour Doppler from clutter-filtered IQ ensembles.

* Power Doppler: mean ``|s|²`` over frames per pixel (linear, or dB re the maximum).
* Colour Doppler: Kasai's lag-one autocorrelation estimator (Kasai et al., "Real-time
  two-dimensional blood flow imaging using an autocorrelation technique", IEEE Trans. Sonics
  Ultrason. 32(3), 1985): ``R1 = Σ_t s[t+1]·conj(s[t])`` and the axial velocity
  ``v = c · PRF · arg(R1) / (4π f0)``; velocities above the Nyquist limit
  ``v_N = c · PRF / (4 f0)`` alias (wrap to the opposite sign).

Sign convention: positive velocity = towards the probe (decreasing depth z), which is a
positive phase rotation of the IQ signal from frame to frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from vasomics.errors import InputError


def power_doppler(blood: np.ndarray, db: bool = False) -> np.ndarray:
    """Power Doppler ``(z, x)`` float32 of a filtered ensemble ``(frames, z, x)``; with ``db``
    in dB relative to the image maximum."""
    blood = np.asarray(blood)
    if blood.ndim != 3:
        raise InputError(f"power Doppler needs (frames, z, x), got shape {blood.shape}")
    pd = np.mean(blood.real.astype(np.float32) ** 2 + blood.imag.astype(np.float32) ** 2, axis=0)
    if db:
        pd = 10 * np.log10(np.maximum(pd, np.finfo(np.float32).tiny) / max(pd.max(), 1e-30))
    return pd.astype(np.float32)


def nyquist_velocity(frame_rate_hz: float, center_frequency_hz: float,
                     sound_speed_m_s: float = 1540.0) -> float:
    """Aliasing limit of the axial velocity in m/s: ``c · PRF / (4 f0)``."""
    return sound_speed_m_s * frame_rate_hz / (4.0 * center_frequency_hz)


def lag_one_autocorrelation(blood: np.ndarray, kernel: tuple[int, int] = (1, 1)) -> tuple[
        np.ndarray, np.ndarray]:
    """``(R0, R1)`` per pixel: power and lag-one autocorrelation summed over frames, optionally
    averaged over a ``(kz, kx)`` pixel kernel (complex averaging before taking the phase)."""
    blood = np.asarray(blood)
    if blood.ndim != 3 or blood.shape[0] < 2:
        raise InputError(f"colour Doppler needs (frames ≥ 2, z, x), got shape {blood.shape}")
    r1 = np.mean(blood[1:] * np.conj(blood[:-1]), axis=0)
    r0 = np.mean(np.abs(blood) ** 2, axis=0)
    if tuple(kernel) != (1, 1):
        r1 = ndimage.uniform_filter(r1.real, kernel) + 1j * ndimage.uniform_filter(r1.imag, kernel)
        r0 = ndimage.uniform_filter(r0, kernel)
    return r0.astype(np.float64), r1.astype(np.complex128)


def color_doppler(blood: np.ndarray, frame_rate_hz: float, center_frequency_hz: float,
                  sound_speed_m_s: float = 1540.0,
                  kernel: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Axial velocity map ``(z, x)`` in m/s (positive towards the probe) by Kasai's estimator;
    values lie within ± :func:`nyquist_velocity`."""
    _, r1 = lag_one_autocorrelation(blood, kernel)
    vn = nyquist_velocity(frame_rate_hz, center_frequency_hz, sound_speed_m_s)
    return (np.angle(r1) / np.pi * vn).astype(np.float32)
