"""``python -m dynostat_report``: the same as the ``dynostat-report`` command."""

import sys

from dynostat_report.cli import main

sys.exit(main())
