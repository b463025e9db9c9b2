"""Read and write images and masks in the common medical and microscopy formats.

:func:`read_image` chooses the reader from the file name (and, for files without a known
extension, from the first bytes); :func:`write_image` from the target's extension. Geometry is
always kept: spacing (mm), origin and direction in ITK's LPS convention (see
:mod:`vasomics.image`). See :mod:`vasomics.io` for the table of formats.

NaN voxels: intensity images are returned as they are (NaN marks "no data" in some float
volumes); the count is stored in ``metadata["n_nan_voxels"]`` and a warning is logged.
:func:`read_mask` rejects NaN (through :func:`vasomics.masks.binary_mask`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, GeometryError, InputError, OutputError
from vasomics.image import Image
from vasomics.io.atomic import atomic_file, ensure_writable_dir

log = logging.getLogger(__name__)

#: Raster formats that are read but not written (retinal data sets ship them: DRIVE's GIF
#: masks, STARE's gzipped PPM photographs).
READ_ONLY_RASTER = (".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".ppm.gz", ".pgm.gz")
#: File extension → reader key. NIfTI and MetaImage have vasomics' own strict readers,
#: NRRD is read by SimpleITK; all three are written by SimpleITK.
EXTENSION_KINDS = {".nii": "nifti", ".nii.gz": "nifti", ".mha": "meta", ".mhd": "meta",
                   ".nrrd": "nrrd", ".nhdr": "nrrd", ".png": "raster", ".tif": "raster",
                   ".tiff": "raster", ".jpg": "raster", ".jpeg": "raster", ".bmp": "raster",
                   ".dcm": "dicom", ".dicom": "dicom", ".ima": "dicom", ".vti": "vti",
                   **dict.fromkeys(READ_ONLY_RASTER, "raster")}
#: Extensions written through SimpleITK.
ITK_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Extensions of 2D/3D raster formats written by vasomics (Pillow or tifffile).
RASTER_EXTENSIONS = tuple(e for e, k in EXTENSION_KINDS.items()
                          if k == "raster" and e not in READ_ONLY_RASTER)
VTK_EXTENSIONS = (".vti",)
#: Header-plus-detached-data formats: a second file is written beside the header.
_DETACHED = (".mhd", ".nhdr")


def image_format(path: str | Path) -> str:
    """Reader key of ``path``: ``"nifti"``, ``"meta"``, ``"nrrd"``, ``"raster"``,
    ``"dicom"`` or ``"vti"``; a folder is a DICOM series. Files with an unknown extension
    are identified by their first bytes."""
    path = Path(path)
    if path.is_dir():
        return "dicom"
    ext = _extension(path)
    if ext in EXTENSION_KINDS:
        return EXTENSION_KINDS[ext]
    sniffed = _sniff(path)
    if sniffed:
        log.info("%s: unknown extension, read as %s by its content", path, sniffed)
        return sniffed
    raise FormatError(f"unknown image format {ext or '(no extension)'!r}; supported: "
                      f"{', '.join(EXTENSION_KINDS)} or a DICOM folder", path)


def read_image(path: str | Path, *, spacing: tuple[float, ...] | None = None,
               modality: str | None = None, dicom_series: str | None = None) -> Image:
    """Read an image file (or DICOM folder) into an :class:`~vasomics.image.Image`.

    Parameters
    ----------
    path:
        File, or folder holding one or more DICOM series.
    spacing:
        Override the voxel size (mm, NumPy axis order), for formats that do not store a
        physical one (PNG, most TIFFs) or store a wrong one.
    modality:
        Sets ``Image.modality`` (DICOM files set it from their Modality tag).
    dicom_series:
        SeriesInstanceUID to read when a folder holds several series (default: the one
        with the most slices; see :func:`vasomics.io.dicom.list_dicom_series`).

    Raises
    ------
    InputError, FormatError, GeometryError
        One line naming the file: missing, empty, truncated or corrupt files, unknown
        formats, invalid geometry (zero, negative or absurd spacing).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError("file is empty", path)
    kind = image_format(path)
    try:
        image = _reader(kind)(path, dicom_series)
    except (InputError, FormatError) as exc:
        if exc.path is None:
            raise type(exc)(exc.message, path) from None
        raise
    changes = {}
    if spacing is not None:
        changes["spacing"] = tuple(spacing)
    if modality is not None:
        changes["modality"] = modality
    if changes:
        try:
            image = image.with_array(image.array, **changes)
        except GeometryError as exc:
            raise GeometryError(exc.message, path) from None
    if np.issubdtype(image.array.dtype, np.floating):
        n_nan = int(np.count_nonzero(np.isnan(image.array)))
        if n_nan:
            log.info("%s: %d NaN voxels (kept as NaN)", path, n_nan)
            image.metadata["n_nan_voxels"] = n_nan
    image.metadata.setdefault("source_format", kind)
    return image


