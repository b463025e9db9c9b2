"""The catalogue itself: valid, implemented, documented, each feature tested on a phantom."""

import ast
import re
from pathlib import Path

import pytest

from vasomics.errors import ParameterError
from vasomics.features import docs
from vasomics.features.catalogue import load_catalogue, parse_catalogue
from vasomics.features.extract import implemented_ids

ROOT = Path(__file__).resolve().parents[1]


def _test_functions() -> dict[str, str]:
    """name -> source of every test function in tests/test_features*.py."""
    out = {}
    for path in sorted((ROOT / "tests").glob("test_features*.py")):
        text = path.read_text("utf-8")
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out[node.name] = ast.get_source_segment(text, node)
    return out


def test_every_catalogue_feature_is_implemented_and_every_implementation_catalogued():
    ids = {f.id for f in load_catalogue().features}
    assert ids == implemented_ids()


@pytest.mark.parametrize("feature", load_catalogue().features, ids=lambda f: f.id)
def test_feature_has_definition_formula_and_phantom_test(feature):
    assert len(feature.definition.split()) >= 6
    assert re.search(r"[=≈<>∫Σ/·]|max|min|P\d", feature.formula), feature.formula
    tests = _test_functions()
    assert feature.validation.test in tests, f"{feature.id}: no test {feature.validation.test}"
    # the test must name the feature (or its percentile family) so it really checks it
    source = tests[feature.validation.test]
    family = re.sub(r"_P\d+$", "_P", feature.id)
    assert feature.id in source or family in source, (
        f"{feature.validation.test} does not check {feature.id}")


def test_committed_docs_are_up_to_date():
    committed = (ROOT / "docs" / "features.md").read_text("utf-8")
    assert committed == docs.render(), "run: python -m vasomics.features.docs docs/features.md"


@pytest.mark.parametrize("mutation, message", [
    (("id: VX.A.T.LEN", "id: VX.M.T.LEN"), "category letter"),
    (("id: VX.A.T.LEN", "id: VX.A.S.LEN"), "scope letter"),
    (("id: VX.A.T.VOL", "id: VX.A.T.LEN"), "duplicate"),
    (("  category: anatomical\n", "  category: anatomy\n"), "category"),
])
def test_invalid_catalogue_is_rejected(mutation, message):
    text = (ROOT / "src/vasomics/features/catalogue.yaml").read_text("utf-8")
    bad = text.replace(*mutation, 1)
    assert bad != text
    with pytest.raises(ParameterError, match=message):
        parse_catalogue(bad)


def test_published_ids_are_permanent():
    """Every id ever published stays in the catalogue (possibly deprecated), and every
    catalogue id is recorded as published."""
    lines = (ROOT / "src/vasomics/features/published_ids.txt").read_text("utf-8").splitlines()
    published = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    ids = {f.id for f in load_catalogue().features}
    assert set(published) <= ids, f"removed or renamed ids: {sorted(set(published) - ids)}"
    assert ids <= set(published), f"add to published_ids.txt: {sorted(ids - set(published))}"
    assert len(published) == len(set(published))
