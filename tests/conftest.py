"""Puts the agent package on the path and makes a skip count as a failure on CI.

Tests that need root, namespaces or cgroups may skip on a developer's machine with a one-line
reason. CI runs as root with CI=true, where nothing may skip: a skipped test there would be a
test that silently never runs.

It also gives the fixture of a process with a hostile name, which every piece of test code
that reads /proc must survive, as the agent does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# tests/, for the shared test support package, which knows where everything else is.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.paths import AGENT
from support.processes import stop

sys.path.insert(0, str(AGENT))

ON_CI = os.environ.get("CI", "").lower() == "true"

# A process name as hostile as prctl(PR_SET_NAME) allows in 15 bytes: not UTF-8, with a
# newline, the ")" that ends comm in stat, the separators of a top# entry, a backslash, a
# quote, "=", a space and a cut-off UTF-8 sequence.
HOSTILE_COMM = b'\xff\xfe\n):,\\"= \xc3('

# Names itself, says so, then lives until its stdin closes: it cannot outlive the test run.
_NAME_ITSELF = """
import ctypes, sys
PR_SET_NAME = 15
name = bytes.fromhex(sys.argv[1])
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0):
    sys.exit("prctl(PR_SET_NAME) failed")
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def process_with_hostile_name():
    """A live process of this machine whose comm is HOSTILE_COMM: (pid, comm bytes)."""
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _NAME_ITSELF, HOSTILE_COMM.hex()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline() == b"ready\n"
        assert Path(f"/proc/{child.pid}/comm").read_bytes() == HOSTILE_COMM + b"\n"
        yield child.pid, HOSTILE_COMM
    finally:
        child.stdin.close()
        stop(child)
        child.stdout.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"
