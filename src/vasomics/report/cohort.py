"""The cohort report, and scan data read back from a cohort database.

:func:`cohort_report_html`: one self-contained HTML page for a cohort database (read-only
connection): scans per centre and modality and their status, the distribution of every
scan-level (``tree`` scope) feature per centre/modality group (box plots), missingness per
feature and group, QC failure reasons and failed runs, and the model card when a model
folder is given.

:func:`scan_from_db`: a :class:`~vasomics.report.scan.ScanData` from the database alone
(QC checks, features, and the segments as straight lines between their end points; the
full centerlines live in the scan's output folder when there is one).
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from vasomics.errors import InputError
from vasomics.features.catalogue import load_catalogue
from vasomics.features.table import FeatureTable
from vasomics.io.atomic import atomic_file
from vasomics.report.figures import boxplot_svg
from vasomics.report.scan import ScanData, static_text
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)


def connect_read_only(db: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to an existing cohort database;
    :class:`~vasomics.cohort.store.StoreBusyError` while another process writes it (DuckDB
    locks the file for its writer)."""
    db = Path(db)
    if not db.is_file():
        raise InputError("cohort database not found", db)
    from vasomics.cohort.store import StoreBusyError

    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreBusyError("another process is writing the cohort database; try again "
                                 "when it has finished", db) from None
        raise InputError(f"not a readable cohort database ({str(exc).splitlines()[0]})",
                         db) from None
    except duckdb.Error as exc:
        raise InputError(f"not a readable cohort database ({str(exc).splitlines()[0]})",
                         db) from None


def scan_from_db(con: duckdb.DuckDBPyConnection, scan_id: str) -> ScanData:
    """The results of ``scan_id`` stored in the database (``InputError`` if unknown)."""
    meta = con.execute("SELECT scan_id, subject_id, centre, modality, pipeline, "
                       "acquisition_date, status FROM scans WHERE scan_id = ?",
                       [scan_id]).fetchone()
    if meta is None:
        raise InputError(f"scan {scan_id!r} is not in the cohort database")
    keys = ("scan", "subject", "centre", "modality", "pipeline", "acquired", "status")
    data = ScanData(scan_id, info={k: "" if v is None else str(v)
                                   for k, v in zip(keys, meta, strict=True)})
    qc = con.execute('SELECT "check", status, value, unit, reason FROM qc WHERE scan_id = ? '
                     'ORDER BY "check"', [scan_id]).fetchall()
    if qc:
        checks = [{"name": c, "status": s, "value": v if u in (None, "") else f"{v} {u}",
                   "reason": r} for c, s, v, u, r in qc]
        statuses = {c["status"] for c in checks}
        verdict = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
        data.qc = {"verdict": verdict, "checks": checks}
    frame = con.execute("SELECT scope, feature_id, value, unit FROM features WHERE scan_id = ?",
                        [scan_id]).df()
    if len(frame):
        data.features = FeatureTable(frame)
    seg = con.execute("SELECT segment_id, start_x_mm, start_y_mm, start_z_mm, end_x_mm, "
                      "end_y_mm, end_z_mm, mean_radius_mm, label FROM segments "
                      "WHERE scan_id = ? ORDER BY segment_id", [scan_id]).df()
    if len(seg):
        data.graphs["segments"] = _straight_graph(seg)
        data.notes.append("3D view: segments drawn as straight lines between their ends "
                          "(centerline polylines are not stored in the database)")
    if meta[6] != "done":
        error = con.execute("SELECT error_message FROM runs WHERE scan_id = ? ORDER BY "
                            "started_utc DESC LIMIT 1", [scan_id]).fetchone()
        data.notes.append(f"scan status {meta[6]}"
                          + (f": {error[0]}" if error and error[0] else ""))
    return data


def _straight_graph(seg: pd.DataFrame) -> VesselGraph:
    start = seg[["start_x_mm", "start_y_mm", "start_z_mm"]].to_numpy(float)
    end = seg[["end_x_mm", "end_y_mm", "end_z_mm"]].to_numpy(float)
    ok = np.isfinite(start).all(1) & np.isfinite(end).all(1)
    radius = seg.mean_radius_mm.to_numpy(float)[ok]
    radius = np.where(np.isfinite(radius), radius, 0.0)
    polylines = [np.stack([a, b]) for a, b in zip(start[ok], end[ok], strict=True)]
    graph = VesselGraph.from_polylines(polylines, [np.full(2, r) for r in radius])
    labels = seg.label.to_numpy(object)[ok]
    return graph.replace(segment_label=np.array([x if isinstance(x, str) else ""
                                                 for x in labels], dtype=object))


