"""The scan report: one self-contained HTML file per scan (no network access needed).

Sections: maximum-intensity projections with the named centerlines overlaid (coloured by
vessel name), an interactive 3D view of the vessel tree (2D-canvas renderer in
``static/tree3d.js``; colour by name, radius or any per-segment feature), the QC verdicts,
the contrast phase with its probabilities, the feature table grouped by the catalogue's
five categories (units; definitions and formulas on hover) and, when a cohort database is
given, each feature's position in the cohort distribution. Whatever is missing (failed QC,
a stage that did not run, no image) is stated in the report instead of failing.

Inputs are gathered in a :class:`ScanData`, from an output folder of ``vasomics run`` or
``vasomics features`` (:func:`load_output_folder`) or from a cohort database
(:func:`vasomics.report.cohort.scan_from_db`). Centerline points are physical LPS mm.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from vasomics.errors import InputError, VasomicsError
from vasomics.features.catalogue import load_catalogue
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.io.atomic import atomic_file
from vasomics.report.figures import bar_svg, histogram_svg, label_colours, mip_pngs, segment_names
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)

CATEGORIES = ("anatomical", "biomechanical", "biochemical", "pathophysiological", "composite")
#: Graph files recognized in an output folder (``vasomics run``: portal/hepatic, and the
#: hepatic artery in arterial-phase scans; ``vasomics features``: graph).
GRAPH_FILES = ("portal.vtp", "hepatic.vtp", "artery.vtp", "graph.vtp")


@dataclass
class ScanData:
    """What a scan report shows. Any part may be missing (``None`` or empty); ``notes``
    say why (one line each)."""

    scan_id: str
    graphs: dict[str, VesselGraph] = field(default_factory=dict)
    image: Image | None = None
    qc: dict | None = None
    phase: dict | None = None
    features: FeatureTable | None = None
    info: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def static_text(name: str) -> str:
    """A bundled static file (``tree3d.js``, ``report.css``)."""
    return resources.files("vasomics.report").joinpath("static", name).read_text("utf-8")


# ---------------------------------------------------------------------------- loading
def load_output_folder(folder: str | Path, *, scan_id: str | None = None,
                       image: Image | str | Path | None = None) -> ScanData:
    """Gather a scan's results from an output folder of ``vasomics run`` (``qc.json``,
    ``phase.json``, ``portal.vtp``, ``hepatic.vtp``, ``features.csv``) or ``vasomics
    features`` (``graph.vtp``, ``features.parquet``/``.csv``). ``image``: the scan (an
    :class:`Image` or a path) for the projections. Unreadable or absent parts become
    notes, not errors; a folder that does not exist raises :class:`InputError`."""
    from vasomics.io.graphs import read_graph_vtp
    from vasomics.io.images import read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("scan output folder not found", folder)
    data = ScanData(scan_id or folder.name)
    for name in ("qc", "phase"):
        path = folder / f"{name}.json"
        if path.is_file():
            try:
                setattr(data, name, json.loads(path.read_text("utf-8")))
            except (OSError, ValueError) as exc:
                data.notes.append(f"{path.name} unreadable: {exc}")
    for fname in GRAPH_FILES:
        path = folder / fname
        if path.is_file():
            try:
                data.graphs[path.stem] = read_graph_vtp(path)
            except (VasomicsError, OSError, ValueError) as exc:
                data.notes.append(f"{fname} unreadable: {exc}")
    for fname in ("features.parquet", "features.csv"):
        path = folder / fname
        if path.is_file():
            try:
                frame = (pd.read_parquet(path) if path.suffix == ".parquet"
                         else pd.read_csv(path))
                data.features = FeatureTable(frame)
                break
            except (VasomicsError, OSError, ValueError) as exc:
                data.notes.append(f"{fname} unreadable: {exc}")
    if image is not None:
        try:
            data.image = image if isinstance(image, Image) else read_image(image)
        except VasomicsError as exc:
            data.notes.append(f"image unreadable: {exc}")
    return data


def _missing_notes(data: ScanData) -> list[str]:
    notes = list(data.notes)
    if data.qc is None:
        notes.append("quality control: no QC results")
    elif data.qc.get("verdict") == "fail":
        bad = [f"{c['name']}: {c['reason']}" for c in data.qc.get("checks", [])
               if c.get("status") == "fail"]
        notes.append("quality control failed (" + "; ".join(bad) + "); later stages may "
                     "not have run")
    if data.phase is None:
        notes.append("phase: not recognized (stage not run or not applicable)")
    if not data.graphs:
        notes.append("centerlines: no vessel graph")
    if data.features is None or not len(data.features):
        notes.append("features: none computed")
    if data.image is None:
        notes.append("projections: no image given")
    return notes


# ---------------------------------------------------------------------------- 3D data
def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def tree_payload(graphs: dict[str, VesselGraph], features: FeatureTable | None,
                 colours: dict[str, tuple], max_points_per_segment: int = 24) -> dict:
    """The JSON document read by ``tree3d.js``: decimated polylines (at most
    ``max_points_per_segment`` points per segment, ends kept) as base64 float32 LPS mm,
    per-point radii, the name index of every segment with the name colours, the generation
    and Strahler order of every segment, and the per-segment features (only for a single
    graph, whose ``segment:<i>`` scopes index it)."""
    pts, rad, offsets, name_idx = [], [], [0], []
    orders: dict[str, list] = {"generation": [], "Strahler order": []}
    names = sorted(colours)
    lookup = {n: i for i, n in enumerate(names)}
    for key, g in graphs.items():
        if g.n_segments == 0:
            continue
        # 2D graphs: (x, y) placed in the viewer's frontal plane as (-x, 0, -y), so the
        # default view shows them as the image does (x to the right, y down)
        points = g.points if g.points.shape[1] == 3 else np.column_stack(
            [-g.points[:, 0], np.zeros(len(g.points)), -g.points[:, 1]])
        seg_names = segment_names(g, f"{key}:")
        for label, column in (("generation", g.segment_generation),
                              ("Strahler order", g.segment_strahler)):
            orders[label].append(np.full(g.n_segments, np.nan) if column is None
                                 else np.asarray(column, float))
        for s in range(g.n_segments):
            lo, hi = int(g.point_offsets[s]), int(g.point_offsets[s + 1])
            n = hi - lo
            take = (np.arange(lo, hi) if n <= max_points_per_segment else
                    np.unique(np.linspace(lo, hi - 1, max_points_per_segment).round()
                              .astype(int)))
            pts.append(points[take])
            rad.append(g.radius[take])
            offsets.append(offsets[-1] + len(take))
            name_idx.append(lookup[seg_names[s]])
    n_seg = len(name_idx)
    seg_features = {}
    for label, parts in orders.items():
        values = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        if np.isfinite(values).any():
            seg_features[label] = {"values": _b64(values), "unit": ""}
    if features is not None and len(graphs) == 1 and n_seg:
        f = features.frame
        f = f[f.scope.str.startswith("segment:")]
        for fid, sub in f.groupby("feature_id"):
            values = np.full(n_seg, np.nan, np.float32)
            idx = sub.scope.str.slice(8).astype(int).to_numpy()
            ok = (idx >= 0) & (idx < n_seg)
            values[idx[ok]] = sub.value.to_numpy(float)[ok]
            seg_features[fid] = {"values": _b64(values), "unit": str(sub.unit.iloc[0])}
    return {
        "points": _b64(np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 3), np.float32)),
        "radius": _b64(np.concatenate(rad).astype(np.float32) if rad else np.zeros(0, np.float32)),
        "offsets": _b64(np.asarray(offsets, np.int32)),
        "seg_name": _b64(np.asarray(name_idx, np.int32)),
        "names": names, "colours": ["#{:02x}{:02x}{:02x}".format(*colours[n]) for n in names],
        "seg_features": seg_features,
    }


# ---------------------------------------------------------------------------- sections
def _esc(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _esc(v)
    return "undefined" if not np.isfinite(f) else f"{f:.4g}"


def _qc_section(qc: dict | None) -> str:
    if qc is None:
        return "<h2>Quality control</h2><p class='missing'>No QC results for this scan.</p>"
    rows = "".join(f"<tr class='{_esc(c.get('status'))}'><td>{_esc(c.get('name'))}</td>"
                   f"<td>{_esc(c.get('status'))}</td><td>{_esc(c.get('value'))}</td>"
                   f"<td>{_esc(c.get('reason'))}</td></tr>" for c in qc.get("checks", []))
    verdict = _esc(qc.get("verdict", "unknown"))
    return (f"<h2>Quality control: <span class='{verdict}' id='qc-verdict'>{verdict}</span></h2>"
            f"<table id='qc'><tr><th>check</th><th>status</th><th>value</th><th>reason</th>"
            f"</tr>{rows}</table>")


def _phase_section(phase: dict | None) -> str:
    if phase is None:
        return "<h2>Contrast phase</h2><p class='missing'>Phase not recognized.</p>"
    probs = {str(k): float(v) for k, v in (phase.get("probabilities") or {}).items()}
    evidence = "; ".join(str(e) for e in phase.get("evidence", []))
    return (f"<h2>Contrast phase: <span id='phase'>{_esc(phase.get('phase'))}</span></h2>"
            f"{bar_svg(probs)}<p>{_esc(evidence)}</p>")


def cohort_values(db: str | Path, feature_ids, scope: str = "tree") -> dict[str, np.ndarray]:
    """Values of ``feature_ids`` at ``scope`` over the scans of a cohort database (read-only
    connection)."""
    import duckdb

    ids = sorted(set(feature_ids))
    if not ids:
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        frame = con.execute("SELECT feature_id, value FROM features WHERE scope = ? AND "
                            "feature_id IN (SELECT unnest(?))", [scope, ids]).df()
    finally:
        con.close()
    return {fid: sub.value.to_numpy(float) for fid, sub in frame.groupby("feature_id")}


def _feature_rows(frame: pd.DataFrame, cohort: dict[str, np.ndarray] | None) -> str:
    cat = load_catalogue().by_id()
    groups: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    other = []
    for r in frame.itertuples(index=False):
        entry = cat.get(r.feature_id)
        name = entry.name if entry else r.feature_id
        tip = (f"{entry.definition} Formula: {entry.formula}" if entry else
               "not in the feature catalogue")
        extra = ""
        if cohort is not None:
            values = cohort.get(r.feature_id)
            if values is None or not np.isfinite(values).any():
                extra = "<td>no cohort values</td>"
            else:
                finite = values[np.isfinite(values)]
                pct = (100.0 * np.mean(finite <= r.value) if np.isfinite(r.value)
                       else float("nan"))
                extra = (f"<td>{histogram_svg(finite, r.value)} "
                         f"<span class='pct'>{_num(pct)} %ile</span></td>")
        row = (f"<tr data-feature-id='{_esc(r.feature_id)}' data-scope='{_esc(r.scope)}'>"
               f"<td><abbr title='{_esc(tip)}'>{_esc(name)}</abbr></td>"
               f"<td><code>{_esc(r.feature_id)}</code></td><td>{_esc(r.scope)}</td>"
               f"<td class='num'>{_num(r.value)}</td><td>{_esc(r.unit)}</td>{extra}</tr>")
        (groups[entry.category] if entry else other).append(row)
    head = ("<tr><th>feature</th><th>id</th><th>scope</th><th>value</th><th>unit</th>"
            + ("<th>position in cohort</th>" if cohort is not None else "") + "</tr>")
    out = []
    for name, rows in list(groups.items()) + [("not in the catalogue", other)]:
        if rows:
            out.append(f"<h3>{_esc(name)}</h3><table class='features' "
                       f"data-category='{_esc(name)}'>{head}{''.join(rows)}</table>")
    return "".join(out)


def _features_section(features: FeatureTable | None, cohort_db) -> str:
    if features is None or not len(features):
        return "<h2>Features</h2><p class='missing'>No features were computed.</p>"
    f = features.frame
    tree = f[f.scope == "tree"]
    vessel = f[f.scope.str.startswith("vessel:")]
    cohort = None
    if cohort_db is not None:
        try:
            cohort = cohort_values(cohort_db, tree.feature_id)
        except Exception as exc:  # a bad cohort database must not break the report
            log.warning("cohort database %s unreadable: %s", cohort_db, exc)
    parts = ["<h2>Features</h2><p>Scan-level values, grouped by category; hover a name "
             "for its definition.</p>"]
    parts.append(_feature_rows(tree, cohort) if len(tree) else
                 "<p class='missing'>No scan-level (tree) features.</p>")
    if len(vessel):
        parts.append(f"<details><summary>Per-vessel values ({len(vessel)})</summary>"
                     f"{_feature_rows(vessel, None)}</details>")
    n_local = int((~f.scope.isin(["tree"]) & ~f.scope.str.startswith("vessel:")).sum())
    if n_local:
        parts.append(f"<p>{n_local} per-segment and per-bifurcation values are in the "
                     f"features table of the output folder (and colour the 3D view).</p>")
    return "".join(parts)


def _tree_section(data: ScanData, colours, max_points_per_segment: int) -> str:
    if not data.graphs:
        return "<h2>3D vessel tree</h2><p class='missing'>No vessel graph for this scan.</p>"
    payload = tree_payload(data.graphs, data.features, colours, max_points_per_segment)
    options = ["<option value='name'>vessel name</option>",
               "<option value='radius'>mean radius</option>"]
    cat = load_catalogue().by_id()
    for fid in payload["seg_features"]:
        label = cat[fid].name if fid in cat else fid
        options.append(f"<option value='{_esc(fid)}'>{_esc(label)}</option>")
    n = sum(g.n_segments for g in data.graphs.values())
    blob = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    return (f"<h2>3D vessel tree ({n} segments)</h2><p class='noprint'>Drag to rotate, "
            f"wheel to zoom, double-click to reset. Colour by <select id='tree-colour'>"
            f"{''.join(options)}</select></p><canvas id='tree3d' width='900' height='600'>"
            f"</canvas><div id='tree-legend'></div>"
            f"<script type='application/json' id='tree-data'>{blob}</script>")


def _mip_section(data: ScanData, colours) -> str:
    if data.image is None:
        return ("<h2>Projections</h2><p class='missing'>No image given: projections not "
                "shown.</p>")
    try:
        views = mip_pngs(data.image, data.graphs, colours)
    except (ValueError, IndexError, MemoryError) as exc:
        return f"<h2>Projections</h2><p class='missing'>Projections failed: {_esc(exc)}</p>"
    figs = "".join(f"<figure><img alt='{t} maximum-intensity projection' "
                   f"src='data:image/png;base64,{png}'><figcaption>{t}</figcaption></figure>"
                   for t, png in views)
    return f"<h2>Maximum-intensity projections</h2><div class='mips'>{figs}</div>"


def scan_report_html(data: ScanData, *, cohort_db: str | Path | None = None,
                     max_points_per_segment: int = 24) -> str:
    """The whole report as one HTML string (styles, script and images inline)."""
    names = set()
    for key, g in data.graphs.items():
        names.update(segment_names(g, f"{key}:"))
    colours = label_colours(names)
    missing = _missing_notes(data)
    info = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in data.info.items())
    body = [f"<h1>vasomics scan report: {_esc(data.scan_id)}</h1>"]
    if info:
        body.append(f"<table id='info'>{info}</table>")
    if missing:
        body.append("<div class='missing' id='missing'><b>Missing or incomplete:</b><ul>"
                    + "".join(f"<li>{_esc(m)}</li>" for m in missing) + "</ul></div>")
    body += [_qc_section(data.qc), _phase_section(data.phase), _mip_section(data, colours),
             _tree_section(data, colours, max_points_per_segment),
             _features_section(data.features, cohort_db)]
    script = static_text("tree3d.js").replace("</", "<\\/") if data.graphs else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<link rel='icon' href='data:,'>"
            f"<title>vasomics report {_esc(data.scan_id)}</title>"
            f"<style>{static_text('report.css')}</style></head><body>{''.join(body)}"
            f"<script>{script}</script></body></html>")


def write_scan_report(data: ScanData, path: str | Path, *,
                      cohort_db: str | Path | None = None) -> Path:
    """Write :func:`scan_report_html` to ``path`` atomically."""
    path = Path(path)
    text = scan_report_html(data, cohort_db=cohort_db)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
