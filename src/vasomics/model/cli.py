"""``vasomics model train|validate|predict|explain|card``.

Data come from a CSV/TSV/Parquet table or a cohort DuckDB store (``.duckdb``); column
settings and the pipeline come from a parameter file (section ``model``, see
:class:`~vasomics.model.workflow.ModelParams`) and/or the options below (options win).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pandas as pd

from vasomics.errors import InputError
from vasomics.io.atomic import atomic_file, ensure_writable_dir
from vasomics.params import dump_params_yaml, read_yaml_mapping, validate_params


def _params(params_file, overrides: dict):
    from vasomics.model.workflow import ModelParams

    data = {}
    if params_file:
        raw = read_yaml_mapping(params_file)
        data = dict(raw.get("model", raw))
    for key, value in overrides.items():
        if value not in (None, ()):
            data[key] = list(value) if isinstance(value, tuple) else value
    if isinstance(data.get("families"), str):  # a separate YAML/JSON mapping file
        data["families"] = read_yaml_mapping(data["families"])
    return validate_params(ModelParams, data, params_file)


def data_options(fn):
    """Options describing the table's columns (shared by the sub-commands)."""
    opts = [
        click.option("--params", "params_file", type=click.Path(exists=True, dir_okay=False),
                     help="Parameter file (YAML, section 'model')."),
        click.option("--target", help="Outcome column."),
        click.option("--task", type=click.Choice(["classification", "regression"])),
        click.option("--positive", help="Positive-class rule, e.g. '>0'."),
        click.option("--centre", help="Centre column."),
        click.option("--modality", help="Modality column."),
        click.option("--id-column", help="Row id column."),
        click.option("--drop", multiple=True, help="Non-feature column (repeatable)."),
        click.option("--zero-as-missing", multiple=True,
                     help="Column where 0 means not measured (repeatable)."),
        click.option("--families", help="YAML/JSON file mapping columns to families."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _overrides(kw: dict) -> dict:
    keys = ("target", "task", "positive", "centre", "modality", "id_column", "drop",
            "zero_as_missing", "families")
    return {k: kw.pop(k) for k in keys if k in kw}


def _write_json(path: Path, data) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=_default))


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def _write_figures(results: dict, out: Path, prefix: str) -> list[Path]:
    from vasomics.model import plots

    if not any("calibration_curve" in r for r in results.values()):
        return []
    return [plots.calibration_plot(results, out / f"{prefix}_calibration.png"),
            plots.decision_curve_plot(results, out / f"{prefix}_decision_curve.png")]


def _print_table(val, measure: str) -> None:
    table = val.table(measure)
    click.echo(f"{val.scheme} {measure}:\n{table.round(3).to_string()}")


@click.group("model")
def model() -> None:
    """Clinical models on feature matrices: train, validate, predict, explain, model card."""


@model.command("train")
@click.argument("data", type=click.Path(exists=True))
@data_options
@click.option("--harmonize/--no-harmonize", default=None, help="ComBat harmonization.")
@click.option("--selection", type=click.Choice(["none", "stability", "mrmr", "fdr"]))
@click.option("--scheme", type=click.Choice(["auto", "loco", "cv", "both", "none"]))
@click.option("--name", default="vasomics model", show_default=True, help="Model name.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Model bundle folder.")
def train_cmd(data, out, name, harmonize, selection, scheme, params_file, **kw):
    """Train on DATA (CSV or cohort .duckdb), validate, save a model bundle and its card."""
    from vasomics.model.card import write_card
    from vasomics.model.persist import save_bundle
    from vasomics.model.workflow import load_matrix, train

    p = _params(params_file, {**_overrides(kw), "harmonize": harmonize,
                              "selection": selection, "scheme": scheme})
    fm = load_matrix(data, p)
    bundle, validation = train(fm, p, name)
    out = save_bundle(bundle, out)
    (out / "params.yaml").write_text(dump_params_yaml(p))
    for scheme_name, val in validation.items():
        _write_figures(val.results, out, scheme_name)
        for model_name, pred in val.predictions.items():
            pred.to_csv(out / f"{scheme_name}_{model_name}_predictions.csv", index=False)
        _print_table(val, "auc" if fm.task == "classification" else "mae")
    write_card(bundle.meta, out)
    click.echo(f"model saved to {out}")


@model.command("validate")
@click.argument("data", type=click.Path(exists=True))
@data_options
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="Evaluate this saved model as is (external validation, no refit); "
                   "without it, the configured pipeline is refitted per fold.")
