"""The feature catalogue: ``catalogue.yaml`` loaded and validated (pydantic).

Feature ids follow ``VX.<category>.<scope>.<NAME>``: category letter ``A`` anatomical,
``M`` biomechanical, ``C`` biochemical, ``P`` pathophysiological, ``X`` composite; scope
letter ``T`` tree, ``V`` vessel, ``S`` segment, ``B`` bifurcation; ``NAME`` in capitals,
digits and underscores. An id is permanent once published: a changed definition gets a new id
and the old one is marked ``deprecated`` (never reused).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vasomics.errors import ParameterError

CATEGORY_LETTER = {"anatomical": "A", "biomechanical": "M", "biochemical": "C",
                   "pathophysiological": "P", "composite": "X"}
SCOPE_LETTER = {"tree": "T", "vessel": "V", "segment": "S", "bifurcation": "B"}
ID_PATTERN = re.compile(r"^VX\.([AMCPX])\.([TVSB])\.[A-Z][A-Z0-9_]*$")
Requirement = Literal["graph", "mask", "region", "image", "labels", "organs"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Validation(_Strict):
    """How a feature is validated: digital phantom, analytic tolerance, test function."""

    phantom: str
    tolerance: str
    test: str = Field(description="name of a test function in tests/test_features*.py that "
                      "compares this feature with an analytic value")


class Feature(_Strict):
    """One catalogue entry."""

    id: str
    name: str
    category: Literal["anatomical", "biomechanical", "biochemical", "pathophysiological",
                      "composite"]
    scope: Literal["tree", "vessel", "segment", "bifurcation"]
    unit: str | dict[Literal["2d", "3d"], str]
    definition: str
    formula: str
    depends_on: list[str] = Field(default_factory=list)
    undefined: str | None = Field(None, description="when the value is NaN")
    requires: list[Requirement] = Field(default_factory=lambda: ["graph"])
    equivalents: dict[str, str] = Field(default_factory=dict)
    reference: str | None = None
    validation: Validation
    since: str
    status: Literal["stable", "experimental", "deprecated"] = "stable"

    @model_validator(mode="after")
    def _check_id(self) -> Feature:
        match = ID_PATTERN.match(self.id)
        if not match:
            raise ValueError(f"feature id {self.id!r} does not follow VX.<C>.<S>.<NAME>")
        if match.group(1) != CATEGORY_LETTER[self.category]:
            raise ValueError(f"{self.id}: category letter does not match {self.category}")
        if match.group(2) != SCOPE_LETTER[self.scope]:
            raise ValueError(f"{self.id}: scope letter does not match {self.scope}")
        return self

    def unit_for(self, ndim: int) -> str:
        """The unit in a ``ndim``-dimensional image (2 or 3)."""
        if isinstance(self.unit, str):
            return self.unit
        return self.unit[f"{ndim}d"]


class Catalogue(_Strict):
    """The whole catalogue."""

    catalogue_version: str
    id_scheme: str
    features: list[Feature]

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        ids = [f.id for f in self.features]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate feature ids {sorted(dup)}")
        return self

    def by_id(self) -> dict[str, Feature]:
        return {f.id: f for f in self.features}


def parse_catalogue(text: str, source: str = "catalogue.yaml") -> Catalogue:
    """Validate catalogue YAML text; problems raise :class:`ParameterError` naming it."""
    try:
        return Catalogue.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()
        raise ParameterError(f"invalid feature catalogue: {' '.join(first[:3])}",
                             source) from None


@cache
def load_catalogue() -> Catalogue:
    """The packaged catalogue (validated once per process)."""
    text = resources.files("vasomics.features").joinpath("catalogue.yaml").read_text("utf-8")
    return parse_catalogue(text)
