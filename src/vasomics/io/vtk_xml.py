"""A small, dependency-free reader and writer of VTK XML files (ImageData ``.vti`` and
PolyData ``.vtp``), built on NumPy and the standard library only.

Supported on reading: ``format="ascii"``, inline ``"binary"`` (base64) and ``"appended"``
data (``encoding="raw"`` or ``"base64"``), ``header_type`` ``UInt32`` (the default when the
attribute is absent) or ``UInt64``, ``vtkZLibDataCompressor`` and ``vtkLZMADataCompressor``
compression, little- and big-endian byte order, several pieces per file, VTK 9's
``Direction`` attribute on ImageData, and both cell-offset layouts (end offsets as VTK writes
them, or a leading zero). Base64 streams written as one stream or as separate header and data
streams (VTK does both, depending on version) are both read.

The writer produces any of those layouts (useful for tests and for tools that need a given
one); the default is appended raw data compressed with zlib, little endian, ``UInt64``
headers, which VTK ≥ 6, ParaView, 3D Slicer and VMTK read.

Coordinates are stored exactly as given: VTK files carry no frame tag, so callers decide what
frame the numbers are in (see :mod:`vasomics.io.graphs` and :mod:`vasomics.io.images`).
"""

from __future__ import annotations

import base64
import binascii
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, InputError
from vasomics.io.atomic import atomic_file
from vasomics.io.compression import ERRORS as INFLATE_ERRORS
from vasomics.io.compression import zlib_decompress

VTK_TYPES: dict[str, str] = {
    "Int8": "i1", "UInt8": "u1", "Int16": "i2", "UInt16": "u2", "Int32": "i4", "UInt32": "u4",
    "Int64": "i8", "UInt64": "u8", "Float32": "f4", "Float64": "f8",
    "Char": "i1", "UnsignedChar": "u1", "Short": "i2", "UnsignedShort": "u2", "Int": "i4",
    "UnsignedInt": "u4", "Long": "i8", "UnsignedLong": "u8", "Float": "f4", "Double": "f8",
}
_NUMPY_TO_VTK = {"i1": "Int8", "u1": "UInt8", "i2": "Int16", "u2": "UInt16", "i4": "Int32",
                 "u4": "UInt32", "i8": "Int64", "u8": "UInt64", "f4": "Float32", "f8": "Float64"}
_CELL_KINDS = ("Verts", "Lines", "Strips", "Polys")
_BLOCK_SIZE = 1 << 15  # VTK's default compression block size (32 KiB)


@dataclass
class VTKImageData:
    """A VTK ImageData grid. ``point_data``/``cell_data`` arrays are in NumPy order
    ``(z, y, x[, components])`` (x fastest, as VTK stores them). ``spacing``, ``origin`` and
    ``extent`` are in VTK's ``(x, y, z)`` order; ``direction`` has the axis directions as
    columns (VTK and ITK agree on this)."""

    extent: tuple[int, int, int, int, int, int]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    cell_data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dimensions(self) -> tuple[int, int, int]:
        """Number of points along x, y, z."""
        e = self.extent
        return (e[1] - e[0] + 1, e[3] - e[2] + 1, e[5] - e[4] + 1)


@dataclass
class VTKPolyData:
    """VTK PolyData: ``points`` ``(N, 3)``; each cell kind (``"Verts"``, ``"Lines"``,
    ``"Strips"``, ``"Polys"``) as a list of point-index arrays; point and cell data arrays
    (first axis = points or cells, across all cell kinds in the VTK order above) and
    dataset-level ``field_data``. ``String`` arrays are read and written as arrays of Python
    ``str`` (``dtype=object``)."""

    points: np.ndarray
    cells: dict[str, list[np.ndarray]] = field(default_factory=dict)
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    cell_data: dict[str, np.ndarray] = field(default_factory=dict)
    field_data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def lines(self) -> list[np.ndarray]:
        """The polyline cells (point-index arrays)."""
        return self.cells.get("Lines", [])


