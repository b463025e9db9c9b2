"""Image readers and writers: geometry kept in every format, checked against independent
libraries (nibabel for NIfTI's RAS affine, pynrrd for NRRD) and real files."""

from __future__ import annotations

import nibabel as nib
import nrrd
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from vasomics.errors import GeometryError
from vasomics.image import Image
from vasomics.io.images import read_image, read_mask, write_image

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    def rot(axis, t):
        m = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        m[i, i] = m[j, j] = np.cos(t)
        m[i, j], m[j, i] = -np.sin(t), np.sin(t)
        return m

    return rot(0, a) @ rot(1, b) @ rot(2, c)


@pytest.fixture
def oblique():
    rng = np.random.default_rng(1)
    array = rng.normal(size=(5, 6, 7)).astype(np.float32)
    return Image(array, spacing=(2.0, 0.75, 0.5), origin=(10.0, -20.5, 33.0),
                 direction=_rotation(0.2, -0.4, 1.1) @ np.diag([1, -1, 1]))


def _assert_same(a: Image, b: Image, exact=True):
    assert a.shape == b.shape
    if exact:
        np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-6)
    np.testing.assert_allclose(a.origin, b.origin, atol=1e-5)
    np.testing.assert_allclose(a.direction, b.direction, atol=1e-6)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".vti"])
def test_round_trip_keeps_geometry(tmp_path, oblique, ext):
    path = write_image(oblique, tmp_path / f"img{ext}")
    back = read_image(path)
    _assert_same(oblique, back)
    # no staging leftovers next to the output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_nifti_direction_is_lps(tmp_path):
    """A NIfTI written by nibabel with an oblique RAS affine: every voxel lands at
    diag(-1,-1,1) @ (affine @ ijk) in vasomics' LPS frame."""
    rng = np.random.default_rng(2)
    data = rng.integers(0, 1000, size=(7, 6, 5)).astype(np.int16)  # nibabel order (i, j, k)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(0.3, 0.1, -0.7) @ np.diag([0.8, 1.1, 2.5]) @ np.diag([-1, 1, 1])
    affine[:3, 3] = [-40.0, 12.0, 7.5]
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, tmp_path / "ras.nii.gz")
    image = read_image(tmp_path / "ras.nii.gz")
    assert image.shape == (5, 6, 7)
    for ijk in ([0, 0, 0], [6, 5, 4], [3, 1, 2]):
        i, j, k = ijk
        assert image.array[k, j, i] == data[i, j, k]
        expected = LPS_FROM_RAS @ (affine @ [i, j, k, 1])[:3]
        np.testing.assert_allclose(image.index_to_physical([k, j, i])[0], expected, atol=1e-4)
    np.testing.assert_allclose(image.spacing, (2.5, 1.1, 0.8), rtol=1e-5)
    # SimpleITK (ITK's own NIfTI reader) agrees on the LPS geometry
    import SimpleITK as sitk

    ref = sitk.ReadImage(str(tmp_path / "ras.nii.gz"))
    np.testing.assert_allclose(image.origin, ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.direction, np.reshape(ref.GetDirection(), (3, 3)),
                               atol=1e-5)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(ref))


