"""DICOM series and single files: geometry, series choice, and no identifying data kept."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from _dicom import IDENTIFIERS, write_series
from vasomics.errors import GeometryError, InputError
from vasomics.io.dicom import list_dicom_series
from vasomics.io.images import read_image

PATIENT_NAME = IDENTIFIERS["PatientName"]
PATIENT_ID = IDENTIFIERS["PatientID"]
INSTITUTION = IDENTIFIERS["InstitutionName"]


def _rotation(ax: float, ay: float) -> np.ndarray:
    cx, sx, cy, sy = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return ry @ rx


@pytest.fixture
def volume():
    rng = np.random.default_rng(4)
    return rng.integers(0, 3000, size=(9, 12, 10)).astype(np.int16)


def test_oblique_shuffled_series(tmp_path, volume):
    rot = _rotation(0.3, -0.5)
    order = [4, 0, 8, 2, 6, 1, 7, 3, 5]
    positions = write_series(tmp_path / "s", volume, rotation=rot, order=order)
    image = read_image(tmp_path / "s")
    assert image.shape == volume.shape
    np.testing.assert_array_equal(image.array, volume.astype(float) - 1024)
    np.testing.assert_allclose(image.spacing, (2.5, 0.7, 0.6), atol=1e-5)
    np.testing.assert_allclose(image.direction, rot, atol=1e-5)
    for k in (0, 4, 8):  # voxel (k, 0, 0) sits at slice k's ImagePositionPatient
        np.testing.assert_allclose(image.index_to_physical([k, 0, 0])[0], positions[k],
                                   atol=1e-4)
    # voxel (0, 3, 5): column 5 along the row cosine, row 3 along the column cosine
    expected = positions[0] + 5 * 0.6 * rot[:, 0] + 3 * 0.7 * rot[:, 1]
    np.testing.assert_allclose(image.index_to_physical([0, 3, 5])[0], expected, atol=1e-4)
    assert image.modality == "CT"


def test_no_identifying_data_survives(tmp_path, volume):
    write_series(tmp_path / "s", volume)
    image = read_image(tmp_path / "s")
    blob = pickle.dumps(image) + repr(image.metadata).encode()
    for secret in (PATIENT_NAME, PATIENT_ID, "Doe", "Johnathan", "19610203", INSTITUTION,
                   "ACC99812", "20240102", "Iomeprol"):
        assert secret.encode() not in blob, secret
    assert image.metadata["contrast_agent_present"] is True
    assert image.metadata["kvp"] == 100 and image.metadata["manufacturer"] == "ACME"
    assert not any("patient" in k or "date" in k or "uid" in k for k in image.metadata)


def test_folder_with_several_series(tmp_path, volume, caplog):
    write_series(tmp_path / "mix" / "a", volume, series_number=3)
    small_uid = generate_uid()
    write_series(tmp_path / "mix" / "b", volume[:3], series_uid=small_uid, series_number=7)
    (tmp_path / "mix" / "notes.txt").write_text("not dicom")
    series = list_dicom_series(tmp_path / "mix")
    assert [s.n_files for s in series] == [9, 3]
    with caplog.at_level(logging.WARNING):
        image = read_image(tmp_path / "mix")
    assert image.shape[0] == 9 and image.metadata["dicom_series_in_folder"] == 2
    assert "2 series" in caplog.text
    assert read_image(tmp_path / "mix", dicom_series=small_uid).shape[0] == 3
    with pytest.raises(InputError, match="not in folder"):
        read_image(tmp_path / "mix", dicom_series="1.2.3")


def test_mixed_orientation_rejected(tmp_path, volume):
    orient = [[1, 0, 0, 0, 1, 0]] * 9
    orient[4] = [1, 0, 0, 0, 0.9950042, 0.0998334]
    write_series(tmp_path / "s", volume, orientations=orient)
    with pytest.raises(GeometryError, match="different orientations") as err:
        read_image(tmp_path / "s")
    assert str(tmp_path / "s") in str(err.value)


def test_duplicate_positions_and_gaps_rejected(tmp_path, volume):
    pos = [np.array([0.0, 0.0, 2.5 * k]) for k in range(9)]
    dup = list(pos)
    dup[5] = pos[4]
    write_series(tmp_path / "dup", volume, positions=dup)
    with pytest.raises(GeometryError, match="share a position"):
        read_image(tmp_path / "dup")
    gap = [p + (np.array([0, 0, 2.5]) if k >= 6 else 0) for k, p in enumerate(pos)]
    write_series(tmp_path / "gap", volume, positions=gap)
    with pytest.raises(GeometryError, match="uneven slice spacing"):
        read_image(tmp_path / "gap")
    tilt = [p + np.array([0, 0.4 * k, 0]) for k, p in enumerate(pos)]
    write_series(tmp_path / "tilt", volume, positions=tilt)
    with pytest.raises(GeometryError, match="gantry tilt"):
        read_image(tmp_path / "tilt")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM images"):
        read_image(tmp_path)


def test_ultrasound_files(shared_data):
    folder = shared_data / "pydicom_ultrasound"
    rgb = read_image(folder / "US1_UNCR.dcm")
    assert rgb.shape == (480, 640) and rgb.n_channels == 3 and rgb.array.dtype == np.uint8
    assert rgb.modality == "US" and rgb.metadata["spacing_known"] is False
    palette = read_image(folder / "gdcm-US-ALOKA-16.dcm")
    assert palette.shape == (480, 640) and palette.n_channels == 3
    # calibrated from the ultrasound region: 0.0383 cm per pixel
    np.testing.assert_allclose(palette.spacing, (0.3826530650, 0.3826530650), rtol=1e-6)
    assert palette.metadata["spacing_source"] == "ultrasound region"
    for path, image in ((folder / "US1_UNCR.dcm", rgb), (folder / "gdcm-US-ALOKA-16.dcm", palette)):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        blob = pickle.dumps(image)
        secrets = [str(ds.get(k, "")) for k in ("PatientName", "PatientID", "InstitutionName",
                                                 "StudyDate", "AccessionNumber",
                                                 "PatientBirthDate")]
        for secret in secrets:
            if len(secret) >= 4:
                assert secret.encode() not in blob, secret


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, bool])
def test_write_series_round_trip(tmp_path, dtype):
    import SimpleITK as sitk

    from vasomics.image import Image
    from vasomics.io.dicom import write_dicom_series

    rng = np.random.default_rng(7)
    if dtype is bool:
        array = rng.random((6, 9, 11)) > 0.7
    elif dtype is np.float32:
        array = (rng.normal(size=(6, 9, 11)) * 300).astype(np.float32)
    else:
        array = rng.integers(0, 200, size=(6, 9, 11)).astype(dtype)
    image = Image(array, spacing=(1.25, 0.8, 0.6), origin=(-12.0, 40.0, 3.5),
                  direction=_rotation(0.4, 0.25), modality="MR")
    folder = write_dicom_series(image, tmp_path / "out")
    back = read_image(folder)
    assert back.shape == image.shape and back.modality == "MR"
    np.testing.assert_allclose(back.spacing, image.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.origin, image.origin, atol=1e-6)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-6)
    if dtype is np.float32:
        step = (array.max() - array.min()) / 65535
        assert np.abs(back.array - array).max() <= step * 0.51
    else:
        np.testing.assert_array_equal(back.array, array.astype(back.array.dtype))
    # ITK's own DICOM series reader (GDCM sorting) agrees on the geometry
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    ref = reader.Execute()
    np.testing.assert_allclose(ref.GetOrigin(), image.origin, atol=1e-5)
    np.testing.assert_allclose(np.reshape(ref.GetDirection(), (3, 3)), image.direction,
                               atol=1e-5)
    np.testing.assert_allclose(ref.GetSpacing()[::-1], image.spacing, rtol=1e-5)


def test_series_rewritten_with_fewer_slices(tmp_path):
    """Writing a shorter series into a folder that holds one replaces it whole: no slice of
    the earlier series is left to mix with the new one; other files are left alone."""
    from vasomics.image import Image
    from vasomics.io.dicom import write_dicom_series

    folder = tmp_path / "series"
    write_dicom_series(Image(np.zeros((10, 8, 8), np.int16), modality="CT"), folder)
    (folder / "README.txt").write_text("mine")
    short = Image(np.arange(5 * 64, dtype=np.int16).reshape(5, 8, 8), modality="CT")
    write_dicom_series(short, folder)
    assert len(list(folder.glob("*.dcm"))) == 5 and (folder / "README.txt").is_file()
    np.testing.assert_array_equal(read_image(folder).array, short.array)


def test_enhanced_multiframe(tmp_path, volume):
    """An enhanced CT object (frames stored out of order, geometry in functional groups)
    becomes a sorted volume; identifying tags are dropped as for series."""
    rot = _rotation(-0.2, 0.35)
    row, col, normal = rot[:, 0], rot[:, 1], rot[:, 2]
    order = [3, 1, 8, 0, 5, 7, 2, 6, 4]
    origin = np.array([10.0, -5.0, 2.0])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = PATIENT_NAME, PATIENT_ID, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.NumberOfFrames, (ds.Rows, ds.Columns) = 9, volume.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *col)]
    measures.PixelSpacing, measures.SliceThickness = ["0.7", "0.6"], "2.5"
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orient], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in order:
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = [f"{v:.6f}" for v in origin + 2.5 * k * normal]
        item.PlanePositionSequence = [plane]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = volume[order].astype("<i2").tobytes()
    ds.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    image = read_image(tmp_path / "enhanced.dcm")
    np.testing.assert_array_equal(image.array, volume)
    np.testing.assert_allclose(image.spacing, (2.5, 0.7, 0.6), atol=1e-5)
    np.testing.assert_allclose(image.origin, origin, atol=1e-5)
    np.testing.assert_allclose(image.direction, rot, atol=1e-5)
    assert PATIENT_NAME.encode() not in pickle.dumps(image)


def test_damaged_slice_is_reported(tmp_path, volume):
    write_series(tmp_path / "s", volume)
    victim = sorted((tmp_path / "s").glob("*.dcm"))[4]
    data = victim.read_bytes()
    victim.write_bytes(data[:200])  # header cut: pydicom cannot parse it
    with pytest.raises(InputError, match=f"damaged DICOM file {victim.name}"):
        read_image(tmp_path / "s")
    victim.write_bytes(data[:-50])  # pixel data cut
    with pytest.raises(InputError, match="pixel data"):
        read_image(tmp_path / "s")


def test_rescale_differs_per_slice(tmp_path):
    volume = np.full((4, 5, 6), 100, np.int16)
    write_series(tmp_path / "s", volume, intercept=0.0)
    slopes = [1.0, 0.5, 0.25, 2.0]
    for f, slope in zip(sorted((tmp_path / "s").glob("*.dcm")), slopes, strict=True):
        ds = pydicom.dcmread(f)
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", "0.3"
        ds.save_as(f)
    image = read_image(tmp_path / "s")
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array[:, 2, 3], [100 * s + 0.3 for s in slopes], rtol=1e-6)
