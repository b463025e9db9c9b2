"""Cohort manifests: which scans to run, whose they are, and with which parameters.

A manifest is a CSV (``,``, ``;`` or tab separated, UTF-8 with or without BOM) or a YAML
file. Columns (CSV header / YAML keys of each entry under ``scans:``):

=================  ========  ==========================================================
column             required  meaning
=================  ========  ==========================================================
scan_id            yes       unique id of the scan (letters, digits, ``._-``, ≤ 64 chars)
subject_id         yes       the manifest's pseudonymous subject id (same rules)
path               yes       image file or DICOM folder; relative paths are resolved
                             against ``--root`` when given, else the manifest's folder
centre             yes       acquiring centre / site (free text)
modality           yes       e.g. ``mask``; picks the pipeline unless ``pipeline`` is set
acquisition_date   no        ISO date ``YYYY-MM-DD`` (empty = unknown)
pipeline           no        pipeline name (see :mod:`vasomics.cohort.pipelines`)
params             no        YAML parameter file for this scan (relative to the manifest)
label:<name>       no        a clinical label, e.g. ``label:hvpg`` (numbers or text)
param:<a>.<b>      no        one parameter override, e.g. ``param:features.sampling_step_mm``
=================  ========  ==========================================================

In YAML, ``labels`` and ``params`` of an entry are mappings, and a top-level ``defaults``
mapping supplies values shared by every entry. Every problem is collected and reported in
one :class:`ManifestError` naming each row and column, never only the first one.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vasomics.cohort.pipelines import Pipeline, get_pipeline, pipeline_for_modality
from vasomics.errors import InputError, ParameterError
from vasomics.params import read_yaml_mapping

REQUIRED = ("scan_id", "subject_id", "path", "centre", "modality")
OPTIONAL = ("acquisition_date", "pipeline", "params")
LABEL_PREFIX = "label:"
PARAM_PREFIX = "param:"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ManifestError(InputError):
    """A manifest holds one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: list[str], path):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n > 1 else ''}: " + "; ".join(self.problems), path)


@dataclass(frozen=True)
class ScanEntry:
    """One validated manifest row.

    ``path`` is absolute; ``params`` is the pipeline's validated parameter model (cohort
    parameters overlaid by this row's parameter file and ``param:`` columns) and
    ``params_hash`` identifies pipeline, pipeline version and parameters together.
    """

    scan_id: str
    subject_id: str
    path: Path
    centre: str
    modality: str
    pipeline: str
    acquisition_date: dt.date | None
    labels: dict[str, float | str]
    params: BaseModel
    params_hash: str
    where: str  # "line 4" (CSV) or "scans[3]" (YAML), for messages


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: its file, the root paths were checked against, and its entries."""

    path: Path
    root: Path | None
    entries: tuple[ScanEntry, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.entries)


def load_manifest(path: str | Path, *, root: str | Path | None = None,
                  params: Mapping[str, Any] | None = None) -> Manifest:
    """Read and validate a manifest (CSV or YAML, by extension).

    Parameters
    ----------
    path:
        The manifest file.
    root:
        When given, relative paths are resolved against it and every scan path (after
        resolving symbolic links) must lie inside it.
    params:
        Cohort-wide parameter overrides (a parameter-file mapping) applied to every scan
        before the row's own ``params`` file and ``param:`` columns.

    Raises
    ------
    ManifestError
        Listing every problem found: unreadable file, unknown or missing columns, empty
        required values, bad ids, duplicate scan ids or files, missing files, paths outside
        ``root``, bad dates, unknown modality or pipeline, invalid parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("manifest not found" if not path.exists() else "manifest is not a file",
                         path)
    root_path = None
    if root is not None:
        root_path = Path(os.path.realpath(root))
        if not root_path.is_dir():
            raise InputError("root folder not found", root)
    problems: list[str] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        rows = _read_yaml_rows(path, problems)
    else:
        rows = _read_csv_rows(path, problems)
    entries: list[ScanEntry] = []
    first_seen: dict[str, str] = {}
    first_file: dict[Path, str] = {}
    base = root_path or path.parent.resolve()
    for where, row in rows:
        scan_id, raw_path = str(row.get("scan_id", "")).strip(), str(row.get("path", "")).strip()
        unique = True
        if scan_id and scan_id in first_seen:
            problems.append(f"{where}, scan_id: duplicate scan id {scan_id!r} "
                            f"(first at {first_seen[scan_id]})")
            unique = False
        first_seen.setdefault(scan_id, where)
        real = Path(os.path.realpath(_resolve(raw_path, base))) if raw_path else None
        if real is not None and real in first_file:
            problems.append(f"{where}, path: same file as {first_file[real]}")
            unique = False
        first_file.setdefault(real, where)
        entry = _validate_row(where, row, base, root_path, path.parent, params or {}, problems)
        if entry is not None and unique:
            entries.append(entry)
    if not rows and not problems:
        problems.append("no scans listed")
    if problems:
        raise ManifestError(problems, path)
    return Manifest(path=path.resolve(), root=root_path, entries=tuple(entries))