def test_nifti_reader_matches_simpleitk_on_real_files(shared_data):
    import SimpleITK as sitk

    files = [shared_data / "tubetk_brain_mra/labels/labels-003.nii.gz",
             shared_data / "totalsegmentator_examples/example_ct_sm.nii.gz",
             shared_data / "totalsegmentator_examples/example_mr_sm.nii.gz",
             sorted((shared_data / "lvsd300_liver_slices").rglob("*.nii*"))[0]]
    for f in files:
        ours, ref = read_image(f), sitk.ReadImage(str(f))
        assert ours.shape == ref.GetSize()[::-1], f
        np.testing.assert_allclose(ours.spacing, ref.GetSpacing()[::-1], rtol=1e-5)
        np.testing.assert_allclose(ours.origin, ref.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(ours.direction, np.reshape(ref.GetDirection(), (3, 3)),
                                   atol=1e-5)
        np.testing.assert_array_equal(ours.array, sitk.GetArrayFromImage(ref))


def test_nrrd_against_pynrrd(tmp_path, oblique):
    path = write_image(oblique, tmp_path / "img.nrrd")
    data, header = nrrd.read(str(path))  # pynrrd: Fortran order (x, y, z)
    assert header["space"] in ("left-posterior-superior", "LPS")
    np.testing.assert_array_equal(data.transpose(2, 1, 0), oblique.array)
    dirs = np.asarray(header["space directions"], float)  # row i: step along index axis i
    for ax in range(3):
        step = oblique.index_to_physical(np.eye(3)[2 - ax])[0] - np.asarray(oblique.origin)
        np.testing.assert_allclose(dirs[ax], step, atol=1e-6)
    np.testing.assert_allclose(header["space origin"], oblique.origin, atol=1e-6)


def test_real_files(shared_data):
    labels = read_image(shared_data / "tubetk_brain_mra/labels/labels-002.nii.gz")
    assert labels.shape == (128, 448, 448)
    np.testing.assert_allclose(labels.spacing, (0.8, 0.513393, 0.513393), rtol=1e-5)
    vti = read_image(shared_data / "ircadb_01_01/3Dircadb0101Labeled.vti")
    assert vti.shape == (129, 512, 512) and vti.array.dtype == np.int16
    np.testing.assert_allclose(vti.spacing, (1.6, 0.57, 0.57), rtol=1e-6)
    counts = np.bincount(vti.array.reshape(-1).astype(np.int64))
    assert all(counts[c] > 0 for c in (17, 465, 33, 481, 513, 449))
    ct = read_image(shared_data / "totalsegmentator_examples/example_ct_sm.nii.gz")
    seg = read_image(shared_data / "totalsegmentator_examples/example_seg.nii.gz")
    assert ct.same_geometry(seg)


def test_tiff_stack_and_16bit(shared_data, tmp_path):
    img = read_image(shared_data / "vesselexpress_lightsheet/image_000.tif")
    assert img.shape == (100, 100, 100) and img.array.dtype == np.uint16
    assert img.metadata["spacing_known"] is False
    raw = tifffile.imread(shared_data / "vesselexpress_lightsheet/image_000.tif")
    np.testing.assert_array_equal(img.array, raw)
    stack = Image(img.array, spacing=(0.002, 0.0005, 0.0005))
    back = read_image(write_image(stack, tmp_path / "stack.tif"))
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.spacing, stack.spacing, rtol=1e-5)
    assert back.metadata["spacing_known"] is True
    # spacing= overrides what the file says
    over = read_image(shared_data / "vesselexpress_lightsheet/image_000.tif",
                      spacing=(1.0, 0.5, 0.5))
    assert over.spacing == (1.0, 0.5, 0.5)


@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgb8", "rgb16", "bool"])
def test_png_types(tmp_path, kind):
    rng = np.random.default_rng(3)
    shape = (13, 17)
    if kind == "grey8":
        array = rng.integers(0, 256, shape, dtype=np.uint8)
    elif kind == "grey16":
        array = rng.integers(0, 65536, shape, dtype=np.uint16)
    elif kind == "rgb8":
        array = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    elif kind == "rgb16":
        array = rng.integers(0, 65536, (*shape, 3), dtype=np.uint16)
    else:
        array = rng.random(shape) > 0.5
    path = tmp_path / f"{kind}.png"
    if kind == "rgb16":  # Pillow cannot write 16-bit colour: use ITK
        import SimpleITK as sitk

        sitk.WriteImage(sitk.GetImageFromArray(array, isVector=True), str(path))
    elif kind == "bool":
        PILImage.fromarray(array).convert("1").save(path)
    else:
        write_image(Image(array), path)
    back = read_image(path)
    assert back.array.dtype == array.dtype
    np.testing.assert_array_equal(back.array, array)
    assert back.ndim == 2 and back.n_channels == (3 if array.ndim == 3 else 1)