# ---------------------------------------------------------------------------- cohort report
def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _table(frame: pd.DataFrame, cls: str = "") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"


def cohort_sections(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The report's sections as HTML fragments: ``overview``, ``distributions``,
    ``missingness``, ``qc``."""
    scans = con.execute("SELECT scan_id, centre, modality, status FROM scans").df()
    out = {}
    if not len(scans):
        return {"overview": "<p class='missing'>The cohort database has no scans.</p>"}
    counts = scans.pivot_table(index=["centre", "modality"], columns="status",
                               values="scan_id", aggfunc="count", fill_value=0).reset_index()
    out["overview"] = (f"<p>{len(scans)} scans, {scans.centre.nunique()} centres, "
                       f"{scans.modality.nunique()} modalities.</p>" + _table(counts, "overview"))
    feats = con.execute(
        "SELECT f.scan_id, f.feature_id, f.value, f.unit, s.centre, s.modality FROM features f "
        "JOIN scans s USING (scan_id) WHERE f.scope = 'tree'").df()
    done = scans[scans.status == "done"]
    cat = load_catalogue().by_id()
    order = {f: i for i, f in enumerate(cat)}
    ids = sorted(feats.feature_id.unique(), key=lambda f: (order.get(f, 1e9), f))
    feats["group"] = feats.centre + " / " + feats.modality
    parts = []
    for fid in ids:
        sub = feats[feats.feature_id == fid]
        name = cat[fid].name if fid in cat else fid
        tip = cat[fid].definition if fid in cat else ""
        groups = {g: s.value.to_numpy(float) for g, s in sub.groupby("group")}
        parts.append(f"<div class='dist' data-feature-id='{_esc(fid)}'><h3><abbr "
                     f"title='{_esc(tip)}'>{_esc(name)}</abbr> <code>{_esc(fid)}</code></h3>"
                     f"{boxplot_svg(groups, str(sub.unit.iloc[0]))}</div>")
    out["distributions"] = "".join(parts) or "<p class='missing'>No scan-level features.</p>"
    if ids and len(done):
        grid = done.assign(group=done.centre + " / " + done.modality)
        present = feats[np.isfinite(feats.value)].groupby(["feature_id", "group"]).scan_id.nunique()
        n_group = grid.groupby("group").scan_id.count()
        rows = []
        for fid in ids:
            row = {"feature": fid}
            for g, n in n_group.items():
                row[g] = f"{100 * (1 - present.get((fid, g), 0) / n):.0f} %"
            rows.append(row)
        out["missingness"] = ("<p>Share of processed scans (status done) without a finite "
                              "value, per centre / modality.</p>"
                              + _table(pd.DataFrame(rows), "missingness"))
    qc = con.execute('SELECT "check", reason, count(*) AS scans FROM qc WHERE status = \'fail\' '
                     'GROUP BY "check", reason ORDER BY scans DESC, "check"').df()
    failed = con.execute(
        "SELECT r.error_message AS reason, count(*) AS scans FROM scans s JOIN runs r "
        "ON r.run_id = s.last_run_id WHERE s.status = 'failed' GROUP BY reason "
        "ORDER BY scans DESC").df()
    parts = [("<h3>Failed QC checks</h3>" + _table(qc, "qc-fail")) if len(qc) else
             "<p>No failed QC checks.</p>"]
    parts.append(("<h3>Failed runs</h3>" + _table(failed, "run-fail")) if len(failed) else
                 "<p>No failed runs.</p>")
    out["qc"] = "".join(parts)
    return out


def _model_card(model: str | Path | None) -> str:
    if model is None:
        return ""
    from vasomics.model.card import card_markdown, markdown_to_html
    from vasomics.model.persist import read_meta

    meta = read_meta(model)
    page = markdown_to_html(card_markdown(meta), f"Model card: {meta.name}")
    body = page.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    return f"<h2>Model card</h2><div id='model-card'>{body}</div>"


def cohort_report_html(db: str | Path, *, model: str | Path | None = None,
                       title: str | None = None) -> str:
    """The cohort report of the database ``db`` (and the model card of the model folder
    ``model``) as one HTML string."""
    con = connect_read_only(db)
    try:
        sec = cohort_sections(con)
    finally:
        con.close()
    names = {"overview": "Scans", "distributions": "Feature distributions per centre and "
             "modality", "missingness": "Missingness", "qc": "Quality control failures"}
    body = "".join(f"<h2 id='{k}'>{names[k]}</h2>{v}" for k, v in sec.items())
    title = title or f"vasomics cohort report: {Path(db).name}"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}"
            f"</title><style>{static_text('report.css')}</style></head><body><h1>"
            f"{_esc(title)}</h1>{body}{_model_card(model)}</body></html>")


def write_cohort_report(db: str | Path, path: str | Path, *,
                        model: str | Path | None = None) -> Path:
    """Write :func:`cohort_report_html` to ``path`` atomically."""
    text = cohort_report_html(db, model=model)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def synthetic_cohort_db(path: str | Path, n_scans: int, *, seed: int = 0,
                        n_segments: int = 4) -> Path:
    """A cohort database (the real schema, via :class:`~vasomics.cohort.store.CohortStore`)
    filled with ``n_scans`` synthetic scans over 3 centres and 2 modalities: for demos,
    tests and benchmarks of the viewer. About 5 % of scans failed QC (no features) and
    1 % failed to run. Values are random (seeded), not physiological."""
    from vasomics.cohort.store import CohortStore

    rng = np.random.default_rng(seed)
    ids = [f"scan{i:05d}" for i in range(n_scans)]
    centre = rng.choice(["paris", "leeds", "milan"], n_scans)
    modality = rng.choice(["CT", "MRA"], n_scans)
    status = np.where(rng.random(n_scans) < 0.01, "failed", "done")
    qc_fail = (rng.random(n_scans) < 0.05) & (status == "done")
    scans = pd.DataFrame({"scan_id": ids, "subject_id": [f"sub{i // 2:05d}" for i in
                                                         range(n_scans)],
                          "centre": centre, "modality": modality, "pipeline": "mask",
                          "path": [f"/data/{i}.nii.gz" for i in ids], "status": status,
                          "run": [f"run{i}" for i in ids]})
    tree_ids = ("VX.A.T.LEN", "VX.A.T.VOL", "VX.A.T.RMEAN", "VX.A.T.NSEG", "VX.A.T.FD",
                "VX.A.T.SOAM")
    units = {f.id: f.unit_for(3) for f in load_catalogue().features}
    ok = (status == "done") & ~qc_fail
    feats = pd.DataFrame([(s, "tree", fid, float(rng.lognormal(2, 0.5)), units[fid])
                          for s in np.array(ids)[ok] for fid in tree_ids],
                         columns=["scan_id", "scope", "feature_id", "value", "unit"])
    qc = pd.DataFrame({"scan_id": ids, "check": "slice_spacing",
                       "status": np.where(qc_fail, "fail", "pass"),
                       "value": np.where(qc_fail, 6.0, 1.0), "unit": "mm",
                       "reason": np.where(qc_fail, "slices too far apart", "ok")})
    seg_rows = []
    for s in np.array(ids)[ok][:50]:
        p = rng.normal(0, 20, (n_segments, 6))
        for k in range(n_segments):
            seg_rows.append((s, k, f"vessel{k % 3}", *p[k], float(rng.uniform(0.5, 3))))
    segs = pd.DataFrame(seg_rows, columns=["scan_id", "segment_id", "label", "start_x_mm",
                                           "start_y_mm", "start_z_mm", "end_x_mm", "end_y_mm",
                                           "end_z_mm", "mean_radius_mm"])
    with CohortStore.open(path) as store:
        def statements(con):
            con.register("t_scans", scans)
            con.execute("INSERT INTO subjects SELECT DISTINCT subject_id, now() FROM t_scans")
            con.execute("INSERT INTO scans (scan_id, subject_id, centre, modality, pipeline, "
                        "path, status, last_run_id) SELECT scan_id, subject_id, centre, "
                        "modality, pipeline, path, status, run FROM t_scans")
            con.execute("INSERT INTO runs (run_id, scan_id, pipeline, software_version, "
                        "params_hash, started_utc, ended_utc, seconds, status, error_message) "
                        "SELECT run, scan_id, pipeline, '0', 'h', now(), now(), 1.0, status, "
                        "CASE WHEN status = 'failed' THEN 'unreadable file' END FROM t_scans")
            for name, frame in (("features", feats), ("qc", qc), ("segments", segs)):
                con.register("t_frame", frame)
                cols = ", ".join(f'"{c}"' for c in frame.columns)
                con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM t_frame")
                con.unregister("t_frame")
            con.unregister("t_scans")

        store._write(statements)
    log.info("synthetic cohort %s: %d scans", path, n_scans)
    return Path(path)


