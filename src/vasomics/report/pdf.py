"""PDF export of an HTML report with headless Chromium's print-to-PDF (via Playwright).

The browser is the system Chromium (``/usr/bin/chromium`` by default, or ``executable``),
launched headless with software rendering and without background networking; the report
is self-contained, so nothing is fetched. The 3D view is printed as drawn at load time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vasomics.errors import InputError, VasomicsError
from vasomics.io.atomic import atomic_file

log = logging.getLogger(__name__)

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run")


class BrowserUnavailable(VasomicsError):
    """Headless Chromium or Playwright is missing."""


def html_to_pdf(html_path: str | Path, pdf_path: str | Path, *,
                executable: str | Path = "/usr/bin/chromium", timeout_s: float = 60.0) -> Path:
    """Print the HTML file ``html_path`` to ``pdf_path`` (A4, backgrounds printed), after
    the 3D view (if any) has drawn. Written atomically."""
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    if not html_path.is_file():
        raise InputError("report not found", html_path)
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserUnavailable("PDF export needs playwright (pip install "
                                 "'vasomics[web]')") from None
    if not Path(executable).is_file():
        raise BrowserUnavailable(f"PDF export needs Chromium at {executable} (apt-get install "
                                 f"chromium)")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(executable),
                                        args=list(CHROMIUM_ARGS), headless=True)
            try:
                page = browser.new_page()
                page.goto(html_path.as_uri(), timeout=timeout_s * 1000)
                page.wait_for_function("!document.getElementById('tree3d') || "
                                       "document.getElementById('tree3d').dataset.drawn",
                                       timeout=timeout_s * 1000)
                with atomic_file(pdf_path) as tmp:
                    page.pdf(path=str(tmp), format="A4", print_background=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise VasomicsError(f"PDF export failed: {str(exc).splitlines()[0]}", html_path) from None
    log.info("wrote %s", pdf_path)
    return pdf_path
