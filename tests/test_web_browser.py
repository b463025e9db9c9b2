"""The viewer in headless Chromium: a real server on a loopback port, the token URL, the
scan list filled by the page's script, the compare page's two reports drawn, and no
console errors (a Content-Security-Policy violation would be one)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from _browser import artifact, launch
from vasomics.report.cohort import synthetic_cohort_db

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from vasomics.web.app import create_app

    db = synthetic_cohort_db(tmp_path_factory.mktemp("wb") / "c.duckdb", 60, seed=4)
    app = create_app(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app.state.token
    srv.should_exit = True
    thread.join(10)


def test_viewer_in_chromium(server):
    base, token = server
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            anonymous = browser.new_page()
            assert anonymous.goto(f"{base}/").status == 401
            assert "access token" in anonymous.content()
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/?token={token}")
            page.wait_for_selector("#results table")
            page.select_option("select[name=centre]", "paris")
            page.evaluate("document.getElementById('results').innerHTML = ''")
            page.click("#filter button")
            page.wait_for_selector("#results table")
            rows = page.eval_on_selector_all("#results tr td:nth-child(4)",
                                             "cs => cs.map(c => c.textContent)")
            assert rows and set(rows) == {"paris"}
            boxes = page.query_selector_all("#results input[type=checkbox]")
            boxes[0].check()
            boxes[1].check()
            page.click("#compare")
            page.wait_for_selector("#diff")
            for frame in page.frames[1:]:
                # a selector, not wait_for_function: its string predicate is polled through
                # eval, which the viewer's Content-Security-Policy (no 'unsafe-eval') refuses
                # whenever the tree is not drawn yet at the first check
                frame.wait_for_selector("#tree3d[data-drawn]")
                assert int(frame.get_attribute("#tree3d", "data-drawn")) > 0
            assert len(page.frames) == 3
            page.screenshot(path=str(artifact("viewer_compare.png")))
        finally:
            browser.close()
    assert errors == []
