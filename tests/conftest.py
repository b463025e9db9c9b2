"""Shared fixtures. ``shared_data`` is the one way tests reach ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def _locate_shared_data() -> Path | None:
    """``$VASOMICS_SHARED_DATA``, else ``shared/data`` beside the repository (CI layout)."""
    candidates = [os.environ.get("VASOMICS_SHARED_DATA"), _REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c, "README.md").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real public data sets (see its README for provenance and licences)."""
    path = _locate_shared_data()
    if path is None:
        pytest.fail("../shared/data not found; set VASOMICS_SHARED_DATA to its location")
    return path
