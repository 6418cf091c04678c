"""Fixtures for the report's tests: the report package on the path, the installed command,
and headless Chromium driven by Playwright with the network off."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from support.paths import REPORT

sys.path.insert(0, str(REPORT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def report_command() -> str:
    """The ``dynostat-report`` console script that ``pip install '.[report]'`` made."""
    command = shutil.which("dynostat-report")
    if command is None:
        pytest.skip("dynostat-report is not installed: pip install -e '.[report]'")
    return command
