"""`vasomics segment` end to end on small files, and its one-line errors."""

from __future__ import annotations

import numpy as np

from vasomics.cli import main
from vasomics.image import Image
from vasomics.io.images import read_image, write_image


def _tube_volume(tmp_path):
    _, y, x = np.indices((24, 40, 40))
    vol = np.where(np.hypot(y - 20, x - 20) <= 3, 400, 40).astype(np.int16)
    path = tmp_path / "cta.nii.gz"
    write_image(Image(vol, spacing=(1.0, 0.8, 0.8)), path)
    return path, vol


def test_segment_volume_writes_mask_and_score(tmp_path, capsys):
    path, vol = _tube_volume(tmp_path)
    out, score = tmp_path / "mask.nii.gz", tmp_path / "score.nii.gz"
    assert main(["segment", str(path), "-o", str(out), "--score", str(score), "--quiet"]) == 0
    mask = read_image(out)
    np.testing.assert_allclose(mask.spacing, (1.0, 0.8, 0.8), rtol=1e-6)
    m = mask.array.astype(bool)
    assert m[12, 20, 20] and not m[12, 2, 2]
    assert read_image(score).array.dtype == np.float32
    assert "vessel voxels" in capsys.readouterr().out


def test_segment_png_with_frangi(tmp_path):
    img = np.full((64, 64, 3), 200, np.uint8)
    img[30:34, 5:60, 1] = 60  # dark vessel in the green channel
    src, out = tmp_path / "fundus.png", tmp_path / "mask.png"
    write_image(Image(img), src)
    assert main(["segment", str(src), "-o", str(out), "--preset", "fundus", "--method",
                 "frangi", "--quiet"]) == 0
    m = read_image(out).array
    assert m.shape == (64, 64) and m[32, 30] == 255


def test_segment_errors_are_one_line(tmp_path, capsys):
    path, _ = _tube_volume(tmp_path)
    region = tmp_path / "region.nii.gz"
    write_image(Image(np.ones((5, 5, 5), np.uint8)), region)
    code = main(["segment", str(path), "-o", str(tmp_path / "m.nii.gz"), "--region",
                 str(region), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "region" in err
    code = main(["segment", str(path), "-o", str(tmp_path / "m.nii.gz"), "--method",
                 "learned", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "2D" in err
    nan_path = tmp_path / "nan.nii.gz"
    write_image(Image(np.full((20, 20, 20), np.nan, np.float32)), nan_path)
    code = main(["segment", str(nan_path), "-o", str(tmp_path / "m.nii.gz"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and err.count("nan.nii.gz: ") == 1 and "NaN" in err
    assert not (tmp_path / "m.nii.gz").exists()
    code = main(["segment", str(path), "-o", str(tmp_path / "m.nii.gz"), "--preset", "nope"])
    assert code != 0 and "unknown preset" in capsys.readouterr().err


def test_segment_refuses_outputs_their_format_cannot_hold(tmp_path, capsys):
    """Before segmenting: a JPEG mask (lossy: it read back with 83 grey levels, 'not
    binary'), a 3D mask as PNG, a 2D mask as a DICOM series folder, a float score map as
    PNG; one line each, nothing written."""
    path, _ = _tube_volume(tmp_path)
    img = np.full((32, 32, 3), 200, np.uint8)
    png = tmp_path / "fundus.png"
    write_image(Image(img), png)
    for src, out, score, words in ((png, "m.jpg", None, "lossy"),
                                   (path, "m.png", None, "2D"),
                                   (png, "m_series", None, "DICOM"),
                                   (png, "m.png", "s.png", "float32")):
        argv = ["segment", str(src), "-o", str(tmp_path / out), "--quiet"]
        if score:
            argv += ["--score", str(tmp_path / score)]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err, err
        assert not (tmp_path / out).exists()