# ----------------------------------------------------------------------------- reading
def _read_csv_rows(path: Path, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read manifest ({exc})", path) from None
    header_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ManifestError(["file is empty"], path) from None
    _check_columns(header, problems)
    rows = []
    try:
        for record in reader:
            where = f"line {reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                problems.append(f"{where}: {len(record)} cells for {len(header)} columns")
                continue
            row: dict[str, Any] = {"labels": {}, "inline_params": {}}
            for name, cell in zip(header, record, strict=True):
                cell = cell.strip()
                if name.startswith(LABEL_PREFIX):
                    if cell:
                        row["labels"][name[len(LABEL_PREFIX):]] = _label_value(cell)
                elif name.startswith(PARAM_PREFIX):
                    if not cell:
                        continue
                    try:
                        row["inline_params"][name[len(PARAM_PREFIX):]] = yaml.safe_load(cell)
                    except yaml.YAMLError:
                        problems.append(f"{where}, {name}: cannot parse {cell!r}")
                else:
                    row[name] = cell
            rows.append((where, row))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: malformed CSV ({exc})")
    return rows


def _read_yaml_rows(path: Path, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = read_yaml_mapping(path)
    except ParameterError as exc:  # the shared YAML reader speaks of parameter files
        raise InputError(exc.message.replace("parameter file", "manifest"), path) from None
    unknown_top = set(data) - {"scans", "defaults"}
    if unknown_top:
        problems.append(f"unknown top-level keys {sorted(unknown_top)} (expected 'scans' and "
                        f"optionally 'defaults')")
    scans = data.get("scans")
    defaults = data.get("defaults") or {}
    if not isinstance(scans, list) or not isinstance(defaults, dict):
        problems.append("'scans' must be a list of mappings and 'defaults' a mapping")
        return []
    rows, seen_columns = [], set()
    for i, item in enumerate(scans):
        where = f"scans[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: not a mapping")
            continue
        merged = {**defaults, **item}
        row: dict[str, Any] = {}
        for key, value in merged.items():
            if key == "labels":
                if not isinstance(value, dict):
                    problems.append(f"{where}, labels: must be a mapping of name to value")
                    value = {}
                row["labels"] = {str(k): v for k, v in value.items() if v not in (None, "")}
            elif key == "params":
                if isinstance(value, dict):
                    row["inline_params"] = value
                else:
                    row["params"] = "" if value is None else str(value)
            else:
                seen_columns.add(str(key))
                row[str(key)] = "" if value is None else value
        row.setdefault("labels", {})
        row.setdefault("inline_params", {})
        row["_yaml"] = True
        rows.append((where, row))
    _check_columns(sorted(seen_columns), problems, yaml_mode=True)
    return rows


def _check_columns(header: list[str], problems: list[str], yaml_mode: bool = False) -> None:
    known = REQUIRED + OPTIONAL
    seen = set()
    for name in header:
        if name in seen:
            problems.append(f"column {name!r}: appears twice")
        seen.add(name)
        if name in known or name in ("labels",):
            continue
        if name.startswith(LABEL_PREFIX):
            if not _LABEL_NAME.match(name[len(LABEL_PREFIX):]):
                problems.append(f"column {name!r}: label names are letters, digits and _")
            continue
        if name.startswith(PARAM_PREFIX) and not yaml_mode:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"column {name!r}: unknown column (known: {', '.join(known)}, "
                        f"{LABEL_PREFIX}<name>, {PARAM_PREFIX}<section>.<field>){hint}")
    if not yaml_mode:
        for name in REQUIRED:
            if name not in seen:
                problems.append(f"column {name!r}: required column is missing")


