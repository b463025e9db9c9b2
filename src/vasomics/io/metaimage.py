"""MetaImage reading (``.mha`` with data inline, ``.mhd`` + data file) with strict checks.

Why not ITK's reader: MetaIO prints "Uncompress failed" or "data not read completely" on a
damaged file and still returns an image, part of which is garbage. This reader checks that
the (zlib-compressed or raw) voxel data are complete and intact, or raises
:class:`InputError` naming the file.

Header keys used (synonyms as in MetaIO): ``NDims``, ``DimSize``, ``ElementSpacing`` (else
``ElementSize``), ``Offset``/``Origin``/``Position``, ``TransformMatrix``/``Rotation``/
``Orientation`` (the direction matrix stored column by column), ``ElementType``,
``ElementNumberOfChannels``, ``BinaryData``, ``BinaryDataByteOrderMSB``/
``ElementByteOrderMSB``, ``CompressedData``, ``HeaderSize`` and ``ElementDataFile``
(``LOCAL`` or one file name; slice lists are not supported). MetaImage coordinates are ITK's
(LPS), so they are taken as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, GeometryError, InputError
from vasomics.image import Image
from vasomics.io.compression import ERRORS as INFLATE_ERRORS
from vasomics.io.compression import inflate

#: MetaIO element types (MET_LONG is 4 bytes in MetaIO).
MET_TYPES = {
    "MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2",
    "MET_INT": "i4", "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4",
    "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}
_SYNONYMS = {"Origin": "Offset", "Position": "Offset", "Rotation": "TransformMatrix",
             "Orientation": "TransformMatrix", "ElementByteOrderMSB": "BinaryDataByteOrderMSB"}
_MAX_HEADER = 1 << 16


def read_metaimage(path: str | Path) -> Image:
    """Read a ``.mha`` or ``.mhd`` file (see the module docstring)."""
    path = Path(path)
    blob = _read_all(path)
    header, data_start = _parse_header(blob, path)
    ndim = _int(header, "NDims", path)
    if ndim not in (2, 3):
        raise FormatError(f"{ndim}D MetaImage is not supported (2D or 3D only)", path)
    dims = _numbers(header, "DimSize", ndim, path, int)
    if min(dims) < 1:
        raise InputError(f"invalid DimSize {dims}", path)
    spacing = _numbers(header, "ElementSpacing", ndim, path, float, default=None)
    if spacing is None:
        spacing = _numbers(header, "ElementSize", ndim, path, float, default=[1.0] * ndim)
    origin = _numbers(header, "Offset", ndim, path, float, default=[0.0] * ndim)
    matrix = _numbers(header, "TransformMatrix", ndim * ndim, path, float,
                      default=list(np.eye(ndim).reshape(-1)))
    direction = np.asarray(matrix).reshape(ndim, ndim).T
    etype = header.get("ElementType", "").upper()
    if etype.endswith("_ARRAY"):
        etype = etype[: -len("_ARRAY")]
    if etype not in MET_TYPES:
        raise FormatError(f"unsupported ElementType {header.get('ElementType')!r}", path)
    channels = int(header.get("ElementNumberOfChannels", "1") or 1)
    big = _bool(header.get("BinaryDataByteOrderMSB", "False"))
    dtype = np.dtype(MET_TYPES[etype]).newbyteorder(">" if big else "<")
    count = int(np.prod(dims)) * channels
    payload = _payload(header, blob, data_start, path, count * dtype.itemsize)
    if not _bool(header.get("BinaryData", "True")):
        try:
            values = np.array(bytes(payload).split(), dtype=np.float64)
        except ValueError:
            raise InputError("ASCII voxel data hold non-numbers", path) from None
        if values.size != count:
            raise InputError(f"ASCII voxel data hold {values.size} values, expected {count}",
                             path)
        array = values.astype(dtype.newbyteorder("="))
    else:
        if _bool(header.get("CompressedData", "False")):
            payload = _inflate(payload, count * dtype.itemsize, path)
        elif len(payload) < count * dtype.itemsize:
            raise InputError(f"truncated voxel data ({len(payload)} of "
                             f"{count * dtype.itemsize} bytes)", path)
        array = np.frombuffer(payload, dtype=dtype, count=count)
        array = array.astype(dtype.newbyteorder("="), copy=not array.flags.writeable)
    shape = tuple(dims[::-1]) + ((channels,) if channels > 1 else ())
    try:
        return Image(array=array.reshape(shape), spacing=tuple(spacing[::-1]),
                     origin=tuple(origin), direction=direction, metadata={})
    except GeometryError as exc:
        raise GeometryError(f"invalid geometry in header: {exc.message}", path) from None


def _read_all(path: Path, what: str = "file", owner: Path | None = None) -> bytearray:
    """A file's bytes in a writable buffer (NumPy views of it are writable, no copy)."""
    try:
        with open(path, "rb") as fh:
            data = bytearray(os.fstat(fh.fileno()).st_size)
            n = fh.readinto(data)
    except OSError as exc:
        raise InputError(f"cannot read {what} ({exc.strerror or exc})", owner or path) from None
    del data[n:]
    return data


