#!/usr/bin/env python3
"""Runs a command as a child subreaper and waits until what it started has settled.

Usage: settle.py LOG -- COMMAND...

COMMAND's stdout and stderr go to LOG, as a dyno's log stream. Whatever it leaves behind (the
detached agent) is reparented here. Once COMMAND has exited, this waits, up to 15 s, until
either every process it started has exited, or LOG holds a sample line: an agent that runs.
It then prints `running=N` (how many processes were still running), stops them by pid with
SIGTERM (the agent prints its last sample and exits), reaps them and exits with COMMAND's
status. So a test sees both "no agent" and "an agent" as soon as the outcome is certain.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
SAMPLE = b"sample#dynostat.tasks="


def children() -> list[int]:
    """This process's children (orphans reparented here included), read from /proc."""
    found = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as listing:
                found += [int(pid) for pid in listing.read().split()]
        except FileNotFoundError:
            continue
    return found


def reap_exited() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> int:
    log_path = sys.argv[1]
    command = sys.argv[sys.argv.index("--") + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl failed: errno {ctypes.get_errno()}")
    with open(log_path, "wb") as log:
        shell = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    status = shell.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reap_exited()
        with open(log_path, "rb") as log:
            if SAMPLE in log.read():
                break
        if not children():
            break
        time.sleep(0.01)
    reap_exited()
    running = children()
    print(f"running={len(running)}")
    for pid in running:
        os.kill(pid, signal.SIGTERM)  # our own children: their pids cannot be reused yet
    deadline = time.monotonic() + 5
    while children() and time.monotonic() < deadline:
        reap_exited()
        time.sleep(0.01)
    for pid in children():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
