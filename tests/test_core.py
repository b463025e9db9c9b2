"""Core data model: Image geometry, mask validation, VesselGraph structure, FeatureTable."""

import numpy as np
import pytest

from vasomics.errors import GeometryError, InputError
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.masks import binary_mask
from vasomics.vessel_graph import VesselGraph


def test_index_to_physical_roundtrip_with_rotation():
    theta = np.deg2rad(30)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                          [0, 0, -1]])
    im = Image(np.zeros((5, 6, 7)), spacing=(1.5, 0.8, 0.5), origin=(10, -4, 2),
               direction=direction)
    idx = np.array([[1, 2, 3], [4.5, 0, 6]])
    phys = im.index_to_physical(idx)
    # voxel (z=1, y=2, x=3): x-axis step 3*0.5, y-axis step 2*0.8, z-axis step 1*1.5 (flipped)
    expected = np.array([10, -4, 2]) + direction @ np.array([1.5, 1.6, 1.5])
    assert np.allclose(phys[0], expected)
    assert np.allclose(im.physical_to_index(phys), idx)


@pytest.mark.parametrize("spacing", [(0, 1, 1), (-1, 1, 1), (np.nan, 1, 1), (1e9, 1, 1)])
def test_absurd_spacing_is_rejected(spacing):
    with pytest.raises(GeometryError, match="spacing"):
        Image(np.zeros((3, 3, 3)), spacing=spacing)


def test_rgb_image_has_two_spatial_axes():
    im = Image(np.zeros((10, 12, 3), np.uint8))
    assert im.ndim == 2 and im.shape == (10, 12) and im.n_channels == 3


@pytest.mark.parametrize(
    "array, message",
    [(np.zeros((4, 4)), "empty"), (np.ones((4, 4)), "all foreground"),
     (np.array([[0, 1], [2, 0]]), "not binary"), (np.array([[0, np.nan], [1, 0]]), "NaN")],
)
def test_bad_masks_are_rejected(array, message):
    with pytest.raises(InputError, match=message):
        binary_mask(array, "m.nii")


def test_binary_mask_accepts_0_255():
    assert binary_mask(np.array([[0, 255], [255, 0]], np.uint8)).sum() == 2


def test_graph_from_polylines_lengths_and_kinds():
    trunk = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]])
    g = VesselGraph.from_polylines(
        [trunk, np.array([[2, 0, 0], [3, 1, 0.0]]), np.array([[2, 0, 0], [3, -1, 0.0]])],
        [1.0, 0.5, 0.5])
    assert np.allclose(g.segment_lengths(), [2, np.sqrt(2), np.sqrt(2)])
    assert sorted(g.node_kind.tolist()) == ["bifurcation", "endpoint", "endpoint", "endpoint"]
    assert g.to_networkx().number_of_edges() == 3


def test_graph_rejects_inconsistent_columns():
    with pytest.raises(InputError, match="partition"):
        VesselGraph(node_position=np.zeros((2, 3)), node_kind=["endpoint"] * 2,
                    segment_start=[0], segment_end=[1], point_offsets=[0, 5],
                    points=np.zeros((3, 3)), radius=np.ones(3))


def test_feature_table_roundtrip(tmp_path):
    t = FeatureTable.from_records([("tree", "VX.A.TLEN", 12.5, "mm"),
                                   ("segment:0", "VX.S.LEN", 1 / 3, "mm")])
    t.to_parquet(tmp_path / "f.parquet")
    t.to_csv(tmp_path / "f.csv")
    assert FeatureTable.read(tmp_path / "f.parquet").equals(t)
    assert FeatureTable.read(tmp_path / "f.csv").equals(t, rtol=1e-9)
    assert t.value("VX.A.TLEN") == 12.5
    with pytest.raises(InputError, match="duplicate"):
        FeatureTable.from_records([("tree", "a", 1, "mm"), ("tree", "a", 2, "mm")])
