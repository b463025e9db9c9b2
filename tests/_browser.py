"""Headless Chromium (Debian ``chromium`` driven by Playwright) for the report tests.

:func:`browser` installs the browser with ``apt-get install -y chromium`` when it is missing
and that is possible; the tests are skipped, with the reason, only where it cannot be
installed (no apt-get, not root, no package source) or Playwright is not importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def ensure_chromium() -> Path:
    """The Chromium executable, installing the Debian package if needed (else skip)."""
    if CHROMIUM.is_file():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be: needs apt-get as root")
    proc = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                          timeout=900, check=False)
    if proc.returncode != 0 or not CHROMIUM.is_file():
        pytest.skip("apt-get install chromium failed: " + proc.stderr.strip()[-300:])
    return CHROMIUM


def launch(playwright):
    """A headless Chromium browser (software rendering, no network features)."""
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), args=ARGS,
                                      headless=True)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
