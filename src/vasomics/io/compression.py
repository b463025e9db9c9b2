"""Inflating zlib and gzip data into one writable buffer, fast and with bounded memory.

ISA-L (the optional ``isal`` package) inflates about three times faster than zlib; it is used
when installed. Data are inflated 16 MiB at a time into a preallocated ``bytearray``, so a
NumPy view of the result is writable and the peak memory is the output plus the input, not
twice the output.
"""

from __future__ import annotations

import zlib

try:  # optional accelerator
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - depends on the environment
    _zlib = zlib

CHUNK = 1 << 24
MAX_RATIO = 1032
#: Exceptions a damaged stream raises (zlib's and ISA-L's).
ERRORS = (zlib.error, _zlib.error)
#: One-shot zlib decompression (ISA-L when installed).
zlib_decompress = _zlib.decompress


def inflate(data: bytes, size_hint: int, *, gzip: bool) -> bytearray:
    """Inflate ``data`` (a gzip file, all members, when ``gzip``; else one zlib stream).

    ``size_hint`` presizes the output (exact sizes avoid any reallocation); it is capped
    at what deflate can possibly produce from ``data``. Raises
    :class:`EOFError` when the stream ends early and ``zlib.error`` (or ISA-L's) when it is
    corrupt; trailing bytes after a zlib stream are ignored, as zlib does.
    """
    # deflate cannot expand data more than 1032-fold: a larger hint (a damaged gzip trailer
    # or header) must not allocate gigabytes before the stream proves it
    out = bytearray(min(max(int(size_hint), 0), MAX_RATIO * len(data) + CHUNK))
    pos = 0
    while data:
        d = _zlib.decompressobj(31 if gzip else 15)
        while True:
            chunk = d.decompress(data, CHUNK)
            data = d.unconsumed_tail
            end = pos + len(chunk)
            if end > len(out):
                out.extend(bytes(end - len(out)))
            out[pos:end] = chunk
            pos = end
            if d.eof:
                data = d.unused_data if gzip else b""
                break
            if not chunk and not data:
                raise EOFError("compressed stream ends early")
    del out[pos:]
    return out
