"""ULM: PALA point grid, detection, linking precision/recall, flow phantom metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vasomics.errors import InputError
from vasomics.phantoms.flow import (
    flow_phantom,
    gap_vessels,
    horseshoe_vessels,
    point_grid,
    tree_vessels,
)
from vasomics.ultrasound.clutter import SVDParams, svd_filter
from vasomics.ultrasound.metrics import (
    frc_tracks,
    gridding_index,
    pair_localizations,
    two_peak_dip,
)
from vasomics.ultrasound.ulm import ULMParams, run_ulm
from vasomics.ultrasound.ulm.detect import detect_peaks
from vasomics.ultrasound.ulm.localize import extract_patches, localize_patches
from vasomics.ultrasound.ulm.track import link, track_links


def _grid_rmse(method, clutter_db, seeds=(0, 1)):
    """RMSE (λ; pixels are λ) on PALA's 21×21 sub-pixel grid, bias removed."""
    out = []
    for seed in seeds:
        g = point_grid(n_sub=21, clutter_db=clutter_db, seed=seed)
        det = detect_peaks(g.image, top_n=21 * 21, border=2)
        res = pair_localizations(np.zeros(g.z.size), g.z, g.x, det.frame,
                                 *(np.c_[det.z, det.x] + localize_patches(
                                     extract_patches(g.image, det.frame, det.z,
                                                     det.x), method)).T, pair_radius=1.0)
        assert len(det) == 441
        out.append(res.rmse)
    return float(np.mean(out))


def test_point_grid_rmse_pala():
    assert _grid_rmse("radial_symmetry", -30) <= 0.15
    assert _grid_rmse("weighted_average", -30) <= 0.20
    assert _grid_rmse("no_shift", -30) == pytest.approx(np.sqrt(2 / 12), abs=0.03)
    assert _grid_rmse("radial_symmetry", -10) <= 0.25
    assert _grid_rmse("gaussian_fit", -30) <= 0.15


def test_detection_border_and_top_n():
    img = np.zeros((2, 20, 20), np.float32)
    img[0, 1, 10] = 5  # too close to the edge for a 5×5 patch: not detected
    img[0, 10, 10] = 3
    img[1, 5, 5], img[1, 12, 12], img[1, 8, 15] = 1, 2, 3
    det = detect_peaks(img, top_n=2, border=2)
    assert [(f, z, x) for f, z, x in zip(det.frame, det.z, det.x, strict=True)] == [
        (0, 10, 10), (1, 8, 15), (1, 12, 12)]
    with pytest.raises(InputError):
        detect_peaks(np.zeros((1, 4, 4)), border=2)


def _synthetic_tracks(curved, n_per=50, frames=200, life=20, seed=0):
    rng = np.random.default_rng(seed)
    fr, zz, xx, tid = [], [], [], []
    for b in range(int(n_per * (frames + life) / life)):
        t = np.arange(life)
        f = rng.integers(-life, frames) + t
        ok = (f >= 0) & (f < frames)
        z0, x0 = rng.uniform(0, 100, 2)
        ang, sp = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0)
        if curved:
            r = rng.uniform(5, 20)
            z, x = z0 + r * np.sin(sp / r * t + ang), x0 + r * np.cos(sp / r * t + ang)
        else:
            z, x = z0 + sp * np.cos(ang) * t, x0 + sp * np.sin(ang) * t
        fr.append(f[ok])
        zz.append(z[ok] + rng.normal(0, 0.05, ok.sum()))
        xx.append(x[ok] + rng.normal(0, 0.05, ok.sum()))
        tid.append(np.full(ok.sum(), b))
    order = rng.permutation(sum(a.size for a in fr))
    return tuple(np.concatenate(a)[order] for a in (fr, zz, xx, tid))


@pytest.mark.parametrize("curved", [False, True])
def test_linking_precision_recall(curved):
    f, z, x, truth = _synthetic_tracks(curved)
    assert 45 <= f.size / 200 <= 55
    ids = link(f, z, x, max_distance=1.5, min_length=2)
    pred, true = track_links(ids, f), track_links(truth, f)
    tp = len(pred & true)
    assert tp / len(pred) >= 0.99 and tp / len(true) >= 0.99


def test_gap_closing_bridges_missing_frames():
    f = np.r_[0, 1, 2, 4, 5, 6]  # frame 3 missing
    z = np.r_[0.0, 0.5, 1.0, 2.0, 2.5, 3.0]
    x = np.zeros(6)
    assert len(set(link(f, z, x, 0.8, max_gap=0, min_length=1))) == 2
    assert len(set(link(f, z, x, 0.8, max_gap=1, min_length=1))) == 1


