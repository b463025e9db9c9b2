"""DICOM: series in a folder and single files, with geometry checks and an allow-list of
non-identifying metadata.

Series (a folder, searched recursively): files are grouped by SeriesInstanceUID; the series
with the most slices is read unless ``series_uid`` names another (a warning lists what else
the folder holds; :func:`list_dicom_series` shows them all). Within a series:

* all slices must share ImageOrientationPatient (within 1e-4), Rows/Columns and
  PixelSpacing, else :class:`GeometryError`;
* slices are sorted by their position along the slice normal (row × column cosines);
* two slices at the same position (several phases, echoes or b-values in one series) and
  uneven steps (gaps from missing slices: any step off the median by more than 1 % + 0.01 mm)
  are rejected with :class:`GeometryError`: no silent resampling;
* slices whose positions move off the normal (gantry tilt) are rejected, because the grid
  would not be orthogonal.

The volume's direction has the row cosine as x, the column cosine as y, the normal as z;
origin is the first slice's ImagePositionPatient; z spacing is the measured step. Pixel data
come from ITK/GDCM (compressed transfer syntaxes, palette colour, RescaleSlope/Intercept
applied).

Single files: an enhanced multi-frame object (per-frame functional groups with plane
position, orientation and pixel measures) becomes a volume, with the same checks and sorting
as a series; a single-frame object with position and orientation becomes a one-slice 3D
image; others (ultrasound, secondary capture) a 2D image, with the spacing from
PixelSpacing, ImagerPixelSpacing or the ultrasound region calibration (cm → mm) when all
regions agree.

Metadata: only tags in :data:`ALLOWED_TAGS` are kept (no names, ids, dates, times, UIDs,
institutions, free-text descriptions); ``ContrastBolusAgent`` is reduced to a yes/no flag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, GeometryError, InputError
from vasomics.image import Image

log = logging.getLogger(__name__)

#: DICOM keywords copied into ``Image.metadata`` (snake-cased); nothing else is kept.
ALLOWED_TAGS = (
    "Modality", "Manufacturer", "ManufacturerModelName", "BodyPartExamined",
    "ImageType", "PhotometricInterpretation", "BitsStored", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "RescaleType",
    "SliceThickness", "SpacingBetweenSlices", "KVP", "XRayTubeCurrent", "Exposure",
    "ExposureTime", "ConvolutionKernel", "CTDIvol", "ScanOptions",
    "MagneticFieldStrength", "MRAcquisitionType", "ScanningSequence", "SequenceVariant",
    "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "EchoTrainLength",
    "NumberOfAverages", "ImagingFrequency", "TransducerFrequency",
    "ContrastBolusAgent",
)
_SKIP_NAMES = {"DICOMDIR"}


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder. The SeriesInstanceUID is given so that a series can be
    chosen (``read_image(folder, dicom_series=uid)``); it is never stored in an Image."""

    series_uid: str
    n_files: int
    modality: str
    series_number: int | None
    rows: int
    columns: int


def list_dicom_series(folder: str | Path) -> list[SeriesInfo]:
    """The DICOM series in ``folder`` (recursive), largest first."""
    groups = _scan(Path(folder))
    return sorted((_info(uid, hdrs) for uid, hdrs in groups.items()),
                  key=lambda s: -s.n_files)