def _parse_header(blob: bytes, path: Path) -> tuple[dict[str, str], int]:
    header: dict[str, str] = {}
    pos = 0
    while True:
        end = blob.find(b"\n", pos)
        if end < 0 or end > _MAX_HEADER:
            raise InputError("MetaImage header has no ElementDataFile line", path)
        line = blob[pos:end].decode("latin-1").strip()
        pos = end + 1
        if not line:
            continue
        if "=" not in line:
            raise InputError(f"malformed MetaImage header line {line[:60]!r}", path)
        key, value = (s.strip() for s in line.split("=", 1))
        header[_SYNONYMS.get(key, key)] = value
        if key == "ElementDataFile":
            return header, pos
        if not header.get("ObjectType", "Image").lower().startswith("image"):
            raise FormatError(f"MetaImage ObjectType {header['ObjectType']!r} is not an image",
                              path)


def _payload(header: dict, blob: bytearray, data_start: int, path: Path,
             nbytes: int) -> memoryview:
    source = header["ElementDataFile"]
    if source.upper() == "LOCAL":
        return memoryview(blob)[data_start:]
    if source.upper().startswith("LIST") or len(source.split()) > 1:
        raise FormatError("MetaImage slice lists are not supported; convert to .mha", path)
    data = memoryview(_read_all(path.parent / source, what=f"data file {source}", owner=path))
    try:
        skip = int(header.get("HeaderSize", "0") or 0)
    except ValueError:
        raise InputError(f"invalid HeaderSize {header['HeaderSize']!r}", path) from None
    if skip < 0:  # -1: the voxels are the last bytes of the file (raw data only)
        return data[max(len(data) - nbytes, 0):]
    return data[skip:]


def _inflate(payload, expected: int, path: Path) -> bytearray:
    """zlib data → exactly ``expected`` bytes, or an error (never partial data)."""
    try:
        out = inflate(payload, expected, gzip=False)
    except EOFError:
        raise InputError(f"truncated compressed voxel data (expected {expected} bytes)",
                         path) from None
    except INFLATE_ERRORS as exc:
        raise InputError(f"corrupt compressed voxel data ({exc})", path) from None
    if len(out) != expected:
        raise InputError(f"compressed voxel data hold {len(out)} bytes, DimSize and "
                         f"ElementType call for {expected}", path)
    return out


def _int(header: dict, key: str, path: Path) -> int:
    try:
        return int(header[key])
    except (KeyError, ValueError):
        raise InputError(f"MetaImage header lacks a valid {key}", path) from None


def _numbers(header: dict, key: str, n: int, path: Path, kind, default=...):
    if key not in header:
        if default is ...:
            raise InputError(f"MetaImage header lacks {key}", path)
        return default
    try:
        values = [kind(float(v)) if kind is int else kind(v) for v in header[key].split()]
    except ValueError:
        raise InputError(f"MetaImage {key} is not numeric: {header[key][:60]!r}", path) from None
    if len(values) != n:
        raise InputError(f"MetaImage {key} has {len(values)} values, expected {n}", path)
    return values


def _bool(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")
