"""Vesselness, binarization, metrics, backends mapping and bad input (fast, synthetic + refs)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from vasomics.chain.segment.binarize import BinarizeParams, binarize
from vasomics.chain.segment.vesselness import gaussian_smooth, vesselness
from vasomics.errors import DependencyError, InputError, ParameterError
from vasomics.metrics import segmentation as sm
from vasomics.metrics.agreement import icc


def _tube(shape=(40, 48, 48), radius_mm=3.0, spacing=(1.0, 1.0, 1.0)):
    """Bright tube along axis 0 through the centre, radius in mm."""
    _, y, x = np.indices(shape)
    r = np.hypot((y - shape[1] // 2) * spacing[1], (x - shape[2] // 2) * spacing[2])
    return (r <= radius_mm).astype(np.float32) * 100


@pytest.mark.parametrize("sigma", [1.5, 4.0])
def test_smoothing_matches_scipy(sigma):
    x = np.random.default_rng(0).random((30, 40, 50)).astype(np.float32)
    ref = ndi.gaussian_filter(x, sigma, mode="nearest")
    got = gaussian_smooth(x, (sigma,) * 3)
    core = (slice(10, -10),) * 3
    assert np.abs(got - ref)[core].max() < 0.01 * np.abs(ref).max()


@pytest.mark.parametrize("method", ["frangi", "sato", "jerman"])
def test_tube_response_peaks_on_axis(method):
    vol = _tube()
    v = vesselness(vol, (1, 1, 1), method=method, scales_mm=[2.0, 3.0])
    assert v.dtype == np.float32 and v.shape == vol.shape
    assert v[20, 24, 24] > 0 and v[20, 24, 24] >= 0.9 * v[5:35].max()
    assert v[20, 5, 5] == 0  # background
    dark = vesselness(-vol, (1, 1, 1), method=method, scales_mm=[2.0, 3.0], bright=False)
    np.testing.assert_allclose(dark, v, atol=1e-5 * max(float(v.max()), 1.0))
    assert vesselness(vol, (1, 1, 1), method=method, scales_mm=[2.0, 3.0], bright=False)[
        20, 24, 24] == 0  # a bright tube is not a dark vessel


def test_anisotropic_spacing_is_physical():
    """The same physical tube sampled at 1 mm and at (2, 1, 0.5) mm gives the same response
    on the axis (scales in mm, Hessian in physical units)."""
    iso = vesselness(_tube((40, 48, 48)), (1, 1, 1), scales_mm=[2.5], method="sato")
    an_spacing = (2.0, 1.0, 0.5)
    an = vesselness(_tube((20, 48, 96), spacing=an_spacing), an_spacing, scales_mm=[2.5],
                    method="sato")
    assert an[10, 24, 48] == pytest.approx(iso[20, 24, 24], rel=0.1)


def test_slabs_do_not_change_the_result():
    vol = _tube((70, 32, 32)) + np.random.default_rng(1).normal(0, 5, (70, 32, 32))
    one = vesselness(vol, (1, 1, 1), scales_mm=[1.0, 2.0], slab_voxels=200)
    slabs = vesselness(vol, (1, 1, 1), scales_mm=[1.0, 2.0], slab_voxels=9)
    np.testing.assert_allclose(slabs, one, atol=1e-5)


def test_frangi_agrees_with_skimage_2d():
    """Same definition as skimage's frangi: responses correlate; ours also keeps the wide bar
    (skimage's per-image normalization nearly drops it), so ours matches the truth better."""
    from skimage.filters import frangi

    img = np.zeros((96, 96), np.float32)
    img[40:46, 10:86] = 1
    img[10:86, 60:63] = 1
    truth = img > 0
    img += np.random.default_rng(2).normal(0, 0.05, img.shape).astype(np.float32)
    ours = vesselness(img, (1, 1), scales_mm=[1, 2, 3], method="frangi", bright=True)
    ref = frangi(img, sigmas=[1, 2, 3], black_ridges=False)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] > 0.75
    ours_dice = sm.dice(ours > 0.5 * ours.max(), truth)
    assert ours_dice > 0.8 and ours_dice > sm.dice(ref > 0.5 * ref.max(), truth)


