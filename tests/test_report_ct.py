"""Reports of real `vasomics run` output folders: a liver CT phantom through the whole
chain, and a real MR that fails CT quality control (the report says what is missing)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from _browser import artifact, launch
from vasomics.cli import main
from vasomics.io.graphs import read_graph_vtp
from vasomics.io.images import write_image
from vasomics.phantoms.liver_ct import liver_ct_phantom

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")


def _open(path, shot):
    errors = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.resolve().as_uri())
            page.wait_for_load_state("load")
            drawn = page.evaluate("document.getElementById('tree3d')?.dataset.drawn ?? null")
            legend = page.eval_on_selector_all("#tree-legend span",
                                               "s => s.map(x => x.textContent)")
            page.screenshot(path=str(artifact(shot)), full_page=True)
        finally:
            browser.close()
    return errors, drawn, legend


def test_report_of_ct_chain_output(tmp_path):
    ct, _ = liver_ct_phantom((72, 112, 112), seed=2, z_extent_mm=216.0)
    path = write_image(ct, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out)]) == 0
    assert main(["report", "scan", str(out), "--image", str(path)]) == 0
    report = out / "report.html"
    text = report.read_text()
    qc = json.loads((out / "qc.json").read_text())
    phase = json.loads((out / "phase.json").read_text())
    assert f"id='qc-verdict'>{qc['verdict']}<" in text
    assert f"id='phase'>{phase['phase']}<" in text
    assert text.count("<img alt=") == 3
    feats = pd.read_csv(out / "features.csv")
    tree_ids = set(feats.loc[feats.scope == "tree", "feature_id"])
    shown = set(re.findall(r"<tr data-feature-id='([^']+)' data-scope='tree'>", text))
    assert shown == tree_ids and tree_ids
    errors, drawn, legend = _open(report, "report_ct_chain.png")
    assert errors == []
    graphs = {p.stem: read_graph_vtp(p) for p in out.glob("*.vtp")}
    assert int(drawn) == sum(g.n_segments for g in graphs.values()) > 0
    names = {str(n) for g in graphs.values() for n in g.segment_label if n}
    assert names and names <= set(legend) | {f"{k}:unnamed" for k in graphs}
    assert "main_portal_vein" in legend


def test_report_of_failed_qc(tmp_path, shared_data):
    mr = shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz"
    out = tmp_path / "mr"
    assert main(["run", str(mr), "-o", str(out)]) != 0  # fails CT QC, writes qc.json
    assert main(["report", "scan", str(out), "--image", str(mr)]) == 0
    text = (out / "report.html").read_text()
    qc = json.loads((out / "qc.json").read_text())
    missing = re.search(r"<div class='missing' id='missing'>.*?</div>", text).group(0)
    for check in qc["checks"]:
        if check["status"] == "fail":
            assert check["name"] in missing
    for what in ("phase: not recognized", "centerlines: no vessel graph",
                 "features: none computed"):
        assert what in missing
    errors, drawn, _ = _open(out / "report.html", "report_failed_qc.png")
    assert errors == [] and drawn is None
