"""Write DICOM series with pydicom for tests, independently of vasomics' own reader and writer,
with patient identifiers in the headers (the library's writer never writes any)."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

#: Identifying tags written into every slice unless the caller gives its own.
IDENTIFIERS = {"PatientName": "Doe^Johnathan", "PatientID": "PID-7734921",
               "PatientBirthDate": "19610203", "InstitutionName": "St Example Hospital",
               "AccessionNumber": "ACC99812", "StudyDate": "20240102",
               "SeriesDescription": "angio for Doe^Johnathan"}


def write_series(folder, volume, spacing=(2.5, 0.7, 0.6), origin=(-100.0, 30.0, 12.0),
                 rotation=None, series_uid=None, positions=None, orientations=None,
                 intercept=-1024.0, order=None, series_number=3, modality="CT",
                 identifiers=None):
    """Write ``volume`` (z, y, x; signed 16-bit, or unsigned when its dtype is unsigned) as a
    ``modality`` ("CT" or "MR") series, one file per slice, ``order`` giving the slice of each
    file. Geometry: slice ``k`` at ``origin + k * spacing[0] * normal`` (mm, LPS) unless
    ``positions``/``orientations`` give them per slice; ``rotation`` columns are the row,
    column and normal directions. CT slices carry ``RescaleIntercept = intercept``.
    Returns the per-slice positions used."""
    folder.mkdir(parents=True, exist_ok=True)
    rot = np.eye(3) if rotation is None else rotation
    row, col, normal = rot[:, 0], rot[:, 1], rot[:, 2]
    series_uid = series_uid or generate_uid()
    study_uid = generate_uid()
    storage = CTImageStorage if modality == "CT" else MRImageStorage
    signed = not np.issubdtype(np.asarray(volume).dtype, np.unsignedinteger)
    nz = volume.shape[0]
    if positions is None:
        positions = [np.asarray(origin) + k * spacing[0] * normal for k in range(nz)]
    order = list(range(nz)) if order is None else order
    for file_no, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = storage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = storage, meta.MediaStorageSOPInstanceUID
        for tag, value in (IDENTIFIERS if identifiers is None else identifiers).items():
            setattr(ds, tag, value)
        ds.Modality, ds.Manufacturer, ds.SliceThickness = modality, "ACME", spacing[0]
        if modality == "CT":
            ds.KVP, ds.ContrastBolusAgent = 100, "Iomeprol"
            ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:g}", "1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SeriesNumber, ds.InstanceNumber = series_number, file_no + 1
        iop = orientations[k] if orientations is not None else [*row, *col]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in positions[k]]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[2]:.6f}"]
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = int(signed)
        ds.PixelData = volume[k].astype("<i2" if signed else "<u2").tobytes()
        ds.save_as(folder / f"IM{file_no:04d}.dcm", enforce_file_format=True)
    return positions
