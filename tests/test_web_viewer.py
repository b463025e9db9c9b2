"""Web viewer: token on every route, path confinement, read-only database, features."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from vasomics.report.cohort import synthetic_cohort_db
from vasomics.web.security import resolve_inside

pytest.importorskip("fastapi", reason="fastapi not installed")
from fastapi.testclient import TestClient  # noqa: E402

from vasomics.web.app import create_app  # noqa: E402

SECRET = "top secret outside the output folders"
TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from vasomics.api import run_features
    from vasomics.phantoms.trees import binary_tree

    base = tmp_path_factory.mktemp("web")
    db = synthetic_cohort_db(base / "cohort.duckdb", 200, seed=1)
    outputs = base / "outputs"
    mask, _ = binary_tree(3, spacing=(0.5, 0.5, 0.5))
    run_features(mask, outputs / "scan00001")
    (base / "secret.txt").write_text(SECRET)
    (outputs / "scan00001" / "link.txt").symlink_to(base / "secret.txt")
    (outputs / "scan00001" / "linkdir").symlink_to(base, target_is_directory=True)
    (outputs / "scan00002").symlink_to(base, target_is_directory=True)  # a folder escaping
    app = create_app(db, [outputs], token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, db, base


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _get(client, url, **kw):
    return client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, **kw)


ROUTES = ["/", "/api/scans", "/api/scans/scan00001", "/scans/scan00001",
          "/compare?a=scan00001&b=scan00003", "/catalogue", "/api/catalogue", "/cohort",
          "/files/scan00001/features.csv", "/nonexistent"]


def test_every_route_needs_the_token(cohort):
    client, _, _ = cohort
    templates = {r.path for r in client.app.routes}
    assert templates == {"/", "/api/scans", "/api/scans/{scan_id}", "/scans/{scan_id}",
                         "/compare", "/catalogue", "/api/catalogue", "/cohort",
                         "/files/{scan_id}/{path:path}"}  # a new route must join ROUTES
    for url in ROUTES:
        client.cookies.clear()
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        sep = "&" if "?" in url else "?"
        assert client.get(f"{url}{sep}token=wrong").status_code == 401
        for method in ("post", "put", "delete", "patch"):
            assert getattr(client, method)(url).status_code == 401
    for url in ROUTES[:-1]:
        assert _get(client, url).status_code == 200, url
    # the query token sets a cookie used afterwards
    client.cookies.clear()
    assert client.get(f"/?token={TOKEN}").status_code == 200
    assert client.get("/api/scans").status_code == 200
    client.cookies.clear()


TRAVERSALS = [
    "../../secret.txt", "..%2f..%2fsecret.txt", "%2e%2e/%2e%2e/secret.txt",
    "%252e%252e%252f%252e%252e%252fsecret.txt", "..%5c..%5csecret.txt",
    "%2fetc%2fpasswd", "/etc/passwd", "link.txt", "linkdir/secret.txt",
    "....//....//secret.txt", "features.csv%00.png", "linkdir%2fsecret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_refused(cohort, path):
    client, _, _ = cohort
    r = _get(client, f"/files/scan00001/{path}")
    assert r.status_code in (400, 404, 422)
    assert SECRET not in r.text and "root:" not in r.text


@pytest.mark.parametrize("scan", ["..%2f..", "%2e%2e", "%2fetc", "scan00001%2f..%2f.."])
def test_scan_id_traversal_refused(cohort, scan):
    client, _, _ = cohort
    for url in (f"/files/{scan}/secret.txt", f"/scans/{scan}", f"/api/scans/{scan}"):
        r = _get(client, url)
        assert r.status_code in (400, 404, 422), url
        assert SECRET not in r.text


def test_output_folder_symlinked_outside_is_ignored(cohort):
    client, _, _ = cohort
    assert client.app.state.viewer.output_folder("scan00002") is None
    assert _get(client, "/files/scan00002/secret.txt").status_code == 404
    page = _get(client, "/scans/scan00002").text  # report from the database only
    assert "straight lines" in page and SECRET not in page


def test_resolve_inside_raw(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.txt").write_text("x")
    (tmp_path / "out.txt").write_text(SECRET)
    (root / "ln").symlink_to(tmp_path / "out.txt")
    assert resolve_inside(root, "a/f.txt") == (root / "a" / "f.txt").resolve()
    for bad in ["../out.txt", "a/../../out.txt", str(tmp_path / "out.txt"), "ln", "a",
                "a//f.txt", "a\\f.txt", "%2e%2e/out.txt", "a/f.txt\x00", "C:/x", ""]:
        assert resolve_inside(root, bad) is None, bad


def test_file_inside_is_served(cohort):
    client, _, _ = cohort
    r = _get(client, "/files/scan00001/features.csv")
    assert r.status_code == 200 and r.text.startswith("scope,feature_id,value,unit")


def test_database_cannot_be_written(cohort):
    client, db, _ = cohort
    before = _digest(db)
    con = client.app.state.viewer.cursor()
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("DELETE FROM scans")
    con.close()
    for url in ROUTES:
        for method in ("post", "put", "delete", "patch"):
            r = client.request(method.upper(), url, json={"sql": "DROP TABLE scans"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 405, (method, url)
    evil = "x'; DROP TABLE scans; --"
    for key in ("q", "centre", "modality", "status", "feature"):
        r = _get(client, "/api/scans", params={key: evil})
        assert r.status_code == 200 and r.json()["total"] == 0
    assert _get(client, "/api/scans").json()["total"] == 200
    assert _digest(db) == before


def test_scan_list_filters(cohort):
    client, db, _ = cohort
    con = duckdb.connect(str(db), read_only=True)
    n_paris_ct = con.execute("SELECT count(*) FROM scans WHERE centre = 'paris' AND "
                             "modality = 'CT'").fetchone()[0]
    lo, hi = con.execute("SELECT quantile_cont(value, 0.25), quantile_cont(value, 0.75) FROM "
                         "features WHERE feature_id = 'VX.A.T.LEN'").fetchone()
    n_range = con.execute("SELECT count(*) FROM features WHERE feature_id = 'VX.A.T.LEN' AND "
                          "value BETWEEN ? AND ?", [lo, hi]).fetchone()[0]
    con.close()
    r = _get(client, "/api/scans", params={"centre": "paris", "modality": "CT", "limit": 1000})
    d = r.json()
    assert d["total"] == n_paris_ct == len(d["scans"]) > 0
    assert all(s["centre"] == "paris" and s["modality"] == "CT" for s in d["scans"])
    d = _get(client, "/api/scans", params={"feature": "VX.A.T.LEN", "min": lo, "max": hi}).json()
    assert d["total"] == n_range
    assert _get(client, "/api/scans", params={"q": "scan0001"}).json()["total"] == 10
    assert _get(client, "/api/scans", params={"limit": 100000}).status_code == 422
    assert _get(client, "/api/scans", params={"q": "x" * 10_000}).status_code == 422
    assert _get(client, "/api/scans", params={"min": "abc"}).status_code == 422


def test_scan_report_compare_catalogue(cohort):
    client, _, _ = cohort
    page = _get(client, "/scans/scan00001").text  # from the output folder
    assert "<canvas id='tree3d'" in page and "VX.A.T.LEN" in page
    assert "centre" in page  # metadata from the database
    page = _get(client, "/scans/scan00003").text  # database only
    assert "straight lines" in page
    assert page.count("<svg class='hist'") == 6  # position of each feature in the cohort
    cmp = _get(client, "/compare?a=scan00001&b=scan00003").text
    assert "<table id='diff'>" in cmp and cmp.count("<iframe") == 2
    assert "data-feature-id='VX.A.T.LEN'" in cmp
    from vasomics.features.catalogue import load_catalogue

    n = len(load_catalogue().features)
    assert _get(client, "/catalogue").text.count("<tr id='VX.") == n
    assert len(_get(client, "/api/catalogue").json()["features"]) == n
    assert "Feature distributions" in _get(client, "/cohort").text


def test_serve_defaults_to_loopback():
    from vasomics.web.app import serve_command

    host = next(p for p in serve_command.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_serve_command_prints_token_and_binds_loopback(cohort, monkeypatch):
    import uvicorn

    from vasomics.cli import main

    _, db, base = cohort
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["serve", "--db", str(db), "--outputs", str(base / "outputs")]) == 0
    token = seen["app"].state.token
    assert seen["host"] == "127.0.0.1" and len(token) >= 32
    assert f"http://127.0.0.1:8765/?token={token}" in buf.getvalue()
    with TestClient(seen["app"], base_url="http://127.0.0.1") as client:
        assert client.get("/api/scans").status_code == 401
        assert client.get("/api/scans", headers={"X-Vasomics-Token": token}).status_code == 200


def test_busy_database_gives_503(cohort):
    """While another process writes the database (DuckDB's file lock), requests get 503
    with Retry-After, and work again afterwards."""
    import subprocess
    import sys

    client, db, _ = cohort
    writer = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(30)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        r = _get(client, "/api/scans")
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert "another process is writing" in r.json()["detail"]
    finally:
        writer.kill()
        writer.wait()
    assert _get(client, "/api/scans").status_code == 200
