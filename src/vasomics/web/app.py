"""``vasomics serve --db cohort.duckdb``: a local, read-only web viewer of a cohort.

Routes (all ``GET``; every request needs the access token, else 401):

* ``/``: search and filter scans; ``/api/scans``: the filtered list as JSON
  (``q`` substring of scan/subject id, ``centre``, ``modality``, ``status``, a scan-level
  feature range ``feature``/``min``/``max``, ``limit`` <= 1000, ``offset``);
* ``/scans/{scan_id}``: the scan report (from the scan's output folder when there is one,
  else from the database); ``/api/scans/{scan_id}``: its features as JSON;
* ``/compare?a=&b=``: two scans side by side with a table of feature differences;
* ``/catalogue`` and ``/api/catalogue``: the feature catalogue;
* ``/cohort``: the cohort report;
* ``/files/{scan_id}/{path}``: a file of the scan's output folder ``OUTPUTS/<scan_id>/``.

Safety: bound to 127.0.0.1 by default; a random token is printed at start; the database
is opened with read-only DuckDB connections (one per request) and queried only with
fixed, parameterized SQL; file paths from requests are confined to the output folders
(:func:`~vasomics.web.security.resolve_inside`); other HTTP methods get 405.
"""

from __future__ import annotations

import html
import logging
import math
import mimetypes
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from vasomics.cohort.store import StoreBusyError
from vasomics.errors import InputError
from vasomics.report.cohort import cohort_report_html, connect_read_only, scan_from_db
from vasomics.report.scan import load_output_folder, scan_report_html, static_text
from vasomics.web.security import (
    TOKEN_COOKIE,
    is_safe_id,
    new_token,
    resolve_inside,
    token_from_request,
    token_matches,
)

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
SCAN_COLUMNS = ("scan_id", "subject_id", "centre", "modality", "pipeline", "acquisition_date",
                "status")


class Viewer:
    """The database and output folders behind the app. Every request opens its own
    read-only connection and closes it at once, so the viewer never holds the database
    file between requests (a cohort run can write to it meanwhile)."""

    def __init__(self, db: Path, outputs: Sequence[Path]):
        self.db = Path(db)
        connect_read_only(self.db).close()  # fail at start on a missing or bad database
        self.outputs = [Path(o) for o in outputs]

    def cursor(self):
        """A new read-only DuckDB connection (close it after use)."""
        return connect_read_only(self.db)

    def scan_exists(self, scan_id: str) -> bool:
        cur = self.cursor()
        try:
            return cur.execute("SELECT 1 FROM scans WHERE scan_id = ?",
                               [scan_id]).fetchone() is not None
        finally:
            cur.close()

    def output_folder(self, scan_id: str) -> Path | None:
        """``OUTPUTS/<scan_id>`` of the first output root that has it (inside the root
        after resolving symlinks), or ``None``."""
        if not is_safe_id(scan_id):
            return None
        for root in self.outputs:
            try:
                base = root.resolve(strict=True)
                folder = (base / scan_id).resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if folder.is_dir() and folder.is_relative_to(base) and folder != base:
                return folder
        return None

    def scans(self, *, q=None, centre=None, modality=None, status=None, feature=None,
              vmin=None, vmax=None, limit=100, offset=0) -> dict:
        """The filtered scan list: ``{"total": n, "scans": [...]}`` (fixed SQL,
        parameters bound)."""
        where, params = [], []
        if q:
            where.append("(contains(s.scan_id, ?) OR contains(s.subject_id, ?))")
            params += [q, q]
        for col, value in (("centre", centre), ("modality", modality), ("status", status)):
            if value:
                where.append(f"s.{col} = ?")
                params.append(value)
        if feature:
            cond = ["f.scan_id = s.scan_id", "f.scope = 'tree'", "f.feature_id = ?"]
            params.append(feature)
            if vmin is not None:
                cond.append("f.value >= ?")
                params.append(vmin)
            if vmax is not None:
                cond.append("f.value <= ?")
                params.append(vmax)
            where.append(f"EXISTS (SELECT 1 FROM features f WHERE {' AND '.join(cond)})")
        sql = (f"SELECT {', '.join('s.' + c for c in SCAN_COLUMNS)}, count(*) OVER () AS total "
               f"FROM scans s {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY s.scan_id LIMIT ? OFFSET ?")
        cur = self.cursor()
        try:
            rows = cur.execute(sql, params + [limit, offset]).fetchall()
        finally:
            cur.close()
        total = rows[0][-1] if rows else 0
        return {"total": total, "scans": [
            {c: (None if v is None else str(v) if c == "acquisition_date" else v)
             for c, v in zip(SCAN_COLUMNS, r[:-1], strict=True)} for r in rows]}

    def scan_data(self, scan_id: str):
        cur = self.cursor()
        try:
            data = scan_from_db(cur, scan_id)
        finally:
            cur.close()
        folder = self.output_folder(scan_id)
        if folder is not None:
            from_files = load_output_folder(folder, scan_id=scan_id)
            from_files.info = data.info
            if from_files.features is None:
                from_files.features = data.features
            if from_files.qc is None:
                from_files.qc = data.qc
            if not from_files.graphs:
                from_files.graphs, from_files.notes = data.graphs, data.notes + from_files.notes
            data = from_files
        return data


