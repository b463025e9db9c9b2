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

__all__ = ["Image", "VasomicsError", "__version__"]
