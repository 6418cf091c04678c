"""What every dyno scenario shares: the fixture apps and the agent's interval in tests."""

from __future__ import annotations

from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
# Short, for a quick suite; the scenarios' bounds are written in intervals.
INTERVAL = 1.0
CONFIG = {"DYNOSTAT_INTERVAL": "1"}
