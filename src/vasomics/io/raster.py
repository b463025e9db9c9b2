"""PNG, JPEG, BMP and TIFF images (2D greyscale or colour, 3D TIFF stacks); GIF and netpbm
(PPM/PGM/PBM, plain or gzipped) are read only.

Pixel types are kept: 1-bit images become ``bool``, 8- and 16-bit stay ``uint8``/``uint16``
(16-bit colour PNGs included), float TIFFs stay float. Colour images get a trailing channel
axis ``(y, x, 3|4)``; palette images are expanded to RGB, or to grey when the palette is grey.

Physical spacing: these formats rarely store one. TIFF spacing is taken from OME-XML
``PhysicalSizeX/Y/Z`` (with their units), else when ImageJ metadata names a length unit (``unit`` = ``micron``/``um``/``nm``/``mm``/``cm``; z from ``spacing``)
or the ``ResolutionUnit`` tag is centimetre. Pixel-per-inch values (PNG ``pHYs``, TIFF inch)
are screen or scanner settings, not anatomy, and are ignored. Without a physical spacing the
pixel size is 1 and ``metadata["spacing_known"]`` is ``False``: pass ``spacing=`` to
:func:`vasomics.io.images.read_image`. Origin and direction are not stored in these formats.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, GeometryError, InputError
from vasomics.image import Image
from vasomics.io.atomic import atomic_file

log = logging.getLogger(__name__)

#: Largest plausible ratio of pixel bytes to file bytes (compressed TIFFs); beyond it the
#: header is taken as corrupt rather than allocating the memory it asks for.
_MAX_TIFF_RATIO = 10_000

#: Length units found in ImageJ/OME metadata, in mm.
UNITS_MM = {"micron": 1e-3, "microns": 1e-3, "um": 1e-3, "\u00b5m": 1e-3, "\u03bcm": 1e-3,
            "nm": 1e-6, "mm": 1.0, "millimeter": 1.0, "cm": 10.0, "centimeter": 10.0}


#: Formats written through Pillow, 2D only (extension → Pillow format name).
PLANAR_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}


def read_raster(path: str | Path) -> Image:
    """Read a PNG/JPEG/BMP/TIFF file, or a GIF or netpbm (PPM/PGM/PBM, also gzipped) one
    (see the module docstring for types and spacing)."""
    path = Path(path)
    if path.name.lower().endswith(".gz"):
        return _read_pillow(path, _gunzip(path))
    with open(path, "rb") as fh:
        head = fh.read(32)
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return _read_tiff(path)
    if head.startswith(b"\x89PNG") and len(head) >= 26 and head[24] == 16 and head[25] in (2, 6):
        return _read_png16_colour(path)
    return _read_pillow(path)


def _gunzip(path: Path):
    """The decompressed bytes of a gzipped file, as a file object."""
    import gzip
    import io
    import zlib

    try:
        with gzip.open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot decompress ({type(exc).__name__}: {str(exc)[:120]})",
                         path) from None


def _read_pillow(path: Path, source=None) -> Image:
    """Pillow's reading of ``path`` (or of ``source``, a file object with its bytes)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(source if source is not None else path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                array = np.asarray(im)
                if np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 1] == array[..., 2]):
                    array = np.ascontiguousarray(array[..., 0])
            elif mode in ("LA", "PA"):
                array = np.asarray(im.convert("L"))
                log.warning("%s: alpha channel dropped", path)
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                array = np.asarray(im.convert("RGB"))
            elif mode.startswith("I;16"):
                array = np.asarray(im).astype(np.uint16)
            else:
                array = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"cannot read image ({type(exc).__name__}: {str(exc)[:120]})",
                         path) from None
    # Pillow hands out read-only views: copy once so callers may modify the pixels
    return Image(array=np.array(array, copy=True, order="C"), spacing=(1.0, 1.0),
                 metadata={"spacing_known": False})


def _read_png16_colour(path: Path) -> Image:
    """16-bit RGB(A) PNGs, which Pillow reduces to 8 bit: read with SimpleITK."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read 16-bit PNG ({str(exc).splitlines()[-1][:120]})",
                         path) from None
    return Image(array=sitk.GetArrayFromImage(img), spacing=(1.0, 1.0),
                 metadata={"spacing_known": False})


def _read_tiff(path: Path) -> Image:
    import tifffile

    problems = _Capture()
    tiff_log = logging.getLogger("tifffile")
    tiff_log.addHandler(problems)
    try:
        with tifffile.TiffFile(path) as tif:
            size = tif.filehandle.size
            series = tif.series[0]
            for page in series.pages:
                if page is None:
                    continue
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts,
                                              strict=False)]
                if ends and max(ends) > size:
                    raise InputError(f"truncated TIFF (image data runs to byte {max(ends)} "
                                     f"of a {size}-byte file)", path)
            claimed = int(np.prod(series.shape)) * series.dtype.itemsize
            if claimed > _MAX_TIFF_RATIO * max(size, 1):
                raise InputError(f"TIFF header claims {claimed / 1e9:.1f} GB of pixels in a "
                                 f"{size / 1e6:.1f} MB file (corrupt file?)", path)
            array = series.asarray()
            axes = series.axes
            page = tif.pages[0]
            ij = tif.imagej_metadata or {}
            ome = tif.ome_metadata if tif.is_ome else None
            tags = {t.name: t.value for t in page.tags.values()}
    except InputError:
        raise
    except MemoryError:
        raise InputError("TIFF header claims an image too large for memory (corrupt file?)",
                         path) from None
    except Exception as exc:  # tifffile raises many types on damaged files
        raise InputError(f"cannot read TIFF ({type(exc).__name__}: {str(exc)[:120]})",
                         path) from None
    finally:
        tiff_log.removeHandler(problems)
    if problems.messages:
        raise InputError(f"corrupt or truncated TIFF ({problems.messages[0][:160]})", path)
    array, axes = _spatial_axes(array, axes, path)
    ndim = 3 if axes.startswith("Z") else 2
    try:
        spacing = (_ome_spacing(ome, ndim) if ome else None) or _tiff_spacing(tags, ij, ndim)
    except (TypeError, ValueError, ZeroDivisionError, SyntaxError) as exc:
        raise InputError(f"unreadable TIFF resolution, ImageJ or OME spacing ({exc})",
                         path) from None
    meta = {"spacing_known": spacing is not None}
    if spacing is None:
        spacing = (1.0,) * ndim
    try:
        return Image(array=array, spacing=spacing, metadata=meta)
    except GeometryError as exc:
        raise GeometryError(f"invalid spacing in TIFF tags: {exc.message}", path) from None


class _Capture(logging.Handler):
    """Collects the errors tifffile logs (it logs, rather than raises, on damaged files)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


