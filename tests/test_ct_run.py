"""``vasomics run``: the whole chain from a file, its outputs, QC stops, liver features."""

import json

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
        prov["stage_seconds"])
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