def test_vesselness_bad_input():
    with pytest.raises(InputError, match="NaN"):
        vesselness(np.full((20, 20), np.nan, np.float32), (1, 1), scales_mm=[1])
    with pytest.raises(InputError, match="too large"):
        vesselness(np.zeros((10, 10), np.float32), (1, 1), scales_mm=[8])
    with pytest.raises(InputError, match="colour"):
        vesselness(np.zeros((20, 20, 3), np.uint8), (1, 1), scales_mm=[1])
    with pytest.raises(ParameterError):
        vesselness(np.zeros((20, 20)), (1, 1), scales_mm=[-1])
    with pytest.raises(DependencyError, match="CuPy"):
        vesselness(np.zeros((20, 20)), (1, 1), scales_mm=[1], backend="cupy")
    u16 = (np.arange(400).reshape(20, 20) * 100).astype(np.uint16)
    assert vesselness(u16, (1, 1), scales_mm=[1]).dtype == np.float32  # values not rescaled


def test_binarize_hysteresis_components_and_region():
    resp = np.zeros((40, 40), np.float32)
    resp[10, 5:35] = 1.0
    resp[11, 5:35] = 0.4  # weak, attached to the strong line
    resp[30, 5:10] = 0.4  # weak, isolated
    resp[25, 20:23] = 1.0  # small strong blob
    m = binarize(resp, BinarizeParams(high=0.8, low_ratio=0.5))
    assert m[11, 20] and not m[30, 7] and m[25, 21]
    big = binarize(resp, BinarizeParams(high=0.8, low_ratio=0.5, keep="largest"))
    assert big[10, 20] and not big[25, 21]
    seeds = binarize(resp, BinarizeParams(high=0.8, keep="seeds"), seeds=[(25, 21)])
    assert seeds[25, 21] and not seeds[10, 20]
    region = np.zeros_like(m)
    region[:, :20] = True
    assert not binarize(resp, BinarizeParams(high=0.8), region=region)[10, 25]
    with pytest.raises(InputError, match="region mask shape"):
        binarize(resp, BinarizeParams(high=0.8), region=np.ones((5, 5), bool))
    with pytest.raises(InputError, match="outside"):
        binarize(resp, BinarizeParams(high=0.8, keep="seeds"), seeds=[(99, 0)])


