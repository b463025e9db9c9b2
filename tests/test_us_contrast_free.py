"""Contrast-free ULM: erythrocyte speckle through a vessel in stationary tissue, localized
after SVD filtering with the contrast-free defaults."""

from __future__ import annotations

import numpy as np

from vasomics.phantoms.flow import SteeredAcquisition, poiseuille_tube, steered_iq
from vasomics.ultrasound.clutter import SVDParams, svd_filter
from vasomics.ultrasound.ulm import ULMParams, run_ulm
from vasomics.ultrasound.ulm.track import track_velocity


def test_contrast_free_tracks_stay_in_the_vessel_and_follow_the_flow():
    acq = SteeredAcquisition(angles=((0.0, 0.0),), frame_rate_hz=1000.0)
    px = acq.wavelength_mm / 2
    centre, angle, radius, vmax = (24 * px, 24 * px), 30.0, 0.5, 0.04  # mm, °, mm, m/s
    pos, _ = poiseuille_tube(centre, angle, radius, vmax, 10.0, density_per_mm2=200, seed=1)
    rng = np.random.default_rng(2)
    tissue = np.c_[rng.uniform(-2, 9.5, 4000), rng.uniform(-2, 9.5, 4000)]
    iq = steered_iq(pos, (48, 48), px, acq, n_frames=100, pad=16, seed=3,
                    static_positions=tissue, static_amplitudes=10.0)[0]
    blood = svd_filter(iq, SVDParams(low=2))
    res = run_ulm(blood, ULMParams.contrast_free())
    assert res.n_tracks >= 10
    dens, s = res.maps.density, res.maps.scale
    zc = (np.arange(dens.shape[0]) + 0.5) / s - 0.5
    xc = (np.arange(dens.shape[1]) + 0.5) / s - 0.5
    th = np.radians(angle)
    dist = ((zc[:, None] * px - centre[0]) * np.cos(th)
            + (xc[None, :] * px - centre[1]) * np.sin(th))
    assert dens[np.abs(dist) < radius + px].sum() / dens.sum() > 0.9
    v = track_velocity(res.track, res.frame, res.z, res.x)
    ok = np.isfinite(v[:, 0])
    along = v[ok] @ np.array([-np.sin(th), np.cos(th)])  # pixels per frame
    mean_true = (2 / 3) * vmax / acq.frame_rate_hz * 1e3 / px
    assert 0.3 * mean_true < along.mean() < 1.3 * mean_true
