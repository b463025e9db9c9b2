"""vasomics: vascular omics, from vascular images to standardized, validated vessel biomarkers.

Public entry points are re-exported lazily so that ``import vasomics`` stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vasomics")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from vasomics.errors import VasomicsError  # noqa: E402
from vasomics.image import Image  # noqa: E402

__all__ = ["Image", "VasomicsError", "__version__", "extract_features", "run_features"]

_LAZY = {"extract_features": "vasomics.api", "run_features": "vasomics.api"}


def __getattr__(name: str):
    """Import heavier entry points (``vasomics.extract_features``) on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vasomics' has no attribute {name!r}")
