"""``vasomics io info|convert`` through the real entry point."""

from __future__ import annotations

import numpy as np

from vasomics.cli import main
from vasomics.image import Image
from vasomics.io.graphs import write_graph_json
from vasomics.io.images import read_image, write_image
from vasomics.vessel_graph import VesselGraph


def test_info_reports_orientation(shared_data, capsys):
    assert main(["io", "info", str(shared_data / "vmtk_aorta_mra/aorta.mha")]) == 0
    out = capsys.readouterr().out
    assert "RAS" in out and "(34, 393, 157)" in out and "-156.445" in out


def test_convert_image_and_graph(tmp_path, capsys):
    image = Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), spacing=(2.0, 1.0, 0.5),
                  origin=(1.0, 2.0, 3.0))
    src = write_image(image, tmp_path / "a.nii.gz")
    assert main(["io", "convert", str(src), str(tmp_path / "a.nrrd")]) == 0
    back = read_image(tmp_path / "a.nrrd")
    assert back.same_geometry(image) and np.array_equal(back.array, image.array)
    graph = VesselGraph.from_polylines([np.array([[0.0, 0, 0], [1, 0, 0], [2, 1, 0]]),
                                        np.array([[2.0, 1, 0], [3, 3, 0]])], [1.0, 0.5])
    gjson = write_graph_json(graph, tmp_path / "g.json")
    assert main(["io", "convert", str(gjson), str(tmp_path / "g.graphml")]) == 0
    assert (tmp_path / "g.graphml").stat().st_size > 0
    assert main(["io", "info", str(gjson)]) == 0
    assert "2 segments" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["io", "info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.nii.gz" in err
    assert main(["io", "convert", str(tmp_path / "missing.mha"), str(tmp_path / "o.nii")]) == 2
    assert not (tmp_path / "o.nii").exists()


def test_convert_to_a_dicom_series_folder(tmp_path, capsys):
    """A target without an extension is a folder that receives a DICOM series; it reads back
    with the same voxels and geometry. A 2D image cannot be a series: one line."""
    image = Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 60,
                  spacing=(2.5, 0.7, 0.8), origin=(10.0, -20.0, 30.0), modality="CT")
    src = write_image(image, tmp_path / "ct.nii.gz")
    assert main(["io", "convert", str(src), str(tmp_path / "series")]) == 0
    assert len(list((tmp_path / "series").glob("*.dcm"))) == 4
    back = read_image(tmp_path / "series")
    assert back.same_geometry(image) and np.array_equal(back.array, image.array)
    flat = write_image(Image(np.zeros((5, 6), np.uint8)), tmp_path / "flat.png")
    assert main(["io", "convert", str(flat), str(tmp_path / "flat_series")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_convert_vmtk_centerlines_in_their_frame(shared_data, tmp_path):
    """VMTK writes RAS: converted with --frame RAS, the graph's points are the file's with x
    and y negated (LPS), one tree of 3 segments; without it they are taken as LPS."""
    from vasomics.io.graphs import read_graph_json

    vtp = shared_data / "vmtk_aorta_mra" / "aorta-centerline.vtp"
    graphs = {}
    for frame in ("RAS", "LPS"):
        out = tmp_path / f"{frame}.json"
        assert main(["io", "convert", str(vtp), str(out), "--frame", frame]) == 0
        graphs[frame] = read_graph_json(out)
        assert graphs[frame].n_segments == 3
    np.testing.assert_allclose(graphs["RAS"].points * [-1.0, -1.0, 1.0], graphs["LPS"].points)
