"""Scan report: content, missing stages, and rendering in headless Chromium."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from _browser import artifact, launch
from vasomics.chain.graph import mask_to_graph
from vasomics.features.extract import extract_features
from vasomics.io.graphs import read_vtp_centerlines
from vasomics.io.images import read_image
from vasomics.phantoms.trees import binary_tree
from vasomics.report.scan import ScanData, load_output_folder, scan_report_html, write_scan_report

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture(scope="module")
def phantom():
    mask, _ = binary_tree(4, spacing=(0.5, 0.5, 0.5))
    graph = mask_to_graph(mask)
    return ScanData("phantom", graphs={"graph": graph}, image=mask,
                    features=extract_features(graph, mask=mask),
                    qc={"verdict": "pass", "checks": [
                        {"name": "spacing", "status": "pass", "value": 0.5, "reason": "ok"}]},
                    phase={"phase": "arterial", "probabilities": {"arterial": 0.8,
                                                                  "portal_venous": 0.2}})


@pytest.fixture(scope="module")
def phantom2d():
    mask, _ = binary_tree(3, spacing=(0.2, 0.2))
    graph = mask_to_graph(mask)
    return ScanData("phantom2d", graphs={"graph": graph}, image=mask,
                    features=extract_features(graph, mask=mask))


@pytest.fixture(scope="module")
def aorta(shared_data):
    folder = shared_data / "vmtk_aorta_mra"
    image = read_image(folder / "aorta.mha")
    levelset = read_image(folder / "aorta-final-levelset.mha")
    mask = levelset.with_array((levelset.array < 0).astype(np.uint8))
    graph = mask_to_graph(mask)
    vmtk = read_vtp_centerlines(folder / "aorta-centerline.vtp", frame="RAS").to_graph()
    return ScanData("vmtk_aorta", graphs={"ours": graph, "vmtk": vmtk}, image=image,
                    features=extract_features(graph, mask=mask), info={"modality": "MRA"})


def _render(html_path, screenshot):
    """Open the report; return console errors, page errors, non-blank canvas pixel count
    and the feature ids listed in the scan-level tables."""
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html_path.as_uri())
            page.wait_for_function("document.getElementById('tree3d').dataset.drawn")
            lit = page.evaluate("""() => {
                const c = document.getElementById('tree3d');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4)
                    if (Math.abs(d[i] - 17) + Math.abs(d[i+1] - 17) + Math.abs(d[i+2] - 17) > 30) n++;
                return n;
            }""")
            ids = page.eval_on_selector_all(
                "table.features tr[data-scope='tree']", "rs => rs.map(r => r.dataset.featureId)")
            page.select_option("#tree-colour", "generation")
            page.select_option("#tree-colour", "radius")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return errors, lit, ids


@pytest.mark.parametrize("which", ["phantom", "phantom2d", "aorta"])
def test_report_renders_in_chromium(which, request, tmp_path):
    data = request.getfixturevalue(which)
    path = write_scan_report(data, tmp_path / "report.html")
    errors, lit, ids = _render(path, artifact(f"report_{which}.png"))
    assert errors == []
    n_points = sum(g.n_segments for g in data.graphs.values())
    assert lit > 50 * n_points ** 0.5  # the tree is drawn, not a blank canvas
    f = data.features.frame
    assert sorted(ids) == sorted(f.loc[f.scope == "tree", "feature_id"])
    assert len(ids) > 20


def test_report_content(phantom):
    text = scan_report_html(phantom)
    assert "http://" not in text and "https://" not in text  # offline: nothing fetched
    from vasomics.features.catalogue import load_catalogue

    cat = load_catalogue().by_id()
    f = phantom.features.frame
    expected = {cat[i].category for i in f.loc[f.scope == "tree", "feature_id"]}
    main = text.split("<details>")[0]  # the scan-level tables come before per-vessel ones
    assert set(re.findall(r"data-category='([a-z ]+)'", main)) == expected
    # units and definitions on hover
    assert re.search(r"<abbr title='Sum of the polyline lengths[^']*'>Total centerline length",
                     text)
    assert text.count("<img alt=") == 3  # axial, coronal, sagittal MIPs
    assert "id='phase'>arterial" in text
    assert "id='missing'" not in text  # every stage present


def test_report_cohort_position(phantom, tmp_path):
    import duckdb

    db = tmp_path / "c.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE features (scan_id VARCHAR, scope VARCHAR, feature_id VARCHAR, "
                "value DOUBLE, unit VARCHAR)")
    length = phantom.features.value("VX.A.T.LEN")
    rows = [(f"s{i}", "tree", "VX.A.T.LEN", length * (0.5 + i / 10), "mm") for i in range(10)]
    con.executemany("INSERT INTO features VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    text = scan_report_html(phantom, cohort_db=db)
    row = re.search(r"data-feature-id='VX.A.T.LEN'.*?</tr>", text).group(0)
    assert "<svg class='hist'" in row
    # 6 of the 10 cohort values (0.5..1.0 x length) are <= the scan's value
    assert re.search(r">60 %ile<", row)


def test_report_missing_stages(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    (folder / "qc.json").write_text(
        '{"verdict": "fail", "checks": [{"name": "slice_spacing", "status": "fail", '
        '"value": 7.5, "reason": "slices 7.5 mm apart (max 5)"}]}')
    (folder / "features.csv").write_text("not,a,feature,table\n")
    data = load_output_folder(folder)
    text = scan_report_html(data)
    missing = re.search(r"<div class='missing' id='missing'>.*?</div>", text).group(0)
    assert "quality control failed (slice_spacing: slices 7.5 mm apart (max 5))" in missing
    assert "features.csv unreadable" in missing
    assert "centerlines: no vessel graph" in missing
    assert "phase: not recognized" in missing
    assert "<canvas" not in text


def test_report_from_run_folder(phantom, tmp_path):
    from vasomics.api import run_features

    mask = phantom.image
    run_features(mask, tmp_path / "out")
    data = load_output_folder(tmp_path / "out", image=mask)
    assert set(data.graphs) == {"graph"} and len(data.features) == len(
        extract_features(data.graphs["graph"], mask=mask))
    text = scan_report_html(data)
    assert "<canvas id='tree3d'" in text and "VX.A.S.LEN" in text  # segment colouring
    assert "<option value='generation'>" in text and "<option value='Strahler order'>" in text


def test_report_of_named_trees_from_a_run_folder(phantom, tmp_path):
    """A `vasomics run`-style folder: portal/hepatic graphs with vessel names, qc and
    phase JSON; names reach the 3D view's legend and colour the projections."""
    import json

    from vasomics.io.graphs import write_graph_vtp
    from vasomics.report.scan import tree_payload

    g = phantom.graphs["graph"]
    names = np.array(["main_portal_vein"] + ["left_portal_vein"] * (g.n_segments - 1),
                     dtype=object)
    folder = tmp_path / "run"
    folder.mkdir()
    write_graph_vtp(g.replace(segment_label=names), folder / "portal.vtp")
    (folder / "qc.json").write_text(json.dumps(phantom.qc))
    (folder / "phase.json").write_text(json.dumps(phantom.phase))
    data = load_output_folder(folder, image=phantom.image)
    assert list(data.graphs) == ["portal"] and data.phase["phase"] == "arterial"
    colours = {"left_portal_vein": (255, 0, 0), "main_portal_vein": (0, 0, 255)}
    payload = tree_payload(data.graphs, None, colours)
    assert payload["names"] == ["left_portal_vein", "main_portal_vein"]
    idx = np.frombuffer(base64.b64decode(payload["seg_name"]), np.int32)
    assert (idx == 1).sum() == 1 and (idx == 0).sum() == g.n_segments - 1

    from PIL import Image as PILImage

    from vasomics.report.figures import mip_pngs

    views = mip_pngs(data.image, data.graphs, colours)
    rgb = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(views[1][1]))))
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)
    blue = (rgb[..., 0] == 0) & (rgb[..., 1] == 0) & (rgb[..., 2] == 255)
    assert red.sum() > blue.sum() > 0  # both vessels drawn in their colours


def test_large_tree_report_size_and_paint(tmp_path):
    """3,000 segments: report <= 10 MB and the whole tree drawn <= 3 s after navigation
    (the benchmark's tree; benchmarks/bench_report.py prints the figures)."""
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_report.py"
    spec = importlib.util.spec_from_file_location("bench_report", bench)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = module.random_tree(3000)
    path = write_scan_report(ScanData("big", graphs={"tree": graph},
                                      features=extract_features(graph)),
                             tmp_path / "big.html")
    assert path.stat().st_size <= 10e6
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_function("document.getElementById('tree3d').dataset.drawn")
            drawn_ms = page.evaluate("performance.getEntriesByName('tree-drawn')[0].startTime")
            n = int(page.evaluate("document.getElementById('tree3d').dataset.drawn"))
        finally:
            browser.close()
    assert n == 3000 and drawn_ms <= 3000
