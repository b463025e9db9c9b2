"""SVD clutter filter, automatic threshold, power and colour Doppler."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.errors import InputError
from vasomics.ultrasound.clutter import SVDParams, svd_filter
from vasomics.ultrasound.doppler import color_doppler, nyquist_velocity, power_doppler


def _tissue_blood(seed=0, n=128, nz=48, nx=64):
    """Rank-3 tissue (shared spatial envelope, slow temporal signals, 30–60 dB above blood)
    + Doppler phasors (per-pixel frequency) in two vessels + white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    env = 1 + 0.5 * np.sin(np.arange(nz) / 7)[:, None] * np.cos(np.arange(nx) / 9)[None]
    tissue = np.zeros((n, nz, nx), complex)
    for k, (amp, f) in enumerate([(1000, 0.0), (300, 0.004), (100, 0.008)]):
        ph = np.exp(1j * rng.uniform(0, 2 * np.pi, (nz, nx)))
        tt = np.cos(2 * np.pi * f * t + k) if f > 0 else np.ones(n)
        tissue += amp * tt[:, None, None] * (env * ph)[None]
    mask = np.zeros((nz, nx), bool)
    mask[20:28, :] = True
    mask[:, 30:34] = True
    fd = rng.uniform(0.1, 0.35, (nz, nx))
    blood = mask * np.exp(1j * (2 * np.pi * fd[None] * t[:, None, None]
                                + rng.uniform(0, 2 * np.pi, (nz, nx))[None]))
    noise = 0.05 * (rng.standard_normal((n, nz, nx)) + 1j * rng.standard_normal((n, nz, nx)))
    return (tissue + blood + noise).astype(np.complex64), blood, mask


@pytest.mark.parametrize("solver", ["full", "eig", "randomized"])
def test_blood_power_within_1db_and_auto_threshold(solver):
    iq, blood, mask = _tissue_blood()
    out, th = svd_filter(iq, SVDParams(solver=solver), return_thresholds=True)
    assert abs(th[0][0] - 3) <= 2
    pd = power_doppler(out)
    true = np.mean(np.abs(blood[:, mask]) ** 2)
    assert abs(10 * np.log10(pd[mask].mean() / true)) < 1.0
    assert 10 * np.log10(pd[~mask].mean() / true) < -15  # tissue removed


def test_solvers_agree():
    iq, _, _ = _tissue_blood(seed=1)
    ref = svd_filter(iq, SVDParams(solver="full", low=3))
    for solver in ("eig", "randomized"):
        out = svd_filter(iq, SVDParams(solver=solver, low=3))
        assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-3
    band = [svd_filter(iq, SVDParams(solver=s, low=3, high=60)) for s in ("full", "eig")]
    assert np.linalg.norm(band[0] - band[1]) / np.linalg.norm(band[0]) < 1e-3


def test_blockwise_matches_global_power():
    iq, blood, mask = _tissue_blood(seed=2)
    out = svd_filter(iq, SVDParams(block_size=32, low=3))
    pd = power_doppler(out)
    assert abs(10 * np.log10(pd[mask].mean() / np.mean(np.abs(blood[:, mask]) ** 2))) < 1.0


def test_svd_bad_input():
    with pytest.raises(InputError):
        svd_filter(np.ones((10, 8, 8), np.float32))
    with pytest.raises(InputError):
        svd_filter(np.ones((2, 8, 8), np.complex64))


def test_color_doppler_kasai_and_aliasing():
    prf, f0, c = 5000.0, 5e6, 1540.0
    vn = nyquist_velocity(prf, f0, c)
    assert vn == pytest.approx(c * prf / (4 * f0))
    t = np.arange(32)
    for v in (0.3 * vn, -0.7 * vn, 1.2 * vn):
        phase = 4 * np.pi * f0 * v / c / prf  # radians per frame, towards the probe
        iq = np.exp(1j * phase * t)[:, None, None] * np.ones((1, 4, 4))
        est = color_doppler(iq, prf, f0, c)
        expect = (v + vn) % (2 * vn) - vn  # aliased value
        np.testing.assert_allclose(est, expect, rtol=1e-4, atol=1e-6)


def test_blockwise_auto_thresholds_and_auto_high():
    iq, blood, mask = _tissue_blood(seed=3)
    out, th = svd_filter(iq, SVDParams(block_size=32), return_thresholds=True)
    assert len(th) > 1 and all(abs(low - 3) <= 2 for low, _ in th)
    out, th = svd_filter(iq, SVDParams(auto_high=True), return_thresholds=True)
    low, high = th[0]
    assert abs(low - 3) <= 2 and low < high <= iq.shape[0]
    pd = power_doppler(out)
    assert abs(10 * np.log10(pd[mask].mean() / np.mean(np.abs(blood[:, mask]) ** 2))) < 1.0


def test_non_contiguous_input_as_read_from_matlab_order():
    iq, _, _ = _tissue_blood(seed=4, n=32, nz=16, nx=20)
    matlab = np.ascontiguousarray(np.moveaxis(iq, 0, 2))
    view = np.moveaxis(matlab, 2, 0)  # what read_iq returns for MAT files: not contiguous
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(svd_filter(view, SVDParams(low=3)),
                               svd_filter(iq, SVDParams(low=3)), rtol=1e-4, atol=1e-3)