def read_mask(path: str | Path, like: Image | None = None, **kwargs) -> tuple[Image, np.ndarray]:
    """Read a binary mask; return the image and the validated boolean array.

    The mask is checked with :func:`vasomics.masks.binary_mask` (keyword arguments such as
    ``allow_empty`` are passed on). When ``like`` is given (the image the mask belongs to),
    the geometry must match it, else :class:`GeometryError` names the file.
    """
    from vasomics.masks import binary_mask

    image = read_image(path)
    mask = binary_mask(image, path, **kwargs)
    if like is not None:
        like.require_same_geometry(image, "mask", path)
    return image.with_array(mask, modality="mask"), mask


def write_image(image: Image, path: str | Path, *, compress: bool = True) -> Path:
    """Write ``image`` to ``path`` (format from the extension), atomically: a failure leaves
    no partial file. Boolean arrays are written as uint8 (0/1). A path without an extension
    (a folder) receives a 3D image as a DICOM series
    (:func:`vasomics.io.dicom.write_dicom_series`, no patient data)."""
    path = Path(path)
    ext = _extension(path)
    if not ext and not path.is_file():
        from vasomics.io.dicom import write_dicom_series

        return write_dicom_series(image, path)
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    image = image.with_array(array)
    if ext in ITK_EXTENSIONS:
        _write_itk(image, path, compress)
    elif ext in RASTER_EXTENSIONS:
        from vasomics.io.raster import write_raster

        write_raster(image, path)
    elif ext in VTK_EXTENSIONS:
        _write_vti(image, path, compress)
    else:
        raise FormatError(f"cannot write images of type {ext or '(no extension)'!r}; use one "
                          f"of {', '.join(ITK_EXTENSIONS + RASTER_EXTENSIONS + VTK_EXTENSIONS)}"
                          f", or a folder (no extension) for a DICOM series", path)
    return path


# ------------------------------------------------------------------------------- helpers
def _reader(kind: str):
    """``(path, dicom_series) -> Image`` for a reader key (modules imported on use)."""
    if kind == "nifti":
        from vasomics.io.nifti import read_nifti

        return lambda path, _: read_nifti(path)
    if kind == "meta":
        from vasomics.io.metaimage import read_metaimage

        return lambda path, _: read_metaimage(path)
    if kind == "raster":
        from vasomics.io.raster import read_raster

        return lambda path, _: read_raster(path)
    if kind == "dicom":
        from vasomics.io.dicom import read_dicom

        return lambda path, series: read_dicom(path, series_uid=series)
    if kind == "vti":
        return lambda path, _: _read_vti(path)
    return lambda path, _: _read_nrrd(path)


