"""Helpers for the CNB tests: the build tests' download server, an orphan reaper.

Processes: the agents exec.d starts are orphans by design; during a test this process is
their reaper (PR_SET_CHILD_SUBREAPER), the way a dyno's PID 1 is, so it can find them and
end them by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the bats tests of bin/compile use too: serve.py, standalone_archive.py.
BUILD_TEST_HELPERS = REPO / "tests" / "buildpack" / "helpers"
PR_SET_CHILD_SUBREAPER = 36
SYSTEM_PYTHON = Path("/usr/bin/python3")  # readable by any user, like a dyno's would be


class DownloadServer:
    """serve.py over ROOT on 127.0.0.1, in a child process that also stops by itself.

    `requests` lists the paths asked for, in order, from the log serve.py writes before it
    answers each one.
    """

    def __init__(self, root: Path, work_dir: Path) -> None:
        self.root = root
        self._log = work_dir / "requests.log"
        port_file = work_dir / "server.port"
        self._process = subprocess.Popen(
            [
                str(SYSTEM_PYTHON),
                str(BUILD_TEST_HELPERS / "serve.py"),
                *("--root", str(root), "--port-file", str(port_file), "--log", str(self._log)),
                *("--max-requests", "50", "--lifetime", "300"),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        # serve.py moves the port file into place whole, once it listens.
        while not port_file.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("serve.py did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    @property
    def requests(self) -> list[str]:
        return self._log.read_text().splitlines()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=5)


def _stat_after_comm(pid: int | str) -> list[bytes]:
    """stat(5) fields from 3 (state) on, split after the last ')': a comm may hold any byte,
    ')' and spaces included. Raises OSError when the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return stat[stat.rindex(b")") + 2 :].split()


def _children_of(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_after_comm(entry)
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of stat(5), ppid
            children.add(int(entry))
    return children


class Reaper:
    """This test process as the orphans' reaper; lists and ends the ones a test left."""

    def __init__(self) -> None:
        self.before = _children_of(os.getpid())

    def orphans(self) -> set[int]:
        """Processes reparented to us since the test began (the agents)."""
        return _children_of(os.getpid()) - self.before

    def wait_for_orphans(self, count: int, timeout: float = 5.0) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {pid for pid in self.orphans() if not _is_zombie(pid)}
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return {pid for pid in self.orphans() if not _is_zombie(pid)}

    def end_all(self) -> None:
        for pid in self.orphans():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _is_zombie(pid: int) -> bool:
    try:
        return _stat_after_comm(pid)[0] == b"Z"
    except OSError:
        return True