# -------------------------------------------------------------------------- validation
def _validate_row(where: str, row: dict[str, Any], base: Path, root: Path | None,
                  manifest_dir: Path, cohort_params: Mapping[str, Any],
                  problems: list[str]) -> ScanEntry | None:
    n_before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(f"{where}, {column}: {message}")

    values = {k: ("" if row.get(k) is None else row.get(k)) for k in REQUIRED + OPTIONAL}
    for name in REQUIRED:
        if name in row and isinstance(values[name], str) and not values[name].strip():
            bad(name, "empty")
        elif name not in row and row.get("_yaml"):
            bad(name, "missing")
    for name in ("scan_id", "subject_id"):
        value = str(values[name])
        if value and not _ID.match(value):
            bad(name, f"{value!r} is not a valid id (letters, digits, '.', '_', '-', "
                      f"at most 64 characters, starting with a letter or digit)")
    scan_path = None
    if str(values["path"]).strip():
        scan_path = _resolve(str(values["path"]), base)
        real = Path(os.path.realpath(scan_path))
        if root is not None and not real.is_relative_to(root):
            bad("path", f"{values['path']!r} lies outside the root folder {root}")
        elif not scan_path.exists():
            bad("path", f"file not found: {scan_path}")
    date = _parse_date(values["acquisition_date"])
    if date is False:
        bad("acquisition_date", f"{values['acquisition_date']!r} is not a date (YYYY-MM-DD)")
    pipeline = _pipeline(str(values["modality"]), str(values["pipeline"]), bad)
    params = None
    if pipeline is not None:
        params = _params(pipeline, cohort_params, str(values["params"]), row["inline_params"],
                         manifest_dir, bad)
    for name, value in row["labels"].items():
        if not _LABEL_NAME.match(name):
            bad(f"labels.{name}", "label names are letters, digits and _")
        elif not isinstance(value, (int, float, str)) or isinstance(value, bool):
            bad(f"{LABEL_PREFIX}{name}", f"{value!r} is not a number or text")
    if len(problems) > n_before:
        return None
    return ScanEntry(
        scan_id=str(values["scan_id"]), subject_id=str(values["subject_id"]), path=scan_path,
        centre=str(values["centre"]).strip(), modality=str(values["modality"]).strip(),
        pipeline=pipeline.name, acquisition_date=date or None,
        labels={k: (float(v) if isinstance(v, int) else v) for k, v in row["labels"].items()},
        params=params, params_hash=pipeline.params_hash(params), where=where)


def _resolve(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def _parse_date(value: Any) -> dt.date | None | bool:
    """A date, None when empty, or False when unparseable."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    for parse in (dt.date.fromisoformat, lambda t: dt.datetime.fromisoformat(t).date()):
        try:
            return parse(text)
        except ValueError:
            continue
    return False


def _pipeline(modality: str, name: str, bad) -> Pipeline | None:
    if name.strip():
        try:
            return get_pipeline(name.strip())
        except ParameterError as exc:
            bad("pipeline", exc.message)
            return None
    if not modality.strip():
        return None
    found = pipeline_for_modality(modality.strip())
    if found is None:
        from vasomics.cohort.pipelines import known_modalities

        bad("modality", f"no pipeline handles modality {modality!r} (known: "
                        f"{', '.join(known_modalities())}); set the 'pipeline' column")
    return found


def _params(pipeline: Pipeline, cohort: Mapping[str, Any], params_file: str,
            inline: Mapping[str, Any], manifest_dir: Path, bad) -> BaseModel | None:
    merged: dict[str, Any] = _deep_merge({}, cohort)
    if params_file.strip():
        file_path = _resolve(params_file.strip(), manifest_dir)
        try:
            merged = _deep_merge(merged, read_yaml_mapping(file_path))
        except Exception as exc:
            bad("params", getattr(exc, "message", str(exc)) + f" ({file_path})")
            return None
    for key, value in inline.items():
        if isinstance(value, dict):
            merged = _deep_merge(merged, {key: value})
            continue
        parts = str(key).split(".")
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                bad(f"{PARAM_PREFIX}{key}", "overrides a value that is not a section")
                return None
        node[parts[-1]] = value
    try:
        return pipeline.params_model().model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "<root>"
            bad(f"params {loc}", err["msg"])
        return None


def _deep_merge(base: dict, extra: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _label_value(cell: str) -> float | str:
    try:
        return float(cell)
    except ValueError:
        return cell