# =====================================================================================  read
def read_vtk_xml(path: str | Path) -> VTKImageData | VTKPolyData:
    """Read a ``.vti`` or ``.vtp`` file; raises :class:`FormatError`/:class:`InputError` with
    a one-line message naming the file when it is not a readable VTK XML file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a VTK XML file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", path) from None
    if not data.strip():
        raise InputError("file is empty", path)
    try:
        return _parse(data)
    except (FormatError, InputError) as exc:
        raise type(exc)(exc.message, path) from None
    except (ValueError, KeyError, IndexError, TypeError, *INFLATE_ERRORS, lzma.LZMAError,
            binascii.Error, ET.ParseError, OverflowError) as exc:
        raise InputError(f"corrupt or truncated VTK XML file ({type(exc).__name__}: "
                         f"{str(exc)[:120]})", path) from None


def read_vti(path: str | Path) -> VTKImageData:
    """Read a VTK XML ImageData file (see :func:`read_vtk_xml`)."""
    out = read_vtk_xml(path)
    if not isinstance(out, VTKImageData):
        raise FormatError("is VTK XML PolyData, expected ImageData", path)
    return out


def read_vtp(path: str | Path) -> VTKPolyData:
    """Read a VTK XML PolyData file (see :func:`read_vtk_xml`)."""
    out = read_vtk_xml(path)
    if not isinstance(out, VTKPolyData):
        raise FormatError("is VTK XML ImageData, expected PolyData", path)
    return out


def _parse(data: bytes) -> VTKImageData | VTKPolyData:
    head = data.lstrip()[:200]
    if not (head.startswith(b"<?xml") or head.startswith(b"<VTKFile")):
        if head.startswith(b"# vtk DataFile"):
            raise FormatError("legacy VTK file (.vtk); only VTK XML files are supported")
        raise FormatError("not a VTK XML file")
    appended, appended_encoding = b"", "raw"
    start = data.find(b"<AppendedData")
    if start >= 0:
        tag_end = data.index(b">", start)
        tag = data[start:tag_end + 1].decode("ascii", "replace")
        m = re.search(r'encoding\s*=\s*"(\w+)"', tag)
        appended_encoding = m.group(1) if m else "raw"
        underscore = data.index(b"_", tag_end)
        close = data.rfind(b"</AppendedData>")
        appended = data[underscore + 1: close if close > underscore else len(data)]
        if appended_encoding == "base64":
            appended = appended.strip()
        # raw: keep every byte (binary data may end in whitespace bytes; the newline and
        # indentation VTK writes before the closing tag lie past the sizes in the headers)
        xml = data[:start] + b"</VTKFile>"
        for closing in (b"</ImageData>", b"</PolyData>"):
            if closing in data[:start]:
                break
        else:  # the dataset element closes after AppendedData in non-standard files
            kind = re.search(rb'type\s*=\s*"(\w+)"', data[:start])
            if kind:
                xml = data[:start] + b"</" + kind.group(1) + b"></VTKFile>"
    else:
        xml = data
    root = ET.fromstring(xml)
    if root.tag != "VTKFile":
        raise FormatError(f"root element is <{root.tag}>, expected <VTKFile>")
    offsets = sorted({int(da.get("offset", 0)) for da in root.iter()
                      if da.tag in _ARRAY_TAGS and da.get("format") == "appended"})
    ctx = _Context(
        offsets=offsets,
        byte_order="<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">",
        header="u8" if root.get("header_type", "UInt32") == "UInt64" else "u4",
        compressor=root.get("compressor", ""),
        appended=appended,
        appended_encoding=appended_encoding,
    )
    kind = root.get("type")
    if kind == "ImageData":
        return _parse_image(root.find("ImageData"), ctx)
    if kind == "PolyData":
        return _parse_poly(root.find("PolyData"), ctx)
    raise FormatError(f"VTK XML type {kind!r} is not supported (only ImageData and PolyData)")


@dataclass
class _Context:
    offsets: list[int]
    byte_order: str
    header: str
    compressor: str
    appended: bytes
    appended_encoding: str


_ARRAY_TAGS = ("DataArray", "Array")  # VTK writes String field data as <Array>


def _arrays(section) -> list:
    """The data-array elements of a section (``<DataArray>`` or ``<Array>``)."""
    return [] if section is None else [e for e in section if e.tag in _ARRAY_TAGS]


def _ints(text: str | None, n: int, default: int = 0) -> list[int]:
    values = [int(v) for v in (text or "").split()] or [default] * n
    if len(values) != n:
        raise FormatError(f"expected {n} integers, got {text!r}")
    return values


def _floats(text: str | None, n: int, default: float) -> list[float]:
    values = [float(v) for v in (text or "").split()] or [default] * n
    if len(values) != n:
        raise FormatError(f"expected {n} numbers, got {text!r}")
    return values


def _parse_image(elem, ctx: _Context) -> VTKImageData:
    if elem is None:
        raise FormatError("missing <ImageData> element")
    whole = _ints(elem.get("WholeExtent"), 6)
    spacing = tuple(_floats(elem.get("Spacing"), 3, 1.0))
    origin = tuple(_floats(elem.get("Origin"), 3, 0.0))
    direction = np.array(_floats(elem.get("Direction"), 9, 0.0)).reshape(3, 3)
    if not direction.any():
        direction = np.eye(3)
    img = VTKImageData(extent=tuple(whole), spacing=spacing, origin=origin, direction=direction)
    nx, ny, nz = img.dimensions
    if min(nx, ny, nz) < 1:
        raise FormatError(f"invalid WholeExtent {whole}")
    for piece in elem.findall("Piece"):
        ext = _ints(piece.get("Extent"), 6)
        px, py, pz = ext[1] - ext[0] + 1, ext[3] - ext[2] + 1, ext[5] - ext[4] + 1
        cells = (max(px - 1, 1), max(py - 1, 1), max(pz - 1, 1))
        for tag, store, dims, whole_dims in (
            ("PointData", img.point_data, (px, py, pz), (nx, ny, nz)),
            ("CellData", img.cell_data, cells, (max(nx - 1, 1), max(ny - 1, 1), max(nz - 1, 1))),
        ):
            section = piece.find(tag)
            if section is None:
                continue
            for da in _arrays(section):
                values, ncomp = _read_array(da, ctx, int(np.prod(dims)))
                block = values.reshape(dims[2], dims[1], dims[0], ncomp)
                name = da.get("Name", f"array{len(store)}")
                if name not in store and tuple(dims) == tuple(whole_dims):
                    store[name] = block  # one piece covering the whole extent: no copy
                    continue
                if name not in store:
                    store[name] = np.zeros((*whole_dims[::-1], ncomp), dtype=values.dtype)
                z0, y0, x0 = ext[4] - whole[4], ext[2] - whole[2], ext[0] - whole[0]
                store[name][z0:z0 + dims[2], y0:y0 + dims[1], x0:x0 + dims[0]] = block
    for store in (img.point_data, img.cell_data):
        for name, arr in store.items():
            if arr.shape[-1] == 1:
                store[name] = arr[..., 0]
    return img


def _parse_poly(elem, ctx: _Context) -> VTKPolyData:
    if elem is None:
        raise FormatError("missing <PolyData> element")
    points, cells = [], {k: [] for k in _CELL_KINDS}
    point_data: dict[str, list] = {}
    cell_data: dict[str, list[list]] = {}
    n_done = 0
    for piece in elem.findall("Piece"):
        n_points = int(piece.get("NumberOfPoints", 0))
        pts_section = piece.find("Points")
        pts_elem = None if pts_section is None else next(iter(_arrays(pts_section)), None)
        if n_points:
            if pts_elem is None:
                raise FormatError("piece has points but no <Points> array")
            pts, ncomp = _read_array(pts_elem, ctx, n_points)
            points.append(pts.reshape(n_points, ncomp).astype(float))
        piece_cells = {}
        for kind in _CELL_KINDS:
            n_cells = int(piece.get(f"NumberOf{kind}", 0))
            piece_cells[kind] = _read_cells(piece.find(kind), ctx, n_cells, n_points, kind)
            cells[kind].extend(c + n_done for c in piece_cells[kind])
        section = piece.find("PointData")
        for da in _arrays(section):
            values, ncomp = _read_array(da, ctx, n_points)
            point_data.setdefault(da.get("Name", "array"), []).append(
                values.reshape(n_points, ncomp) if ncomp > 1 else values)
        section = piece.find("CellData")
        n_piece_cells = sum(len(v) for v in piece_cells.values())
        for da in _arrays(section):
            values, ncomp = _read_array(da, ctx, n_piece_cells)
            per_cell = values.reshape(n_piece_cells, ncomp) if ncomp > 1 else values
            cell_data.setdefault(da.get("Name", "array"), []).append(
                _split_by_kind(per_cell, piece_cells))
        n_done += n_points
    out_cells = {k: v for k, v in cells.items() if v}
    # cell data is ordered verts, lines, strips, polys across the whole file
    merged_cell_data = {}
    for name, per_piece in cell_data.items():
        merged_cell_data[name] = np.concatenate(
            [part for kind in _CELL_KINDS for piece in per_piece for part in [piece[kind]]])
    field_data = {}
    section = elem.find("FieldData")
    for da in _arrays(section):
        n = da.get("NumberOfTuples")
        values, ncomp = _read_array(da, ctx, None if n is None else int(n))
        field_data[da.get("Name", "array")] = values.reshape(-1, ncomp) if ncomp > 1 else values
    return VTKPolyData(
        points=np.concatenate(points) if points else np.zeros((0, 3)),
        cells=out_cells,
        point_data={k: v[0] if len(v) == 1 else np.concatenate(v)
                    for k, v in point_data.items()},
        cell_data=merged_cell_data,
        field_data=field_data,
    )


def _split_by_kind(values: np.ndarray, piece_cells: dict) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for kind in _CELL_KINDS:
        n = len(piece_cells[kind])
        out[kind] = values[start:start + n]
        start += n
    return out


def _read_cells(elem, ctx: _Context, n_cells: int, n_points: int, kind: str) -> list:
    if n_cells == 0:
        return []
    if elem is None:
        raise FormatError(f"{n_cells} {kind} declared but no <{kind}> element")
    arrays = {da.get("Name"): da for da in _arrays(elem)}
    if "connectivity" not in arrays or "offsets" not in arrays:
        raise FormatError(f"<{kind}> lacks connectivity or offsets")
    offsets, _ = _read_array(arrays["offsets"], ctx, None)
    offsets = offsets.astype(np.int64)
    if len(offsets) == n_cells + 1 and offsets[0] == 0:
        offsets = offsets[1:]
    if len(offsets) != n_cells:
        raise FormatError(f"<{kind}> has {len(offsets)} offsets for {n_cells} cells")
    conn, _ = _read_array(arrays["connectivity"], ctx, int(offsets[-1]))
    conn = conn.astype(np.int64)
    if np.any(np.diff(offsets) < 0) or offsets[0] < 0:
        raise FormatError(f"<{kind}> offsets are not increasing")
    if conn.size and (conn.min() < 0 or conn.max() >= n_points):
        raise FormatError(f"<{kind}> refers to points outside the {n_points} points")
    return np.split(conn, offsets[:-1])


def _read_array(da, ctx: _Context, n_tuples: int | None) -> tuple[np.ndarray, int]:
    """Values of one ``<DataArray>`` (flat) and its number of components."""
    vtk_type = da.get("type")
    if vtk_type == "String":
        return _read_strings(da, ctx, n_tuples), 1
    if vtk_type not in VTK_TYPES:
        raise FormatError(f"DataArray {da.get('Name')!r} has unsupported type {vtk_type!r}")
    dtype = np.dtype(VTK_TYPES[vtk_type]).newbyteorder(ctx.byte_order)
    ncomp = int(da.get("NumberOfComponents", 1))
    fmt = da.get("format", "ascii")
    if fmt == "ascii":
        values = np.array((da.text or "").split(), dtype=np.float64 if dtype.kind == "f"
                          else np.int64).astype(dtype.newbyteorder("="))
    elif fmt == "binary":
        values = _decode_binary(_b64decode((da.text or "").encode("ascii")), ctx, dtype)
    elif fmt == "appended":
        offset = int(da.get("offset", 0))
        if ctx.appended_encoding == "base64":
            later = [o for o in ctx.offsets if o > offset]
            text = ctx.appended[offset:later[0] if later else len(ctx.appended)]
            values = _decode_binary(_b64decode(text), ctx, dtype)
        else:
            values = _decode_binary(memoryview(ctx.appended)[offset:], ctx, dtype)
    else:
        raise FormatError(f"DataArray format {fmt!r} is not supported")
    if n_tuples is not None and values.size != n_tuples * ncomp:
        raise InputError(f"DataArray {da.get('Name')!r} holds {values.size} values, expected "
                         f"{n_tuples} x {ncomp}")
    return values.astype(dtype.newbyteorder("="), copy=False), ncomp


def _read_strings(da, ctx: _Context, n_tuples: int | None) -> np.ndarray:
    """A VTK ``String`` array: NUL-terminated strings (ascii: their character codes)."""
    fmt = da.get("format", "ascii")
    if fmt == "ascii":
        raw = bytes(int(v) for v in (da.text or "").split())
    else:
        text = (da.text or "").encode("ascii") if fmt == "binary" else None
        if fmt == "appended":
            offset = int(da.get("offset", 0))
            if ctx.appended_encoding == "base64":
                later = [o for o in ctx.offsets if o > offset]
                text = ctx.appended[offset:later[0] if later else len(ctx.appended)]
            else:
                raw = _decode_binary(memoryview(ctx.appended)[offset:], ctx, np.dtype("u1"))
        if text is not None:
            raw = _decode_binary(_b64decode(text), ctx, np.dtype("u1"))
        raw = bytes(raw)
    values = raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")
    out = np.array([v.decode("utf-8", "replace") for v in values], dtype=object)
    if n_tuples is not None and len(out) != n_tuples:
        raise InputError(f"String array {da.get('Name')!r} holds {len(out)} strings, expected "
                         f"{n_tuples}")
    return out


def _b64decode(text: bytes) -> bytes:
    """Decode base64 that may be several concatenated streams (each ending in padding)."""
    text = re.sub(rb"\s+", b"", text)
    if b"=" not in text.rstrip(b"="):
        return base64.b64decode(text + b"=" * (-len(text) % 4))
    parts = re.findall(rb"[A-Za-z0-9+/]+={0,2}", text)
    return b"".join(base64.b64decode(p + b"=" * (-len(p) % 4)) for p in parts)


def _decode_binary(raw: bytes, ctx: _Context, dtype: np.dtype) -> np.ndarray:
    """Header + (optionally compressed) data → values. ``raw`` may run past the array's end."""
    hdt = np.dtype(ctx.header).newbyteorder(ctx.byte_order)
    hsize = hdt.itemsize
    if not ctx.compressor:
        nbytes = int(np.frombuffer(raw[:hsize], hdt)[0])
        body = bytearray(raw[hsize:hsize + nbytes])  # writable arrays
        if len(body) != nbytes:
            raise InputError(f"data block is truncated ({len(body)} of {nbytes} bytes)")
        return np.frombuffer(body, dtype)
    n_blocks, block, last = (int(v) for v in np.frombuffer(bytes(raw[:3 * hsize]), hdt))
    sizes = np.frombuffer(bytes(raw[3 * hsize:(3 + n_blocks) * hsize]), hdt).astype(np.int64)
    if len(sizes) != n_blocks:
        raise InputError("compressed block header is truncated")
    pos = (3 + n_blocks) * hsize
    decompress = _decompressor(ctx.compressor)
    total = (n_blocks - 1) * block + (last or block) if n_blocks else 0
    if total > 1032 * len(raw) + block:  # deflate/LZMA cannot expand data that much
        raise InputError(f"compressed block header claims {total} bytes (corrupt file?)")
    out = bytearray(total)  # written block by block: one copy, writable result
    start = 0
    for i, size in enumerate(sizes):
        chunk = raw[pos:pos + size]
        if len(chunk) != size:
            raise InputError("compressed data is truncated")
        data = decompress(chunk)
        expected = last if (i == n_blocks - 1 and last) else block
        if len(data) != expected:
            raise InputError(f"compressed block {i} holds {len(data)} bytes, expected "
                             f"{expected}")
        out[start:start + expected] = data
        start += expected
        pos += size
    return np.frombuffer(out, dtype)


