"""Figures of validation and interpretation results (matplotlib, PNG, written atomically).

Inputs are the JSON-compatible dicts produced by :mod:`vasomics.model.validate` and
:mod:`vasomics.model.explain`, so figures can be redrawn from a saved model bundle.
"""

from __future__ import annotations

from pathlib import Path

from vasomics.errors import DependencyError
from vasomics.io.atomic import atomic_file


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyError("figures need matplotlib: pip install 'vasomics[model]'") from None
    return plt


def _save(fig, path: str | Path) -> Path:
    plt = _pyplot()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def calibration_plot(results: dict, path: str | Path, title: str = "") -> Path:
    """Observed vs predicted risk (quantile bins) of each model's pooled held-out
    predictions, with its calibration slope and intercept in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="ideal")
    for name, res in results.items():
        cc = res.get("calibration_curve")
        if not cc:
            continue
        pooled = res["pooled"]
        label = (f"{name} (slope {pooled.get('calibration_slope', float('nan')):.2f}, "
                 f"intercept {pooled.get('calibration_intercept', float('nan')):.2f})")
        ax.plot(cc["predicted"], cc["observed"], marker="o", label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability",
           ylabel="observed proportion", title=title or "Calibration (held-out)")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def decision_curve_plot(results: dict, path: str | Path, title: str = "") -> Path:
    """Net benefit against threshold probability for each model, treat-all and treat-none."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    first = None
    for name, res in results.items():
        dc = res.get("decision_curve")
        if not dc:
            continue
        first = first or dc
        ax.plot(dc["threshold"], dc["model"], label=name)
    if first is not None:
        ax.plot(first["threshold"], first["treat_all"], color="grey", ls="--", label="treat all")
        ax.plot(first["threshold"], first["treat_none"], color="black", lw=1, label="treat none")
        top = max(max(first["treat_all"]), 0.05)
        ax.set_ylim(-0.05, top * 1.1)
    ax.set(xlabel="threshold probability", ylabel="net benefit",
           title=title or "Decision curve (held-out)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def importance_plot(importance: dict[str, float], path: str | Path, top: int = 20,
                    title: str = "Mean |SHAP| (log-odds)") -> Path:
    """Horizontal bar chart of global importance (largest on top)."""
    plt = _pyplot()
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set(title=title, xlabel="mean |SHAP value|")
    return _save(fig, path)


def partial_dependence_plot(curves: list[dict], path: str | Path) -> Path:
    """One panel per feature: mean predicted output against the feature value."""
    plt = _pyplot()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    for ax, c in zip(axes[0], curves, strict=False):
        numeric = all(isinstance(g, int | float) for g in c["grid"])
        if numeric:
            ax.plot(c["grid"], c["mean_output"], marker=".")
        else:
            ax.bar([str(g) for g in c["grid"]], c["mean_output"])
            ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.set(title=c["feature"], ylabel="mean prediction")
    fig.tight_layout()
    return _save(fig, path)
