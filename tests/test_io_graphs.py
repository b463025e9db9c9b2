"""Vessel graphs on disk: VTP, JSON and GraphML round trips; real VMTK/TubeTK centerlines."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from vasomics.errors import FormatError, InputError
from vasomics.io.graphs import (
    JSON_SCHEMA_VERSION,
    Centerlines,
    read_graph,
    read_graph_json,
    read_graph_vtp,
    read_vtp_centerlines,
    write_graph_graphml,
    write_graph_json,
    write_graph_vtp,
)
from vasomics.io.vtk_xml import read_vtp
from vasomics.vessel_graph import VesselGraph


def _y_with_loop(ndim: int = 3) -> VesselGraph:
    """A Y bifurcation plus a loop segment at one endpoint; labels, generations, Strahler."""
    rng = np.random.default_rng(5)
    nodes = rng.normal(size=(4, ndim)) * 10
    polylines, radii = [], []
    for a, b in ((0, 1), (1, 2), (1, 3)):
        t = np.linspace(0, 1, 7)[:, None]
        line = nodes[a] + t * (nodes[b] - nodes[a])
        line[1:-1] += rng.normal(size=(5, ndim)) * 0.3
        polylines.append(line)
        radii.append(np.linspace(3, 2, 7))
    circle = np.linspace(0, 2 * np.pi, 9)[:, None]
    loop = nodes[2] + np.hstack([np.cos(circle) - 1, np.sin(circle)] + [np.zeros_like(circle)]
                                * (ndim - 2)) * 2
    loop[-1] = nodes[2]
    polylines.append(loop)
    radii.append(np.full(9, 0.7))
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in polylines])])
    return VesselGraph(
        node_position=nodes, node_kind=np.array(["root", "bifurcation", "anchor", "endpoint"],
                                                dtype=object),
        segment_start=[0, 1, 1, 2], segment_end=[1, 2, 3, 2], point_offsets=offsets,
        points=np.concatenate(polylines), radius=np.concatenate(radii),
        segment_label=["aorta", "left iliac", "right iliac", ""],
        segment_generation=[1, 2, 2, 3], segment_strahler=[2, 1, 1, -1],
        metadata={"source": "test", "spacing": np.array([0.5, 0.5, 1.0]), "n": np.int64(3)},
    )


def _assert_graphs_equal(a: VesselGraph, b: VesselGraph):
    np.testing.assert_allclose(b.node_position, a.node_position, rtol=1e-12)
    assert b.node_kind.tolist() == a.node_kind.tolist()
    np.testing.assert_array_equal(b.segment_start, a.segment_start)
    np.testing.assert_array_equal(b.segment_end, a.segment_end)
    np.testing.assert_array_equal(b.point_offsets, a.point_offsets)
    np.testing.assert_allclose(b.points, a.points, rtol=1e-12)
    np.testing.assert_allclose(b.radius, a.radius, rtol=1e-12)
    assert b.segment_label.tolist() == a.segment_label.tolist()
    np.testing.assert_array_equal(b.segment_generation, a.segment_generation)
    np.testing.assert_array_equal(b.segment_strahler, a.segment_strahler)


@pytest.mark.parametrize("ndim", [2, 3])
def test_vtp_round_trip(tmp_path, ndim):
    graph = _y_with_loop(ndim)
    path = write_graph_vtp(graph, tmp_path / "g.vtp")
    _assert_graphs_equal(graph, read_graph_vtp(path))
    # what VMTK and Slicer see: one polyline per segment, a Radius point array
    poly = read_vtp(path)
    assert len(poly.lines) == graph.n_segments
    np.testing.assert_allclose(poly.point_data["Radius"], graph.radius)
    assert poly.points.shape[1] == 3
    lines = read_vtp_centerlines(path)
    assert lines.radius_name == "Radius" and len(lines.polylines) == 4
    np.testing.assert_array_equal(lines.cell_data["SegmentId"], np.arange(4))


@pytest.mark.parametrize("ndim", [2, 3])
def test_json_round_trip(tmp_path, ndim):
    graph = _y_with_loop(ndim)
    path = write_graph_json(graph, tmp_path / "g.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "vasomics.vessel_graph" and doc["version"] == JSON_SCHEMA_VERSION
    assert doc["frame"] == "LPS" and doc["units"]["radius"] == "mm"
    assert doc["metadata"]["spacing"] == [0.5, 0.5, 1.0] and doc["metadata"]["n"] == 3
    back = read_graph_json(path)
    _assert_graphs_equal(graph, back)
    np.testing.assert_allclose(back.segment_lengths(), graph.segment_lengths())


def test_json_rejects_other_documents(tmp_path):
    doc = json.loads(write_graph_json(_y_with_loop(), tmp_path / "g.json").read_text())
    doc["version"] = JSON_SCHEMA_VERSION + 1
    (tmp_path / "future.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="future.json.*version"):
        read_graph_json(tmp_path / "future.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(FormatError, match="other.json"):
        read_graph_json(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text('{"format": "vasomics.vessel_graph", "vers')
    with pytest.raises(InputError, match="broken.json"):
        read_graph_json(tmp_path / "broken.json")
    doc["version"] = 1
    doc["segments"][0]["end"] = 99
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="bad.json.*missing node"):
        read_graph_json(tmp_path / "bad.json")


def test_graphml(tmp_path):
    graph = _y_with_loop()
    g = nx.read_graphml(write_graph_graphml(graph, tmp_path / "g.graphml"))
    assert g.number_of_nodes() == 4 and g.number_of_edges() == 4
    assert g.nodes["1"]["kind"] == "bifurcation"
    assert g.nodes["0"]["x"] == pytest.approx(graph.node_position[0, 0])
    lengths = sorted(d["length_mm"] for _, _, d in g.edges(data=True))
    np.testing.assert_allclose(lengths, np.sort(graph.segment_lengths()))
    edge = next(d for _, _, d in g.edges(data=True) if d["label"] == "left iliac")
    np.testing.assert_allclose(json.loads(edge["points"]), graph.segment_points(1), atol=1e-6)


def test_vmtk_centerlines_without_frame_warn(shared_data, caplog):
    path = shared_data / "vmtk_aorta_mra/aorta-centerline.vtp"
    with caplog.at_level("WARNING"):
        read_vtp_centerlines(path)
    assert "frame='RAS'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        read_vtp_centerlines(path, frame="RAS")
    assert caplog.text == ""


def test_vmtk_centerlines_to_graph(shared_data):
    """VMTK's branch-split centerlines: per centerline, tracts (trunk, blanked bifurcation
    zone, branch) join end to end; the two centerlines share only their source point (VMTK
    keeps one trunk copy per centerline, so the trunks are not merged into one segment)."""
    path = shared_data / "vmtk_aorta_mra/aorta-centerline-branches.vtp"
    lines = read_vtp_centerlines(path, frame="RAS")
    assert lines.radius_name == "MaximumInscribedSphereRadius" and len(lines.polylines) == 6
    assert set(lines.cell_data) >= {"CenterlineIds", "GroupIds", "TractIds", "Blanking"}
    graph = lines.to_graph(merge_tol_mm=0.5)
    assert graph.n_segments == 6
    assert graph.n_nodes == 7
    assert sorted(graph.node_degree().tolist()) == [1, 1, 2, 2, 2, 2, 2]
    assert graph.segment_start[0] == graph.segment_start[3]  # the shared source
    raw = read_vtp(path).points
    np.testing.assert_allclose(lines.points, raw * [-1, -1, 1])
    # the fallback path of read_graph_vtp gives the same structure (in the file's frame)
    assert read_graph_vtp(path, merge_tol_mm=0.5).n_segments == 6


def test_centerlines_without_radius(tmp_path):
    graph = _y_with_loop()
    path = write_graph_vtp(graph, tmp_path / "g.vtp")
    lines = read_vtp_centerlines(path)
    lines.radii = None
    with pytest.raises(InputError, match="no radius array"):
        lines.to_graph()
    assert lines.to_graph(default_radius=1.0).n_segments == 4
    with pytest.raises(InputError, match="no point array 'Diameter'"):
        read_vtp_centerlines(path, radius_array="Diameter")


def test_joined_attaches_children_inside_the_parent_lumen():
    from vasomics.io.graphs import Centerlines

    x = np.linspace(0, 20, 41)
    parent = np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])
    # child 1 starts 0.8 mm off the parent's axis (inside its 1.5 mm lumen) at x = 5
    child1 = np.column_stack([np.full(10, 5.0), np.linspace(0.8, 8, 10), np.zeros(10)])
    # child 2 ends (its last point) inside the lumen at x = 12
    child2 = np.column_stack([np.full(10, 12.0), np.zeros(10), np.linspace(-9, -1.0, 10)])
    # a continuation starting on the parent's last point
    cont = np.column_stack([np.linspace(20, 30, 11), np.zeros(11), np.zeros(11)])
    # a stray tube 4 mm away (outside every lumen) stays unattached
    stray = np.column_stack([np.full(5, 8.0), np.full(5, 4.0), np.linspace(0, 4, 5)])
    # two tubes that each end inside the other: joining both ways would close a cycle
    a = np.column_stack([np.linspace(40, 50, 11), np.zeros(11), np.zeros(11)])
    b = np.column_stack([np.linspace(49.5, 40.5, 10), np.full(10, 0.4), np.zeros(10)])
    lines = [parent, child1, child2, cont, stray, a, b]
    radii = [np.full(len(p), r) for p, r in zip(lines, [1.5, 0.5, 0.5, 1.2, 0.3, 1.0, 1.0],
                                                strict=True)]
    joined = Centerlines(lines, radii, "Radius").joined()
    graph = joined.to_graph(merge_tol_mm=1e-6)
    g = nx.Graph(graph.to_networkx())
    assert nx.number_connected_components(g) == 3  # tree, stray, the a-b pair
    assert len(nx.cycle_basis(g)) == 0
    # the parent was split at x = 5 and x = 12: those nodes are bifurcations
    bif = graph.node_position[graph.node_kind == "bifurcation"]
    assert sorted(np.round(bif[:, 0], 6).tolist()) == [5.0, 12.0]
    # added length: the stubs from each joined end to the parent point (child 1: 0.8 mm,
    # child 2: 1.0 mm, one of the a-b pair: |(0.5, 0.4)|); the continuation adds nothing
    original = sum(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in lines)
    added = 0.8 + 1.0 + np.hypot(0.5, 0.4)
    assert graph.segment_lengths().sum() == pytest.approx(original + added, abs=1e-6)
    assert min(np.linalg.norm(np.diff(p, axis=0), axis=1).min() for p in joined.polylines) > 0


def test_tubetk_gold_standard_graph(shared_data):
    from vasomics.io.images import read_image
    from vasomics.io.tubetk import tubetk_gold_standard_graph

    folder = shared_data / "tubetk_brain_mra"
    labels = read_image(folder / "labels/labels-002.nii.gz")
    raw = read_vtp_centerlines(folder / "centerlines/VascularNetworkFixed-002.vtp")
    graph = tubetk_gold_standard_graph(folder / "centerlines/VascularNetworkFixed-002.vtp",
                                       labels)
    g = nx.Graph(graph.to_networkx())
    assert len(nx.cycle_basis(g)) == 0
    assert nx.number_connected_components(g) < len(raw.polylines) / 3
    assert np.count_nonzero(graph.node_kind == "bifurcation") > 100
    raw_length = sum(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in raw.polylines)
    assert 1.0 <= graph.segment_lengths().sum() / raw_length < 1.03


def test_space_tag_sets_the_frame(tmp_path, caplog):
    """3D Slicer's SPACE field tag decides the frame; vasomics writes SPACE=LPS."""
    from vasomics.io.vtk_xml import write_vtk_xml

    graph = _y_with_loop()
    path = write_graph_vtp(graph, tmp_path / "g.vtp")
    poly = read_vtp(path)
    assert poly.field_data["SPACE"].tolist() == ["LPS"]
    # the same model saved by Slicer in RAS: coordinates negated in x, y and tagged
    poly.points = poly.points * [-1, -1, 1]
    poly.field_data["NodePosition"] = poly.field_data["NodePosition"] * [-1, -1, 1]
    poly.field_data["SPACE"] = np.array(["RAS"], dtype=object)
    ras = write_vtk_xml(tmp_path / "ras.vtp", poly)
    _assert_graphs_equal(graph, read_graph_vtp(ras))
    np.testing.assert_allclose(read_vtp_centerlines(ras).points, graph.points)
    with caplog.at_level("WARNING"):
        forced = read_vtp_centerlines(ras, frame="LPS")
    assert "SPACE=RAS" in caplog.text
    np.testing.assert_allclose(forced.points, poly.points)


