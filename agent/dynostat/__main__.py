"""``python3 -m dynostat``: the agent's entry point (see ``dynostat.cli``)."""

from __future__ import annotations

import sys

from dynostat.cli import main

if __name__ == "__main__":
    sys.exit(main())