def read_dicom(path: str | Path, series_uid: str | None = None) -> Image:
    """Read a DICOM folder (one series) or a single DICOM file (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _read_series(path, series_uid)
    return _read_single(path)


# ----------------------------------------------------------------------------- scanning
def _pydicom():
    import pydicom

    return pydicom


def _scan(folder: Path) -> dict[str, list]:
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    groups: dict[str, list] = {}
    headerless: dict[str, list[Path]] = {}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _SKIP_NAMES)
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError,
                KeyError):
            if _has_dicom_preamble(f):  # a damaged DICOM file: never a silent gap
                raise InputError(f"damaged DICOM file {f.relative_to(folder)}",
                                 folder) from None
            continue
        if "SOPClassUID" in ds and str(ds.SOPClassUID).startswith("1.2.840.10008.1.3.10"):
            continue  # a DICOMDIR under another name
        if "SOPClassUID" not in ds and _has_dicom_preamble(f):
            # every DICOM object carries SOPClassUID: the data set was cut short
            raise InputError(f"damaged DICOM file {f.relative_to(folder)} (data set ends "
                             f"early)", folder)
        uid = str(ds.get("SeriesInstanceUID", "")) or "unknown-series"
        if "Rows" not in ds:  # not an image (report, presentation state) or cut short
            headerless.setdefault(uid, []).append(f)
            continue
        groups.setdefault(uid, []).append((f, ds))
    if not groups:
        raise InputError("no DICOM images found in folder", folder)
    for uid, files in headerless.items():
        if uid in groups:  # an image series with a member lacking the image header
            raise InputError(f"damaged DICOM file {files[0].relative_to(folder)} (no image "
                             f"header) in a series of {len(groups[uid])} images", folder)
    return groups


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _info(uid: str, headers: list) -> SeriesInfo:
    ds = headers[0][1]
    number = ds.get("SeriesNumber")
    return SeriesInfo(series_uid=uid, n_files=len(headers), modality=str(ds.get("Modality", "")),
                      series_number=int(number) if number not in (None, "") else None,
                      rows=int(ds.Rows), columns=int(ds.Columns))


# ------------------------------------------------------------------------------ series
def _read_series(folder: Path, series_uid: str | None) -> Image:
    groups = _scan(folder)
    infos = sorted((_info(u, h) for u, h in groups.items()), key=lambda s: -s.n_files)
    if series_uid is not None:
        if series_uid not in groups:
            raise InputError(f"series {series_uid} not in folder ({len(groups)} series found)",
                             folder)
        chosen = series_uid
    else:
        chosen = infos[0].series_uid
        if len(infos) > 1 and infos[0].n_files == infos[1].n_files:
            raise InputError(f"folder holds {len(infos)} series and the two largest have "
                             f"{infos[0].n_files} slices each; choose one with dicom_series=",
                             folder)
    if len(infos) > 1:
        log.warning("%s: folder holds %d series (%s slices); reading series number %s with "
                    "%d slices", folder, len(infos), ", ".join(str(s.n_files) for s in infos),
                    next(s.series_number for s in infos if s.series_uid == chosen),
                    len(groups[chosen]))
    headers = groups[chosen]
    if len(headers) == 1:
        image = _read_single(headers[0][0])
    else:
        image = _stack(folder, headers)
    image.metadata["dicom_series_in_folder"] = len(infos)
    return image


def _stack(folder: Path, headers: list) -> Image:
    for f, ds in headers:
        if "ImageOrientationPatient" not in ds or "ImagePositionPatient" not in ds:
            raise GeometryError(f"slice {f.name} has no ImagePositionPatient/"
                                f"ImageOrientationPatient; cannot build a volume", folder)
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise FormatError(f"series mixes multi-frame file {f.name} with other files; read "
                              f"the file on its own", folder)
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in headers}
    if len(shapes) > 1:
        raise GeometryError(f"slices have different sizes {sorted(shapes)}", folder)
    order, spacing, origin, direction = _volume_geometry(
        [ds.ImagePositionPatient for _, ds in headers],
        [ds.ImageOrientationPatient for _, ds in headers],
        [_pixel_spacing(ds) for _, ds in headers], folder)
    headers = [headers[i] for i in order]
    array = _pixels([f for f, _ in headers], folder)
    image = _image(array, spacing, origin, direction,
                   str(headers[0][1].get("Modality", "")) or None,
                   _safe_metadata(headers[0][1]), folder)
    image.metadata["n_slices"] = len(headers)
    return image


def _volume_geometry(positions, orientations, pixel_spacings, where: Path):
    """Check per-slice geometry and return (sort order, spacing (z, y, x), origin,
    direction) of the volume the slices make (rules in the module docstring)."""
    iop = np.array([[float(v) for v in o] for o in orientations])
    if iop.shape[1] != 6:
        raise GeometryError("ImageOrientationPatient does not hold 6 numbers", where)
    if np.abs(iop - iop[0]).max() > 1e-4:
        raise GeometryError("slices of the series have different orientations "
                            "(ImageOrientationPatient); cannot build one volume", where)
    pixel = np.array(pixel_spacings, dtype=float)
    if np.abs(pixel - pixel[0]).max() > 1e-4 * max(1.0, pixel[0].max()):
        raise GeometryError("slices have different PixelSpacing", where)
    row, col = _unit(iop[0, :3]), _unit(iop[0, 3:])
    if abs(np.dot(row, col)) > 1e-3:
        raise GeometryError("ImageOrientationPatient row and column cosines are not "
                            "orthogonal", where)
    normal = np.cross(row, col)
    pos = np.array([[float(v) for v in p] for p in positions])
    along = pos @ normal
    order = np.argsort(along, kind="stable")
    pos, along = pos[order], along[order]
    steps = np.diff(along)
    if np.any(steps < 1e-3):
        raise GeometryError(f"{int(np.sum(steps < 1e-3)) + 1} slices share a position "
                            f"(several phases, echoes or repeats in one series?); "
                            f"cannot build one volume", where)
    dz = float(np.median(steps))
    if np.abs(steps - dz).max() > 0.01 * dz + 0.01:
        raise GeometryError(f"uneven slice spacing (steps {steps.min():.3f} to "
                            f"{steps.max():.3f} mm; missing slices?)", where)
    offaxis = (pos - pos[0]) - np.outer(along - along[0], normal)
    if np.abs(offaxis).max() > 0.01 * dz + 0.01:
        raise GeometryError("slice positions move off the slice normal (gantry tilt); "
                            "resample the series before analysis", where)
    spacing = (dz, float(pixel[0][0]), float(pixel[0][1]))
    return order, spacing, tuple(pos[0]), np.column_stack([row, col, normal])


def _frame_geometry(ds):
    """Per-frame (positions, orientations, pixel spacings) of an enhanced multi-frame
    object, or None when the functional groups do not carry a plane geometry."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if not frames:
        return None

    def find(item, seq, attr):
        for source in (item, shared):
            if source is not None and seq in source and source[seq].value:
                value = source[seq][0].get(attr)
                if value is not None:
                    return value
        return None

    positions, orientations, spacings = [], [], []
    for item in frames:
        p = find(item, "PlanePositionSequence", "ImagePositionPatient")
        o = find(item, "PlaneOrientationSequence", "ImageOrientationPatient")
        s = find(item, "PixelMeasuresSequence", "PixelSpacing")
        if p is None or o is None or s is None:
            return None
        positions.append(p)
        orientations.append(o)
        spacings.append((float(s[0]), float(s[1])))
    return positions, orientations, spacings


