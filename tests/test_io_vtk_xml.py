"""The VTK XML codec: every encoding round-trips, real VTK-written files decode to the value
ranges VTK itself recorded in them, and hand-written files in older layouts are read."""

from __future__ import annotations

import base64
import itertools
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

from vasomics.errors import FormatError, InputError
from vasomics.io.vtk_xml import (
    VTKImageData,
    VTKPolyData,
    read_vti,
    read_vtk_xml,
    read_vtp,
    write_vtk_xml,
)


@pytest.fixture
def poly():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 3)) * 50
    lines = [np.arange(0, 10), np.arange(10, 25), np.array([25, 3, 7, 39])]
    verts = [np.array([30]), np.array([31])]
    return VTKPolyData(
        points=points,
        cells={"Verts": verts, "Lines": lines},
        point_data={"Radius": rng.random(40).astype(np.float32),
                    "Tangent": rng.normal(size=(40, 3)), "Id": np.arange(40, dtype=np.int64)},
        cell_data={"Group": np.array([7, 8, 1, 2, 3], dtype=np.int32),
                   "Name": np.array(["a", "b", "", "left carotid", "ü"], dtype=object)},
        field_data={"Kinds": np.array(["root", "endpoint"], dtype=object),
                    "Pos": rng.normal(size=(2, 3))},
    )


ENCODINGS = [e for e in itertools.product(["appended", "binary", "ascii"], ["raw", "base64"],
                                          [True, False], ["UInt32", "UInt64"],
                                          ["LittleEndian", "BigEndian"])
             if e[0] == "appended" or e[1] == "raw"]  # the encoding only applies to appended


@pytest.mark.parametrize("fmt,enc,compress,header,order", ENCODINGS)
def test_polydata_round_trip(tmp_path, poly, fmt, enc, compress, header, order):
    path = write_vtk_xml(tmp_path / "p.vtp", poly, data_format=fmt, appended_encoding=enc,
                         compress=compress, header_type=header, byte_order=order)
    back = read_vtp(path)
    np.testing.assert_allclose(back.points, poly.points, rtol=1e-15)
    for kind in ("Verts", "Lines"):
        assert [c.tolist() for c in back.cells[kind]] == [c.tolist() for c in poly.cells[kind]]
    for name, arr in poly.point_data.items():
        np.testing.assert_array_equal(back.point_data[name], arr)
        assert back.point_data[name].dtype == arr.dtype
    np.testing.assert_array_equal(back.cell_data["Group"], poly.cell_data["Group"])
    assert back.cell_data["Name"].tolist() == poly.cell_data["Name"].tolist()
    assert back.field_data["Kinds"].tolist() == ["root", "endpoint"]
    np.testing.assert_array_equal(back.field_data["Pos"], poly.field_data["Pos"])
    # the file is well-formed XML apart from raw appended bytes
    text = path.read_bytes()
    if not (fmt == "appended" and enc == "raw"):
        ET.fromstring(text)


@pytest.mark.parametrize("fmt,enc,compress", [("appended", "raw", True), ("binary", "raw", False),
                                              ("ascii", "raw", False),
                                              ("appended", "base64", True)])
def test_imagedata_round_trip(tmp_path, fmt, enc, compress):
    rng = np.random.default_rng(1)
    # larger than one 32 KiB compression block, with an odd last block
    scalars = rng.integers(-500, 500, size=(7, 60, 41)).astype(np.int16)
    vectors = rng.random((7, 60, 41, 3)).astype(np.float32)
    img = VTKImageData(extent=(0, 40, 0, 59, 0, 6), spacing=(0.5, 0.25, 2.0),
                       origin=(-3.0, 4.0, 5.5), direction=np.diag([-1.0, -1.0, 1.0]),
                       point_data={"s": scalars, "v": vectors})
    back = read_vti(write_vtk_xml(tmp_path / "i.vti", img, data_format=fmt,
                                  appended_encoding=enc, compress=compress))
    assert back.extent == img.extent and back.spacing == img.spacing
    assert back.origin == img.origin
    np.testing.assert_array_equal(back.direction, img.direction)
    np.testing.assert_array_equal(back.point_data["s"], scalars)
    np.testing.assert_array_equal(back.point_data["v"], vectors)


def _recorded_ranges(path):
    """RangeMin/RangeMax VTK wrote into the XML for each named DataArray."""
    head = path.read_bytes().split(b"<AppendedData")[0].decode()
    out = {}
    for m in re.finditer(r"<DataArray([^>]*)>", head):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if attrs.get("RangeMin", "").strip():
            out[attrs["Name"]] = (float(attrs["RangeMin"]), float(attrs["RangeMax"]))
    return out


def _value_range(arr):
    arr = np.asarray(arr, float)
    values = arr if arr.ndim == 1 else np.linalg.norm(arr.reshape(len(arr), -1), axis=1)
    return values.min(), values.max()


