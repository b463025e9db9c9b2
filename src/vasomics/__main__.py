"""``python -m vasomics`` runs the command line."""

import sys

from vasomics.cli import main

sys.exit(main())
