"""This process as the reaper of the orphans a launch leaves, the way a dyno's PID 1 is.

The launchers detach the agent on purpose: its first parent exits at once, and the kernel
hands it to the nearest ancestor marked PR_SET_CHILD_SUBREAPER (prctl(2)), else to PID 1. A
test that marks itself gets every process a launch started as its own child, running or
exited, by the time the launching process has exited: so "what did this launch start" has an
exact answer the moment the launch is over, with nothing to wait for.

Standard library only: the buildpack's bats helpers run this with the system's Python.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
POLL_S = 0.01


def set_child_subreaper(enabled: bool) -> None:
    """Mark or unmark this process as a child subreaper; OSError where prctl refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def children() -> set[int]:
    """This process's children, exited ones not yet reaped included (from every thread's
    /proc/self/task/<tid>/children: an orphan may be handed to any thread)."""
    found = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as listing:
                found.update(int(pid) for pid in listing.read().split())
        except FileNotFoundError:  # a thread that ended while we listed
            continue
    return found


def stat_fields(pid: int) -> list[bytes]:
    """/proc/<pid>/stat as bytes, index = field number - 1 (proc(5)), split after the last
    ')': a comm may hold any byte, ')' and spaces included. OSError when the pid is gone."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        head, _, tail = stat.read().rpartition(b")")
    pid_field, _, comm = head.partition(b" (")
    return [pid_field, comm, *tail.split()]


def is_running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        return stat_fields(pid)[2] != b"Z"  # field 3, state
    except OSError:
        return False


class Subreaper:
    """Marks this process a child subreaper until close(); orphans() are the children that
    came after, which the launches a test makes hand over."""

    def __init__(self) -> None:
        set_child_subreaper(True)
        self.before = children()

    def orphans(self) -> set[int]:
        """Every child since the start, running or exited and not yet reaped."""
        return children() - self.before

    def running(self) -> set[int]:
        return {pid for pid in self.orphans() if is_running(pid)}

    def wait_for_running(self, count: int, timeout: float = 10.0) -> set[int]:
        """The running orphans, once there are ``count`` of them (or what there is when
        ``timeout`` has passed)."""
        deadline = time.monotonic() + timeout
        while len(found := self.running()) < count and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return found

    def wait_for_exit(self, pids: set[int], timeout: float = 10.0) -> dict[int, int]:
        """Reap each of ``pids`` once it has exited; {pid: exit status}. AssertionError
        naming the ones still running after ``timeout``."""
        statuses: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while True:
            for pid in pids - set(statuses):
                reaped, status = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    statuses[pid] = os.waitstatus_to_exitcode(status)
            if len(statuses) == len(pids):
                return statuses
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout:g} s: {pids - set(statuses)}")
            time.sleep(POLL_S)

    def end_all(self, grace: float = 5.0) -> None:
        """SIGTERM to every orphan, SIGKILL to any still running after ``grace`` seconds, and
        every one reaped. They are our own unreaped children: their pids cannot be reused."""
        orphans = self.orphans()
        for pid in orphans:
            os.kill(pid, signal.SIGTERM)  # harmless to one that has exited
        try:
            self.wait_for_exit(orphans, grace)
        except AssertionError:
            for pid in self.running():
                os.kill(pid, signal.SIGKILL)
            self.wait_for_exit(self.orphans())

    def close(self) -> None:
        """End and reap every orphan, then stop being a subreaper."""
        try:
            self.end_all()
        finally:
            set_child_subreaper(False)
