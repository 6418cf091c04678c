"""Child processes of a test: ending them the same way everywhere, and starting the system's
Python in namespaces of its own."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from support.paths import SYSTEM_PYTHON

STOP_TIMEOUT = 5.0


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """Ends a child of this process that may still run: SIGTERM, up to ``timeout`` seconds to
    exit, then SIGKILL. It is always reaped, so its pid is never signalled again once reused.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def isolated_python_in_namespaces(namespaces: Sequence[str], *args: str) -> list[str]:
    """The command that runs the system's Python, isolated and without site-packages, in the
    fresh namespaces unshare(1) makes from ``namespaces``; mounts made inside stay there."""
    return [
        "unshare",
        *namespaces,
        "--propagation",
        "private",
        "--",
        SYSTEM_PYTHON,
        "-I",
        "-S",
        *args,
    ]