def _pixel_spacing(ds) -> tuple[float, float]:
    """(row spacing, column spacing) in mm = NumPy (y, x) spacing."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is not None and len(value) == 2:
            return float(value[0]), float(value[1])
    return 1.0, 1.0


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n < 1e-6:
        raise GeometryError("ImageOrientationPatient holds a zero vector")
    return v / n


def _pixels(files: list[Path], where: Path) -> np.ndarray:
    import SimpleITK as sitk

    try:
        if len(files) == 1:
            img = sitk.ReadImage(str(files[0]))
        else:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames([str(f) for f in files])
            img = reader.Execute()
    except RuntimeError as exc:
        line = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise InputError(f"cannot decode DICOM pixel data ({line[-1][:160] if line else exc})",
                         where) from None
    array = sitk.GetArrayFromImage(img)
    # rescaled values (stored integers × slope + intercept) fit float32; halve the memory
    return array.astype(np.float32) if array.dtype == np.float64 else array


# -------------------------------------------------------------------------------- single
def _read_single(path: Path) -> Image:
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError) as exc:
        raise InputError(f"not a readable DICOM file ({type(exc).__name__})", path) from None
    if "Rows" not in ds:
        raise InputError("DICOM file holds no image", path)
    array = _pixels([path], path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    rgb = int(ds.get("SamplesPerPixel", 1) or 1) > 1 or str(
        ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"
    if frames == 1 and array.shape[0] == 1:
        array = array[0]
    meta = _safe_metadata(ds)
    modality = str(ds.get("Modality", "")) or None
    if frames == 1 and "ImageOrientationPatient" in ds and "ImagePositionPatient" in ds:
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        row, col = _unit(iop[:3]), _unit(iop[3:])
        thickness = float(ds.get("SliceThickness") or 1.0) or 1.0
        sy, sx = _pixel_spacing(ds)
        return _image(array[None], (thickness, sy, sx),
                      tuple(float(v) for v in ds.ImagePositionPatient),
                      np.column_stack([row, col, np.cross(row, col)]), modality, meta, path)
    geometry = _frame_geometry(ds) if frames > 1 else None
    if geometry is not None and array.shape[0] == frames:
        order, spacing3, origin, direction = _volume_geometry(*geometry, path)
        image = _image(array[order], spacing3, origin, direction, modality, meta, path)
        image.metadata["n_slices"] = frames
        return image
    spacing, source = _planar_spacing(ds)
    meta["spacing_source"] = source
    meta["spacing_known"] = source != "none"
    if frames > 1:  # cine / multi-frame without a volume geometry: frames along axis 0
        meta["frame_axis"] = "time or frame"
        return _image(array, (1.0, *spacing), None, None, modality, meta, path)
    if rgb and array.ndim == 2:
        raise FormatError("colour DICOM decoded without channels", path)
    return _image(array, spacing, None, None, modality, meta, path)


def _image(array, spacing, origin, direction, modality, meta, path) -> Image:
    try:
        return Image(array=array, spacing=spacing, origin=origin, direction=direction,
                     modality=modality, metadata=meta)
    except GeometryError as exc:
        raise GeometryError(exc.message, path) from None


def _planar_spacing(ds) -> tuple[tuple[float, float], str]:
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(key)
        if value is not None and len(value) == 2:
            return (float(value[0]), float(value[1])), key
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:
        # calibrated regions only (text or waveform regions carry zero deltas)
        deltas = {(float(r.get("PhysicalDeltaY", 0)), float(r.get("PhysicalDeltaX", 0)),
                   int(r.get("PhysicalUnitsYDirection", 0)),
                   int(r.get("PhysicalUnitsXDirection", 0))) for r in regions}
        deltas = {d for d in deltas if d[0] > 0 and d[1] > 0}
        if len(deltas) == 1:
            dy, dx, uy, ux = deltas.pop()
            if uy == ux == 3:  # 3 = cm
                return (dy * 10.0, dx * 10.0), "ultrasound region"
    return (1.0, 1.0), "none"


def _safe_metadata(ds) -> dict:
    """Allow-listed, non-identifying tags (snake-cased keyword → plain Python value)."""
    out: dict = {}
    for key in ALLOWED_TAGS:
        if key not in ds:
            continue
        value = ds.get(key)
        if key == "ContrastBolusAgent":
            out["contrast_agent_present"] = bool(str(value or "").strip())
            continue
        plain = _plain(value)
        if plain not in (None, "", []):
            # the stored encoding: pixels are returned decoded (palette/YBR → RGB)
            name = "stored_photometric_interpretation" if key == "PhotometricInterpretation" \
                else _snake(key)
            out[name] = plain
    return out


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str)):
        return value if not isinstance(value, str) else value.strip()
    for cast in (int, float):
        try:
            out = cast(value)
            if cast is int and float(value) != out:
                continue
            return out
        except (TypeError, ValueError):
            continue
    return str(value).strip()


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (
                i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# -------------------------------------------------------------------------------- write
_STORAGE = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def write_dicom_series(image: Image, folder: str | Path, *, modality: str | None = None,
                       series_number: int = 1) -> Path:
    """Write a 3D scalar image as a DICOM series (one file per slice) into ``folder``,
    atomically (a staging folder renamed into place).

    The geometry goes into ImagePositionPatient / ImageOrientationPatient / PixelSpacing /
    SliceThickness / SpacingBetweenSlices, so :func:`read_dicom` (and ITK, 3D Slicer) put
    every voxel back where it was. ``modality`` (default ``image.modality``) chooses CT or MR
    Image Storage; anything else is written as Secondary Capture with the same geometry tags.
    Integer voxels up to 16 bits are stored as they are; floats and wider integers are
    quantised to int16 with RescaleSlope/RescaleIntercept (max error half a step of
    (max - min) / 65535). No patient data are written: patient name and id are empty, UIDs
    are new.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from vasomics.io.atomic import staged_output_dir

    if image.ndim != 3 or image.n_channels != 1:
        raise FormatError(f"DICOM series export needs a 3D scalar image, got shape "
                          f"{image.array.shape}")
    modality = (modality or image.modality or "OT").upper()
    pixels, slope, intercept = _dicom_pixels(image.array)
    sop_class = _STORAGE.get(modality, _SECONDARY_CAPTURE)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    d = np.asarray(image.direction)
    sz, sy, sx = image.spacing
    iop = [f"{v:.10g}" for v in (*d[:, 0], *d[:, 1])]
    signed = pixels.dtype.kind == "i"
    with staged_output_dir(folder, supersedes=("IM*.dcm",)) as stage:
        for k in range(pixels.shape[0]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = sop_class
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
            ds.PatientName, ds.PatientID = "", ""
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.FrameOfReferenceUID = frame
            ds.Modality = modality
            ds.SeriesNumber, ds.InstanceNumber = int(series_number), k + 1
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.ImageOrientationPatient = iop
            position = image.index_to_physical([k, 0, 0])[0]
            ds.ImagePositionPatient = [f"{v:.10g}" for v in position]
            ds.PixelSpacing = [f"{sy:.10g}", f"{sx:.10g}"]
            ds.SliceThickness = f"{sz:.10g}"
            ds.SpacingBetweenSlices = f"{sz:.10g}"
            ds.Rows, ds.Columns = pixels.shape[1:]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            bits = pixels.dtype.itemsize * 8
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
            ds.PixelRepresentation = int(signed)
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
            ds.PixelData = np.ascontiguousarray(pixels[k]).astype(
                pixels.dtype.newbyteorder("<")).tobytes()
            ds.save_as(stage / f"IM{k + 1:05d}.dcm", enforce_file_format=True)
    return Path(folder)


def _dicom_pixels(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored pixel values plus RescaleSlope and RescaleIntercept."""
    if array.dtype == bool:
        return array.astype(np.uint8), 1.0, 0.0
    if array.dtype in (np.uint8, np.int8, np.uint16, np.int16):
        return array.astype(np.int16) if array.dtype == np.int8 else array, 1.0, 0.0
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError("image holds NaN or infinite values, which DICOM cannot store")
    lo, hi = float(values.min()), float(values.max())
    if np.issubdtype(array.dtype, np.integer) and -32768 <= lo and hi <= 32767:
        return array.astype(np.int16), 1.0, 0.0
    slope = (hi - lo) / 65535.0 or 1.0
    intercept = lo + 32768.0 * slope
    stored = np.clip(np.rint((values - intercept) / slope), -32768, 32767).astype(np.int16)
    return stored, slope, intercept
