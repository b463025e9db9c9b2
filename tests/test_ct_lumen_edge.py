"""The lumen edge of blurred round vessels (vasomics.chain.lumen_edge): the analytic edge
fraction against a numerically blurred disk, the edge layer that brings a thresholded
tube's section back to its true area, and the peel that does so for a thin tube."""

import numpy as np
import pytest
from scipy import ndimage

from vasomics.chain.liver_vessels import LiverVessels
from vasomics.chain.lumen_edge import core_contrast, edge_fraction, grow_to_edge, peel_to_edge


def _blurred_tube(radius_mm, sigma_mm, voxel_mm=0.25, length=12, contrast=100.0,
                  centre_mm=(0.0, 0.0), half_width_mm=None):
    """A straight tube along axis 0 (its section a disk of ``radius_mm``), contrast
    ``contrast`` HU, blurred by a Gaussian of ``sigma_mm``; returns (signed HU, truth)."""
    n = int(np.ceil((half_width_mm or radius_mm + 5 * sigma_mm + 2) / voxel_mm))
    y, x = (np.mgrid[-n:n + 1, -n:n + 1] * voxel_mm)
    # supersampled disk: partial-volume fractions of each voxel
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    frac = np.zeros(y.shape)
    for dy in sub:
        for dx in sub:
            frac += ((y + dy * voxel_mm - centre_mm[0]) ** 2
                     + (x + dx * voxel_mm - centre_mm[1]) ** 2 <= radius_mm ** 2)
    frac /= sub.size ** 2
    section = ndimage.gaussian_filter(frac * contrast, sigma_mm / voxel_mm, truncate=5.0)
    truth = frac >= 0.5
    return (np.repeat(section[None], length, 0).astype(np.float32),
            np.repeat(truth[None], length, 0))


@pytest.mark.parametrize("q", [1.0, 1.5, 2.0, 3.0])
def test_edge_fraction_matches_a_numerically_blurred_disk(q):
    """At R/sigma = q the blurred disk reads, at its true edge, the tabulated fraction of
    its peak (0.68 at q = 1, 0.44 at q = 3)."""
    signed, _ = _blurred_tube(q * 1.0, 1.0, voxel_mm=0.1, length=1)
    sec = signed[0]
    c = sec.shape[0] // 2
    peak = float(sec[c, c])
    at_edge = float(np.interp(q, np.arange(sec.shape[1] - c) * 0.1, sec[c, c:]))
    assert float(edge_fraction(np.array([peak / 100.0]))[0]) == pytest.approx(
        at_edge / peak, abs=0.01)


def test_edge_layer_restores_the_section_of_a_thick_tube():
    """A tube 3 sigmas in radius thresholded at half its peak loses 8 % of its section; the
    edge layer brings it within 2 %. A tube one sigma in radius in the same tree (its
    half-peak edge lies outside its lumen: 1.8 times its section) takes no layer."""
    spacing = (0.25, 0.25, 0.25)
    thick, t_thick = _blurred_tube(3.0, 1.0, centre_mm=(0.0, -6.0), half_width_mm=13.0)
    thin, t_thin = _blurred_tube(1.0, 1.0, centre_mm=(0.0, 6.0), half_width_mm=13.0)
    signed = thick + thin
    peak = ndimage.maximum_filter(signed, size=17)
    half = (signed >= 0.5 * peak) & (signed > 10)  # bright, as in the chain
    grown = grow_to_edge({"t": half}, signed, peak, np.ones_like(half), spacing)["t"]
    x = np.arange(half.shape[2]) - half.shape[2] // 2
    for truth, side, before, after in ((t_thick, x < 0, (0.85, 0.95), (0.98, 1.02)),
                                       (t_thin, x > 0, (1.6, 2.0), None)):
        area0 = np.count_nonzero(half[5] & side) / np.count_nonzero(truth[5])
        area1 = np.count_nonzero(grown[5] & side) / np.count_nonzero(truth[5])
        assert before[0] < area0 < before[1]
        if after is None:
            assert area1 == area0
        else:
            assert after[0] < area1 < after[1]