def _vmtk_like_paths():
    """Two paths from one inlet, as vmtkcenterlines writes them: a 50 mm trunk (radius 3 mm)
    shared by both, then a 30 mm branch each at +-45 degrees (radius 2 mm); 0.5 mm steps."""
    trunk = np.column_stack([np.zeros(101), np.zeros(101), np.linspace(0, 50, 101)])
    paths = []
    for sign in (1, -1):
        t = np.linspace(0.5, 30, 60)[:, None]
        branch = trunk[-1] + t * np.array([sign * np.sqrt(0.5), 0, np.sqrt(0.5)])
        paths.append(np.vstack([trunk, branch]))
    radii = [np.concatenate([np.full(101, 3.0), np.full(60, 2.0)])] * 2
    return paths, radii


def test_path_centerlines_merge_into_a_tree():
    """The shared trunk is counted once: 3 segments, 1 bifurcation within 1.5 mm of the true
    branching point, total length 110 mm within 1 % (unmerged: 160 mm); a path stored
    outlet to inlet and a duplicate path give the same tree."""
    paths, radii = _vmtk_like_paths()
    variants = {"as written": (paths, radii),
                "reversed": ([paths[0], paths[1][::-1]], [radii[0], radii[1][::-1]]),
                "duplicate": (paths + [paths[0].copy()], radii + [radii[0]])}
    for name, (lines, rad) in variants.items():
        graph = Centerlines(lines, rad).merged_paths().to_graph()
        assert graph.n_segments == 3, name
        assert sorted(graph.node_degree().tolist()) == [1, 1, 1, 3], name
        assert graph.segment_lengths().sum() == pytest.approx(110.0, rel=0.01), name
        fork = graph.node_position[graph.node_degree() == 3][0]
        assert np.linalg.norm(fork - [0, 0, 50]) < 1.5, (name, fork)
    assert Centerlines(paths, radii).to_graph().segment_lengths().sum() == pytest.approx(
        160.0, rel=0.01)


def test_vmtk_files_read_as_one_tree(shared_data):
    """VMTK's path centerlines and its branch-split ones read as the same Y (trunk once, two
    iliacs), not as two overlapping paths (154 mm)."""
    folder = shared_data / "vmtk_aorta_mra"
    paths = read_graph(folder / "aorta-centerline.vtp", frame="RAS")
    branches = read_graph(folder / "aorta-centerline-branches.vtp", frame="RAS")
    for graph in (paths, branches):
        assert graph.n_segments == 3
        assert sorted(graph.node_degree().tolist()) == [1, 1, 1, 3]
    total = paths.segment_lengths().sum()
    assert 110 < total < 125 and abs(branches.segment_lengths().sum() - total) < 1.0
    with pytest.raises(FormatError, match="not a graph file"):
        read_graph(folder / "aorta.mha")