def _page(title: str, body: str) -> str:
    style = static_text("report.css") + (
        "form input,form select{margin-right:.5em}.cmp{display:flex;gap:8px}"
        ".cmp iframe{flex:1;height:80vh;border:1px solid #ccc}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<link rel='icon' href='data:,'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><p>"
            f"<a href='/'>scans</a> · <a href='/catalogue'>feature catalogue</a> · "
            f"<a href='/cohort'>cohort report</a></p>{body}</body></html>")


_INDEX_JS = """
const form = document.getElementById('filter'), out = document.getElementById('results');
function esc(s) { return String(s ?? '').replace(/[&<>'"]/g, c => '&#' + c.charCodeAt(0) + ';'); }
async function load() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== '') params.append(k, v);
  const r = await fetch('/api/scans?' + params, {credentials: 'same-origin'});
  const d = await r.json();
  if (!r.ok) { out.textContent = JSON.stringify(d.detail); return; }
  out.innerHTML = '<p>' + d.total + ' scans</p><table><tr><th>compare</th><th>scan</th>' +
    '<th>subject</th><th>centre</th><th>modality</th><th>status</th></tr>' +
    d.scans.map(s => '<tr><td><input type=checkbox value="' + esc(s.scan_id) + '"></td>' +
      '<td><a href="/scans/' + encodeURIComponent(s.scan_id) + '">' + esc(s.scan_id) +
      '</a></td><td>' + esc(s.subject_id) + '</td><td>' + esc(s.centre) + '</td><td>' +
      esc(s.modality) + '</td><td>' + esc(s.status) + '</td></tr>').join('') + '</table>';
}
form.addEventListener('submit', e => { e.preventDefault(); load(); });
document.getElementById('compare').addEventListener('click', () => {
  const c = [...out.querySelectorAll('input:checked')].map(i => i.value);
  if (c.length === 2) location.href = '/compare?a=' + encodeURIComponent(c[0]) +
    '&b=' + encodeURIComponent(c[1]);
  else alert('Tick exactly two scans.');
});
load();
"""


