"""Stands in for the agent (``dynostat.cli.main``) in launcher tests: takes the lock with the
real agent's own lock module (the tests copy agent/dynostat/lock.py beside this file), records
how it was started, then idles for a bounded time. It never decides to stay out: every start
the launcher makes is recorded, so a test sees exactly where the launcher skipped Python.

Each start appends its pid to <DYNOSTAT_TEST_STATE_DIR>/attempts; the one that gets the lock
writes <DYNOSTAT_TEST_STATE_DIR>/agent.<pid>.json with its pid, parent, session, process
group, open descriptors, standard streams, Python-related environment and import path.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from dynostat import lock  # the real agent's module, copied beside this stub by the tests

IDLE_SECONDS = 60


def open_descriptors() -> list[int]:
    found = []
    for fd in range(256):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


def main() -> None:
    descriptors = open_descriptors()
    state_dir = os.environ["DYNOSTAT_TEST_STATE_DIR"]
    # Every start is recorded, so tests can tell "started and yielded" from "never started".
    with open(os.path.join(state_dir, "attempts"), "a", encoding="utf-8") as attempts:
        attempts.write(f"{os.getpid()}\n")
    lock_path = sys.argv[sys.argv.index("--lock") + 1]
    held = lock.take(lock_path)
    if held is None:
        sys.exit(0)

    state = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sid": os.getsid(0),
        "pgid": os.getpgid(0),
        "descriptors": descriptors,
        "stdin": os.readlink("/proc/self/fd/0"),
        "stdout": os.readlink("/proc/self/fd/1"),
        "stderr": os.readlink("/proc/self/fd/2"),
        "python_environment": sorted(k for k in os.environ if k.startswith("PYTHON")),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "sys_path": sys.path,
        "argv": sys.argv[1:],
        "lock_file_held": held.fd is not None,
    }
    path = os.path.join(state_dir, f"agent.{os.getpid()}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(state, out)
    os.replace(path + ".tmp", path)
    if os.environ.get("DYNOSTAT_TEST_ANNOUNCE"):
        print("agent stub started", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(IDLE_SECONDS)
