"""Provenance records: which software, parameters and inputs produced a result."""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

from pydantic import BaseModel

from vasomics.params import params_hash


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file, or of every file below a folder (sorted relative paths and
    contents), read in chunks."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as handle:
            while block := handle.read(chunk_bytes):
                digest.update(block)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of vasomics, Python and the numerical libraries results depend on."""
    import numpy
    import scipy

    import vasomics

    return {"vasomics": vasomics.__version__, "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__}


def provenance_record(params: BaseModel | None = None, inputs: dict[str, str | Path] | None = None,
                      stage_seconds: dict[str, float] | None = None) -> dict:
    """A JSON-serializable record: software versions, parameter hash, SHA-256 of each input
    (by role, e.g. ``{"mask": path}``), time per stage in seconds and a UTC timestamp.
    File paths themselves are not recorded (they may hold identifiers)."""
    return {
        "software": software_versions(),
        "params_hash": None if params is None else params_hash(params),
        "inputs": {role: file_sha256(p) for role, p in (inputs or {}).items()},
        "stage_seconds": dict(stage_seconds or {}),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
