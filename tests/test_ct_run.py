"""``vasomics run``: the whole chain from a file, its outputs, QC stops, liver features."""

import json

import pytest

from vasomics.cli import main
from vasomics.io.images import write_image
from vasomics.phantoms.liver_ct import liver_ct_phantom


def test_run_writes_every_output_and_times_each_stage(tmp_path, capsys):
    ct, _ = liver_ct_phantom((72, 112, 112), seed=2, z_extent_mm=216.0)
    path = write_image(ct, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "summary.html") in printed
    for name in ("qc.json", "phase.json", "organs.nii.gz", "vessels.nii.gz", "features.csv",
                 "summary.html", "params.yaml", "provenance.json"):
        assert (out / name).is_file(), name
    prov = json.loads((out / "provenance.json").read_text())
    assert {"qc", "localize", "phase", "vessels", "graph", "naming", "features"} <= set(
        prov["stage_seconds"]) and set(prov["stage_seconds"]) == set(prov["stage_cpu_seconds"])
    probs = json.loads((out / "phase.json").read_text())["probabilities"]
    assert abs(sum(probs.values()) - 1) < 1e-6
    html = (out / "summary.html").read_text()
    assert "data:image/png;base64" in html and "Quality control" in html
    # second run: cached localization and vessels
    assert main(["run", str(path), "-o", str(out)]) == 0
    prov2 = json.loads((out / "provenance.json").read_text())
    assert prov2["stage_seconds"]["localize"] < prov["stage_seconds"]["localize"]


def test_run_stops_on_failed_qc_unless_forced(tmp_path, shared_data, capsys):
    mr = shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"
    code = main(["run", str(mr), "-o", str(tmp_path / "mr")])
    err = capsys.readouterr().err
    assert code != 0 and "quality control" in err and len(err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "mr" / "qc.json").read_text())["verdict"] == "fail"
    assert not (tmp_path / "mr" / "vessels.nii.gz").exists()
    missing = main(["run", str(tmp_path / "nope.nii.gz"), "-o", str(tmp_path / "x")])
    assert missing != 0 and "not found" in capsys.readouterr().err


# ---------------------------------------------------------------- bad DICOM input, one line
def _dicom_folder(tmp_path, name, shape=(24, 48, 48), spacing=(2.0, 1.5, 1.5), series=1):
    """A small CT-like volume written as a DICOM series with the library's own writer."""
    import numpy as np

    from vasomics.image import Image
    from vasomics.io.dicom import write_dicom_series

    rng = np.random.default_rng(series)
    vol = (rng.normal(40, 10, shape)).astype(np.float32)
    return write_dicom_series(Image(vol, spacing=spacing, modality="CT"), tmp_path / name,
                              series_number=series)


def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_run_rejects_slices_with_different_spacing(tmp_path, capsys):
    """One slice moved 1.2 mm: steps of 2.0 and 0.8/3.2 mm in one series."""
    import pydicom

    folder = _dicom_folder(tmp_path, "uneven")
    f = sorted(folder.glob("*.dcm"))[10]
    ds = pydicom.dcmread(f)
    pos = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [f"{pos[0]:g}", f"{pos[1]:g}", f"{pos[2] + 1.2:g}"]
    ds.save_as(f)
    err = _one_line_error(capsys, ["run", str(folder), "-o", str(tmp_path / "o1")])
    assert "uneven slice spacing" in err
    assert not (tmp_path / "o1" / "organs.nii.gz").exists()


def test_run_on_mixed_series_folder(tmp_path, capsys):
    """Two series in one folder: equal sizes cannot be told apart (one-line error); otherwise
    the larger one is read and QC warns that the folder held several series."""
    import shutil

    from vasomics.chain.qc import check_image
    from vasomics.io.images import read_image

    a = _dicom_folder(tmp_path, "a", series=1)
    b = _dicom_folder(tmp_path, "b", series=2)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for src, tag in ((a, "a"), (b, "b")):
        for f in src.glob("*.dcm"):
            shutil.copy(f, mixed / f"{tag}_{f.name}")
    err = _one_line_error(capsys, ["run", str(mixed), "-o", str(tmp_path / "o2")])
    assert "2 series" in err and "24 slices each" in err
    for f in sorted(mixed.glob("b_*.dcm"))[12:]:  # series b keeps 12 slices: a is larger
        f.unlink()
    image = read_image(mixed)
    assert image.shape[0] == 24
    qc = check_image(image)
    series = [c for c in qc.checks if c.name == "series"]
    assert series and series[0].status == "warn" and series[0].value == 2