def _spatial_axes(array: np.ndarray, axes: str, path: Path) -> tuple[np.ndarray, str]:
    """Squeeze singleton axes and bring a TIFF series to ``YX``, ``ZYX``, ``YXS``, ``ZYXS``."""
    keep = [i for i, a in enumerate(axes) if array.shape[i] > 1 or a in "YX"]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    axes = "".join("Z" if a in "QIP" else a for a in axes)  # generic stack axes = planes
    if axes.count("C") == 1 and "S" not in axes and array.shape[axes.index("C")] in (3, 4):
        array = np.moveaxis(array, axes.index("C"), -1)
        axes = axes.replace("C", "") + "S"
    if axes not in ("YX", "ZYX", "YXS", "ZYXS"):
        raise FormatError(f"TIFF axes {axes!r} (shape {array.shape}) are not a 2D or 3D "
                          f"image; time series and multi-channel stacks are not supported", path)
    return np.ascontiguousarray(array), axes


def _ome_spacing(ome_xml: str, ndim: int) -> tuple[float, ...] | None:
    """Voxel size (mm, NumPy order) from OME-XML ``Pixels`` PhysicalSize* attributes (unit
    attributes default to µm, as the OME schema says); None when absent."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(ome_xml)
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    sizes = []
    for axis in "ZYX"[3 - ndim:]:
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "\u00b5m").strip().lower()
        if value is None or unit not in UNITS_MM:
            return None
        sizes.append(float(value) * UNITS_MM[unit])
    return tuple(sizes)


def _tiff_spacing(tags: dict, ij: dict, ndim: int) -> tuple[float, ...] | None:
    def pixel_size(tag: str) -> float | None:
        value = tags.get(tag)
        if not value:
            return None
        num, den = value if isinstance(value, tuple) else (value, 1)
        return den / num if num else None

    unit = str(ij.get("unit", "")).strip().lower()
    if unit in UNITS_MM:
        scale = UNITS_MM[unit]
    elif int(tags.get("ResolutionUnit", 0) or 0) == 3:  # centimetre
        scale = 10.0
    else:
        return None
    sx, sy = pixel_size("XResolution"), pixel_size("YResolution")
    if sx is None or sy is None:
        return None
    sz = float(ij.get("spacing", 1.0))
    spacing = (sy * scale, sx * scale)
    return (sz * scale, *spacing) if ndim == 3 else spacing


def write_raster(image: Image, path: str | Path) -> None:
    """Write PNG/JPEG/BMP (2D) or TIFF (2D/3D; spacing kept as ImageJ micron metadata for
    uint8/uint16/float32, as centimetre resolution tags otherwise)."""
    path = Path(path)
    ext = path.suffix.lower()
    with atomic_file(path) as tmp:
        if ext in (".tif", ".tiff"):
            _write_tiff(image, tmp)
        else:
            _write_pillow(image, tmp, ext, path)
    if not np.allclose(image.direction, np.eye(image.ndim)) or any(image.origin):
        log.warning("%s: origin and direction are not stored in %s files", path, ext)


def _write_pillow(image: Image, tmp: Path, ext: str, path: Path) -> None:
    from PIL import Image as PILImage

    if image.ndim != 2:
        raise FormatError(f"{ext} files hold 2D images; write 3D images as .tif or .nii.gz", path)
    array = image.array
    if array.dtype == np.uint16 and image.n_channels == 1 and ext == ".png":
        pil = PILImage.fromarray(array)
    elif array.dtype == np.uint8:
        pil = PILImage.fromarray(array)
    else:
        raise FormatError(f"{ext} cannot hold {array.dtype} {image.n_channels}-channel pixels; "
                          f"use .tif or .nii.gz", path)
    pil.save(tmp, format=PLANAR_FORMATS[ext])


def _write_tiff(image: Image, tmp: Path) -> None:
    import tifffile

    array = image.array
    rgb = image.n_channels > 1
    if array.dtype in (np.uint8, np.uint16, np.float32) and not (rgb and array.dtype != np.uint8):
        um = [s * 1e3 for s in image.spacing]
        metadata = {"unit": "um", "axes": ("ZYX" if image.ndim == 3 else "YX") + ("S" if rgb else "")}
        if image.ndim == 3:
            metadata["spacing"] = um[0]
        tifffile.imwrite(tmp, array, imagej=True, resolution=(1 / um[-1], 1 / um[-2]),
                         metadata=metadata, photometric="rgb" if rgb else "minisblack")
    else:
        tifffile.imwrite(tmp, array, resolution=(10 / image.spacing[-1], 10 / image.spacing[-2]),
                         resolutionunit="CENTIMETER",
                         photometric="rgb" if rgb else "minisblack")
