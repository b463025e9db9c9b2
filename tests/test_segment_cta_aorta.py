"""Classical aorta segmentation on CT angiography (``--method aorta``), against
TotalSegmentator's aorta mask on its thoracic CTA example (aortic dissection, 1.5 mm), and its
one-line failure on a non-contrast CT."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.chain.segment.aorta import (
    AortaParams,
    Section,
    _fit_circle,
    _Plane,
    _Tracker,
    paint,
    segment_aorta,
)
from vasomics.chain.segment.api import load_preset, segment
from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.io.images import read_image
from vasomics.metrics.segmentation import dice

TS = "totalsegmentator_examples"
CTA = f"{TS}/aorta_report/test_result/models"


def test_preset_file_matches_the_documented_defaults():
    """The shipped preset holds every AortaParams key at its default (one source of truth)."""
    assert load_preset("cta_aorta").aorta == AortaParams()
    assert load_preset("cta_aorta").method == "aorta"


def test_paint_of_straight_sections_is_a_cylinder():
    """Sections along z with radius 6 mm paint a cylinder of area pi r^2 per slice."""
    sp = (1.0, 0.5, 0.5)
    z = np.eye(3)[0]
    secs = [Section(np.array([k, 20.0, 20.0]), z, np.eye(3)[1], np.eye(3)[2], 6.0,
                    np.full(64, 6.0), True) for k in np.arange(4.0, 36.0, 2.0)]
    mask = paint(secs, (40, 80, 80), sp, 2.0)
    area = mask[10:30].sum(axis=(1, 2)) * sp[1] * sp[2]
    assert np.allclose(area, np.pi * 36, rtol=0.03), area


def test_circle_fit_is_deterministic_and_rejects_outliers():
    """Edge points of a 15 mm circle centred at (2, -1) mm on 40 of 64 rays, 24 rays pulled out
    to 25-32 mm (a neighbour, jagged): the fixed-hypothesis fit finds the circle within
    0.1 mm, the same on every call (no random draw)."""
    p = AortaParams()
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    # ray radius from the origin to the circle |x - c| = 15
    c = np.array([2.0, -1.0])
    proj = np.cos(theta) * c[0] + np.sin(theta) * c[1]
    r = proj + np.sqrt(proj ** 2 - (c @ c - 15.0 ** 2))
    r[40:] = 25.0 + 1.75 * ((np.arange(24) * 3) % 5)  # jagged, 25-32 mm
    fits = [_fit_circle(theta, r, theta[:40], r[:40] - 3.0, 5.0, 40.0, 15.0, p)
            for _ in range(2)]
    (cx, cy, rad), n_in = fits[0]
    assert fits[0] == fits[1]
    assert abs(cx - 2.0) < 0.1 and abs(cy + 1.0) < 0.1 and abs(rad - 15.0) < 0.1, fits[0]
    assert n_in == 40


def test_painted_boundary_is_the_lumen_plus_thick_layers_only():
    """In a section plane (0.75 mm pixels, all non-fat tissue): a 10 mm lumen inside a
    concentric 12 mm outer circle (a 2 mm wall rim, thinner than thrombus_min_mm 10) paints the
    lumen only (per ray 10 +- 0.5 mm: pixel steps); an 8 mm lumen touching the inside of a 16 mm circle leaves
    a crescent 16 mm thick opposite it (a thrombosed false lumen), painted up to the circle
    except its thin horns."""
    p = AortaParams()
    tracker = _Tracker(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0), p)
    g = np.arange(-30.0, 30.01, p.plane_pixel_mm)
    a, b = np.meshgrid(g, g, indexing="ij")
    tissue = np.ones(a.shape, bool)
    rays = tracker.region_rays(_Plane(a, b, np.hypot(a, b) <= 10.0, tissue), (0.0, 0.0, 12.0))
    assert np.all(np.abs(rays - 10.0) <= 0.5), (rays.min(), rays.max())
    lumen = np.hypot(a - 8.0, b) <= 8.0
    rays = tracker.region_rays(_Plane(a, b, lumen, tissue), (0.0, 0.0, 16.0))
    theta = np.linspace(0, 2 * np.pi, p.n_rays, endpoint=False)
    lumen_edge = np.maximum(16.0 * np.cos(theta), 0.0)  # from the circle's centre
    assert np.all(rays >= lumen_edge - 0.5) and np.all(rays <= 16.5), (rays.min(), rays.max())
    # the lumen side and the thick side of the crescent reach the circle; its thin horns
    # (near the point where the lumen touches the circle) are left out
    assert abs(rays[0] - 16.0) <= 0.5 and abs(rays[p.n_rays // 2] - 16.0) <= 0.5
    horn = np.flatnonzero(rays < 15.0)
    assert horn.size and np.all(np.cos(theta[horn]) > 0), theta[horn]  # on the lumen side


@pytest.fixture(scope="module")
def cta(shared_data):
    img = read_image(shared_data / CTA / "ct_cropped.nii.gz")
    return img, segment(img, "cta", method="aorta")


def test_cta_aorta_dice_against_totalsegmentator(shared_data, cta):
    """Against TotalSegmentator's aorta label (true + false lumen; its edge is the lumen's, so
    the mask is the lumen plus thick thrombosed layers inside the outer wall). Issue target
    Dice >= 0.85: met. Deterministic (global minimal-path centreline through the arch, fixed
    circle hypotheses; no random seed). Defaults: Dice 0.918 (precision 0.919, recall 0.918,
    false-lumen recall 0.857). Each of 22 parameters at 0.8x and 1.2x its default
    (benchmarks/eval_segment_aorta.py --perturb): Dice 0.870-0.919 (false-lumen recall
    >= 0.791), except seed_roundness 0.84 (no arch pair: the dissected descending lumen is
    oval; fallback tracker) 0.820. So this asserts the issue's 0.85 for the defaults. About
    5-15 s on 2 loaded cores."""
    img, result = cta
    ref = read_image(shared_data / CTA / "aorta.nii.gz").array > 0
    mask = result.mask.array
    assert mask.shape == ref.shape and mask.dtype == bool
    assert result.structures["aorta"].array is mask
    assert dice(mask, ref) >= 0.85, dice(mask, ref)  # 0.918 measured
    # the false lumen (thrombosed or partly opacified, ~50-330 HU) is mostly included
    false_lumen = read_image(shared_data / CTA / "aorta_false_lumen.nii.gz").array > 0
    assert (mask & false_lumen).sum() / false_lumen.sum() > 0.78  # measured 0.857


def test_flipped_slice_order_gives_the_same_aorta(cta):
    """The same CT with axis 0 reversed and the direction matrix saying so (slices stored head
    to feet): the same mask, reversed (the arch search works superior of the disc slice)."""
    img, result = cta
    direction = np.asarray(img.direction, float).copy()
    direction[:, 2] *= -1  # NumPy axis 0 is ITK axis 2
    top = img.index_to_physical(np.array([[img.shape[0] - 1, 0, 0]]))[0]
    flipped = Image(img.array[::-1].copy(), spacing=img.spacing, origin=tuple(top),
                    direction=direction, modality=img.modality)
    mask = segment_aorta(flipped).mask.array[::-1]
    assert dice(mask, result.mask.array) > 0.99


def test_non_contrast_ct_fails_in_one_line(shared_data):
    """TotalSegmentator's abdominal example is a non-contrast CT (aorta ~42 HU): no aorta-like
    contrast tube exists, and the error says so in one line."""
    img = read_image(shared_data / TS / "example_ct.nii.gz")
    with pytest.raises(InputError, match="no aorta-like structure") as info:
        segment_aorta(img)
    assert "\n" not in str(info.value)


def test_cli_method_aorta_error_exit(shared_data, tmp_path, capsys):
    """``vasomics segment IMAGE -o MASK --preset cta --method aorta`` on a non-contrast CT:
    exit code 2, one line naming the problem, no output written."""
    from vasomics.cli import main

    out = tmp_path / "aorta.nii.gz"
    code = main(["segment", str(shared_data / TS / "example_ct_sm.nii.gz"), "-o", str(out),
                 "--preset", "cta", "--method", "aorta", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no aorta-like structure" in err and "\n" not in err, err
    assert not out.exists()


def test_2d_input_is_rejected():
    with pytest.raises(InputError, match="3D"):
        segment(Image(np.zeros((32, 32), np.float32)), "cta", method="aorta")
