"""Model cards (Markdown and HTML) following the TRIPOD+AI items a toolkit can fill.

TRIPOD+AI (Collins et al., BMJ 2024;385:e078378) lists what a report of a clinical
prediction model must state. The card fills the items the saved bundle knows (data,
outcome, predictors, missing data, analysis methods, heterogeneity across centres,
performance with CIs, calibration, cut-offs, model specification) from
:class:`~vasomics.model.persist.ModelMeta`, and marks the items only the authors can write
(eligibility, ethics, funding, intended use, ...) as "to be completed by the authors" so a
card never claims what the toolkit cannot know.
"""

from __future__ import annotations

import html
from pathlib import Path

from vasomics.io.atomic import atomic_file
from vasomics.model.persist import ModelMeta

AUTHORS = "*To be completed by the authors.*"


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _perf_table(res: dict, task: str) -> list[str]:
    if task == "classification":
        head = ("| group | n | prevalence | AUC (95 % CI) | accuracy | Brier | calibration "
                "slope | calibration intercept | grey zone |")
        rows = [head, "|" + "---|" * 9]
        groups = {"pooled": res["pooled"], **res.get("per_centre", {}),
                  **{f"modality {k}": v for k, v in res.get("per_modality", {}).items()}}
        for g, r in groups.items():
            ci = r.get("auc_ci95")
            auc = (f"{_fmt(r.get('auc'))} ({_fmt(ci[0])}–{_fmt(ci[1])})" if ci
                   else r.get("note", "–"))
            rows.append(f"| {g} | {r['n']} | {_fmt(r.get('prevalence'), 2)} | {auc} | "
                        f"{_fmt(r.get('accuracy'))} | {_fmt(r.get('brier'))} | "
                        f"{_fmt(r.get('calibration_slope'), 2)} | "
                        f"{_fmt(r.get('calibration_intercept'), 2)} | "
                        f"{_fmt(r.get('grey_zone_share'), 2)} |")
        return rows
    rows = ["| group | n | MAE | RMSE | R² | calibration slope | AUC |", "|" + "---|" * 7]
    groups = {"pooled": res["pooled"], **res.get("per_centre", {})}
    for g, r in groups.items():
        rows.append(f"| {g} | {r['n']} | {_fmt(r.get('mae'))} | {_fmt(r.get('rmse'))} | "
                    f"{_fmt(r.get('r2'))} | {_fmt(r.get('calibration_slope'), 2)} | "
                    f"{_fmt(r.get('auc'))} |")
    return rows


def _cutoff_lines(res: dict) -> list[str]:
    p = res["pooled"]
    if "rule_out" not in p:
        return []
    ro, ri = p["rule_out"], p["rule_in"]
    return [f"- Rule-out (cut-off {_fmt(ro['cutoff_mean'])}): sensitivity "
            f"{_fmt(ro['sensitivity'])}, NPV {_fmt(ro['npv'])}",
            f"- Rule-in (cut-off {_fmt(ri['cutoff_mean'])}): specificity "
            f"{_fmt(ri['specificity'])}, PPV {_fmt(ri['ppv'])}",
            f"- Grey zone: {_fmt(p.get('grey_zone_share'), 2)} of patients"]