@pytest.mark.parametrize("relpath", [
    "tubetk_brain_mra/centerlines/VascularNetworkFixed-002.vtp",
    "tubetk_brain_mra/centerlines/VascularNetworkFixed-003.vtp",
    "vmtk_aorta_mra/aorta-centerline.vtp",
    "vmtk_aorta_mra/aorta-centerline-branches.vtp",
    "vmtk_aorta_mra/aorta-surface.vtp",
])
def test_real_vtp_files_match_vtk_recorded_ranges(shared_data, relpath):
    path = shared_data / relpath
    poly = read_vtp(path)
    ranges = _recorded_ranges(path)
    arrays = {"Points": poly.points, **poly.point_data, **poly.cell_data}
    checked = 0
    for name, (lo, hi) in ranges.items():
        if name in arrays and arrays[name].dtype != object:
            got = _value_range(arrays[name])
            np.testing.assert_allclose(got, (lo, hi), rtol=1e-6, atol=1e-6, err_msg=name)
            checked += 1
    assert checked >= 2
    # every cell refers to existing points, and the counts match the header
    head = path.read_bytes()[:2000].decode("latin-1")
    n_points = int(re.search(r'NumberOfPoints="\s*(\d+)', head).group(1))
    assert len(poly.points) == n_points
    for kind in ("Lines", "Polys"):
        n = int(re.search(rf'NumberOf{kind}="\s*(\d+)', head).group(1))
        assert len(poly.cells.get(kind, [])) == n


def test_real_tubetk_shape(shared_data):
    poly = read_vtp(shared_data / "tubetk_brain_mra/centerlines/VascularNetworkFixed-002.vtp")
    assert poly.points.shape == (110708, 3) and len(poly.lines) == 236
    assert sum(len(c) for c in poly.lines) == 110708


def test_real_ircadb_vti(shared_data):
    img = read_vti(shared_data / "ircadb_01_01/3Dircadb0101Labeled.vti")
    assert img.extent == (0, 511, 0, 511, 0, 128)
    arr = img.point_data["Scalars_"]
    assert arr.shape == (129, 512, 512) and arr.dtype == np.int16
    assert (arr.min(), arr.max()) == (0, 513)


def _legacy_joint_base64(values: np.ndarray) -> str:
    """Old VTK (5.x) inline binary: header and data in ONE base64 stream, UInt32 header."""
    raw = values.astype("<f4").tobytes()
    return base64.b64encode(struct.pack("<I", len(raw)) + raw).decode()


def test_hand_written_legacy_layouts(tmp_path):
    radius = np.array([1.5, 2.0, 2.5, 3.0], np.float32)
    pts = np.arange(12, dtype=np.float32)
    comp = zlib.compress(np.arange(4, dtype="<i8").tobytes())
    zconn = base64.b64encode(struct.pack("<IIII", 1, 32768, 32, len(comp))).decode() + \
        base64.b64encode(comp).decode()
    text = f"""<?xml version="1.0"?>
<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">
 <PolyData><Piece NumberOfPoints="4" NumberOfLines="1">
  <PointData><DataArray type="Float32" Name="Radius" format="binary">
   {_legacy_joint_base64(radius)}
  </DataArray></PointData>
  <Points><DataArray type="Float32" NumberOfComponents="3" format="ascii">
   {" ".join(str(v) for v in pts)}</DataArray></Points>
  <Lines><DataArray type="Int64" Name="connectivity" format="ascii">0 1 2 3</DataArray>
   <DataArray type="Int64" Name="offsets" format="ascii">0 4</DataArray></Lines>
 </Piece></PolyData></VTKFile>"""
    (tmp_path / "a.vtp").write_text(text)
    poly = read_vtp(tmp_path / "a.vtp")
    np.testing.assert_array_equal(poly.point_data["Radius"], radius)
    np.testing.assert_array_equal(poly.points.reshape(-1), pts)
    assert poly.lines[0].tolist() == [0, 1, 2, 3]  # offsets with a leading zero
    # a compressed inline array with its header as a separate base64 stream
    text2 = text.replace('<DataArray type="Int64" Name="connectivity" format="ascii">0 1 2 3',
                         f'<DataArray type="Int64" Name="connectivity" format="binary">{zconn}')
    text2 = text2.replace('byte_order="LittleEndian"',
                          'byte_order="LittleEndian" compressor="vtkZLibDataCompressor"')
    text2 = text2.replace(f"{_legacy_joint_base64(radius)}",
                          " ".join(str(v) for v in radius)).replace(
        'Name="Radius" format="binary"', 'Name="Radius" format="ascii"')
    (tmp_path / "b.vtp").write_text(text2)
    assert read_vtp(tmp_path / "b.vtp").lines[0].tolist() == [0, 1, 2, 3]


