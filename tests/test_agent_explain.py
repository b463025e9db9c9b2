"""MCP explain_prediction and the cohort report's model card, on a small trained model."""

from __future__ import annotations

import json

import anyio
import numpy as np
import pytest

pytest.importorskip("mcp", reason="mcp not installed")
from mcp import Client  # noqa: E402

from vasomics.agent.server import build_server  # noqa: E402


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    from vasomics.model import persist
    from vasomics.model.simulate import simulate_cohort
    from vasomics.model.workflow import ModelParams, load_matrix, train

    root = tmp_path_factory.mktemp("explain")
    fm = simulate_cohort((40, 40, 40), features_per_family=2, seed=3)
    frame = fm.X.assign(patient=[f"p{i}" for i in range(len(fm.X))], centre=fm.centre,
                        csph=fm.y)
    frame.to_csv(root / "table.csv", index=False)
    p = ModelParams(target="csph", centre="centre", id_column="patient", harmonize=False,
                    covariates=["age", "sex"], families=fm.families, inner_folds=3,
                    n_boot=100, baselines=False)
    bundle, _ = train(load_matrix(root / "table.csv", p), p, name="sim CSPH")
    persist.save_bundle(bundle, root / "model")
    return root, bundle, frame


def test_explain_prediction_tool(model_root):
    root, bundle, frame = model_root
    server = build_server(root)

    async def go():
        async with Client(server) as client:
            return await client.call_tool("explain_prediction", {
                "model": "model", "table": "table.csv", "row": 5, "top": 4})

    result = anyio.run(go)
    assert not result.is_error, result.content
    out = json.loads(result.content[0].text)
    X = bundle.model_input(bundle.raw_features(frame))
    expected = bundle.predict(X.iloc[[5]]).iloc[0]["probability"]
    assert out["prediction"]["probability"] == pytest.approx(expected, rel=1e-9)
    assert len(out["contributions"]) == 4
    shap = np.array([c["shap"] for c in out["contributions"]])
    assert np.all(np.diff(np.abs(shap)) <= 1e-12)  # sorted by magnitude
    assert {c["feature"] for c in out["contributions"]} <= set(bundle.meta.feature_ids)


def test_cohort_report_with_model_card(model_root, tmp_path):
    from vasomics.report.cohort import cohort_report_html, synthetic_cohort_db

    root, bundle, _ = model_root
    db = synthetic_cohort_db(tmp_path / "c.duckdb", 50)
    text = cohort_report_html(db, model=root / "model")
    card = text.split("<div id='model-card'>")[1]
    assert bundle.meta.name in card and "<table>" in card
