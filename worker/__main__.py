"""``python -m worker``: the command-line entry point."""

import sys

from worker.cli import main

sys.exit(main())
