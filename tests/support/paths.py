"""Where things are in the repository, worked out once for every suite and benchmark."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
README = REPO / "README.md"

# The directory PYTHONPATH names for the agent, its package, and the entry script dynos run
# (``python3 -S dynostat-agent``).
AGENT = REPO / "agent"
AGENT_PACKAGE = AGENT / "dynostat"
AGENT_SCRIPT = AGENT / "dynostat-agent"
REPORT = REPO / "report"
# The system's Python, which any user can run (a pyenv's under /root is root's alone), as the
# run image's is.
SYSTEM_PYTHON = "/usr/bin/python3"

# Captured and crafted /proc and cgroup trees, and the tables the agent's and the launcher's
# tests both read.
FIXTURES = TESTS / "fixtures"
PROCESS_TYPE_CASES = TESTS / "cases" / "process_types.tsv"
# The dyno harness's fixture apps.
DYNO_APPS = TESTS / "dyno" / "apps"
# What the bats tests of bin/compile use and the CNB tests share: serve.py,
# standalone_archive.py.
BUILDPACK_HELPERS = TESTS / "buildpack" / "helpers"