def create_app(db: str | Path, outputs: Sequence[str | Path] = (), *, token: str | None = None):
    """The FastAPI app serving the cohort database ``db`` read-only, with the scans'
    output folders under the ``outputs`` roots. ``token``: the access token (random if
    omitted; in ``app.state.token``)."""
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    viewer = Viewer(Path(db), [Path(o) for o in outputs])
    token = token or new_token()
    app = FastAPI(title="vasomics viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.token, app.state.viewer = token, viewer

    @app.middleware("http")
    async def guard(request: Request, call_next):
        given, from_query = token_from_request(request.headers, request.cookies,
                                               request.query_params)
        if not token_matches(given, token):
            return JSONResponse({"detail": "missing or wrong access token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"detail": "read-only viewer"}, status_code=405,
                                headers={"Allow": "GET, HEAD"})
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'self'")
        if from_query:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    def known_scan(scan_id: str) -> str:
        if not is_safe_id(scan_id) or not viewer.scan_exists(scan_id):
            raise HTTPException(404, "no such scan")
        return scan_id

    @app.get("/", response_class=HTMLResponse)
    def index():
        cur = viewer.cursor()
        try:
            options = {c: [r[0] for r in cur.execute(
                f"SELECT DISTINCT {c} FROM scans ORDER BY 1").fetchall()]
                for c in ("centre", "modality", "status")}
            feats = [r[0] for r in cur.execute(
                "SELECT DISTINCT feature_id FROM features WHERE scope = 'tree' ORDER BY 1"
            ).fetchall()]
        finally:
            cur.close()

        def select(name, values):
            opts = "".join(f"<option>{html.escape(str(v))}</option>" for v in values)
            return f"<select name='{name}'><option value=''>any {name}</option>{opts}</select>"

        body = (f"<h1>Cohort {html.escape(viewer.db.name)}</h1><form id='filter'>"
                f"<input name='q' placeholder='scan or subject id'>"
                + "".join(select(k, v) for k, v in options.items())
                + select("feature", feats)
                + "<input name='min' type='number' step='any' placeholder='min'>"
                  "<input name='max' type='number' step='any' placeholder='max'>"
                  "<button>search</button> <button type='button' id='compare'>compare 2"
                  f"</button></form><div id='results'></div><script>{_INDEX_JS}</script>")
        return _page("vasomics viewer", body)

    @app.get("/api/scans")
    def api_scans(q: str | None = Query(None, max_length=200),
                  centre: str | None = Query(None, max_length=200),
                  modality: str | None = Query(None, max_length=200),
                  status: str | None = Query(None, max_length=50),
                  feature: str | None = Query(None, max_length=100),
                  min: float | None = None, max: float | None = None,  # noqa: A002
                  limit: int = Query(100, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0)):
        return viewer.scans(q=q, centre=centre, modality=modality, status=status,
                            feature=feature, vmin=min, vmax=max, limit=limit, offset=offset)

    @app.get("/api/scans/{scan_id}")
    def api_scan(scan_id: str):
        data = viewer.scan_data(known_scan(scan_id))
        features = [] if data.features is None else [
            {**r, "value": r["value"] if math.isfinite(r["value"]) else None}
            for r in data.features.frame.to_dict("records")]  # NaN is not JSON
        return {"info": data.info, "qc": data.qc, "features": features}

    @app.get("/scans/{scan_id}", response_class=HTMLResponse)
    def scan_page(scan_id: str):
        return scan_report_html(viewer.scan_data(known_scan(scan_id)), cohort_db=viewer.db)

    @app.get("/compare", response_class=HTMLResponse)
    def compare(a: str, b: str):
        da, db_ = (viewer.scan_data(known_scan(s)) for s in (a, b))
        rows = []
        if da.features is not None and db_.features is not None:
            fa, fb = (d.features.frame.query("scope == 'tree'").set_index("feature_id")
                      for d in (da, db_))
            for fid in sorted(set(fa.index) | set(fb.index)):
                va = fa.value.get(fid, float("nan"))
                vb = fb.value.get(fid, float("nan"))
                unit = fa.unit.get(fid, fb.unit.get(fid, ""))
                rows.append(f"<tr data-feature-id='{html.escape(fid)}'><td><code>"
                            f"{html.escape(fid)}</code></td><td class='num'>{va:.4g}</td>"
                            f"<td class='num'>{vb:.4g}</td><td class='num'>{vb - va:.4g}</td>"
                            f"<td>{html.escape(str(unit))}</td></tr>")
        ea, eb = (html.escape(s, quote=True) for s in (a, b))
        table = ("<table id='diff'><tr><th>feature</th><th>" + ea + "</th><th>" + eb
                 + "</th><th>difference</th><th>unit</th></tr>" + "".join(rows) + "</table>")
        body = (f"<h1>{ea} vs {eb}</h1>{table}<div class='cmp'><iframe src='/scans/{ea}' "
                f"title='{ea}'></iframe><iframe src='/scans/{eb}' title='{eb}'></iframe></div>")
        return _page(f"compare {a} {b}", body)

    @app.get("/api/catalogue")
    def api_catalogue():
        from vasomics.features.catalogue import load_catalogue

        return load_catalogue().model_dump()

    @app.get("/catalogue", response_class=HTMLResponse)
    def catalogue_page():
        from vasomics.features.catalogue import load_catalogue

        cat = load_catalogue()
        e = html.escape
        rows = "".join(
            f"<tr id='{e(f.id)}'><td><code>{e(f.id)}</code></td><td>{e(f.name)}</td>"
            f"<td>{e(f.category)}</td><td>{e(f.scope)}</td><td>{e(str(f.unit))}</td>"
            f"<td>{e(f.definition)}</td><td>{e(f.reference or '')}</td></tr>"
            for f in cat.features)
        return _page("feature catalogue", f"<h1>Feature catalogue {e(cat.catalogue_version)}"
                     f"</h1><table id='catalogue'><tr><th>id</th><th>name</th><th>category</th>"
                     f"<th>scope</th><th>unit</th><th>definition</th><th>reference</th></tr>"
                     f"{rows}</table>")

    @app.get("/cohort", response_class=HTMLResponse)
    def cohort_page():
        return cohort_report_html(viewer.db)

    @app.get("/files/{scan_id}/{path:path}")
    def files(scan_id: str, path: str):
        folder = viewer.output_folder(known_scan(scan_id))
        target = None if folder is None else resolve_inside(folder, path)
        if target is None:
            raise HTTPException(404, "no such file")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media)

    @app.exception_handler(InputError)
    async def input_error(request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StoreBusyError)
    async def busy(request, exc: StoreBusyError):
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"Retry-After": "5"})

    return app


@click.command("serve")
@click.option("--db", type=click.Path(path_type=Path), required=True,
              help="Cohort database (opened read-only).")
@click.option("--outputs", type=click.Path(path_type=Path), multiple=True,
              help="Folder holding one output folder per scan (OUTPUTS/<scan_id>/); "
                   "repeatable. Files outside these folders are never served.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (keep the loopback default unless you need otherwise).")
@click.option("--port", default=8765, show_default=True, type=int)
def serve_command(db: Path, outputs: tuple[Path, ...], host: str, port: int) -> None:
    """Browse a cohort in a local web viewer (read-only; an access token is required)."""
    import uvicorn

    app = create_app(db, outputs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach it and has the "
                   f"token can read the cohort", err=True)
    click.echo(f"vasomics viewer: http://{host}:{port}/?token={app.state.token}")
    click.echo(f"access token: {app.state.token}")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning")
