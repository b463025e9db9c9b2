"""Cohort report, PDF export and the ``vasomics report`` CLI."""

from __future__ import annotations

import re

import pytest

from vasomics.cli import main
from vasomics.report.cohort import (
    cohort_report_html,
    connect_read_only,
    scan_from_db,
    synthetic_cohort_db,
)
from vasomics.report.scan import scan_report_html


@pytest.fixture(scope="module")
def cohort_db(tmp_path_factory):
    return synthetic_cohort_db(tmp_path_factory.mktemp("cohort") / "c.duckdb", 300, seed=3)


def test_cohort_report_sections(cohort_db):
    con = connect_read_only(cohort_db)
    groups = con.execute("SELECT DISTINCT centre || ' / ' || modality FROM scans").fetchall()
    n_qc_fail = con.execute("SELECT count(*) FROM qc WHERE status = 'fail'").fetchone()[0]
    n_failed = con.execute("SELECT count(*) FROM scans WHERE status = 'failed'").fetchone()[0]
    con.close()
    text = cohort_report_html(cohort_db)
    dist = re.findall(r"<div class='dist' data-feature-id='([^']+)'>", text)
    assert "VX.A.T.LEN" in dist and len(dist) == 6
    box = text.split("data-feature-id='VX.A.T.LEN'")[1].split("</div>")[0]
    assert box.count("<rect") == len(groups)  # one box per centre / modality
    assert f"<td>slice_spacing</td><td>slices too far apart</td><td>{n_qc_fail}</td>" in text
    assert f"<td>unreadable file</td><td>{n_failed}</td>" in text
    # QC-failed scans have no features: missingness is their share among processed scans
    assert re.search(r"<table class='missingness'>.*?<td>VX.A.T.LEN</td><td>\d+ %</td>", text)
    assert "Model card" not in text


def test_cohort_report_missing_model(cohort_db, tmp_path):
    with pytest.raises(Exception, match="model"):
        cohort_report_html(cohort_db, model=tmp_path / "no_model")


def test_scan_from_db_and_report(cohort_db):
    con = connect_read_only(cohort_db)
    done = con.execute("SELECT scan_id FROM scans s WHERE status = 'done' AND EXISTS (SELECT 1 "
                       "FROM segments g WHERE g.scan_id = s.scan_id) LIMIT 1").fetchone()[0]
    failed = con.execute("SELECT scan_id FROM scans WHERE status = 'failed' LIMIT 1").fetchone()[0]
    data = scan_from_db(con, done)
    bad = scan_from_db(con, failed)
    con.close()
    assert data.graphs["segments"].n_segments == 4 and len(data.features) == 6
    text = scan_report_html(data, cohort_db=cohort_db)
    assert text.count("<svg class='hist'") == 6
    bad_text = scan_report_html(bad)
    assert "scan status failed: unreadable file" in bad_text
    assert "No features were computed" in bad_text


def test_report_cli_and_pdf(tmp_path, capsys):
    from _browser import ensure_chromium
    from vasomics.api import run_features
    from vasomics.phantoms.trees import binary_tree

    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    ensure_chromium()
    mask, _ = binary_tree(3, spacing=(0.5, 0.5, 0.5))
    run_features(mask, tmp_path / "out")
    assert main(["report", "scan", str(tmp_path / "out"), "--pdf"]) == 0
    pdf = (tmp_path / "out" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert main(["report", "scan", str(tmp_path / "missing")]) == 2
    assert "scan output folder not found" in capsys.readouterr().err