def test_retinal_data_set_formats_read_only(tmp_path):
    """DRIVE ships GIF masks, STARE gzipped PPM photographs: read pixel for pixel (Pillow's
    own decoding as reference); GIF also without its extension; writing them is refused
    with the formats that can be written, and a corrupt gzip is a one-line error."""
    import gzip

    from vasomics.errors import FormatError, InputError

    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    grey = np.zeros((40, 50), np.uint8)
    grey[10:20, 5:30] = 255
    PILImage.fromarray(rgb).save(tmp_path / "im0001.ppm")
    (tmp_path / "im0001.ppm.gz").write_bytes(gzip.compress((tmp_path / "im0001.ppm").read_bytes()))
    PILImage.fromarray(grey).save(tmp_path / "21_training_mask.gif")
    PILImage.fromarray(grey).save(tmp_path / "mask.pgm")
    (tmp_path / "mask_without_extension").write_bytes(
        (tmp_path / "21_training_mask.gif").read_bytes())
    for name, array in (("im0001.ppm", rgb), ("im0001.ppm.gz", rgb),
                        ("21_training_mask.gif", grey), ("mask.pgm", grey),
                        ("mask_without_extension", grey)):
        np.testing.assert_array_equal(read_image(tmp_path / name).array, array)
    _, mask = read_mask(tmp_path / "21_training_mask.gif")
    assert mask.sum() == 250
    with pytest.raises(FormatError, match="cannot write images of type '.gif'"):
        write_image(Image(grey, spacing=(1.0, 1.0)), tmp_path / "out.gif")
    (tmp_path / "bad.ppm.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(InputError, match="bad.ppm.gz: cannot decompress"):
        read_image(tmp_path / "bad.ppm.gz")


def test_chase_masks_are_binary(shared_data):
    path = sorted((shared_data / "chase_db1/test/mask").glob("*1stHO.png"))[0]
    image, mask = read_mask(path)
    assert mask.dtype == bool and mask.shape == (960, 999)
    assert 0.02 < mask.mean() < 0.2


def test_read_mask_checks_geometry(tmp_path):
    ref = Image(np.zeros((4, 5, 6), np.float32), spacing=(1.0, 0.5, 0.5))
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1:3, 2:4, 2:5] = 1
    good = write_image(ref.with_array(mask), tmp_path / "m.nii.gz")
    _, m = read_mask(good, like=ref)
    assert m.sum() == 12
    shifted = Image(mask, spacing=(1.0, 0.5, 0.5), origin=(3.0, 0.0, 0.0))
    bad = write_image(shifted, tmp_path / "shifted.nii.gz")
    with pytest.raises(GeometryError, match="shifted.nii.gz"):
        read_mask(bad, like=ref)


def test_nan_voxels_kept_and_counted(tmp_path, caplog):
    array = np.ones((3, 4, 5), np.float32)
    array[1, 2, 3] = np.nan
    path = write_image(Image(array), tmp_path / "nan.nii.gz")
    with caplog.at_level("INFO"):  # logged at INFO: each consumer decides whether NaN is an error
        image = read_image(path)
    assert image.metadata["n_nan_voxels"] == 1 and np.isnan(image.array[1, 2, 3])
    assert "NaN" in caplog.text


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".vti"])
def test_2d_round_trip_keeps_geometry(tmp_path, ext):
    t = 0.3
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    image = Image(np.arange(20, dtype=np.float32).reshape(4, 5), spacing=(0.7, 0.3),
                  origin=(5.0, -2.0), direction=rot)
    back = read_image(write_image(image, tmp_path / f"flat{ext}"))
    assert back.ndim == 2
    _assert_same(image, back)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".vti",
                                 ".tif", ".png", ".bmp"])
def test_arrays_are_writable(tmp_path, ext):
    """Every reader hands out an array the caller may modify in place."""
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    image = Image(array[0] if ext in (".png", ".bmp") else array)
    back = read_image(write_image(image, tmp_path / f"w{ext}"))
    assert back.array.flags.writeable
    back.array[0, 0] = 7


def test_ome_tiff_spacing(tmp_path):
    stack = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    tifffile.imwrite(tmp_path / "s.ome.tif", stack, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.65, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": 2.0, "PhysicalSizeZUnit": "µm"})
    image = read_image(tmp_path / "s.ome.tif")
    np.testing.assert_array_equal(image.array, stack)
    np.testing.assert_allclose(image.spacing, (0.002, 0.00065, 0.00065))
    assert image.metadata["spacing_known"] is True