def _extension(path: Path) -> str:
    name = path.name.lower()
    for double in (".nii.gz", ".raw.gz", ".ppm.gz", ".pgm.gz"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def _sniff(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head.startswith(b"\x1f\x8b"):  # gzip: look inside (NIfTI is the gzipped format)
        try:
            head = zlib.decompressobj(31).decompress(head, 352)
        except zlib.error:
            return None
    head = head[:352]
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith((b"\x89PNG", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\xff\xd8",
                        b"GIF87a", b"GIF89a")):
        return "raster"
    if head.startswith(b"NRRD"):
        return "nrrd"
    if head.startswith((b"ObjectType", b"NDims")):
        return "meta"
    if len(head) >= 348 and (int.from_bytes(head[:4], "little") in (348, 540)
                             or int.from_bytes(head[:4], "big") in (348, 540)):
        return "nifti"
    if b"<VTKFile" in head and b"ImageData" in head:
        return "vti"
    return None


def _sitk():
    import SimpleITK as sitk

    return sitk


def _from_sitk(img, path: Path) -> Image:
    """SimpleITK image → :class:`Image` (geometry converted to NumPy axis order)."""
    sitk = _sitk()
    dim = img.GetDimension()
    if dim == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
        dim = 3
    if dim not in (2, 3):
        raise FormatError(f"{dim}D images are not supported (2D or 3D only)", path)
    array = sitk.GetArrayFromImage(img)
    spacing = tuple(img.GetSpacing())[::-1]
    try:
        return Image(array=array, spacing=spacing, origin=img.GetOrigin(),
                     direction=np.asarray(img.GetDirection()).reshape(dim, dim), metadata={})
    except GeometryError as exc:
        raise GeometryError(f"invalid geometry in header: {exc.message}", path) from None


def _read_nrrd(path: Path) -> Image:
    """NRRD (``.nrrd`` or ``.nhdr``) through SimpleITK, whose NRRD reader is told
    explicitly, so files with another extension are read too."""
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("NrrdImageIO")
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        reason = _itk_reason(exc)
        error = GeometryError if "spacing" in reason.lower() else InputError
        raise error(f"cannot read NRRD image: {reason}", path) from None
    return _from_sitk(img, path)


def _itk_reason(exc: Exception) -> str:
    """The useful line of an ITK exception (they span several lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if any(k in low for k in ("could not", "unable", "error", "fail", "not ", "bad",
                                  "unexpected", "incorrect", "truncat", "invalid")):
            return ln.split(": ", 1)[-1][:200] if "itk::" in ln else ln[:200]
    return (lines[-1] if lines else "unreadable")[:200]


def _to_sitk(image: Image):
    sitk = _sitk()
    vector = image.n_channels > 1
    img = sitk.GetImageFromArray(image.array, isVector=vector)
    img.SetSpacing(tuple(float(s) for s in image.spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in image.origin))
    img.SetDirection(tuple(float(d) for d in np.asarray(image.direction).reshape(-1)))
    return img


def _write_itk(image: Image, path: Path, compress: bool) -> None:
    sitk = _sitk()
    img = _to_sitk(image)
    ext = _extension(path)
    if ext not in _DETACHED:
        with atomic_file(path) as tmp:
            try:
                sitk.WriteImage(img, str(tmp), compress)
            except RuntimeError as exc:
                raise OutputError(f"cannot write image: {_itk_reason(exc)}", path) from None
        return
    # header + data file: write both into a staging folder, move the data file first
    folder = ensure_writable_dir(path.parent if str(path.parent) else ".")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=folder))
    try:
        sitk.WriteImage(img, str(staging / path.name), compress)
        produced = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
        for item in produced:  # data file(s) first, header last
            os.replace(item, folder / item.name)
    except (RuntimeError, OSError) as exc:
        raise OutputError(f"cannot write image: {_itk_reason(exc)}", path) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read_vti(path: Path) -> Image:
    from vasomics.io.vtk_xml import read_vti

    vti = read_vti(path)
    if not vti.point_data:
        raise InputError("VTK ImageData holds no point data array", path)
    name, array = next(iter(vti.point_data.items()))
    spacing, origin, direction = vti.spacing, vti.origin, np.asarray(vti.direction)
    if array.shape[0] == 1 and np.allclose(direction[:, 2], [0, 0, 1]) and np.allclose(
            direction[2, :2], 0):
        array = array[0]
        spacing, origin, direction = spacing[:2], origin[:2], direction[:2, :2]
    try:
        return Image(array=array, spacing=tuple(spacing)[::-1], origin=origin,
                     direction=direction, metadata={"vtk_array": name})
    except GeometryError as exc:
        raise GeometryError(f"invalid geometry in header: {exc.message}", path) from None


def _write_vti(image: Image, path: Path, compress: bool) -> None:
    from vasomics.io.vtk_xml import VTKImageData, write_vtk_xml

    array, spacing = image.array, image.spacing[::-1]
    origin, direction = image.origin, np.asarray(image.direction)
    if image.ndim == 2:
        array = array[None]
        spacing, origin = (*spacing, 1.0), (*origin, 0.0)
        full = np.eye(3)
        full[:2, :2] = direction
        direction = full
    nz, ny, nx = array.shape[:3]
    vti = VTKImageData(extent=(0, nx - 1, 0, ny - 1, 0, nz - 1), spacing=tuple(spacing),
                       origin=tuple(origin), direction=direction,
                       point_data={"Scalars_": array})
    write_vtk_xml(path, vti, compress=compress)