def test_bad_vtk_files(tmp_path, poly):
    good = write_vtk_xml(tmp_path / "good.vtp", poly)
    data = good.read_bytes()
    (tmp_path / "trunc.vtp").write_bytes(data[: len(data) - 200])
    with pytest.raises(InputError, match="trunc.vtp"):
        read_vtp(tmp_path / "trunc.vtp")
    (tmp_path / "half.vtp").write_bytes(data[:300])
    with pytest.raises(InputError, match="half.vtp"):
        read_vtp(tmp_path / "half.vtp")
    (tmp_path / "legacy.vtk").write_text("# vtk DataFile Version 3.0\nx\nASCII\n")
    with pytest.raises(FormatError, match="legacy VTK"):
        read_vtk_xml(tmp_path / "legacy.vtk")
    (tmp_path / "empty.vtp").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_vtp(tmp_path / "empty.vtp")
    with pytest.raises(InputError, match="not found"):
        read_vtp(tmp_path / "missing.vtp")
    with pytest.raises(FormatError, match="expected ImageData"):
        read_vti(good)
    # a corrupted compressed block
    corrupt = bytearray(data)
    start = corrupt.index(b"_", corrupt.index(b"<AppendedData")) + 40
    corrupt[start:start + 20] = b"\x00" * 20
    (tmp_path / "corrupt.vtp").write_bytes(bytes(corrupt))
    with pytest.raises(InputError, match="corrupt.vtp"):
        read_vtp(tmp_path / "corrupt.vtp")


FIXTURES = Path(__file__).parent / "data" / "vtk"
VTK_CASES = sorted(p.name for p in FIXTURES.glob("*.vt?") if "lz4" not in p.name)


@pytest.mark.parametrize("name", VTK_CASES)
def test_files_written_by_vtk(name):
    """Files VTK 9.7 wrote in every data mode, compressor, header type and byte order
    (tests/data/vtk/make_fixtures.py) decode to the formulas they were written from."""
    data = read_vtk_xml(FIXTURES / name)
    if name.startswith("poly"):
        i = np.arange(30)
        np.testing.assert_allclose(data.points, np.column_stack([i, 2 * i, 3 * i]) / 10,
                                   rtol=1e-15)
        assert [c.tolist() for c in data.lines] == [list(range(s, s + 10)) for s in (0, 10, 20)]
        np.testing.assert_allclose(data.point_data["Radius"], (0.5 + i / 100).astype(np.float32))
        assert data.point_data["Radius"].flags.writeable
        np.testing.assert_array_equal(data.cell_data["Group"], [7, 8, 9])
        assert data.field_data["Names"].tolist() == ["aorta", "left iliac"]
    else:
        assert data.extent == (0, 6, 0, 4, 0, 2)
        assert data.spacing == (0.5, 0.25, 2.0) and data.origin == (-3.0, 4.0, 5.5)
        np.testing.assert_array_equal(data.direction, np.diag([-1.0, -1.0, 1.0]))
        z, y, x = np.meshgrid(np.arange(3), np.arange(5), np.arange(7), indexing="ij")
        np.testing.assert_array_equal(data.point_data["v"], 100 * z + 10 * y + x - 50)
        assert data.point_data["v"].dtype == np.int16
        assert data.point_data["v"].flags.writeable


def test_unsupported_compressor_named():
    with pytest.raises(FormatError, match="vtkLZ4DataCompressor.*not supported"):
        read_vtk_xml(FIXTURES / "poly_appended_lz4_u64.vtp")


def test_imagedata_split_into_pieces(tmp_path):
    """Pieces covering parts of the whole extent are assembled in place (ascii, by hand)."""
    z, y, x = np.meshgrid(np.arange(3), np.arange(2), np.arange(4), indexing="ij")
    v = 100 * z + 10 * y + x

    def piece(z0, z1):
        values = " ".join(str(int(a)) for a in v[z0:z1 + 1].reshape(-1))
        return (f'<Piece Extent="0 3 0 1 {z0} {z1}"><PointData><DataArray type="Int32" '
                f'Name="v" format="ascii">{values}</DataArray></PointData></Piece>')

    text = ('<?xml version="1.0"?><VTKFile type="ImageData" version="1.0">'
            '<ImageData WholeExtent="0 3 0 1 0 2" Origin="0 0 0" Spacing="1 1 1">'
            f"{piece(2, 2)}{piece(0, 1)}</ImageData></VTKFile>")
    (tmp_path / "pieces.vti").write_text(text)
    np.testing.assert_array_equal(read_vti(tmp_path / "pieces.vti").point_data["v"], v)


def test_raw_appended_data_ending_in_a_whitespace_byte(tmp_path):
    """Raw appended bytes are data: the compressed connectivity of an 8-point line ends in
    0x09 (tab), which a reader that strips whitespace before </AppendedData> truncates."""
    poly = VTKPolyData(points=np.zeros((8, 3)), cells={"Lines": [np.arange(8)]})
    path = write_vtk_xml(tmp_path / "p.vtp", poly)
    data = path.read_bytes()
    assert data[data.rfind(b"</AppendedData>") - 4] == 0x09  # the case this test is about
    assert read_vtp(path).cells["Lines"][0].tolist() == list(range(8))