def _decompressor(name: str):
    if name == "vtkZLibDataCompressor":
        return zlib_decompress
    if name == "vtkLZMADataCompressor":
        return lzma.decompress
    raise FormatError(f"compressor {name!r} is not supported (zlib and LZMA are)")


# ====================================================================================  write
def write_vtk_xml(path: str | Path, data: VTKImageData | VTKPolyData, *,
                  data_format: str = "appended", appended_encoding: str = "raw",
                  compress: bool = True, header_type: str = "UInt64",
                  byte_order: str = "LittleEndian") -> Path:
    """Write ``data`` to ``path`` atomically.

    ``data_format`` is ``"appended"`` (default), ``"binary"`` (inline base64) or
    ``"ascii"``; ``appended_encoding`` ``"raw"`` or ``"base64"``; ``compress`` uses
    ``vtkZLibDataCompressor`` (ignored for ascii); ``header_type`` ``"UInt32"`` or
    ``"UInt64"``; ``byte_order`` ``"LittleEndian"`` or ``"BigEndian"``.
    """
    if data_format not in ("appended", "binary", "ascii"):
        raise ValueError(f"data_format {data_format!r}")
    if appended_encoding not in ("raw", "base64") or header_type not in ("UInt32", "UInt64"):
        raise ValueError("appended_encoding must be raw|base64, header_type UInt32|UInt64")
    writer = _Writer(data_format, appended_encoding, compress and data_format != "ascii",
                     "u8" if header_type == "UInt64" else "u4",
                     "<" if byte_order == "LittleEndian" else ">")
    if isinstance(data, VTKImageData):
        kind, body = "ImageData", writer.image(data)
    elif isinstance(data, VTKPolyData):
        kind, body = "PolyData", writer.poly(data)
    else:
        raise TypeError(f"cannot write {type(data).__name__}")
    attrs = f'type="{kind}" version="1.0" byte_order="{byte_order}" header_type="{header_type}"'
    if writer.compress:
        attrs += ' compressor="vtkZLibDataCompressor"'
    parts = [b'<?xml version="1.0"?>\n', f"<VTKFile {attrs}>\n".encode(), body.encode()]
    if writer.blobs:
        parts.append(f'  <AppendedData encoding="{appended_encoding}">\n   _'.encode())
        parts.extend(writer.blobs)
        parts.append(b"\n  </AppendedData>\n")
    parts.append(b"</VTKFile>\n")
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_bytes(b"".join(parts))
    return path