def card_markdown(meta: ModelMeta) -> str:
    """The model card as Markdown (TRIPOD+AI item numbers in brackets)."""
    tr = meta.training
    lines = [f"# Model card: {meta.name}", "",
             f"Prediction model for **{meta.target}** ({meta.task}"
             f"{', positive if ' + meta.positive if meta.positive else ''}), built with "
             f"vasomics {meta.software.get('vasomics', '?')}. Items follow TRIPOD+AI.", "",
             "## Title and abstract [1, 2]", AUTHORS, "",
             "## Background and objectives [3, 4]; intended use and users", AUTHORS, "",
             "## Source of data and participants [5, 6]",
             f"- Training cohort: {tr.get('n')} patients, {tr.get('n_features')} candidate "
             f"features, missing share {_fmt(tr.get('missing_share'), 3)}."]
    if meta.task == "classification":
        lines.append(f"- Outcome events: {tr.get('n_positive')} "
                     f"(prevalence {_fmt(tr.get('prevalence'), 3)}).")
    for c, info in (tr.get("centres") or {}).items():
        prev = f", prevalence {_fmt(info.get('prevalence'), 3)}" if "prevalence" in info else ""
        lines.append(f"- Centre {c}: n = {info['n']}{prev}")
    lines += ["- Eligibility criteria, recruitment dates, setting and treatments: " + AUTHORS, "",
              "## Outcome [8]",
              f"- Column `{meta.target}`; " + (f"positive class: `{meta.positive}`."
                                                 if meta.positive else "as coded."),
              "- Blinding of outcome assessment: " + AUTHORS, "",
              "## Predictors [9]",
              f"- {len(meta.feature_ids)} features; feature catalogue version "
              f"{meta.catalogue_version or 'n/a (not catalogue features)'}.",
              "- Families: " + ", ".join(f"{f} ({n})" for f, n in
                                           sorted(_count(meta.families).items()))]
    if meta.selection:
        sel = meta.selection
        stab = (f", stability index {_fmt(sel['stability_index'], 2)}"
                if "stability_index" in sel else "")
        lines.append(f"- Selection ({sel['method']}, inside training data){stab}: "
                     + ", ".join(f"`{s}`" for s in sel["selected"]))
    lines += ["", "## Sample size [10]",
              f"- {tr.get('n')} patients" + (f", {tr.get('n_positive')} events; events per "
                                             f"candidate feature "
                                             f"{_fmt(tr['n_positive'] / max(1, tr['n_features']), 1)}"
                                             if tr.get("n_positive") is not None else "") + ".",
              "", "## Missing data [11]",
              "- Numeric features: median imputation with missing-value indicators, fitted in "
              "training folds only; categorical: missing and unseen levels encoded as all-zero.",
              "- Mixture of experts: an expert whose whole family is missing for a patient gets "
              "weight 0.", "",
              "## Analysis methods [12]"]
    for k, v in sorted(meta.settings.items()):
        lines.append(f"- {k}: {v}")
    lines += ["- Heterogeneity across centres [12d]: leave-one-centre-out validation; "
              "per-centre results below.",
              "- Class imbalance [13]: no resampling; probabilities calibrated by the gate "
              "(penalized maximum likelihood on out-of-fold expert outputs).",
              "- Fairness [14]: per-centre and per-modality results below; other subgroups: "
              + AUTHORS, ""]
    lines += ["## Model output and specification [15, 22]",
              f"- Output: {'probability of the positive class' if meta.task == 'classification' else 'predicted value'}"
              ", log-odds combination of family experts weighted per patient by a gate.",
              f"- Fitted estimator: `model.joblib` (SHA-256 {meta.model_sha256 or '?'})."]
    if meta.cutoffs:
        lines.append(f"- Rule-out cut-off {_fmt(meta.cutoffs['rule_out'])}, rule-in cut-off "
                     f"{_fmt(meta.cutoffs['rule_in'])} (set on out-of-fold training "
                     f"predictions for sensitivity {meta.cutoffs['target_sensitivity']} and "
                     f"specificity {meta.cutoffs['target_specificity']}).")
    lines += ["", "## Model performance [16, 23]"]
    if not meta.validation:
        lines.append("No validation results stored: run `vasomics model validate`.")
    for scheme, val in meta.validation.items():
        for name, res in val.get("results", {}).items():
            lines += ["", f"### {name} — {scheme}", ""] + _perf_table(res, meta.task)
            lines += [""] + _cutoff_lines(res)
            if res.get("selection"):
                sel = res["selection"]
                top = sorted(sel["frequency"].items(), key=lambda kv: -kv[1])[:10]
                lines.append(f"- Feature selection over {sel['n_folds']} training folds: "
                             f"stability index {_fmt(sel['stability_index'], 2)}; most often "
                             "selected: " + ", ".join(f"`{k}` ({v:.2f})" for k, v in top))
    lines += ["", "## Interpretation, limitations and usability [25–27]",
              "- Performance in centres not represented in the validation is unknown; "
              "centres with fewer than 10 patients received no per-centre measures.",
              "- " + AUTHORS, "",
              "## Ethics, funding, conflicts, data and code availability [17–19, 28–30]",
              AUTHORS, "",
              "## Software", ", ".join(f"{k} {v}" for k, v in meta.software.items()), ""]
    return "\n".join(lines)


def _count(families: dict) -> dict:
    out: dict = {}
    for f in families.values():
        out[f] = out.get(f, 0) + 1
    return out


def markdown_to_html(md: str, title: str) -> str:
    """Minimal Markdown (headings, lists, tables, code, emphasis) to a standalone page."""
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
        return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)

    out, in_list, table = [], False, []

    def flush_table():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= {"-"}]
            out.append("<table>")
            for i, r in enumerate(rows):
                tag = "th" if i == 0 else "td"
                cells = [c.strip() for c in r.strip().strip("|").split("|")]
                out.append("<tr>" + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells)
                           + "</tr>")
            out.append("</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush_table()
    if in_list:
        out.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n" + "\n".join(out)
            + "\n</body></html>\n")


def write_card(meta: ModelMeta, folder: str | Path) -> tuple[Path, Path]:
    """Write ``model_card.md`` and ``model_card.html`` into ``folder``."""
    folder = Path(folder)
    md = card_markdown(meta)
    paths = folder / "model_card.md", folder / "model_card.html"
    with atomic_file(paths[0]) as tmp:
        tmp.write_text(md, encoding="utf-8")
    with atomic_file(paths[1]) as tmp:
        tmp.write_text(markdown_to_html(md, f"Model card: {meta.name}"), encoding="utf-8")
    return paths
