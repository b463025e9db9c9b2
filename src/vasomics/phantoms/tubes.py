"""Single-vessel phantoms with analytic geometry: straight tube, arc, helix, sinusoid.

All lengths in mm, angles in degrees, curvature and torsion in 1/mm. Each generator builds the
axis in a local frame centred near the origin, applies ``rotation`` (a ``(d, d)`` matrix, see
:func:`~vasomics.phantoms.truth.rotation_matrix`), and rasterizes it on a grid of the given
``spacing`` (NumPy order, mm) that just holds the tube. The axis is sampled every
``step_mm`` (default: a quarter of the smallest voxel) so the rasterized tube is smooth.
"""

from __future__ import annotations

import numpy as np

from vasomics.errors import InputError
from vasomics.phantoms.truth import Phantom, place_on_grid


def _step(spacing, step_mm) -> float:
    return float(step_mm) if step_mm else min(spacing) / 4


def _check_positive(**kwargs) -> None:
    for name, value in kwargs.items():
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"phantom parameter {name} must be positive, got {value}")


def straight_tube(length_mm: float = 30.0, radius_mm: float = 3.0, spacing=(1.0, 1.0, 1.0), *,
                  rotation=None, step_mm: float | None = None) -> Phantom:
    """A cylinder of axis length ``length_mm`` and radius ``radius_mm`` with flat ends.

    Truth values: ``length_mm``, ``radius_mm``, ``curvature_per_mm`` = 0,
    ``torsion_per_mm`` = 0 (3D), ``chord_mm`` = ``length_mm``.
    """
    _check_positive(length_mm=length_mm, radius_mm=radius_mm)
    ndim = len(spacing)
    n = max(2, int(np.ceil(length_mm / _step(spacing, step_mm))) + 1)
    axis = np.zeros((n, ndim))
    axis[:, 0] = np.linspace(-length_mm / 2, length_mm / 2, n)
    values = {"length_mm": length_mm, "radius_mm": radius_mm, "curvature_per_mm": 0.0,
              "chord_mm": length_mm}
    if ndim == 3:
        values["torsion_per_mm"] = 0.0
    return place_on_grid([axis], [radius_mm], [-1], spacing, rotation=rotation, values=values,
                         name="straight_tube")


def arc_tube(bend_radius_mm: float = 20.0, angle_deg: float = 120.0, radius_mm: float = 2.5,
             spacing=(1.0, 1.0, 1.0), *, rotation=None, step_mm: float | None = None) -> Phantom:
    """A tube along a circular arc of radius ``bend_radius_mm`` spanning ``angle_deg``.

    Truth: ``length_mm`` = R θ, ``curvature_per_mm`` = 1/R, ``torsion_per_mm`` = 0,
    ``chord_mm`` = 2 R sin(θ/2), ``radius_mm``.
    """
    _check_positive(bend_radius_mm=bend_radius_mm, angle_deg=angle_deg, radius_mm=radius_mm)
    if radius_mm >= bend_radius_mm or angle_deg >= 360:
        raise InputError("arc phantom needs radius_mm < bend_radius_mm and angle_deg < 360")
    ndim = len(spacing)
    theta = np.deg2rad(angle_deg)
    length = bend_radius_mm * theta
    n = max(3, int(np.ceil(length / _step(spacing, step_mm))) + 1)
    t = np.linspace(-theta / 2, theta / 2, n)
    axis = np.zeros((n, ndim))
    axis[:, 0] = bend_radius_mm * np.sin(t)
    axis[:, 1] = bend_radius_mm * (1 - np.cos(t))
    values = {"length_mm": length, "radius_mm": radius_mm,
              "curvature_per_mm": 1 / bend_radius_mm,
              "chord_mm": 2 * bend_radius_mm * np.sin(theta / 2)}
    if ndim == 3:
        values["torsion_per_mm"] = 0.0
    return place_on_grid([axis], [radius_mm], [-1], spacing, rotation=rotation, values=values,
                         name="arc_tube")


