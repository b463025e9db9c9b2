"""Saved model bundles, model card and the ``vasomics model`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from vasomics.cli import main
from vasomics.errors import InputError
from vasomics.model import persist
from vasomics.model.card import card_markdown
from vasomics.model.simulate import simulate_cohort
from vasomics.model.workflow import ModelParams, train


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory):
    fm = simulate_cohort((60, 60, 60), features_per_family=2, seed=5)
    frame = fm.X.assign(patient=[f"p{i}" for i in range(len(fm.X))], centre=fm.centre,
                        csph=fm.y)
    frame.loc[::7, "sim.biochemical.0"] = np.nan
    path = tmp_path_factory.mktemp("data") / "cohort.csv"
    frame.to_csv(path, index=False)
    return path, fm


@pytest.fixture(scope="module")
def bundle_dir(cohort_csv, tmp_path_factory):
    path, fm = cohort_csv
    p = ModelParams(target="csph", centre="centre", id_column="patient", harmonize=True,
                    covariates=["age", "sex"], families=fm.families, inner_folds=3,
                    n_boot=200, baselines=False)
    from vasomics.model.workflow import load_matrix

    bundle, _ = train(load_matrix(path, p), p, name="sim CSPH")
    out = tmp_path_factory.mktemp("model") / "bundle"
    persist.save_bundle(bundle, out)
    return out


def test_reload_in_fresh_process_predicts_identically(bundle_dir, cohort_csv):
    path, _ = cohort_csv
    bundle = persist.load_bundle(bundle_dir)
    here = bundle.predict(bundle.raw_features(pd.read_csv(path))).probability.to_numpy()
    code = ("import sys, pandas as pd; from vasomics.model.persist import load_bundle; "
            "b = load_bundle(sys.argv[1]); "
            "p = b.predict(b.raw_features(pd.read_csv(sys.argv[2]))).probability; "
            "sys.stdout.write(p.to_json(orient='values', double_precision=15))")
    res = subprocess.run([sys.executable, "-c", code, str(bundle_dir), str(path)],
                         capture_output=True, text=True, timeout=300, check=True)
    there = np.asarray(json.loads(res.stdout))
    np.testing.assert_array_equal(np.round(here, 15), np.round(there, 15))
    assert np.abs(here - there).max() < 1e-15


def test_bundle_metadata(bundle_dir):
    meta = persist.read_meta(bundle_dir)
    assert meta.feature_ids[:2] == ["sim.anatomical.0", "sim.anatomical.1"]
    assert meta.training["n"] == 180 and set(meta.training["centres"]) == {"C1", "C2", "C3"}
    loco = meta.validation["loco"]["results"]["moe"]
    assert set(loco["per_centre"]) == {"C1", "C2", "C3"} and "auc_ci95" in loco["pooled"]
    assert 0 < meta.cutoffs["rule_out"] <= meta.cutoffs["rule_in"] < 1
    assert meta.settings["harmonize"] is True and len(meta.model_sha256) == 64


def test_missing_features_and_tampering_are_errors(bundle_dir, cohort_csv, tmp_path):
    path, _ = cohort_csv
    bundle = persist.load_bundle(bundle_dir)
    frame = pd.read_csv(path).drop(columns=["sim.composite.1", "age"])
    with pytest.raises(InputError, match=r"lacks 2 feature\(s\) the model was trained "
                       r"on: sim.composite.1, age \(a feature not measured at all goes in "):
        bundle.predict(bundle.raw_features(frame))
    # as the message says: the same features as empty columns are imputed
    empty = frame.assign(**{"sim.composite.1": np.nan, "age": np.nan})
    prob = bundle.predict(bundle.raw_features(empty))["probability"].to_numpy()
    assert len(prob) == len(frame) and np.all((prob > 0) & (prob < 1))
    with pytest.raises(InputError, match="centre column 'centre'"):
        bundle.predict(bundle.raw_features(pd.read_csv(path).drop(columns="centre")))
    bad = pd.read_csv(path).head(1).astype({"sim.anatomical.0": object})
    bad.loc[0, "sim.anatomical.0"] = "n/a mm"
    with pytest.raises(InputError, match="'sim.anatomical.0' has non-numeric values"):
        bundle.raw_features(bad)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.json").write_text((bundle_dir / "model.json").read_text())
    (copy / "model.joblib").write_bytes((bundle_dir / "model.joblib").read_bytes()[:-10]
                                        + b"0123456789")
    with pytest.raises(InputError, match="checksum"):
        persist.load_bundle(copy)


def test_catalogue_version_mismatch_warns(bundle_dir, tmp_path):
    meta = json.loads((bundle_dir / "model.json").read_text())
    meta["catalogue_version"] = "0.0.1"
    other = tmp_path / "old"
    other.mkdir()
    (other / "model.json").write_text(json.dumps(meta))
    (other / "model.joblib").write_bytes((bundle_dir / "model.joblib").read_bytes())
    with pytest.warns(persist.CatalogueVersionWarning, match="0.0.1"):
        persist.load_bundle(other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        persist.load_bundle(bundle_dir)  # not catalogue features: no version, no warning


def test_model_card_follows_tripod_ai(bundle_dir):
    md = card_markdown(persist.read_meta(bundle_dir))
    for item in ("[5, 6]", "[8]", "[9]", "[10]", "[11]", "[12]", "[16, 23]", "[25–27]"):
        assert item in md
    assert "| C1 |" in md and "To be completed by the authors" in md
    assert "Rule-out" in md and "Grey zone" in md


def test_cli_train_predict_explain_card_validate(cohort_csv, tmp_path, capsys):
    path, fm = cohort_csv
    fam = tmp_path / "families.yaml"
    fam.write_text("\n".join(f"'{k}': {v}" for k, v in fm.families.items()))
    params = tmp_path / "params.yaml"
    params.write_text("model:\n  inner_folds: 3\n  n_boot: 200\n  selection: fdr\n"
                      "  baselines: false\n")
    out = tmp_path / "m"
    args = ["model", "train", str(path), "--params", str(params), "--target", "csph",
            "--centre", "centre", "--id-column", "patient", "--families", str(fam), "-o",
            str(out)]
    assert main(args) == 0
    for name in ("model.joblib", "model.json", "model_card.md", "model_card.html",
                 "loco_calibration.png", "loco_decision_curve.png", "params.yaml"):
        assert (out / name).is_file(), name
    assert persist.read_meta(out).selection["method"] == "fdr"
    assert main(["model", "predict", str(out), str(path), "--id-column", "patient", "-o",
                 str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert list(pred.columns) == ["patient", "probability", "zone"] and len(pred) == 180
    assert main(["model", "explain", str(out), str(path), "--rows", "8", "--background", "10",
                 "--permutations", "2", "--top", "2", "-o", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "shap_values.csv").is_file()
    assert (tmp_path / "x" / "expert_weights.csv").is_file()
    assert main(["model", "card", str(out), "-o", str(tmp_path / "c")]) == 0
    assert "<table>" in (tmp_path / "c" / "model_card.html").read_text()
    assert main(["model", "validate", str(path), "--model", str(out), "-o",
                 str(tmp_path / "v")]) == 0
    ext = json.loads((tmp_path / "v" / "validation.json").read_text())["external"]
    assert ext["pooled"]["n"] == 180
    capsys.readouterr()
    one = pd.read_csv(path).assign(csph=1)
    one.to_csv(tmp_path / "one.csv", index=False)
    assert main(["model", "train", str(tmp_path / "one.csv"), "--target", "csph", "-o",
                 str(tmp_path / "bad")]) == 2
    assert "one class only" in capsys.readouterr().err