def test_run_stops_on_localizer_only_series(tmp_path, capsys):
    """A 2-slice series tagged LOCALIZER fails QC before any localization."""
    import pydicom

    folder = _dicom_folder(tmp_path, "scout", shape=(2, 48, 48))
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.save_as(f)
    err = _one_line_error(capsys, ["run", str(folder), "-o", str(tmp_path / "o3")])
    assert "quality control" in err
    qc = json.loads((tmp_path / "o3" / "qc.json").read_text())
    failed = {c["name"] for c in qc["checks"] if c["status"] == "fail"}
    assert {"localizer", "slices"} <= failed, failed


# ------------------------------------------------- the whole chain against phantom truth
_CHAIN_PHANTOMS = ((501, "arterial"), (502, "portal_venous"))


@pytest.fixture(scope="module")
def chain_on_phantoms():
    """``characterize`` on two liver CT phantoms (96 × 160 × 160, 1.6 × 2.25 × 2.25 mm), scored
    against the generator's truth (the scoring of benchmarks/bench_ct_chain_phantoms.py)."""
    from vasomics.chain.localize import _dice
    from vasomics.chain.run import characterize
    from vasomics.phantoms.liver_ct import naming_accuracy, truth_features, truth_organs

    out = []
    for seed, phase in _CHAIN_PHANTOMS:
        ct, truth = liver_ct_phantom((96, 160, 160), phase=phase, seed=seed,
                                     z_extent_mm=240.0)
        res = characterize(ct)
        organs = truth_organs(truth)
        tol = 1.5 * max(ct.spacing)
        out.append({
            "phase": (res.phase.phase, phase),
            "dice": {k: _dice(res.localization.organs[k], organs[k]) for k in
                     ("liver", "aorta", "ivc", "spleen")},
            "naming": [naming_accuracy(g, t, tol)[0] for g, t in
                       ((res.portal, truth.portal), (res.hepatic, truth.hepatic))],
            "errors": {k: res.features.value(*k) / v - 1 for k, v in
                       truth_features(truth).items()},
        })
    return out


def test_chain_on_phantoms_phase_and_organs(chain_on_phantoms):
    """Measured (seeds 501, 502): phase right on both; liver Dice 0.90/0.96, aorta 0.96/0.97."""
    for r in chain_on_phantoms:
        assert r["phase"][0] == r["phase"][1], r["phase"]
        assert r["dice"]["liver"] >= 0.85 and r["dice"]["aorta"] >= 0.85, r["dice"]


@pytest.mark.xfail(strict=True, reason="issue #4 targets not reached through the chain: "
                   "vessel separation and tracing (chain/liver_vessels.py, chain/graph.py) "
                   "miss or merge branches even on truth organ masks; see the benchmark")
def test_chain_on_phantoms_naming_and_tree_features(chain_on_phantoms):
    """Targets: per-segment naming accuracy >= 95 % per tree, tree features within 5 %."""
    import numpy as np

    for r in chain_on_phantoms:
        assert np.nanmin(r["naming"]) >= 0.95, r["naming"]
        assert max(abs(e) for e in r["errors"].values()) <= 0.05, r["errors"]


def test_run_on_a_scan_without_the_liver(tmp_path, shared_data, capsys):
    """The thoracic CT angiogram (TotalSegmentator example) does not reach the liver: the
    chain stops with a one-line QC failure naming liver coverage, never a crash or a
    liver measured somewhere else, and still recognizes the arterial phase."""
    cta = (shared_data / "totalsegmentator_examples" / "aorta_report" / "test_result" /
           "models" / "ct_cropped.nii.gz")
    err = _one_line_error(capsys, ["run", str(cta), "-o", str(tmp_path / "cta")])
    assert "quality control" in err and "liver" in err, err
    qc = json.loads((tmp_path / "cta" / "qc.json").read_text())
    assert any(c["name"] == "liver_coverage" and c["status"] == "fail" for c in qc["checks"])
    assert not (tmp_path / "cta" / "vessels.nii.gz").exists()
    # the abdominal atlas cannot place the aorta here: the classical CTA tracker finds it,
    # and its attenuation (375 HU) makes the scan arterial
    phase = json.loads((tmp_path / "cta" / "phase.json").read_text())
    assert phase["phase"] == "arterial" and phase["probabilities"]["arterial"] > 0.9, phase
    assert any("classical CTA tracker" in e for e in phase["evidence"])
