"""A fresh interpreter with the agent and the push tests' support modules on its path.

For what only a new process shows: which modules an import pulls in, what a missing one does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import AGENT

AGENT_DIR = str(AGENT)
PUSH_TESTS_DIR = str(Path(__file__).resolve().parent)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([AGENT_DIR, PUSH_TESTS_DIR])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