def test_flow_phantom_jaccard_and_gridding():
    size = (64, 96)
    ph = flow_phantom(horseshoe_vessels(size), size, n_frames=400, bubbles_per_frame=8,
                      clutter_db=-30, seed=0)
    scores = {}
    for method in ("radial_symmetry", "no_shift"):
        res = run_ulm(ph.images, ULMParams(method=method, top_n=None,
                                           relative_threshold_db=-12, min_track_length=1))
        pair = pair_localizations(ph.frame, ph.z, ph.x, res.frame, res.z, res.x)
        scores[method] = (pair.jaccard, gridding_index(res.z, res.x),
                          frc_tracks(res.track, res.frame, res.z, res.x, size, 10, 1.0))
    assert scores["radial_symmetry"][0] >= 0.6
    assert scores["radial_symmetry"][2] < 1.5  # FRC resolution in λ (vessels are 1.2 λ wide)
    assert scores["radial_symmetry"][1] <= scores["no_shift"][1] - 10


def test_vessels_half_wavelength_apart_are_resolved():
    size = (48, 24)
    ph = flow_phantom(gap_vessels(gaps=(0.5,), size=size), size, n_frames=600,
                      bubbles_per_frame=3, clutter_db=-30, v_max=0.5, seed=3)
    res = run_ulm(ph.images, ULMParams(top_n=None, relative_threshold_db=-12,
                                       min_track_length=3, scale=20))
    rows = slice(int(0.2 * size[0] * 20), int(0.8 * size[0] * 20))
    profile = res.maps.density[rows].sum(axis=0)
    xc = np.mean([v.points[0, 1] for v in ph.vessels])
    centre = int(round((xc + 0.5) * 20))
    window = profile[centre - 15:centre + 15]  # ±0.75 λ around the pair
    assert two_peak_dip(window) < 0.75
    peaks = np.flatnonzero((window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:])) + 1
    top = np.sort(peaks[np.argsort(window[peaks])[-2:]])
    assert abs((top[1] - top[0]) / 20 - 0.5) <= 0.15  # peaks where the vessels are (λ)


def test_tree_phantom_every_branch_rendered():
    size = (64, 64)
    ph = flow_phantom(tree_vessels(size), size, n_frames=600, bubbles_per_frame=6, seed=5)
    res = run_ulm(ph.images, ULMParams(top_n=None, relative_threshold_db=-12,
                                       min_track_length=3, scale=4))
    covered = []
    for v in ph.vessels:
        s = np.linspace(0.15, 0.85, 20) * v.arclength()[-1]
        p = v.at(s, np.zeros_like(s))
        iz = np.floor((p[:, 0] + 0.5) * 4).astype(int)
        ix = np.floor((p[:, 1] + 0.5) * 4).astype(int)
        dens = ndimage.maximum_filter(res.maps.density, 5)  # ±2 fine pixels = ±0.5 λ
        covered.append(np.mean(dens[iz, ix] > 0))
    assert min(covered) >= 0.8, covered


def test_ulm_after_svd_on_iq_with_tissue():
    size = (48, 64)
    ph = flow_phantom(horseshoe_vessels(size), size, n_frames=200, bubbles_per_frame=6,
                      clutter_db=None, seed=6)
    rng = np.random.default_rng(7)
    bubbles = ph.images * np.exp(1j * rng.uniform(0, 2 * np.pi, ph.images.shape))
    tissue = 30 * (1 + 0.05 * np.sin(np.arange(200) / 15))[:, None, None] * np.exp(
        1j * rng.uniform(0, 2 * np.pi, size))[None]
    noise = 0.01 * (rng.standard_normal(ph.images.shape)
                    + 1j * rng.standard_normal(ph.images.shape))
    blood = svd_filter((bubbles + tissue + noise).astype(np.complex64), SVDParams(low=2))
    res = run_ulm(blood, ULMParams(top_n=None, relative_threshold_db=-12, min_track_length=1))
    pair = pair_localizations(ph.frame, ph.z, ph.x, res.frame, res.z, res.x)
    assert pair.jaccard >= 0.6


def test_nan_input_is_refused():
    bad = np.ones((10, 16, 16), np.complex64)
    bad[3, 4, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        svd_filter(bad, SVDParams(low=1))
    with pytest.raises(InputError, match="NaN"):
        run_ulm(bad)
