"""A /proc that hides processes, for real: a hidepid mount in a fresh mount and PID namespace.

The real agent runs there as `nobody` on a proc mounted with ``hidepid=2``, in a pids cgroup it
shares with a root-owned process that has threads. /proc shows the agent only itself; the
cgroup counts everything. ``tasks`` must be the cgroup's count, and the agent must say once
what it can and cannot see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support.paths import AGENT_SCRIPT, SYSTEM_PYTHON
from support.processes import isolated_python_in_namespaces

PIDS_V1 = Path("/sys/fs/cgroup/pids")
NOBODY = 65534
HIDDEN_THREADS = 5
TICKS = 4

# PID 1 of the namespace, as root: joins the cgroup, starts a root-owned process with threads,
# mounts a proc that hides other users' processes, and runs the agent as nobody on it. It
# prints the agent's output, then what pids.current says once the agent is gone.
NAMESPACE_INIT = r"""
import subprocess, sys
cgroup, proc_root, agent, threads, ticks = sys.argv[1:6]
with open(cgroup + "/cgroup.procs", "w") as procs:
    procs.write("0")
hidden = subprocess.Popen(
    [sys.executable, "-I", "-S", "-c",
     "import sys, threading\n"
     "for _ in range(int(sys.argv[1])):\n"
     "    threading.Thread(target=sys.stdin.buffer.read, daemon=True).start()\n"
     "print('ready', flush=True)\n"
     "sys.stdin.buffer.read()\n", threads],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
)
assert hidden.stdout.readline() == b"ready\n"
subprocess.run(["mount", "-t", "proc", "-o", "hidepid=2", "proc", proc_root], check=True)
result = subprocess.run(
    ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
     sys.executable, "-S", agent, "--count", ticks, "--interval", "0.2",
     "--proc-root", proc_root],
    stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "DYNO": "web.1", "HEROKU_DYNO_ID": "d-1"},
)
sys.stdout.write(result.stdout.decode())
with open(cgroup + "/pids.current") as current:
    sys.stdout.write("after pids.current=" + current.read())
hidden.stdin.close()
hidden.wait()
sys.exit(result.returncode)
"""


def missing_for_hidepid() -> str | None:
    if os.geteuid() != 0:
        return "needs root: a proc mount in a mount namespace, a pids cgroup, setpriv"
    if not (PIDS_V1 / "cgroup.procs").exists():
        return "needs a cgroup v1 pids hierarchy at /sys/fs/cgroup/pids"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"needs util-linux's {tool}"
    if not Path(SYSTEM_PYTHON).exists():
        return f"needs {SYSTEM_PYTHON}, which an unprivileged user can run"
    return None


@pytest.fixture
def pids_cgroup():
    reason = missing_for_hidepid()
    if reason:
        pytest.skip(reason)
    cgroup = PIDS_V1 / f"dynostat-hidepid-{os.getpid()}"
    cgroup.mkdir()
    try:
        yield cgroup
    finally:
        # Every member died with the namespace's PID 1; the kernel may take a moment to let
        # the last one go.
        deadline = time.monotonic() + 10
        while True:
            try:
                cgroup.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def mount_point():
    # Not under pytest's tmp_path: its parents are closed to other users, and nobody must
    # reach the proc mounted here.
    directory = Path(tempfile.mkdtemp(prefix="dynostat-hidepid-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        directory.rmdir()


def test_under_hidepid_tasks_is_the_pids_cgroup_s_count_and_the_agent_says_what_it_sees(
    pids_cgroup, mount_point
):
    result = subprocess.run(
        isolated_python_in_namespaces(
            # --kill-child: if this test is cut short, the whole namespace goes with it.
            ["--mount", "--pid", "--kill-child"],
            "-c",
            NAMESPACE_INIT,
            str(pids_cgroup),
            str(mount_point),
            str(AGENT_SCRIPT),
            str(HIDDEN_THREADS),
            str(TICKS),
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # In the cgroup while the agent ran: the namespace's init, the hidden process and its
    # threads, and the agent. Nobody's /proc shows the agent alone.
    cgroup_tasks = 1 + (1 + HIDDEN_THREADS) + 1
    assert lines[-1] == f"after pids.current={cgroup_tasks - 1}", "the agent was the only one to go"
    tasks_lines = [line for line in lines if " sample#dynostat.tasks=" in line]
    assert len(tasks_lines) == TICKS
    for line in tasks_lines:
        assert f" sample#dynostat.tasks={cgroup_tasks} " in line, line
        assert " sample#dynostat.processes=1 sample#dynostat.threads=1 " in line, line
    assert [line for line in lines if " at=" in line] == [
        "source=web.1 dyno=d-1 at=warn event=proc_restricted visible_tasks=1"
        f" cgroup_tasks={cgroup_tasks} visible_processes=1 path={mount_point}"
    ]
