#!/usr/bin/env python3
"""Runs a command as a child subreaper and reports where the agent it started ended up.

Usage: subreaper.py STATE_DIR -- COMMAND...

The process marks itself PR_SET_CHILD_SUBREAPER, so a descendant orphaned by its parent is
reparented here rather than to PID 1. After COMMAND exits it waits for the agent stub's state
file and prints one JSON object: this process's pid, the command's pid, session and process
group, and the agent's current parent (read from /proc, after the orphaning has settled).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36  # prctl(2)


def agent_state(state_dir: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        found = glob.glob(os.path.join(state_dir, "agent.*.json"))
        if found:
            with open(found[0], encoding="utf-8") as state:
                return json.load(state)
        time.sleep(0.02)
    raise SystemExit("no agent state file appeared")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return int(stat.read().rsplit(b")", 1)[1].split()[1])


def main() -> None:
    state_dir = sys.argv[1]
    command = sys.argv[sys.argv.index("--") + 1 :]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl failed: errno {ctypes.get_errno()}")

    # The agent inherits the shell's output for its whole life: give it /dev/null, so whoever
    # reads this process's output is not kept waiting for the agent to exit.
    shell = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shell_sid = os.getsid(shell.pid)
    shell_pgid = os.getpgid(shell.pid)
    shell.wait()
    deadline = time.monotonic() + 10
    state = agent_state(state_dir, deadline)
    ppid = parent_of(state["pid"])
    while ppid != os.getpid() and time.monotonic() < deadline:
        time.sleep(0.02)
        ppid = parent_of(state["pid"])
    print(
        json.dumps(
            {
                "subreaper": os.getpid(),
                "shell": shell.pid,
                "shell_sid": shell_sid,
                "shell_pgid": shell_pgid,
                "agent": state["pid"],
                "agent_ppid_now": ppid,
                "agent_sid": state["sid"],
                "agent_pgid": state["pgid"],
            }
        )
    )


main()
