"""Parameter files: YAML validated against pydantic models, like PyRadiomics parameter files.

Each stage defines its parameters as a :class:`StageParams` subclass beside its code, with a
default and a description per field (the description is the documentation). A parameter
file is a YAML mapping from section name to that section's fields; unknown keys are errors.
The parameters actually used are written next to every output (:func:`dump_params`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from vasomics.errors import ParameterError

T = TypeVar("T", bound=BaseModel)


class StageParams(BaseModel):
    """Base for parameter sections: unknown keys are rejected, values are validated on
    assignment too, and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def read_yaml_mapping(path: str | Path) -> dict:
    """Read a YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError("parameter file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read parameter file ({exc})", path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParameterError(f"invalid YAML{where}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError("parameter file must hold a mapping of sections", path)
    return data


def validate_params(model: type[T], data: dict | None, path: str | Path | None = None) -> T:
    """Validate ``data`` against ``model``; every problem is reported in one line."""
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ParameterError(f"invalid parameters: {problems}", path) from None


def load_params(model: type[T], path: str | Path | None = None) -> T:
    """Load and validate a parameter file (defaults only when ``path`` is None)."""
    if path is None:
        return validate_params(model, {})
    return validate_params(model, read_yaml_mapping(path), path)


def params_dict(params: BaseModel) -> dict:
    """Parameters as plain JSON-compatible data."""
    return params.model_dump(mode="json")


def params_hash(params: BaseModel) -> str:
    """SHA-256 (hex, first 16 characters) of the canonical JSON of ``params``."""
    canonical = json.dumps(params_dict(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dump_params_yaml(params: BaseModel) -> str:
    """YAML text of ``params`` (what is written next to outputs)."""
    return yaml.safe_dump(params_dict(params), sort_keys=False)