def test_metrics_known_values():
    gt = np.zeros((20, 20), bool)
    gt[5:15, 9:11] = True
    pred = gt.copy()
    pred[5:15, 11] = True
    assert sm.dice(pred, gt) == pytest.approx(2 * 20 / 50)
    assert sm.dice(gt, gt) == 1.0 and sm.cl_dice(gt, gt) == 1.0
    c = sm.confusion(pred, gt)
    assert c["sensitivity"] == 1.0 and c["specificity"] == pytest.approx(1 - 10 / 380)
    assert sm.roc_auc(gt.astype(float), gt) == 1.0
    assert sm.roc_auc(np.zeros(gt.shape), gt) == 0.5
    fov = np.zeros_like(gt)
    fov[:, :11] = True
    assert sm.dice(pred, gt, fov) == 1.0
    ring = np.zeros((15, 15), bool)
    ring[3:12, 3:12] = True
    ring[5:10, 5:10] = False
    assert sm.betti_numbers(ring) == (1, 1)
    torus = np.zeros((9, 15, 15), bool)
    torus[3:6] = ring
    assert sm.betti_numbers(torus) == (1, 1)
    assert sm.betti_errors(ring, ring & False) == {"betti0_error": 1, "betti1_error": 1}
    co = sm.centerline_overlap(pred, gt, tolerance_mm=1.5)
    assert co["completeness"] == 1.0
    assert icc([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert icc([1, 2, 3, 4], [4, 3, 2, 1]) < 0
    with pytest.raises(InputError, match="field-of-view"):
        sm.dice(pred, gt, np.ones((3, 3), bool))


def test_paired_features_cut_the_manual_mask_to_the_fov():
    """A 3-pixel-wide bar 40 pixels long, predicted as its left half: predicted area is half
    the manual one; with a FOV over the left half only, the manual mask is cut to it and both
    give the same vessel fraction."""
    gt = np.zeros((20, 60), bool)
    gt[9:12, 10:50] = True
    pred = gt.copy()
    pred[:, 30:] = False
    full = np.ones_like(gt)
    left = np.zeros_like(gt)
    left[:, :30] = True
    ids = ("VX.A.T.VFRAC", "VX.A.T.LEN")
    values = sm.paired_features([(pred, gt, full), (pred, gt, left)], ids)
    p, m = values["VX.A.T.VFRAC"]
    assert p[0] == pytest.approx(m[0] / 2) and p[0] == pytest.approx(60 / gt.size)
    assert p[1] == pytest.approx(m[1]) == pytest.approx(60 / left.sum())
    length_p, length_m = values["VX.A.T.LEN"]
    assert length_p[0] < 0.6 * length_m[0]


def test_mask_tree_features_match_paired_features():
    """A 3-pixel-wide cross (two 100-pixel bars) with a FOV over its upper two thirds: the
    graph-free mask features equal the catalogue values of :func:`paired_features`."""
    mask = np.zeros((120, 120), bool)
    mask[59:62, 10:110] = True
    mask[10:110, 59:62] = True
    fov = np.zeros_like(mask)
    fov[:80] = True
    values = sm.paired_features([(mask, mask, fov)], ("VX.A.T.FD", "VX.A.T.VFRAC"))
    fast = sm.mask_tree_features(mask, fov)
    assert np.isfinite(fast["VX.A.T.FD"])
    assert fast["VX.A.T.FD"] == pytest.approx(values["VX.A.T.FD"][0][0], abs=1e-12)
    assert fast["VX.A.T.VFRAC"] == pytest.approx(values["VX.A.T.VFRAC"][0][0], abs=1e-12)
    assert fast["VX.A.T.VFRAC"] == pytest.approx(np.count_nonzero(mask[:80]) / fov.sum())


def test_totalsegmentator_label_mapping(shared_data):
    """The multi-label map and the one-file-per-class folder of the same (fast) model give the
    same masks under the mapping table; the full model's map agrees with them closely."""
    from vasomics.chain.segment.backends import map_binary_masks, map_labels
    from vasomics.io.images import read_image

    ts = shared_data / "totalsegmentator_examples"
    per_class = map_binary_masks(ts / "example_seg_fast")
    fast = map_labels(read_image(ts / "example_seg_fast.nii.gz").array)
    for name in ("aorta", "ivc", "portal_splenic_vein", "liver", "spleen"):
        assert fast[name].any()
        np.testing.assert_array_equal(fast[name], per_class[name])
    full = map_labels(read_image(ts / "example_seg.nii.gz").array)
    for name in ("aorta", "ivc", "portal_splenic_vein", "liver"):
        assert sm.dice(full[name], per_class[name]) > 0.75


def test_backends_missing_raise_dependency_error(monkeypatch, tmp_path):
    import importlib.util

    from vasomics.chain.segment import backends

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n in ("totalsegmentator", "nnunetv2") else real(n))
    with pytest.raises(DependencyError, match="pip install TotalSegmentator"):
        backends.require_totalsegmentator()
    with pytest.raises(DependencyError, match="pip install nnunetv2"):
        backends.require_nnunet("Dataset001_X")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: object() if n == "totalsegmentator" else real(n))
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path))
    with pytest.raises(DependencyError, match="weights not found"):
        backends.require_totalsegmentator()


def test_preset_files_validate():
    from vasomics.chain.segment.api import load_preset, presets

    assert {"cta", "mra_contrast", "mra_tof", "fundus", "octa"} <= set(presets())
    for name in presets():
        load_preset(name)
    with pytest.raises(ParameterError, match="unknown preset"):
        load_preset("nope")


def test_documented_input_conversions():
    from vasomics.chain.segment.api import segment
    from vasomics.chain.segment.fov import fundus_fov, to_grey
    from vasomics.image import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 1] = 7
    assert to_grey(rgba).max() == 7  # RGB(A) -> green channel, alpha dropped
    assert to_grey(rgba, channel="luminance").max() == pytest.approx(0.587 * 7, rel=1e-5)
    with pytest.raises(InputError, match="NaN"):
        to_grey(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    disc = np.zeros((60, 60), np.uint16)  # a grey 16-bit "fundus": the FOV still works
    yy, xx = np.indices(disc.shape)
    disc[np.hypot(yy - 30, xx - 30) < 25] = 40000
    assert fundus_fov(disc)[30, 30] and not fundus_fov(disc)[2, 2]
    grey16 = disc.copy()
    grey16[28:32, 10:50] = 10000  # dark vessel
    result = segment(Image(grey16), "fundus", method="frangi")
    assert result.mask.array.shape == (60, 60) and result.mask.array[30, 30]
    with pytest.raises(InputError, match="colour volumes"):
        segment(Image(np.zeros((6, 20, 20, 3), np.uint8), spacing=(1, 1, 1)), "cta")
