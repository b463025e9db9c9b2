"""Bad input to the image readers and writers: one line naming the file, a vasomics error,
never a crash; writers leave nothing behind when they fail."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest

from vasomics.errors import FormatError, GeometryError, InputError, OutputError, VasomicsError
from vasomics.image import Image
from vasomics.io.images import read_image, read_mask, write_image

FORMATS = [".nii", ".nii.gz", ".nrrd", ".mha", ".vti", ".png", ".tif"]


def _sample(ext: str) -> Image:
    rng = np.random.default_rng(0)
    if ext == ".png":
        return Image(rng.integers(0, 255, (40, 50), dtype=np.uint8))
    return Image(rng.integers(0, 255, (8, 40, 50), dtype=np.uint8), spacing=(1.0, 0.5, 0.5))


def _check(exc: VasomicsError, path) -> None:
    text = str(exc)
    assert "\n" not in text
    assert str(path) in text


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files(tmp_path, ext, keep):
    good = write_image(_sample(ext), tmp_path / f"good{ext}", compress=True)
    data = good.read_bytes()
    bad = tmp_path / f"trunc{ext}"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError) as err:
        read_image(bad)
    _check(err.value, bad)


@pytest.mark.parametrize("ext", FORMATS)
def test_empty_files(tmp_path, ext):
    bad = tmp_path / f"empty{ext}"
    bad.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as err:
        read_image(bad)
    _check(err.value, bad)


@pytest.mark.parametrize("ext", FORMATS + [".dcm"])
def test_text_renamed_as_image(tmp_path, ext):
    bad = tmp_path / f"notes{ext}"
    bad.write_text("patient list\nthis is not an image\n" * 30)
    with pytest.raises(InputError) as err:
        read_image(bad)
    _check(err.value, bad)


def test_corrupt_gzip_payload(tmp_path):
    good = write_image(_sample(".nii.gz"), tmp_path / "good.nii.gz")
    data = bytearray(good.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = os.urandom(64)
    bad = tmp_path / "corrupt.nii.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        read_image(bad)
    _check(err.value, bad)


def test_missing_unknown_and_folder(tmp_path):
    with pytest.raises(InputError, match="not found") as err:
        read_image(tmp_path / "nope.nii.gz")
    _check(err.value, tmp_path / "nope.nii.gz")
    odd = tmp_path / "scan.xyz"
    odd.write_bytes(b"\x00\x01 some bytes that match no format" * 20)
    with pytest.raises(FormatError, match="unknown image format") as err:
        read_image(odd)
    _check(err.value, odd)
    with pytest.raises(FormatError, match="cannot write"):
        write_image(_sample(".nii"), tmp_path / "out.xyz")


def test_unknown_extension_sniffed(tmp_path):
    """A NIfTI or PNG saved without a usable extension is still recognised by content."""
    nii = write_image(_sample(".nii"), tmp_path / "a.nii")
    renamed = tmp_path / "a.img_data"
    nii.rename(renamed)
    assert read_image(renamed).shape == (8, 40, 50)
    for ext in (".nii.gz", ".nrrd", ".mha", ".png", ".tif", ".vti"):
        path = write_image(_sample(ext), tmp_path / f"b{ext}")
        renamed = path.rename(tmp_path / f"b_{ext.strip('.').replace('.', '_')}.data")
        back = read_image(renamed)
        np.testing.assert_array_equal(back.array, _sample(ext).array)


@pytest.mark.parametrize("pixdim", [0.0, np.nan, np.inf, 1e9])
def test_absurd_spacing_in_header(tmp_path, pixdim):
    data = np.zeros((4, 5, 6), np.uint8)
    path = tmp_path / "spacing.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    # edit the header bytes: nibabel refuses to save some of these values. pixdim[2] is
    # at byte 84; qform_code and sform_code (bytes 252, 254) = 0 select pixdim-only geometry
    raw[84:88] = np.float32(pixdim).tobytes()
    raw[252:256] = b"\0\0\0\0"
    path.write_bytes(bytes(raw))
    with pytest.raises(GeometryError) as err:
        read_image(path)
    _check(err.value, path)


def test_negative_pixdim_taken_as_absolute(tmp_path):
    path = tmp_path / "neg.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    raw[84:88] = np.float32(-0.7).tobytes()
    raw[252:256] = b"\0\0\0\0"
    path.write_bytes(bytes(raw))
    assert read_image(path).spacing == pytest.approx((1.0, 0.7, 1.0))


def test_absurd_spacing_in_mha(tmp_path):
    path = tmp_path / "bad.mha"
    write_image(_sample(".mha"), path, compress=False)
    text = path.read_bytes().replace(b"ElementSpacing = 0.5 0.5 1", b"ElementSpacing = 0 0.5 1")
    path.write_bytes(text)
    with pytest.raises(GeometryError) as err:
        read_image(path)
    _check(err.value, path)


def test_nan_mask_rejected(tmp_path):
    array = np.zeros((3, 4, 5), np.float32)
    array[1, 1, 1] = 1
    array[2, 2, 2] = np.nan
    path = write_image(Image(array), tmp_path / "nanmask.nii.gz")
    with pytest.raises(InputError, match="NaN") as err:
        read_mask(path)
    _check(err.value, path)


def test_non_binary_and_multichannel_masks(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint8)
    labels[0, 0, 0], labels[1, 1, 1] = 1, 2
    path = write_image(Image(labels), tmp_path / "labels.nii.gz")
    with pytest.raises(InputError, match="not binary") as err:
        read_mask(path)
    _check(err.value, path)
    rgb = write_image(Image(np.zeros((6, 7, 3), np.uint8)), tmp_path / "rgb.png")
    with pytest.raises(InputError, match="channels"):
        read_mask(rgb)


def test_output_below_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a folder") as err:
        write_image(_sample(".nii"), blocker / "out.nii.gz")
    _check(err.value, blocker)


def test_unwritable_output_leaves_nothing(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(OutputError) as err:
            write_image(_sample(".nii"), locked / "out.nii.gz")
        assert "locked" in str(err.value)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_a_folder_that_refuses_new_files(tmp_path, monkeypatch):
    """A folder that passes the access check but refuses to create the temporary file (a
    full disk, a pseudo file system such as /proc, where root may write): a one-line
    OutputError naming the target, not an internal error, and nothing left behind."""
    import tempfile

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    target = tmp_path / "out.nii.gz"
    with pytest.raises(OutputError, match="No space left") as err:
        write_image(_sample(".nii.gz"), target)
    _check(err.value, target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".nii.gz", ".mhd", ".nhdr", ".png", ".tif", ".vti"])
def test_failed_write_leaves_no_partial_file(tmp_path, ext, monkeypatch):
    """A writer that fails half-way leaves neither the target nor temporary files."""
    import numpy as real_np

    image = _sample(ext)
    target = tmp_path / f"out{ext}"
    bad = Image(real_np.zeros((2, 3, 4, 5), np.float64)) if ext in (".png",) else None
    if bad is not None:
        with pytest.raises(VasomicsError):
            write_image(bad, target)
    else:
        import SimpleITK as sitk
        import tifffile

        import vasomics.io.vtk_xml as vtk_xml

        def boom(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(sitk, "WriteImage", boom)
        monkeypatch.setattr(tifffile, "imwrite", boom)
        monkeypatch.setattr(vtk_xml.Path, "write_bytes", boom)
        with pytest.raises(OutputError, match="No space left"):
            write_image(image, target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", FORMATS)
def test_random_damage_never_crashes_or_returns_partial_data(tmp_path, ext):
    """Random byte flips, overwritten header bytes and truncation: the reader either raises
    a one-line vasomics error naming the file or returns an image; a truncated file is
    never returned with its voxels silently changed."""
    rng = np.random.default_rng(11)
    image = _sample(ext)
    data = write_image(image, tmp_path / f"good{ext}").read_bytes()
    for trial in range(45):
        damaged = bytearray(data)
        mode = trial % 3
        if mode == 0:
            for k in rng.integers(0, len(damaged), 8):
                damaged[k] = rng.integers(0, 256)
        elif mode == 1:
            start = int(rng.integers(0, min(len(damaged), 400)))
            damaged[start:start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        else:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        path = tmp_path / f"damaged{ext}"
        path.write_bytes(bytes(damaged))
        try:
            back = read_image(path)
        except VasomicsError as exc:
            _check(exc, path)
            continue
        if mode == 2:
            np.testing.assert_array_equal(back.array, image.array)
