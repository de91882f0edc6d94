"""``python -m fastgrad`` runs the CLI."""

import sys

from fastgrad.cli import main

sys.exit(main())
