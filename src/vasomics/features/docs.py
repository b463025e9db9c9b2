"""Generate ``docs/features.md`` from the catalogue: ``python -m vasomics.features.docs PATH``.

The page is a pure function of ``catalogue.yaml`` and :class:`FeatureParams`, so a test can
check that the committed page is up to date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vasomics.features.catalogue import load_catalogue
from vasomics.features.extract import __doc__ as EXTRACT_DOC
from vasomics.features.params import FeatureParams

_SCOPES = (("tree", "Tree"), ("vessel", "Vessel"), ("segment", "Segment"),
           ("bifurcation", "Bifurcation"))


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render() -> str:
    """The Markdown text of the feature reference."""
    cat = load_catalogue()
    nan_rule = EXTRACT_DOC.split("NaN rule:", 1)[1].strip()
    out = [
        "# Feature reference",
        "",
        f"Generated from `src/vasomics/features/catalogue.yaml` (catalogue version "
        f"**{cat.catalogue_version}**, {len(cat.features)} features) by "
        "`python -m vasomics.features.docs docs/features.md`. Do not edit by hand.",
        "",
        "## Conventions",
        "",
        f"* **Ids**: {_one_line(cat.id_scheme)}",
        "* **Scopes** in the table: `tree`, `vessel:<label>`, `segment:<index>` (index into the "
        "graph's segments, as in `graph.json`/`graph.vtp` `SegmentId`), `bifurcation:<node "
        "index>`.",
        "* **Units**: mm, mm^2, mm^3; angles in degrees; `1` = dimensionless; `count`; "
        "`image units` = the intensity image's own units. Coordinates are physical LPS mm.",
        f"* **NaN**: {_one_line(nan_rule)}",
        "* Every output folder holds `features_dictionary.csv` (this information for the "
        "features present) and `params.yaml` with every auto parameter resolved to the number "
        "used.",
        "",
        "## Parameters (section `features` of a parameter file)",
        "",
        "| name | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in FeatureParams.model_fields.items():
        default = "auto" if field.default is None else field.default
        out.append(f"| `{name}` | {default} | {_one_line(field.description)} |")
    for scope, title in _SCOPES:
        feats = [f for f in cat.features if f.scope == scope]
        out += ["", f"## {title} features", ""]
        out.append("| id | name | unit | category |")
        out.append("|---|---|---|---|")
        for f in feats:
            unit = f.unit if isinstance(f.unit, str) else ", ".join(
                f"{k}: {v}" for k, v in f.unit.items())
            out.append(f"| [`{f.id}`](#{f.id.lower().replace('.', '')}) | {f.name} | {unit} "
                       f"| {f.category} |")
        for f in feats:
            unit = f.unit if isinstance(f.unit, str) else ", ".join(
                f"{k}: {v}" for k, v in f.unit.items())
            out += ["", f"### {f.id}", "", f"**{f.name}** ({f.category}, {f.scope}, unit "
                    f"`{unit}`, since {f.since}, {f.status})", "", _one_line(f.definition), "",
                    f"* Formula: `{f.formula}`"]
            if f.undefined:
                out.append(f"* NaN when: {_one_line(f.undefined)}")
            if f.requires != ["graph"]:
                out.append(f"* Needs: {', '.join(f.requires)}")
            if f.depends_on:
                out.append(f"* Depends on: {', '.join(f.depends_on)}")
            if f.equivalents:
                out.append("* Equivalents: " + "; ".join(
                    f"{k}: {_one_line(v)}" for k, v in f.equivalents.items()))
            if f.reference:
                out.append(f"* Reference: {_one_line(f.reference)}")
            v = f.validation
            out.append(f"* Validated on: {_one_line(v.phantom)} (tolerance {v.tolerance}; "
                       f"`tests/test_features*.py::{v.test}`)")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m vasomics.features.docs OUTPUT.md", file=sys.stderr)
        return 2
    from vasomics.io.atomic import atomic_file

    path = Path(argv[0])
    with atomic_file(path) as tmp:
        tmp.write_text(render(), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
