"""``<proc>/<pid>/stat`` and ``<proc>/self/limits``: processes, threads, zombies and culprits.

The scan is the agent's hot path: one ``os.open``/``os.read`` per pid, bytes parsed after the
last ``)`` (``comm`` may itself hold spaces and parentheses), and a plain tuple per process.
Process objects are only built on request: a frozen dataclass per pid costs about 1 µs, a
sixth of what the kernel needs to produce the stat line. ``cmdline`` and ``environ`` are
never opened: they hold the app's secrets, and ``comm`` names a process well enough.
"""

from __future__ import annotations

import errno
import heapq
import os

from .sample import Culprit, Process

# Field indexes counted from the first field after the last ')', i.e. proc(5)'s field
# number minus 3, since (1) pid and (2) comm come before it.
STAT_STATE = 0  # (3) state: one letter, 'Z' for a zombie
STAT_PPID = 1  # (4) ppid
STAT_NUM_THREADS = 17  # (20) num_threads
STAT_RSS = 21  # (24) rss, in pages
# Splitting stops right after rss: the ~28 fields that follow are never needed.
_STAT_SPLITS = STAT_RSS + 1

# A stat line is at most ~1.2 kB (52 numeric fields and a 64-byte comm), and the fields read
# here all come within its first few hundred bytes, so one read of this size is always enough.
STAT_READ_SIZE = 4096

ZOMBIE = b"Z"

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# One scanned process: (pid, ppid, comm, state, num_threads, rss_pages); comm and state stay
# bytes until a process is named in the output.
ROW_PID, ROW_PPID, ROW_COMM, ROW_STATE, ROW_THREADS, ROW_RSS_PAGES = range(6)

# Every <pid>/stat error reaches on_error(path, error, kind) with this kind, so the sampler's
# single error policy (ErrorPolicy) can tell a vanished pid from a missing source file.
PID_STAT = "pid_stat"

# typing costs the agent ~2.4 MB of RSS at import (it pulls in re); the aliases below are
# only for readers and type checkers, so they never load it at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    StatRow = tuple[int, int, bytes, bytes, int, int]
    OnError = Callable[[str, BaseException, str], None]


class MalformedError(ValueError):
    """Kernel text that does not have the documented shape; the message shows the text."""


def is_vanished(error: BaseException) -> bool:
    """True when a process exited between listing ``<proc>`` and reading its files."""
    if isinstance(error, (FileNotFoundError, ProcessLookupError)):
        return True
    return isinstance(error, OSError) and error.errno == errno.ESRCH


