"""``<proc>/<pid>/smaps_rollup``: what a process's memory really costs, PSS and USS.

RSS counts every page a process has mapped, shared or not: a worker forked from a parent that
loaded the app shares most of its pages with the parent and its siblings copy-on-write, and
RSS counts those shared pages again in every worker. The kernel's own figures do better:

- PSS (proportional set size): each page divided by the number of processes mapping it. The
  PSS of all processes adds up to the memory really used.
- USS (unique set size): ``Private_Clean + Private_Dirty``, the pages only this process maps:
  what its exit would free, and what one more worker like it would add.

``smaps_rollup`` (Linux 4.14 and newer) sums ``smaps`` over all mappings in one file. The
kernel walks the process's page tables to produce it, which costs far more than ``stat``: the
sampler reads it only for the processes that matter (the largest by RSS, and the workers and
parent of the largest worker group), and reads nothing else of them.
"""

from __future__ import annotations

from .numbers import MAX_DIGITS
from .procfs import MalformedError, read_at

KIB = 1024
PSS = b"\nPss:"
PRIVATE_CLEAN = b"\nPrivate_Clean:"
PRIVATE_DIRTY = b"\nPrivate_Dirty:"
# The file is well under 1 kB (about 25 lines); one read of this size gets all of it, and it
# is generated whole on the first read.
ROLLUP_READ_SIZE = 4096

# Every <pid>/smaps_rollup error reaches the error policy with this kind, so a vanished pid is
# skipped and an unreadable one is reported once for all pids.
PID_SMAPS = "pid_smaps"


def _kilobytes(data: bytes, key: bytes) -> int:
    """The value of the ``Key:   1234 kB`` line starting at ``key``, in bytes."""
    start = data.find(key)
    if start < 0:
        raise MalformedError(f"no {key.strip().decode()} line in smaps_rollup {data[:120]!r}")
    end = data.find(b"\n", start + len(key))
    fields = data[start + len(key) : end if end >= 0 else len(data)].split()
    if (
        len(fields) != 2
        or fields[1] != b"kB"
        or not fields[0].isdigit()
        or len(fields[0]) > MAX_DIGITS
    ):
        line = data[start + 1 : end if end >= 0 else len(data)]
        raise MalformedError(f"unexpected line in smaps_rollup {line[:120]!r}")
    return int(fields[0]) * KIB


def parse_smaps_rollup(data: bytes) -> tuple[int, int]:
    """(PSS, USS) in bytes from a ``smaps_rollup``; MalformedError when a line is missing.

    USS is ``Private_Clean + Private_Dirty``: pages no other process maps.
    """
    return (
        _kilobytes(data, PSS),
        _kilobytes(data, PRIVATE_CLEAN) + _kilobytes(data, PRIVATE_DIRTY),
    )


def read_smaps_rollup(dir_fd: int, pid: int) -> bytes:
    """The bytes of ``<pid>/smaps_rollup`` under the /proc open as ``dir_fd``: one read."""
    return read_at(dir_fd, pid, b"smaps_rollup", ROLLUP_READ_SIZE)
