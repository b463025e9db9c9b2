"""PALA metrics, FRC and vascular metrics on analytic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.errors import InputError
from vasomics.ultrasound.metrics import (
    frc,
    gridding_index,
    pair_localizations,
    profile_widths,
    saturation_curve,
    two_peak_dip,
    vascular_metrics,
)


def test_pairing_counts_and_bias_removed_rmse():
    rng = np.random.default_rng(0)
    n = 2000
    frame = rng.integers(0, 50, n)
    tz, tx = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    err = rng.normal(0, 0.05, (n, 2)) + [0.1, -0.05]  # static bias + noise
    ez, ex = tz + err[:, 0], tx + err[:, 1]
    ez[:100] += 0.4  # 100 localizations off by 0.4 (paired, but not true positives)
    extra = np.c_[rng.integers(0, 50, 50), rng.uniform(0, 100, (50, 2))]  # false positives
    res = pair_localizations(frame, tz, tx, np.r_[frame, extra[:, 0]], np.r_[ez, extra[:, 1]],
                             np.r_[ex, extra[:, 2]])
    assert res.tp == pytest.approx(n - 100, abs=10)
    assert res.fn == n - res.tp and res.fp == n + 50 - res.tp
    assert res.bias[0] == pytest.approx(0.1 + 0.4 * 100 / n, abs=0.01)
    assert 0 < res.jaccard < 1 and res.precision < res.recall


def test_gridding_index_extremes():
    rng = np.random.default_rng(1)
    grid = rng.integers(0, 50, 5000).astype(float)
    assert gridding_index(grid, grid, bins=20) == pytest.approx(10 * np.log10(20))
    uniform = rng.uniform(0, 50, 100_000)
    assert abs(gridding_index(uniform, uniform, bins=20)) < 0.1


def test_saturation_curve_monotone_to_one():
    rng = np.random.default_rng(2)
    f = np.sort(rng.integers(0, 100, 5000))
    steps, frac = saturation_curve(f, rng.uniform(0, 10, 5000), rng.uniform(0, 10, 5000),
                                   (10, 10), scale=4)
    assert np.all(np.diff(frac) >= 0) and frac[-1] == 1.0 and frac[0] < 0.2


def test_two_peak_dip():
    x = np.linspace(-2, 2, 401)
    two = np.exp(-((x - 0.5) ** 2) / 0.02) + np.exp(-((x + 0.5) ** 2) / 0.02)
    assert two_peak_dip(two) < 0.1
    assert two_peak_dip(np.exp(-x ** 2)) == 1.0


def test_frc_resolution_of_blurred_noise():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    truth = ndimage.gaussian_filter(rng.standard_normal((256, 256)), 4)
    a = truth + 0.02 * rng.standard_normal(truth.shape)
    b = truth + 0.02 * rng.standard_normal(truth.shape)
    _, curve, res = frc(a, b, pixel_size=0.01)
    assert curve[1] > 0.9
    coarser = frc(ndimage.gaussian_filter(truth, 4) + 0.02 * rng.standard_normal(truth.shape),
                  ndimage.gaussian_filter(truth, 4) + 0.02 * rng.standard_normal(truth.shape),
                  pixel_size=0.01)[2]
    assert 0.02 < res < coarser  # more blur, worse (larger) resolution
    with pytest.raises(InputError):
        frc(a, b[:10])


def test_profile_widths_of_gaussian_lines():
    x = np.arange(200)
    for fwhm in (3.0, 6.0):
        img = np.tile(np.exp(-4 * np.log(2) * ((x - 100) / fwhm) ** 2), (100, 1))
        w = profile_widths(img, pixel_size=0.1)
        assert np.median(w) == pytest.approx(0.1 * fwhm, rel=0.1)


def test_vascular_metrics_on_straight_vessels():
    img = np.zeros((200, 200))
    for x0 in (40, 100, 160):
        img[20:180, x0 - 2:x0 + 3] = 5.0  # 5-pixel wide vertical vessels
    r = vascular_metrics(img, 0.01, threshold=0)
    assert r["vessel_density"] == pytest.approx(3 * 160 * 5 / 200 ** 2)
    assert r["median_diameter_mm"] == pytest.approx(0.05, rel=0.25)
    assert r["tortuosity"] == pytest.approx(1.0, abs=0.02)
    assert 0.9 < r["fractal_dimension"] < 1.4  # line-like
    with pytest.raises(InputError):
        vascular_metrics(np.zeros((50, 50)), 0.01, threshold=0)
