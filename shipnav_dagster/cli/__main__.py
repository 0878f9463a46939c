"""``python -m shipnav_dagster.cli``: the console script without the installed entry point."""

import sys

from shipnav_dagster.cli import main

sys.exit(main())