class _Writer:
    def __init__(self, data_format, appended_encoding, compress, header, byte_order):
        self.data_format, self.appended_encoding = data_format, appended_encoding
        self.compress, self.header, self.byte_order = compress, header, byte_order
        self.blobs: list[bytes] = []
        self.offset = 0

    def array(self, name: str, values: np.ndarray, ncomp: int = 1, indent: str = "        ") -> str:
        values = np.asarray(values)
        if values.dtype.kind in "OUS":
            return self.strings(name, values, indent)
        values = np.ascontiguousarray(values)
        if values.dtype == bool:
            values = values.astype(np.uint8)
        key = values.dtype.kind + str(values.dtype.itemsize)
        if key not in _NUMPY_TO_VTK:
            raise TypeError(f"cannot write array {name!r} of dtype {values.dtype}")
        head = (f'{indent}<DataArray type="{_NUMPY_TO_VTK[key]}" Name="{name}" '
                f'NumberOfComponents="{ncomp}" format="{self.data_format}"')
        if self.data_format == "ascii":
            flat = values.reshape(-1)
            text = " ".join(repr(float(v)) if values.dtype.kind == "f" else str(int(v))
                            for v in flat)
            return f"{head}>\n{indent}  {text}\n{indent}</DataArray>\n"
        blob = self._encode(values)
        if self.data_format == "binary":
            return f"{head}>\n{indent}  {blob.decode('ascii')}\n{indent}</DataArray>\n"
        out = f'{head} offset="{self.offset}"/>\n'
        self.blobs.append(blob)
        self.offset += len(blob)
        return out

    def strings(self, name: str, values: np.ndarray, indent: str) -> str:
        """A ``String`` array, always written in ascii (character codes, NUL-terminated),
        which every VTK XML reader accepts."""
        raw = b"".join(str(v).encode("utf-8") + b"\0" for v in values.reshape(-1))
        codes = " ".join(str(b) for b in raw)
        return (f'{indent}<DataArray type="String" Name="{name}" NumberOfTuples="{values.size}" '
                f'format="ascii">\n{indent}  {codes}\n{indent}</DataArray>\n')

    def _encode(self, values: np.ndarray) -> bytes:
        body = values.astype(values.dtype.newbyteorder(self.byte_order), copy=False).tobytes()
        hdt = np.dtype(self.header).newbyteorder(self.byte_order)
        if self.compress:
            blocks = [body[i:i + _BLOCK_SIZE] for i in range(0, len(body), _BLOCK_SIZE)] or [b""]
            comp = [zlib.compress(b, 6) for b in blocks]
            last = len(blocks[-1]) if len(blocks[-1]) != _BLOCK_SIZE else 0
            header = np.array([len(blocks), _BLOCK_SIZE, last, *map(len, comp)], hdt).tobytes()
            payload = b"".join(comp)
        else:
            header, payload = np.array([len(body)], hdt).tobytes(), body
        if self.data_format == "binary" or self.appended_encoding == "base64":
            return base64.b64encode(header) + base64.b64encode(payload)
        return header + payload

    def image(self, img: VTKImageData) -> str:
        ext = " ".join(str(int(v)) for v in img.extent)
        fmt = " ".join(repr(float(v)) for v in img.spacing)
        org = " ".join(repr(float(v)) for v in img.origin)
        dirs = " ".join(repr(float(v)) for v in np.asarray(img.direction, float).reshape(-1))
        out = [f'  <ImageData WholeExtent="{ext}" Origin="{org}" Spacing="{fmt}" '
               f'Direction="{dirs}">\n    <Piece Extent="{ext}">\n']
        grid = img.dimensions[::-1]
        for tag, store in (("PointData", img.point_data), ("CellData", img.cell_data)):
            out.append(f"      <{tag}>\n")
            for name, arr in store.items():
                ncomp = 1 if arr.ndim == 3 else arr.shape[-1]
                if tag == "PointData" and tuple(arr.shape[:3]) != grid:
                    raise ValueError(f"point array {name!r} shape {arr.shape} != grid {grid}")
                out.append(self.array(name, arr, ncomp))
            out.append(f"      </{tag}>\n")
        out.append("    </Piece>\n  </ImageData>\n")
        return "".join(out)

    def poly(self, poly: VTKPolyData) -> str:
        points = np.asarray(poly.points, dtype=np.float64).reshape(-1, 3)
        counts = {k: len(poly.cells.get(k, [])) for k in _CELL_KINDS}
        attrs = " ".join(f'NumberOf{k}="{n}"' for k, n in counts.items())
        out = ["  <PolyData>\n"]
        if poly.field_data:
            out.append("    <FieldData>\n")
            for name, arr in poly.field_data.items():
                arr = np.asarray(arr)
                text = self.array(name, arr, 1 if arr.ndim == 1 else arr.shape[1], "      ")
                if "NumberOfTuples" not in text:
                    text = text.replace("<DataArray ", f'<DataArray NumberOfTuples="{len(arr)}" ', 1)
                out.append(text)
            out.append("    </FieldData>\n")
        out.append(f'    <Piece NumberOfPoints="{len(points)}" {attrs}>\n')
        for tag, store in (("PointData", poly.point_data), ("CellData", poly.cell_data)):
            out.append(f"      <{tag}>\n")
            for name, arr in store.items():
                arr = np.asarray(arr)
                out.append(self.array(name, arr, 1 if arr.ndim == 1 else arr.shape[1]))
            out.append(f"      </{tag}>\n")
        out.append("      <Points>\n")
        out.append(self.array("Points", points, 3))
        out.append("      </Points>\n")
        for kind in _CELL_KINDS:
            cells = poly.cells.get(kind, [])
            if not cells:
                continue
            conn = np.concatenate([np.asarray(c, np.int64) for c in cells])
            offsets = np.cumsum([len(c) for c in cells]).astype(np.int64)
            out.append(f"      <{kind}>\n")
            out.append(self.array("connectivity", conn))
            out.append(self.array("offsets", offsets))
            out.append(f"      </{kind}>\n")
        out.append("    </Piece>\n  </PolyData>\n")
        return "".join(out)