def test_edge_layer_leaves_contacts_and_forbidden_voxels():
    """Voxels touching both trees go to neither; voxels outside ``allowed`` to none."""
    spacing = (0.25, 0.25, 0.25)
    a, _ = _blurred_tube(3.0, 1.0, centre_mm=(0.0, -3.3))
    b, _ = _blurred_tube(3.0, 1.0, centre_mm=(0.0, 3.3))
    signed = np.maximum(a, b)
    peak = ndimage.maximum_filter(signed, size=17)
    half = (signed >= 0.5 * peak) & (signed > 10)
    x = np.arange(half.shape[2]) - half.shape[2] // 2
    left, right = half & (x < 0), half & (x > 0)
    allowed = np.ones_like(half)
    allowed[:, : half.shape[1] // 2] = False  # one half-plane closed
    out = grow_to_edge({"l": left, "r": right}, signed, peak, allowed, spacing)
    layer_l, layer_r = out["l"] & ~left, out["r"] & ~right
    assert layer_l.any() and layer_r.any()
    assert not (layer_l & layer_r).any()
    assert not ((layer_l | layer_r) & ~allowed).any()
    face = ndimage.generate_binary_structure(3, 1)
    touches_both = ndimage.binary_dilation(left, face) & ndimage.binary_dilation(right, face)
    assert not ((layer_l | layer_r) & touches_both).any()


def test_core_contrast_and_centerline_mask():
    """The contrast of a tree is read in its core (the plateau of a thick tube, not its
    blurred rim); the centerline mask is the tree less its edge layer."""
    signed, truth = _blurred_tube(3.0, 0.5)
    assert core_contrast(truth, signed, (0.25, 0.25, 0.25)) == pytest.approx(100.0, abs=1.0)
    assert np.isnan(core_contrast(np.zeros_like(truth), signed, (0.25, 0.25, 0.25)))
    layer = np.zeros_like(truth)
    layer[:, 0] = True
    ves = LiverVessels(truth | layer, np.zeros_like(truth), truth | layer, edge_layer=layer)
    assert np.array_equal(ves.centerline_mask("portal"), truth & ~layer)
    assert np.array_equal(LiverVessels(truth, truth, truth).centerline_mask("hepatic"), truth)


def test_peel_brings_a_thin_tube_back_to_its_section():
    """A tree of a thick tube (4 mm) and a thin one (1 mm, R = sigma), both 100 HU, blurred
    by 1 mm: thresholded at half the local peak the thin tube's section reads 77 % too
    large (its edge lies at 0.68 of its peak); peeled to the model edge of its peak over
    the tree's contrast (read on the thick tube's core) it reads within 15 % of pi R^2,
    while the thick tube, whose edge lies under half its peak, loses nothing. The peeled
    voxels stay in the centerline mask."""
    sp = 0.25
    z, y, x = np.mgrid[0:8, 0:160, 0:160] * sp
    thick = (y - 10) ** 2 + (x - 10) ** 2 <= 4.0 ** 2
    thin = (y - 10) ** 2 + (x - 28) ** 2 <= 1.0 ** 2
    signed = ndimage.gaussian_filter(100.0 * (thick | thin), (0, 1.0 / sp, 1.0 / sp),
                                     mode="nearest")
    bright = signed > 10
    peak = ndimage.maximum_filter(np.where(bright, signed, 0), size=(1, 17, 17))
    tree = bright & (signed >= 0.5 * peak)
    peeled = peel_to_edge({"t": tree}, signed, peak, (sp, sp, sp), 0.5)["t"]
    assert peeled.any() and not (peeled & ~tree).any()
    near_thin = (y - 10) ** 2 + (x - 28) ** 2 <= 3.0 ** 2
    area = lambda m: np.count_nonzero(m[4]) * sp * sp  # noqa: E731
    assert area(tree & near_thin) > 1.6 * np.pi
    assert area(tree & near_thin & ~peeled) == pytest.approx(np.pi, rel=0.15)
    assert not (peeled & ~near_thin).any()  # the thick tube keeps its section
    rim = np.where(peeled, 1, 0).astype(np.uint8)
    ves = LiverVessels(tree & ~peeled, np.zeros_like(tree), tree & ~peeled, rim=rim)
    assert np.array_equal(ves.centerline_mask("portal"), tree)
    assert np.array_equal(ves.centerline_mask("hepatic"), np.zeros_like(tree))
