"""The work behind the MCP tools, as plain functions (testable without a server).

Every file argument is resolved with :func:`allowed_path`: relative paths are taken from
the allowed root, and the resolved path (symlinks followed) must stay inside it. Cohort
queries are a fixed set of parameterized, read-only SQL statements (:data:`QUERIES`); no
caller-supplied SQL is ever run. Results are JSON-ready dicts; NaN becomes ``None``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vasomics.errors import InputError, VasomicsError


class AccessRefused(VasomicsError):
    """A path outside the allowed root, or a resource the server was not given."""


def allowed_path(root: Path, path: str, *, must_exist: bool = True) -> Path:
    """``path`` (absolute, or relative to ``root``) resolved inside ``root``."""
    if not path or "\x00" in path:
        raise AccessRefused("empty or invalid path")
    base = Path(root).resolve(strict=True)
    p = Path(path)
    target = (p if p.is_absolute() else base / p).resolve(strict=False)
    if not target.is_relative_to(base):
        raise AccessRefused(f"{path} is outside the allowed root {base}")
    if must_exist and not target.exists():
        raise InputError("file not found", path)
    return target


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def read_image_in(root: Path, path: str):
    from vasomics.io.images import read_image

    return read_image(allowed_path(root, path))


def qc_of(image) -> dict:
    """QC checks of a CT image (:func:`vasomics.chain.qc.check_image`)."""
    from vasomics.chain.qc import check_image

    return _clean(check_image(image).to_dict())


def phase_of(image) -> dict:
    """Contrast phase of an abdominal CT: localization then the chain's phase stage
    (:func:`vasomics.chain.run.localized_phase`: the regions the localization is not trusted
    for are left out, as ``vasomics run`` leaves them)."""
    from vasomics.chain.localize import localize
    from vasomics.chain.qc import estimate_noise_sd
    from vasomics.chain.run import RunParams, finite_ct, localized_phase

    p = RunParams()
    image = finite_ct(image)  # NaN voxels read as air, as the chain reads them
    loc = localize(image, p.localize, estimate_noise_sd(image.array))
    return _clean(localized_phase(image, loc, p)[0].to_dict())


def segment_to(root: Path, image, output: str, preset: str) -> dict:
    """Segment vessels and write the mask to ``output`` (inside the root, new file)."""
    from vasomics.chain.segment.api import presets, segment
    from vasomics.io.images import write_image

    if preset not in presets():
        raise InputError(f"unknown preset {preset!r}; one of {', '.join(presets())}")
    out = allowed_path(root, output, must_exist=False)
    if out.exists():
        raise AccessRefused(f"{output} exists; the tool does not overwrite files")
    seg = segment(image, preset)
    write_image(seg.mask, out)
    n = int(np.count_nonzero(seg.mask.array))
    return {"mask": str(out), "vessel_voxels": n,
            "vessel_volume_mm3": n * float(np.prod(seg.mask.spacing))}


def characterize_ct(root: Path, path: str, outdir: str, *, phase: str = "auto",
                    force: bool = False, progress=None) -> dict:
    """Run the whole CT chain (:func:`vasomics.chain.run.run_chain`) on ``path`` (a file or
    DICOM folder inside the root) into ``outdir``, a new or empty folder inside the root
    (the tool replaces no earlier output). ``progress`` is called with each stage's name.
    Returns where the outputs are, the QC verdict with every check that did not pass, the
    phase with its probabilities, each venous tree's status and the hepatic artery's
    (``not applicable`` outside the arterial phase), the summary's key features and the
    seconds per stage; every feature is in ``features.csv``."""
    from vasomics.chain.qc import QCFailed
    from vasomics.chain.run import KEY_FEATURES, run_chain

    ct = allowed_path(root, path)
    out = allowed_path(root, outdir, must_exist=False)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AccessRefused(f"{outdir} exists and is not an empty folder; the tool does not "
                            f"replace earlier outputs: choose a new folder")
    try:
        result, summary = run_chain(ct, out, phase=phase, force=force, progress=progress)
    except QCFailed as exc:
        raise QCFailed(str(exc).replace("--force", "force=true"), exc.path) from None
    table = result.features.frame if result.features is not None else None
    key = [] if table is None else table[table.feature_id.isin(KEY_FEATURES)].to_dict("records")
    trees = {name: ("traced" if graph is not None else "not traced")
             for name, graph in (("portal", result.portal), ("hepatic", result.hepatic))}
    if result.artery is not None:  # the hepatic artery: traced in arterial scans only
        trees["artery"] = ("not applicable" if not result.artery.applicable else
                           "traced" if result.artery_graph is not None else "not traced")
    return _clean({
        "outdir": str(out), "summary_html": str(summary),
        "features_csv": str(out / "features.csv"),
        "qc": {"verdict": result.qc.verdict,
               "checks_not_passed": [{"check": c.name, "status": c.status, "reason": c.reason}
                                     for c in result.qc.checks if c.status != "pass"]},
        "phase": None if result.phase is None else {
            "phase": result.phase.phase, "probabilities": result.phase.probabilities},
        "trees": trees,
        "vessel_status": None if result.vessels is None else result.vessels.status,
        "key_features": key,
        "stage_seconds": result.stage_seconds})


def graph_of(mask):
    from vasomics.chain.graph import mask_to_graph

    return mask_to_graph(mask)


def features_of(graph, mask, scopes: list[str]) -> list[dict]:
    """Feature rows (``scope, feature_id, value, unit``) whose scope is one of ``scopes``
    or starts with ``<scope>:`` (``tree``, ``vessel``, ``segment``, ``bifurcation``)."""
    from vasomics.features.extract import extract_features

    f = extract_features(graph, mask=mask).frame
    keep = f.scope.isin(scopes) | f.scope.str.split(":").str[0].isin(scopes)
    return _clean(f[keep].to_dict("records"))


#: Named read-only cohort queries: SQL and the parameters each takes (all bound).
QUERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "list_scans": (
        "SELECT scan_id, subject_id, centre, modality, status FROM scans WHERE "
        "(? IS NULL OR centre = ?) AND (? IS NULL OR modality = ?) AND "
        "(? IS NULL OR status = ?) ORDER BY scan_id LIMIT ?",
        ("centre", "centre", "modality", "modality", "status", "status", "limit")),
    "scan_features": (
        "SELECT scope, feature_id, value, unit FROM features WHERE scan_id = ? AND "
        "(? IS NULL OR feature_id = ?) ORDER BY scope, feature_id LIMIT ?",
        ("scan_id", "feature_id", "feature_id", "limit")),
    "feature_summary": (
        "SELECT s.centre, s.modality, count(f.value) AS n, avg(f.value) AS mean, "
        "stddev(f.value) AS sd, quantile_cont(f.value, 0.5) AS median, min(f.value) AS min, "
        "max(f.value) AS max FROM features f JOIN scans s USING (scan_id) WHERE "
        "f.scope = 'tree' AND f.feature_id = ? AND isfinite(f.value) GROUP BY ALL "
        "ORDER BY ALL LIMIT ?", ("feature_id", "limit")),
    "qc_failures": (
        'SELECT "check", reason, count(*) AS scans FROM qc WHERE status = \'fail\' '
        'GROUP BY ALL ORDER BY scans DESC LIMIT ?', ("limit",)),
    "scan_qc": (
        'SELECT "check", status, value, unit, reason FROM qc WHERE scan_id = ? '
        'ORDER BY "check" LIMIT ?', ("scan_id", "limit")),
}


#: Parameters a query cannot run without.
REQUIRED = {"scan_features": ("scan_id",), "feature_summary": ("feature_id",),
            "scan_qc": ("scan_id",)}


def query_cohort(db: Path | None, query: str, args: dict) -> list[dict]:
    """Run the named query of :data:`QUERIES` on a read-only connection."""
    from vasomics.report.cohort import connect_read_only

    if db is None:
        raise AccessRefused("this server was started without a cohort database (--db)")
    if query not in QUERIES:
        raise InputError(f"unknown query {query!r}; one of {', '.join(QUERIES)}")
    sql, names = QUERIES[query]
    for required in REQUIRED.get(query, ()):
        if not args.get(required):
            raise InputError(f"query {query} needs {required}")
    con = connect_read_only(db)
    try:
        frame = con.execute(sql, [args.get(n) for n in names]).df()
    finally:
        con.close()
    return _clean(frame.to_dict("records"))


def explain(root: Path, model: str, table: str, row: int, n_background: int = 50,
            top: int = 10) -> dict:
    """Prediction of the model folder ``model`` for row ``row`` of the table ``table``
    (CSV or Parquet, one row per scan) and the SHAP contributions of its features
    (background: up to ``n_background`` other rows)."""
    import pandas as pd

    from vasomics.model.explain import shap_values
    from vasomics.model.persist import load_bundle

    bundle = load_bundle(allowed_path(root, model))
    path = allowed_path(root, table)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if not 0 <= row < len(frame):
        raise InputError(f"row {row} out of range (table has {len(frame)} rows)", table)
    X = bundle.model_input(bundle.raw_features(frame, str(path)), str(path))
    pred = bundle.predict(X.iloc[[row]], str(path)).iloc[0].to_dict()
    background = X.drop(index=X.index[row]).head(n_background)
    shap, base = shap_values(bundle.estimator, X.iloc[[row]], background, seed=0)
    contrib = shap.iloc[0].sort_values(key=np.abs, ascending=False).head(top)
    return _clean({"model": bundle.meta.name, "task": bundle.meta.task, "prediction": pred,
                   "base_value": base,
                   "contributions": [{"feature": k, "value": X.iloc[row][k], "shap": v}
                                     for k, v in contrib.items()]})
