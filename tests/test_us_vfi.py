"""Vector flow imaging on IQ-level simulations of steered acquisitions."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.errors import InputError
from vasomics.phantoms.flow import SteeredAcquisition, poiseuille_tube, rotating_disk, steered_iq
from vasomics.ultrasound.doppler import lag_one_autocorrelation
from vasomics.ultrasound.vfi import (
    VFIParams,
    calibrate_from_reference,
    flow_dispersion_index,
    vector_velocity,
    vorticity,
    wall_shear,
)

ACQ = SteeredAcquisition()  # 5 MHz, (−15,−15), (0,0), (15,15), 10 kHz, spectrum shift 10 %
PX = ACQ.wavelength_mm / 2
SHAPE = (64, 64)
CENTRE = (32 * PX, 32 * PX)
GRID = np.meshgrid(np.arange(SHAPE[0]) * PX, np.arange(SHAPE[1]) * PX, indexing="ij")


def _vfi(iq, **kw):
    return vector_velocity(iq, (PX, PX), ACQ.frame_rate_hz, ACQ.center_frequency_hz,
                           angles_deg=ACQ.angles, params=VFIParams(**kw))


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0])
def test_poiseuille_tube_velocity_and_wall_shear(angle):
    R, vmax = 2.0, 0.4
    pos, vel = poiseuille_tube(CENTRE, angle, R, vmax, 14.0, seed=1)
    iq = steered_iq(pos, SHAPE, PX, ACQ, n_frames=48, seed=2)
    tz, tx = vel(*GRID)
    th = np.radians(angle)
    d = (GRID[0] - CENTRE[0]) * np.cos(th) + (GRID[1] - CENTRE[1]) * np.sin(th)
    along = -(GRID[0] - CENTRE[0]) * np.sin(th) + (GRID[1] - CENTRE[1]) * np.cos(th)
    sel = (np.abs(d) < 0.75 * R) & (np.abs(along) < 3)
    errs = {}
    for cal in ("speckle", "nominal"):
        f = _vfi(iq, calibration=cal)
        ez, ex = f.vz - tz, f.vx - tx
        errs[cal] = (np.hypot(ez[sel].mean(), ex[sel].mean()) / vmax,
                     np.sqrt(ez[sel].var() + ex[sel].var()) / vmax)
    assert errs["speckle"][0] < 0.05 and errs["speckle"][1] < 0.10
    assert errs["nominal"][0] > 2 * errs["speckle"][0]  # calibration matters
    ws = wall_shear(_vfi(iq), (PX, PX))
    near = np.abs(along[ws.z, ws.x]) < 3
    expected = 4 * (vmax / 2) / (R * 1e-3)  # 4 v_mean / R in 1/s
    assert np.nanmedian(ws.shear_rate[near]) == pytest.approx(expected, rel=0.15)
    assert np.nanmedian(ws.shear_stress[near]) == pytest.approx(expected * 4e-3, rel=0.15)
    fdi = flow_dispersion_index(f.vz, f.vx, f.mask)
    assert np.nanmedian(fdi[sel]) < 0.1  # laminar


def test_rotating_disk_velocity_and_vorticity():
    omega = 100.0
    pos, vel = rotating_disk(CENTRE, 3.0, omega, seed=4)
    iq = steered_iq(pos, SHAPE, PX, ACQ, n_frames=64, seed=5)
    tz, tx = vel(*GRID)
    r = np.hypot(GRID[0] - CENTRE[0], GRID[1] - CENTRE[1])
    sel = r < 2.4
    f = _vfi(iq)
    peak = omega * 3.0e-3
    ez, ex = f.vz - tz, f.vx - tx
    assert np.hypot(ez[sel].mean(), ex[sel].mean()) / peak < 0.05
    assert np.sqrt(ez[sel].var() + ex[sel].var()) / peak < 0.10
    w = vorticity(f.vz, f.vx, (PX, PX))
    assert np.median(w[r < 2.0]) == pytest.approx(2 * omega, rel=0.1)
    # reference calibration with this known flow reproduces the speckle calibration
    phases = np.stack([np.angle(lag_one_autocorrelation(s, (3, 3))[1]) for s in iq])
    K = calibrate_from_reference(phases, np.where(sel, tz, 0), np.where(sel, tx, 0),
                                 ACQ.frame_rate_hz)
    np.testing.assert_allclose(K, f.wavevectors, rtol=0.08, atol=1.0)


def test_dealiasing_partial_wrap():
    # the (−15°, −15°) pair wraps (phase ≈ 3.3 rad), the others stay below π
    v = np.array([-0.64, 1.0])  # m/s
    rng = np.random.default_rng(0)
    p0 = np.c_[rng.uniform(-3, 13, 4000), rng.uniform(-3, 13, 4000)]
    iq = steered_iq(lambda t: p0 + v * 1e3 * t, SHAPE, PX, ACQ, n_frames=24, seed=1)
    inner = (slice(8, 56), slice(8, 56))
    good = {}
    for dealias in (False, True):
        f = _vfi(iq, dealias=dealias)
        good[dealias] = np.mean(np.hypot(f.vz - v[0], f.vx - v[1])[inner] < 0.2)
    assert good[False] < 0.3 and good[True] > 0.6


def test_vfi_bad_input():
    with pytest.raises(InputError):
        vector_velocity(np.ones((1, 8, 8, 8), complex), (PX, PX), 1e4, 5e6)
    with pytest.raises(InputError):
        vector_velocity(np.ones((3, 8, 8, 8)), (PX, PX), 1e4, 5e6)


def test_reported_uncertainty_matches_spread_over_realizations():
    v = np.array([-0.2, 0.3])
    est, rep = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        p0 = np.c_[rng.uniform(-3, 10, 3000), rng.uniform(-3, 10, 3000)]
        iq = steered_iq(lambda t, p0=p0: p0 + v * 1e3 * t, (40, 40), PX, ACQ, n_frames=24,
                        pad=12, seed=seed + 10)
        f = _vfi(iq)
        est.append(np.stack([f.vz, f.vx])[:, 6:34, 6:34])
        rep.append(np.stack([f.sd_z, f.sd_x])[:, 6:34, 6:34])
    empirical = np.std(est, axis=0, ddof=1).mean(axis=(1, 2))
    reported = np.mean(rep, axis=(0, 2, 3))
    np.testing.assert_allclose(reported, empirical, rtol=0.35)
