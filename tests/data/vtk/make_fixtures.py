"""Write small VTK XML files with VTK itself (``pip install vtk``), in many encodings, for
``tests/test_io_vtk_xml.py``. Contents follow formulas the test recomputes:

* PolyData: points ``p[i] = (i, 2i, 3i) / 10``; 3 lines over points 0-9, 10-19, 20-29;
  point array ``Radius`` (Float32) ``= 0.5 + i / 100``; cell array ``Group`` (Int32)
  ``= (7, 8, 9)``; field data String array ``Names`` = ("aorta", "left iliac").
* ImageData: extent 0..6 × 0..4 × 0..2, spacing (0.5, 0.25, 2), origin (-3, 4, 5.5),
  direction diag(-1, -1, 1); Int16 scalars ``v[z, y, x] = 100 z + 10 y + x - 50``.

Run: python tests/data/vtk/make_fixtures.py  (writes next to this file)
"""

from pathlib import Path

import vtk

HERE = Path(__file__).parent


def polydata():
    poly = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetDataTypeToDouble()
    for i in range(30):
        pts.InsertNextPoint(i / 10, 2 * i / 10, 3 * i / 10)
    poly.SetPoints(pts)
    lines = vtk.vtkCellArray()
    for start in (0, 10, 20):
        lines.InsertNextCell(10)
        for i in range(start, start + 10):
            lines.InsertCellPoint(i)
    poly.SetLines(lines)
    radius = vtk.vtkFloatArray()
    radius.SetName("Radius")
    for i in range(30):
        radius.InsertNextValue(0.5 + i / 100)
    poly.GetPointData().AddArray(radius)
    group = vtk.vtkIntArray()
    group.SetName("Group")
    for g in (7, 8, 9):
        group.InsertNextValue(g)
    poly.GetCellData().AddArray(group)
    names = vtk.vtkStringArray()
    names.SetName("Names")
    names.InsertNextValue("aorta")
    names.InsertNextValue("left iliac")
    poly.GetFieldData().AddArray(names)
    return poly


def imagedata():
    img = vtk.vtkImageData()
    img.SetExtent(0, 6, 0, 4, 0, 2)
    img.SetSpacing(0.5, 0.25, 2.0)
    img.SetOrigin(-3.0, 4.0, 5.5)
    img.SetDirectionMatrix(-1, 0, 0, 0, -1, 0, 0, 0, 1)
    arr = vtk.vtkShortArray()
    arr.SetName("v")
    for z in range(3):
        for y in range(5):
            for x in range(7):
                arr.InsertNextValue(100 * z + 10 * y + x - 50)
    img.GetPointData().SetScalars(arr)
    return img


def write(writer, data, name, mode, encode, compressor, header, big_endian=False):
    writer.SetInputData(data)
    writer.SetFileName(str(HERE / name))
    {"ascii": writer.SetDataModeToAscii, "binary": writer.SetDataModeToBinary,
     "appended": writer.SetDataModeToAppended}[mode]()
    writer.SetEncodeAppendedData(encode)
    {"none": writer.SetCompressorTypeToNone, "zlib": writer.SetCompressorTypeToZLib,
     "lzma": writer.SetCompressorTypeToLZMA, "lz4": writer.SetCompressorTypeToLZ4}[compressor]()
    writer.SetHeaderTypeToUInt64() if header == 64 else writer.SetHeaderTypeToUInt32()
    writer.SetByteOrderToBigEndian() if big_endian else writer.SetByteOrderToLittleEndian()
    assert writer.Write() == 1, name


CASES = [
    ("ascii", False, "none", 32, False),
    ("binary", False, "none", 32, False),
    ("binary", False, "zlib", 64, False),
    ("appended", False, "none", 64, False),
    ("appended", False, "zlib", 32, False),
    ("appended", True, "zlib", 64, False),
    ("appended", True, "none", 32, False),
    ("appended", False, "lzma", 64, False),
    ("binary", False, "zlib", 32, True),
    ("appended", False, "none", 64, True),
    ("appended", False, "lz4", 64, False),
]

if __name__ == "__main__":
    for mode, encode, comp, header, big in CASES:
        tag = f"{mode}{'-b64' if encode else ''}_{comp}_u{header}{'_be' if big else ''}"
        write(vtk.vtkXMLPolyDataWriter(), polydata(), f"poly_{tag}.vtp", mode, encode, comp,
              header, big)
        write(vtk.vtkXMLImageDataWriter(), imagedata(), f"image_{tag}.vti", mode, encode,
              comp, header, big)
    pieces = vtk.vtkXMLImageDataWriter()  # the extent split into 3 pieces
    pieces.SetNumberOfPieces(3)
    write(pieces, imagedata(), "image_pieces3_appended_zlib_u64.vti", "appended", False,
          "zlib", 64)
    print("VTK", vtk.vtkVersion.GetVTKVersion())
