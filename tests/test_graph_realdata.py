"""Centerlines of real masks against independent references (TubeTK gold standard, VMTK)."""

from __future__ import annotations

import numpy as np
import pytest

from vasomics.chain.compare import compare_centerlines, graph_polylines, resample_polylines
from vasomics.chain.graph import GraphParams, mask_to_graph
from vasomics.io.graphs import read_vtp_centerlines
from vasomics.io.images import read_image
from vasomics.io.tubetk import read_tubetk_centerlines


@pytest.fixture(scope="module", params=["002", "003"])
def tubetk(request, shared_data):
    folder = shared_data / "tubetk_brain_mra"
    mask = read_image(folder / "labels" / f"labels-{request.param}.nii.gz")
    gold = read_tubetk_centerlines(
        folder / "centerlines" / f"VascularNetworkFixed-{request.param}.vtp", mask)
    return mask, gold, mask_to_graph(mask)


def test_tubetk_centerlines_match_the_gold_standard(tubetk):
    mask, gold, graph = tubetk
    r = compare_centerlines(graph, (gold.polylines, gold.radii), tol_mm=1.0)
    assert r["recall"] >= 0.90  # measured 0.987 (002), 0.989 (003)
    assert r["far_fraction"] <= 0.10  # measured 0.007, 0.005
    assert r["extracted_length_mm"] == pytest.approx(r["reference_length_mm"], rel=0.05)


def test_tubetk_radii_follow_the_mask(tubetk):
    """Our radius is the mask's own: at every centerline point, up to smoothing, the distance
    to the nearest background voxel centre, checked here with an independent KD-tree over
    the background voxels that touch the vessel."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    mask, _, graph = tubetk
    fg = mask.array > 0
    shell = ndimage.binary_dilation(fg) & ~fg
    tree = cKDTree(mask.index_to_physical(np.argwhere(shell)))
    exact = tree.query(graph.points)[0]
    assert np.median(np.abs(graph.radius - exact)) <= 0.05
    assert abs(np.median(graph.radius - exact)) <= 0.02


def test_tubetk_masks_are_tubetk_drawings_of_the_gold_tubes(tubetk):
    """The shipped masks are TubeTK's own rasterization of the gold-standard tubes: drawn
    again from the gold VTP by TubeTK's rule (``TubeSpatialObjectToImageFilter``, every voxel
    whose box a half-voxel sample of a tube lands in) they come back at Dice 0.985 (002) and
    0.988 (003); voxel centres inside the gold tubes give 0.68 with half the voxels. So the
    masks are wider than the gold radii by the rule's offset (``tests/test_radius.py``)."""
    from vasomics.chain.localize import _dice
    from vasomics.phantoms.raster import rasterize_points_tubetk, rasterize_tubes

    mask, gold, _ = tubetk
    drawn = rasterize_points_tubetk(np.concatenate(gold.polylines), np.concatenate(gold.radii),
                                    mask.shape, mask.spacing, origin=mask.origin,
                                    direction=mask.direction)
    assert _dice(drawn, mask.array > 0) >= 0.98
    centres = rasterize_tubes(gold.polylines, gold.radii, mask.shape, mask.spacing,
                              origin=mask.origin, direction=mask.direction, flat_caps=False)
    assert _dice(centres, mask.array > 0) <= 0.72


@pytest.mark.xfail(strict=False, reason=(
    "not reachable by a radius faithful to the mask: ours - gold, median (median |.|), "
    "002/003: inscribed +0.269 (0.270) / +0.260 (0.260) mm, section_area +0.271 / +0.266 mm, "
    "although both definitions are within 0.36 / 0.14 voxel on thin phantom tubes "
    "(tests/test_radius.py) and VMTK's aorta radii are matched within +0.07 mm. The gold radii "
    "are TubeTK's x-spacing units converted to mm by the reader (ITKTubeTK PR #830). The "
    "masks are TubeTK's own drawing of the gold tubes (test_tubetk_masks_are_tubetk_drawings_"
    "of_the_gold_tubes: Dice 0.985 / 0.988), whose rule sets every voxel a half-voxel sample "
    "of the tube lands in: +0.28 to +0.31 mm in radius on phantom tubes at these voxels "
    "(tests/test_radius.py). Misreading the gold radii as mm gives -0.277 / -0.263 mm "
    "instead (benchmarks/bench_radius_definition.py)"))
@pytest.mark.parametrize("definition", ["inscribed", "section_area"])
def test_tubetk_median_radius_error_target(tubetk, definition):
    mask, gold, graph = tubetk
    if definition != "inscribed":
        graph = mask_to_graph(mask, GraphParams(radius_definition=definition))
    r = compare_centerlines(graph, (gold.polylines, gold.radii), tol_mm=1.0)
    assert r["radius_abs_error_median_mm"] <= 0.25


def test_vmtk_aorta_centerlines(shared_data):
    from scipy.spatial import cKDTree

    folder = shared_data / "vmtk_aorta_mra"
    levelset = read_image(folder / "aorta-final-levelset.mha")
    mask = levelset.with_array((levelset.array < 0).astype(np.uint8))
    graph = mask_to_graph(mask)
    kinds = sorted(graph.node_kind.tolist())
    assert kinds == ["bifurcation", "endpoint", "endpoint", "root"]  # aorta into two iliacs
    vmtk = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS")
    vp, vr = resample_polylines(vmtk.polylines, vmtk.radii, 0.1)
    ep, er = resample_polylines(*graph_polylines(graph), 0.1)
    d_ours = cKDTree(vp).query(ep)[0]
    d_vmtk, i_vmtk = cKDTree(ep).query(vp)
    assert d_ours.mean() < 1.0  # measured 0.52 mm (voxels 0.88 x 0.88 x 1.5 mm)
    assert d_vmtk.mean() < 0.7  # measured 0.33 mm
    assert np.percentile(d_vmtk, 95) < 1.5  # measured 1.08 mm
    # the default radius is VMTK's maximum inscribed sphere radius, taken from the mask
    assert abs(np.median(er[i_vmtk] - vr)) <= 0.2  # measured +0.07 mm (section_area: +0.55)