@click.option("--harmonize/--no-harmonize", default=None)
@click.option("--selection", type=click.Choice(["none", "stability", "mrmr", "fdr"]))
@click.option("--scheme", type=click.Choice(["auto", "loco", "cv", "both"]))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Folder for validation.json, predictions and figures.")
def validate_cmd(data, out, model_dir, harmonize, selection, scheme, params_file, **kw):
    """Validate on DATA: refit per fold (loco/cv), or evaluate a saved model externally."""
    from vasomics.model.workflow import external_validation, load_matrix, run_validation, schemes

    out = ensure_writable_dir(out)
    if model_dir:
        from vasomics.model.persist import load_bundle

        bundle = load_bundle(model_dir)
        meta = bundle.meta
        base = {"target": meta.target, "task": meta.task, "positive": meta.positive,
                "centre": meta.centre_column}
        p = _params(params_file, {**base, **{k: v for k, v in _overrides(kw).items() if v}})
        fm = load_matrix(data, p)
        res = {"external": external_validation(bundle, fm, seed=p.seed)}
        _write_json(out / "validation.json", res)
        _write_figures(res, out, "external")
        pooled = res["external"]["pooled"]
        click.echo(json.dumps({k: pooled.get(k) for k in ("n", "auc", "auc_ci95", "mae",
                                                          "calibration_slope", "brier")},
                              default=_default))
        return
    p = _params(params_file, {**_overrides(kw), "harmonize": harmonize,
                              "selection": selection, "scheme": scheme})
    fm = load_matrix(data, p)
    results = {}
    for s in schemes(p, fm):
        val = run_validation(p, fm, s)
        results[s] = val.to_dict()
        _write_figures(val.results, out, s)
        for model_name, pred in val.predictions.items():
            pred.to_csv(out / f"{s}_{model_name}_predictions.csv", index=False)
        _print_table(val, "auc" if fm.task == "classification" else "mae")
        if fm.task == "classification":
            _print_table(val, "calibration_slope")
    _write_json(out / "validation.json", results)


@model.command("predict")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("--id-column", help="Row id column copied to the output.")
@click.option("--centre", help="Centre column (models that harmonize need it).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV.")
def predict_cmd(model_dir, data, out, id_column, centre):
    """Predict DATA with a saved model; writes probability/prediction (and zone) per row."""
    from vasomics.model.persist import load_bundle

    bundle = load_bundle(model_dir)
    frame = _read_any(data)
    bundle.meta.centre_column = centre or bundle.meta.centre_column
    pred = bundle.predict(bundle.raw_features(frame, str(data)), source=str(data))
    if id_column:
        pred.insert(0, id_column, frame[id_column].to_numpy())
    with atomic_file(out) as tmp:
        pred.to_csv(tmp, index=False)
    click.echo(f"{len(pred)} predictions written to {out}")


def _read_any(path) -> pd.DataFrame:
    from vasomics.model.matrix import _read_table

    return _read_table(Path(path), None)


@model.command("explain")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True))
@click.option("--rows", default=100, show_default=True, help="Patients explained (sample).")
@click.option("--background", default=50, show_default=True, help="Background rows.")
@click.option("--permutations", default=10, show_default=True, help="SHAP permutations.")
@click.option("--top", default=4, show_default=True, help="Partial dependence of top N.")
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False))
def explain_cmd(model_dir, data, rows, background, permutations, top, seed, out):
    """SHAP values, global importance, expert weights and partial dependence on DATA."""
    from vasomics.model import explain, plots
    from vasomics.model.persist import load_bundle

    bundle = load_bundle(model_dir)
    out = ensure_writable_dir(out)
    X = bundle.model_input(bundle.raw_features(_read_any(data), str(data)), str(data))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(X), min(rows, len(X)), replace=False)
    bg = rng.choice(len(X), min(background, len(X)), replace=False)
    shap, base = explain.shap_values(bundle.estimator, X.iloc[pick], X.iloc[bg],
                                     n_permutations=permutations, seed=seed)
    shap = shap.drop(columns=[c for c in shap.columns if c.startswith("__")])
    shap.to_csv(out / "shap_values.csv")
    imp = explain.global_importance(shap)
    plots.importance_plot(imp.to_dict(), out / "shap_importance.png")
    curves = [explain.partial_dependence(bundle.estimator, X, f, seed=seed)
              for f in imp.index[:top]]
    plots.partial_dependence_plot(curves, out / "partial_dependence.png")
    summary = {"base_value": base, "importance": imp.to_dict(), "partial_dependence": curves}
    try:
        weights = explain.expert_weights(bundle.estimator, X.iloc[pick])
        weights.to_csv(out / "expert_weights.csv")
        summary["mean_expert_weights"] = weights.mean().to_dict()
    except InputError:
        pass
    _write_json(out / "explanation.json", summary)
    click.echo("top features: " + ", ".join(f"{k} ({v:.3f})" for k, v in imp.head(5).items()))


@model.command("card")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", type=click.Path(file_okay=False),
              help="Folder for model_card.md/.html (default: the model folder).")
def card_cmd(model_dir, out):
    """Write the TRIPOD+AI model card (Markdown and HTML) of a saved model."""
    from vasomics.model.card import write_card
    from vasomics.model.persist import read_meta

    md, html_path = write_card(read_meta(model_dir), out or model_dir)
    click.echo(f"model card written to {md} and {html_path}")
