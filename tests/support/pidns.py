"""A PID namespace of a test's own, in cgroups of its own: /proc there shows only what the
test starts, as a dyno's /proc shows only the dyno, so the agent's choices (the largest
process, the largest worker group) are the test's to know.

``with Namespace(code, cgroups=...) as namespace:`` runs ``python -c code`` as the namespace's
PID 1 (``unshare --pid --fork --mount-proc --kill-child``) and lets the test read its stdout
line by line. Leaving the block kills that PID 1, and with it, by the kernel's rule for a
namespace whose init dies, every process in the namespace.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time

from support.cgroups import Cgroups, cgroup_mode
from support.paths import AGENT, AGENT_SCRIPT, SYSTEM_PYTHON, TESTS


def unsupported_reason() -> str | None:
    """One line saying why this machine cannot give a test a PID namespace and cgroups."""
    if os.geteuid() != 0:
        return "needs root (a PID namespace and cgroups of its own)"
    if shutil.which("unshare") is None:
        return "needs unshare(1)"
    if cgroup_mode() is None:
        return "needs pids and memory cgroups (v1 or v2)"
    return None


def agent_command(*flags: str) -> list[str]:
    """The agent as the launcher starts it on a dyno."""
    return [SYSTEM_PYTHON, "-S", str(AGENT_SCRIPT), *flags]


class Namespace:
    def __init__(self, code: str, *args: str, cgroups: Cgroups, env: dict | None = None):
        self.command = [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            sys.executable,
            "-c",
            code,
            *args,
        ]
        self.cgroups = cgroups
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": f"{AGENT}:{TESTS}",
            "DYNO": "web.1",
            "HEROKU_DYNO_ID": "d-1",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self._buffer = b""

    def __enter__(self) -> Namespace:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            preexec_fn=self.cgroups.join,  # noqa: PLW1509 - joins the cgroups, before exec
        )
        return self

    def readline(self, timeout: float) -> str | None:
        """The next line the namespace printed, or None at its end or after ``timeout``."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8")

    def wait_for(self, predicate, timeout: float) -> tuple[str, float]:
        """The first line ``predicate`` accepts, and the monotonic time it was read."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            line = self.readline(deadline - time.monotonic())
            if line is None:
                raise AssertionError(f"no such line within {timeout} s; got:\n" + "\n".join(seen))
            seen.append(line)
            if predicate(line):
                return line, time.monotonic()

    def __exit__(self, *exc_info: object) -> None:
        process = self.process
        if process is None:
            return
        # unshare passes SIGKILL on to the namespace's PID 1 (--kill-child), whose death
        # ends every process of the namespace.
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        deadline = time.monotonic() + 10
        while self.cgroups.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process = None
