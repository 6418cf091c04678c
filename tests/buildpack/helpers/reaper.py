#!/usr/bin/env python3
"""Runs a command as a child subreaper, the way a dyno's PID 1 runs its shell, and says what
the launch it made left behind.

Usage: reaper.py started FILE -- COMMAND...
       reaper.py settle LOG -- COMMAND...
       reaper.py placement STATE_DIR -- COMMAND...

Whatever COMMAND starts and detaches (the agent) is reparented to this process, and by the
time COMMAND has exited it is here, running or exited: each mode answers as soon as the
answer is certain.

- started: COMMAND keeps this process's stdin, stdout and stderr. Once it has exited, the
  pids of every process it left (none, when the launcher started nothing) are appended to
  FILE, one a line; those still running are left running. Exits with COMMAND's status.
- settle: COMMAND's stdout and stderr go to LOG, as a dyno's log stream. Once it has exited,
  waits (up to 15 s) until either everything it left has exited, or LOG holds a sample line:
  an agent that runs. Then prints `running=N` (how many were still running), stops them
  (SIGTERM: the agent prints its last sample and exits) and exits with COMMAND's status.
- placement: once COMMAND has exited, waits for the agent stub's state file in STATE_DIR and
  prints one JSON object: this process's pid, the command's pid, session and process group,
  and the agent's current parent (after the orphaning has settled).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for the support package

from support.subreaper import Subreaper, stat_fields

SAMPLE = b"sample#dynostat.tasks="
WAIT_S = 15.0
POLL_S = 0.01


def started(reaper: Subreaper, file: str, command: list[str]) -> int:
    status = subprocess.run(command, check=False).returncode
    with open(file, "a", encoding="utf-8") as listing:
        listing.writelines(f"{pid}\n" for pid in sorted(reaper.orphans()))
    return status


def settle(reaper: Subreaper, log_path: str, command: list[str]) -> int:
    with open(log_path, "wb") as log:
        status = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=30, check=False
        ).returncode
    deadline = time.monotonic() + WAIT_S
    while reaper.running() and time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            if SAMPLE in log.read():
                break
        time.sleep(POLL_S)
    print(f"running={len(reaper.running())}")
    reaper.end_all()
    return status


def placement(reaper: Subreaper, state_dir: str, command: list[str]) -> int:
    # The agent inherits the shell's output for its whole life: give it /dev/null, so whoever
    # reads this process's output is not kept waiting for the agent to exit.
    shell = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shell_sid = os.getsid(shell.pid)
    shell_pgid = os.getpgid(shell.pid)
    status = shell.wait()
    deadline = time.monotonic() + WAIT_S
    while not (found := glob.glob(os.path.join(state_dir, "agent.*.json"))):
        if time.monotonic() > deadline:
            raise SystemExit("no agent state file appeared")
        time.sleep(POLL_S)
    with open(found[0], encoding="utf-8") as state_file:
        state = json.load(state_file)
    print(
        json.dumps(
            {
                "subreaper": os.getpid(),
                "shell": shell.pid,
                "shell_sid": shell_sid,
                "shell_pgid": shell_pgid,
                "agent": state["pid"],
                "agent_ppid_now": int(stat_fields(state["pid"])[3]),  # field 4, ppid
                "agent_sid": state["sid"],
                "agent_pgid": state["pgid"],
            }
        )
    )
    return status


MODES = {"started": started, "settle": settle, "placement": placement}


def main() -> int:
    mode, target = sys.argv[1:3]
    command = sys.argv[sys.argv.index("--") + 1 :]
    return MODES[mode](Subreaper(), target, command)


if __name__ == "__main__":
    sys.exit(main())
