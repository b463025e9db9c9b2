"""Manual interoperability check: VTK itself reads every file vasomics' VTK XML writer makes.

Needs VTK (not a vasomics dependency): ``python -m venv /tmp/vtkenv &&
/tmp/vtkenv/bin/pip install vtk numpy && PYTHONPATH=src /tmp/vtkenv/bin/python
tests/data/vtk/check_with_vtk.py``. Prints one line per mismatch and a summary; exit code 1
on any mismatch. (The opposite direction, files written by VTK read by vasomics, is a
regular test: ``make_fixtures.py`` + ``tests/test_io_vtk_xml.py``.)
"""

import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy as v2n

from vasomics.io.graphs import write_graph_vtp
from vasomics.io.vtk_xml import VTKImageData, VTKPolyData, write_vtk_xml
from vasomics.vessel_graph import VesselGraph

IDX = np.arange(30)
Z, Y, X = np.meshgrid(np.arange(3), np.arange(5), np.arange(7), indexing="ij")
POLY = VTKPolyData(
    points=np.column_stack([IDX, 2 * IDX, 3 * IDX]) / 10,
    cells={"Lines": [np.arange(s, s + 10) for s in (0, 10, 20)]},
    point_data={"Radius": (0.5 + IDX / 100).astype(np.float32)},
    cell_data={"Group": np.array([7, 8, 9], np.int32),
               "Label": np.array(["a", "left iliac", ""], object)},
    field_data={"Names": np.array(["aorta", "left iliac"], object),
                "Pos": np.arange(6.0).reshape(2, 3)})
IMAGE = VTKImageData(extent=(0, 6, 0, 4, 0, 2), spacing=(0.5, 0.25, 2.0), origin=(-3.0, 4.0, 5.5),
                     direction=np.diag([-1.0, -1, 1]),
                     point_data={"v": (100 * Z + 10 * Y + X - 50).astype(np.int16)})


def poly_ok(path: Path) -> bool:
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(path))
    r.Update()
    d = r.GetOutput()
    cells, ids, pl = [], d.GetLines(), vtk.vtkIdList()
    ids.InitTraversal()
    while ids.GetNextCell(pl):
        cells.append([pl.GetId(k) for k in range(pl.GetNumberOfIds())])
    lab = d.GetCellData().GetAbstractArray("Label")
    names = d.GetFieldData().GetAbstractArray("Names")
    pos = d.GetFieldData().GetArray("Pos")
    return (d.GetNumberOfPoints() == 30 and cells == [list(range(s, s + 10)) for s in (0, 10, 20)]
            and np.allclose(v2n(d.GetPoints().GetData()), POLY.points)
            and np.allclose(v2n(d.GetPointData().GetArray("Radius")), 0.5 + IDX / 100)
            and list(v2n(d.GetCellData().GetArray("Group"))) == [7, 8, 9]
            and lab is not None and [lab.GetValue(k) for k in range(3)] == ["a", "left iliac", ""]
            and names is not None and [names.GetValue(k) for k in range(2)] == ["aorta", "left iliac"]
            and pos is not None and np.allclose(v2n(pos), np.arange(6.0).reshape(2, 3)))


def image_ok(path: Path) -> bool:
    r = vtk.vtkXMLImageDataReader()
    r.SetFileName(str(path))
    r.Update()
    d = r.GetOutput()
    m = d.GetDirectionMatrix()
    direction = np.array([[m.GetElement(a, b) for b in range(3)] for a in range(3)])
    return (d.GetExtent() == (0, 6, 0, 4, 0, 2) and d.GetSpacing() == (0.5, 0.25, 2.0)
            and d.GetOrigin() == (-3.0, 4.0, 5.5) and np.allclose(direction, IMAGE.direction)
            and np.array_equal(v2n(d.GetPointData().GetArray("v")).reshape(3, 5, 7),
                               IMAGE.point_data["v"]))


def main() -> int:
    bad = n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, enc, comp, hdr, order in itertools.product(
                ["appended", "binary", "ascii"], ["raw", "base64"], [True, False],
                ["UInt32", "UInt64"], ["LittleEndian", "BigEndian"]):
            if fmt != "appended" and enc == "base64":
                continue
            kw = dict(data_format=fmt, appended_encoding=enc, compress=comp, header_type=hdr,
                      byte_order=order)
            for data, suffix, check in ((POLY, "vtp", poly_ok), (IMAGE, "vti", image_ok)):
                path = write_vtk_xml(Path(tmp) / f"{fmt}_{enc}_{comp}_{hdr}_{order}.{suffix}",
                                     data, **kw)
                n += 1
                if not check(path):
                    bad += 1
                    print("MISMATCH", path.name)
        graph = VesselGraph(node_position=[[0, 0, 0], [2, 1, 0], [3, 3, 0]],
                            node_kind=["root", "bifurcation", "endpoint"], segment_start=[0, 1],
                            segment_end=[1, 2], point_offsets=[0, 3, 5],
                            points=[[0, 0, 0], [1, 0, 0], [2, 1, 0], [2, 1, 0], [3, 3, 0]],
                            radius=[1, 1, 1, 0.5, 0.5], segment_label=["trunk", "branch"])
        r = vtk.vtkXMLPolyDataReader()
        r.SetFileName(str(write_graph_vtp(graph, Path(tmp) / "graph.vtp")))
        r.Update()
        d = r.GetOutput()
        n += 1
        if not (d.GetNumberOfLines() == 2 and np.allclose(
                v2n(d.GetPointData().GetArray("Radius")), graph.radius)):
            bad += 1
            print("MISMATCH graph.vtp")
    print(f"VTK {vtk.vtkVersion.GetVTKVersion()}: {n} vasomics files read, {bad} mismatches")
    return int(bad > 0)


if __name__ == "__main__":
    sys.exit(main())
