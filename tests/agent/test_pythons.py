"""The agent on every CPython from 3.9 up that this machine has, not only the one running pytest.

Dynos run whatever Python the buildpack found: heroku-22's 3.10, an app's own 3.9+, or the
pinned standalone build. The agent must import and sample on each with the standard library
alone, started as the launcher starts it: ``-S`` (no site-packages), no PYTHON* variable but
the ones the launcher sets, and / as its working directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest
from test_cli import make_tree

from support.agent import run_agent


def interpreters() -> list[str]:
    """Every distinct python3.N (N ≥ 9) on PATH, in /usr/bin, /usr/local/bin or pyenv's
    versions, plus the one running pytest."""
    found = {os.path.realpath(sys.executable): sys.executable}
    candidates = []
    for minor in range(9, 20):
        candidates += [shutil.which(f"python3.{minor}"), f"/usr/bin/python3.{minor}"]
        candidates += [f"/usr/local/bin/python3.{minor}"]
        candidates += glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run(
                [candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                found.setdefault(os.path.realpath(candidate), candidate)
    return sorted(found.values())


@pytest.mark.parametrize("python", interpreters())
def test_the_agent_samples_on_this_python_with_the_standard_library_alone(python, tmp_path):
    proc, cgroup = make_tree(tmp_path)
    result = run_agent(
        ["--once", "--proc-root", proc, "--cgroup-root", cgroup],
        {"PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1"},
        python=python,
        flags=["-S"],
        cwd="/",
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[2].startswith(
        "source=web.1 dyno=d-1 sample#dynostat.tasks=11 sample#dynostat.tasks_limit=256 "
        "sample#dynostat.processes=4 sample#dynostat.threads=11 sample#dynostat.zombies=2 "
    ), lines
    assert lines[3] == (
        'source=web.1 dyno=d-1 top#zombie_parents="20/gem worker:2" top#threads="20/gem worker:8"'
        ' top#rss="20/gem worker:100.00MB,1/bash:3.91MB"'
        ' top#pss="20/gem worker:78.12MB,1/bash:1.46MB"'
    ), lines