def read_file(path: str) -> bytes:
    """The whole file as bytes, with one open and as few reads as it takes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def parse_stat_row(data: bytes) -> StatRow:
    """Parse one stat line into a StatRow; raise MalformedError when it is not one."""
    comm_start = data.find(b"(")
    comm_end = data.rfind(b")")
    if comm_start < 1 or comm_end < comm_start:
        raise MalformedError(f"no '(comm)' in stat line {data[:80]!r}")
    fields = data[comm_end + 2 :].split(b" ", _STAT_SPLITS)
    try:
        state = fields[STAT_STATE]
        row = (
            int(data[: comm_start - 1]),
            int(fields[STAT_PPID]),
            data[comm_start + 1 : comm_end],
            state,
            int(fields[STAT_NUM_THREADS]),
            int(fields[STAT_RSS]),
        )
    except (ValueError, IndexError):
        raise MalformedError(f"unexpected fields in stat line {data[:80]!r}") from None
    if len(state) != 1:
        raise MalformedError(f"state is not one letter in stat line {data[:80]!r}")
    return row


def decode_comm(comm: bytes) -> str:
    """comm is whatever bytes a program set (prctl PR_SET_NAME); never fail on them."""
    return comm.decode("utf-8", "replace")


def row_to_process(row: StatRow, page_size: int = PAGE_SIZE) -> Process:
    pid, ppid, comm, state, threads, rss_pages = row
    return Process(
        pid=pid,
        ppid=ppid,
        comm=decode_comm(comm),
        state=state.decode("ascii", "replace"),
        threads=threads,
        rss_bytes=rss_pages * page_size,
    )


def parse_stat(data: bytes, page_size: int = PAGE_SIZE) -> Process:
    """Parse the bytes of one ``<proc>/<pid>/stat``; raise MalformedError when malformed."""
    return row_to_process(parse_stat_row(data), page_size)


class ProcessTable:
    """One scan: a row per process that could be read, and the totals the dyno limit counts."""

    __slots__ = ("rows", "threads", "zombies")

    def __init__(self, rows: list[StatRow], threads: int, zombies: int) -> None:
        self.rows = rows
        self.threads = threads  # sum of num_threads: zombies count 1, as in the pids cgroup
        self.zombies = zombies

    @property
    def processes(self) -> int:
        return len(self.rows)


def scan_processes(proc_root: str, on_error: OnError) -> ProcessTable:
    """Read every ``<proc_root>/<pid>/stat`` once.

    Per-pid trouble (a vanished pid, EACCES, malformed text) goes to ``on_error(path, error,
    PID_STAT)`` and the pid is left out; listing ``proc_root`` itself may raise OSError.
    """
    rows: list[StatRow] = []
    append = rows.append
    # Local names: this loop runs once per process on every tick.
    open_, read, close, parse = os.open, os.read, os.close, parse_stat_row
    read_only = os.O_RDONLY
    threads = zombies = 0
    prefix = proc_root + "/"
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        path = prefix + name + "/stat"
        try:
            fd = open_(path, read_only)
            try:
                data = read(fd, STAT_READ_SIZE)
            finally:
                close(fd)
            row = parse(data)
        except (OSError, ValueError) as error:
            on_error(path, error, PID_STAT)
            continue
        append(row)
        threads += row[ROW_THREADS]
        if row[ROW_STATE] == ZOMBIE:
            zombies += 1
    return ProcessTable(rows, threads, zombies)


def zombie_parents(rows: list[StatRow], top: int) -> list[Culprit]:
    """The ``top`` parents with most zombie children: the processes that never wait()."""
    counts: dict = {}
    for row in rows:
        if row[ROW_STATE] == ZOMBIE:
            ppid = row[ROW_PPID]
            counts[ppid] = counts.get(ppid, 0) + 1
    if not counts:
        return []
    best = heapq.nlargest(top, counts.items(), key=lambda item: item[1])
    wanted = {ppid for ppid, _ in best}
    # The parent may be outside this pid namespace (ppid 0) or gone by now: then '?'.
    comms = {row[ROW_PID]: row[ROW_COMM] for row in rows if row[ROW_PID] in wanted}
    return [Culprit(ppid, decode_comm(comms.get(ppid, b"?")), count) for ppid, count in best]


def top_threads(rows: list[StatRow], top: int) -> list[Culprit]:
    """The ``top`` processes with most threads, leaving out single-threaded ones."""
    best = heapq.nlargest(top, rows, key=lambda row: row[ROW_THREADS])
    return [
        Culprit(row[ROW_PID], decode_comm(row[ROW_COMM]), row[ROW_THREADS])
        for row in best
        if row[ROW_THREADS] > 1
    ]


def top_rss(rows: list[StatRow], top: int, page_size: int = PAGE_SIZE) -> list[Culprit]:
    """The ``top`` processes by resident memory, in bytes, leaving out those with none."""
    best = heapq.nlargest(top, rows, key=lambda row: row[ROW_RSS_PAGES])
    return [
        Culprit(row[ROW_PID], decode_comm(row[ROW_COMM]), row[ROW_RSS_PAGES] * page_size)
        for row in best
        if row[ROW_RSS_PAGES] > 0
    ]


def parse_max_processes(data: bytes) -> int | None:
    """The soft "Max processes" limit (RLIMIT_NPROC) from ``<proc>/self/limits``.

    ``unlimited`` is None. The line looks like ``Max processes  256  256  processes``.
    """
    for line in data.splitlines():
        if line.startswith(b"Max processes"):
            fields = line[len(b"Max processes") :].split()
            if not fields:
                break
            if fields[0] == b"unlimited":
                return None
            try:
                limit = int(fields[0])
            except ValueError:
                break
            if limit < 0:
                break
            return limit
    raise MalformedError(f"no usable 'Max processes' line in {data[:200]!r}")


def read_max_processes(proc_root: str) -> int | None:
    return parse_max_processes(read_file(proc_root + "/self/limits"))
