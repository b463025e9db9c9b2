"""``vasomics run``: the whole chain from a file, its outputs, QC stops, liver features."""

import json

import numpy as np

from vasomics.cli import main
from vasomics.features.liver import liver_features, murray_deviation
from vasomics.io.images import write_image
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom


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


def test_liver_features_against_phantom_truth():
    ct, truth = liver_ct_phantom((60, 96, 96), seed=4, z_extent_mm=180.0, min_radius_mm=1.0)
    lab = truth.labels.array
    organs = {"liver": truth.mask("liver"), "spleen": lab == LABELS["spleen"],
              "aorta": lab == LABELS["aorta"], "portal_vein": lab == LABELS["portal"]}
    table = liver_features(ct, organs, lab == LABELS["portal"], lab == LABELS["hepatic"],
                           truth.portal, truth.hepatic, truth.noise_sd_hu)
    v = truth.values
    assert np.isclose(table.value("VX.A.T.LIVER_VOL"), v["liver_volume_mm3"] / 1e3, rtol=0.05)
    assert np.isclose(table.value("VX.A.T.SPLEEN_VOL"), v["spleen_volume_mm3"] / 1e3, rtol=0.05)
    assert np.isclose(table.value("VX.A.V.TREE_LEN", "vessel:portal_venous_tree"),
                      v["portal_length_mm"], rtol=0.05)
    assert np.isclose(table.value("VX.X.T.PORTAL_HEPATIC_VOL_RATIO"),
                      v["portal_volume_mm3"] / v["hepatic_volume_mm3"], rtol=0.05)
    assert np.isclose(table.value("VX.C.T.PV_AORTA_RATIO"),
                      truth.hu["portal"] / truth.hu["aorta"], rtol=0.05)
    assert np.isclose(table.value("VX.A.V.NAMED_DIAMETER", "vessel:main_portal_vein"), 14.0,
                      rtol=0.05)
    # intrahepatic subtrees follow Murray's law (r_p³ = Σ r_d³) by construction
    assert abs(murray_deviation(truth.hepatic)) < 0.05