def helix_tube(helix_radius_mm: float = 8.0, pitch_mm: float = 25.0, turns: float = 2.0,
               radius_mm: float = 1.5, spacing=(0.5, 0.5, 0.5), *, rotation=None,
               step_mm: float | None = None) -> Phantom:
    """A tube along the helix ``(a cos t, a sin t, b t)`` with ``a = helix_radius_mm`` and
    pitch ``2 π b = pitch_mm``, over ``turns`` turns (3D only).

    Truth: ``curvature_per_mm`` = a / (a² + b²), ``torsion_per_mm`` = b / (a² + b²),
    ``length_mm`` = 2 π turns √(a² + b²), ``radius_mm``, ``chord_mm``.
    """
    _check_positive(helix_radius_mm=helix_radius_mm, pitch_mm=pitch_mm, turns=turns,
                    radius_mm=radius_mm)
    if len(spacing) != 3:
        raise InputError("a helix phantom is 3D: give three spacings")
    a, b = float(helix_radius_mm), pitch_mm / (2 * np.pi)
    c = np.hypot(a, b)
    length = 2 * np.pi * turns * c
    n = max(3, int(np.ceil(length / _step(spacing, step_mm))) + 1)
    t = np.linspace(0, 2 * np.pi * turns, n)
    axis = np.column_stack([a * np.cos(t), a * np.sin(t), b * (t - t[-1] / 2)])
    values = {"length_mm": length, "radius_mm": radius_mm, "curvature_per_mm": a / c**2,
              "torsion_per_mm": b / c**2, "chord_mm": float(np.linalg.norm(axis[-1] - axis[0]))}
    return place_on_grid([axis], [radius_mm], [-1], spacing, rotation=rotation, values=values,
                         name="helix_tube")


def sinusoid_tube(amplitude_mm: float = 5.0, wavelength_mm: float = 30.0, periods: int = 2,
                  radius_mm: float = 1.5, spacing=(0.5, 0.5, 0.5), *, rotation=None,
                  step_mm: float | None = None, lead_mm: float = 0.0) -> Phantom:
    """A planar tube along ``y = A sin(2 π x / λ)`` for ``x`` in ``[λ/4, λ/4 + periods λ]``.

    The ends sit on crests (curvature extremes), so the curvature changes sign exactly at the
    ``2 periods`` interior zero crossings: truth ``inflection_count`` = 2 × ``periods``.
    ``lead_mm`` > 0 continues both crests straight along their tangent for that length
    (tangent-continuous; curvature drops to 0, no sign change, same inflection count), so the
    end half-waves lie away from the vessel ends, where mask-derived centerlines are
    extrapolated. Also ``length_mm`` (numerical quadrature of the arc length, plus the
    leads), ``chord_mm``, ``max_curvature_per_mm`` = A (2π/λ)², ``radius_mm``,
    ``torsion_per_mm`` = 0 (3D).
    """
    _check_positive(amplitude_mm=amplitude_mm, wavelength_mm=wavelength_mm, periods=periods,
                    radius_mm=radius_mm)
    if not (np.isfinite(lead_mm) and lead_mm >= 0):
        raise InputError(f"phantom parameter lead_mm must be >= 0, got {lead_mm}")
    ndim = len(spacing)
    k = 2 * np.pi / wavelength_mm
    x0, x1 = wavelength_mm / 4, wavelength_mm / 4 + periods * wavelength_mm
    fine = np.linspace(x0, x1, 200_001)
    speed = np.sqrt(1 + (amplitude_mm * k * np.cos(k * fine)) ** 2)
    length = float(np.sum((speed[1:] + speed[:-1]) / 2 * np.diff(fine)))
    h = _step(spacing, step_mm)
    n = max(3, int(np.ceil(length / h)) + 1)
    # sample uniformly in arc length so the tube surface is evenly smooth
    cum = np.concatenate([[0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(fine))])
    x = np.interp(np.linspace(0, length, n), cum, fine)
    y = amplitude_mm * np.sin(k * x)
    if lead_mm > 0:  # both crests have y = A and tangent +x
        n_lead = max(2, int(np.ceil(lead_mm / h)) + 1)
        lead = np.linspace(0.0, lead_mm, n_lead)[1:]
        x = np.concatenate([x0 - lead[::-1], x, x1 + lead])
        y = np.concatenate([np.full(len(lead), amplitude_mm), y, np.full(len(lead), amplitude_mm)])
        length += 2 * lead_mm
    axis = np.zeros((len(x), ndim))
    axis[:, 0] = x - (x0 + x1) / 2
    axis[:, 1] = y
    values = {"length_mm": length, "radius_mm": radius_mm, "inflection_count": 2.0 * periods,
              "chord_mm": float(np.linalg.norm(axis[-1] - axis[0])),
              "max_curvature_per_mm": amplitude_mm * k**2}
    if ndim == 3:
        values["torsion_per_mm"] = 0.0
    return place_on_grid([axis], [radius_mm], [-1], spacing, rotation=rotation, values=values,
                         name="sinusoid_tube")
