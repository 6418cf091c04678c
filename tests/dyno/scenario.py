"""What every dyno scenario shares: the fixture apps and the agent's interval in tests."""

from __future__ import annotations

from support.paths import DYNO_APPS as APPS

# The module the fixture apps' web processes share, put into each one's slug.
APP_FILES = (APPS / "serving.py",)
# Short, for a quick suite; the scenarios' bounds are written in intervals.
INTERVAL = 1.0
CONFIG = {"DYNOSTAT_INTERVAL": "1"}
