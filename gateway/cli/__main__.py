"""`python -m gateway.cli`: the console script without an installed entry point."""

import sys

from gateway.cli import main

sys.exit(main())
