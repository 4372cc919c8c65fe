"""``python -m handnet ...`` runs the handnet command (see handnet.cli)."""

import sys

from .cli import main

sys.exit(main())
