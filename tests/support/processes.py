"""Ending the child processes a test started, the same way everywhere."""

from __future__ import annotations

import subprocess

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
