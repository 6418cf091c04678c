"""``<proc>/<pid>/stat`` and ``<proc>/self/limits``: processes, threads, zombies and culprits.

The scan is the agent's hot path: one ``os.open``/``os.read`` per pid, bytes parsed after the
last ``)`` (``comm`` may itself hold spaces and parentheses) into a plain tuple that is dropped
at once unless it ranks among the culprits, so a tick's memory does not grow with the number
of processes and no object is built per pid (one would cost about 1 µs, a sixth of what the
kernel needs to produce the stat line). ``cmdline`` and ``environ`` are never opened: they
hold the app's secrets, and ``comm`` names a process well enough.
"""

from __future__ import annotations

import errno
import heapq
import math
import os

from .sample import Culprit

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


def read_at(dir_fd: int, pid: int, name: bytes, size: int = STAT_READ_SIZE) -> bytes:
    """``<pid>/<name>`` under the /proc open as ``dir_fd``, with one read of ``size`` bytes."""
    fd = os.open(b"%d/%s" % (pid, name), os.O_RDONLY, dir_fd=dir_fd)
    try:
        return os.read(fd, size)
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


# The longest name the kernel shows: a comm is at most 15 bytes (TASK_COMM_LEN), and kernel
# threads' names in stat reach 64 (TASK_COMM_EXT_LEN). Only a fake tree (--proc-root) has
# longer ones, and they are cut here so one name cannot crowd a line.
MAX_COMM_BYTES = 64


def decode_comm(comm: bytes) -> str:
    """comm is whatever bytes a program set (prctl PR_SET_NAME); never fail on them.

    Bytes that are not UTF-8 become U+FFFD, each maximal invalid sequence one, as every lossy
    UTF-8 decoder does: the name stays readable and the output stays valid UTF-8 and JSON.
    """
    return comm[:MAX_COMM_BYTES].decode("utf-8", "replace")


class Ranking:
    """The ``size`` largest counts offered, with their rows: O(size) memory however many
    processes there are. Ties go to the process offered first (the lower pid in a scan)."""

    __slots__ = ("heap", "minimum", "size")

    def __init__(self, size: int, minimum: int) -> None:
        self.size = max(size, 0)
        self.minimum = minimum  # counts below this are never ranked (1 thread, 0 rss)
        self.heap: list[tuple[int, int, StatRow]] = []

    def threshold(self) -> float:
        """The smallest count that could still get in; the scan skips the rest cheaply."""
        if self.size == 0:
            return math.inf
        if len(self.heap) < self.size:
            return self.minimum
        return self.heap[0][0] + 1

    def offer(self, count: int, row: StatRow) -> float:
        entry = (count, -row[ROW_PID], row)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, entry)
        else:
            heapq.heappushpop(self.heap, entry)
        return self.threshold()

    def culprits(self, scale: int = 1) -> list[Culprit]:
        """Largest first, each count multiplied by ``scale`` (the page size for rss)."""
        return [
            Culprit(row[ROW_PID], decode_comm(row[ROW_COMM]), count * scale)
            for count, _, row in sorted(self.heap, reverse=True)
        ]


# The workers of a group whose pids the scan keeps (the lowest, as /proc lists them first): far
# more workers than any dyno runs; the rest of a larger group (a fork leak) are only counted.
MAX_MEMBERS = 64


class WorkerGroup:
    """Two or more live processes with the same parent and the same comm: a preforking
    server's workers (puma, unicorn, gunicorn, uwsgi, resque, celery prefork, node cluster).

    ``count`` is how many there are; ``members`` the pids of at most MAX_MEMBERS of them,
    lowest (oldest, as pids are handed out) first.
    """

    __slots__ = ("comm", "count", "members", "ppid")

    def __init__(self, ppid: int, comm: bytes, count: int, members: list[int]) -> None:
        self.ppid = ppid
        self.comm = comm
        self.count = count
        self.members = members


class ProcessTable:
    """One scan: the totals the dyno limit counts, and what the culprit lists need."""

    __slots__ = (
        "group",
        "most_rss",
        "most_threads",
        "processes",
        "threads",
        "zombie_counts",
        "zombies",
    )

    def __init__(self, top: int, rss_size: int | None = None) -> None:
        self.processes = 0
        self.threads = 0  # sum of num_threads: a zombie counts 1, as in the pids cgroup
        self.zombies = 0
        self.zombie_counts: dict[int, int] = {}  # ppid -> zombies it has not waited for
        self.most_threads = Ranking(top, minimum=2)
        self.most_rss = Ranking(top if rss_size is None else rss_size, minimum=1)
        self.group: WorkerGroup | None = None  # the worker group with the most rss


def scan_processes(
    proc_root: str,
    on_error: OnError,
    top: int = 3,
    dir_fd: int | None = None,
    rss_size: int | None = None,
) -> ProcessTable:
    """Read every ``<proc_root>/<pid>/stat`` once, ranking culprits as it goes.

    Files are opened relative to a descriptor of ``proc_root`` (``dir_fd``, or one opened
    here), so the kernel resolves two path components per file instead of three or more.
    ``rss_size`` ranks more processes by rss than ``top`` (the sampler follows more of them).
    Per-pid trouble (a vanished pid, EACCES, malformed text) goes to ``on_error(path, error,
    PID_STAT)`` and the pid is left out; opening or listing ``proc_root`` may raise OSError.
    """
    table = ProcessTable(top, rss_size)
    if dir_fd is not None:
        _scan(table, proc_root, dir_fd, on_error)
        return table
    own_fd = os.open(proc_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _scan(table, proc_root, own_fd, on_error)
    finally:
        os.close(own_fd)
    return table


def _scan(table: ProcessTable, proc_root: str, dir_fd: int, on_error: OnError) -> None:  # noqa: PLR0912, PLR0915 - the hot loop, inlined
    zombie_counts = table.zombie_counts
    most_threads, most_rss = table.most_threads, table.most_rss
    threads_threshold, rss_threshold = most_threads.threshold(), most_rss.threshold()
    # The worker groups: hash((ppid, comm)) -> rss pages and pid of the one process seen so
    # far, packed in one int, then [rss pages summed, ppid, comm, count, highest pid kept,
    # pid, pid, ...] from the second on (at most MAX_MEMBERS pids). Keys are hashes and values
    # packed ints because the dict has an entry per distinct (parent, name) pair, a thousand
    # on a dyno of a thousand distinct processes, and this keeps each to about 100 bytes (two
    # ints) instead of 250; it is dropped when the scan ends. Two pairs with one 64-bit hash
    # would count as one group: about one chance in 10^13 with a thousand pairs, and comms
    # cannot be chosen to make it happen, since bytes hashes are keyed at random per process
    # (PYTHONHASHSEED could fix the key, and then the worst a chosen comm can do is merge two
    # counts).
    groups: dict[int, int | list] = {}
    find_group = groups.get
    several: list[list] = []  # the groups of two or more, so that only they are compared
    # Local names: this loop runs once per process on every tick, and what it does per
    # process in Python is what the agent costs beyond the kernel's own work. So the parse is
    # written out here instead of calling parse_stat_row (a call and a row tuple per process
    # cost more than the parse itself), converts only the fields every process needs, and
    # leaves ppid as bytes unless the process is a zombie. Rows that are ranked are parsed
    # again in full by parse_stat_row, which checks every field it returns.
    open_, read, close, read_only = os.open, os.read, os.close, os.O_RDONLY
    processes = threads = zombies = 0
    # Names as bytes: isdigit() then means ASCII digits only, and the path needs no encoding.
    # scandir reads the directory as it goes instead of building a list of every pid first.
    with os.scandir(os.fsencode(proc_root)) as entries:
        for entry in entries:
            name = entry.name
            if not name.isdigit():
                continue
            try:
                fd = open_(name + b"/stat", read_only, dir_fd=dir_fd)
                try:
                    data = read(fd, STAT_READ_SIZE)
                finally:
                    close(fd)
                comm_start = data.find(b"(")
                comm_end = data.rfind(b")")
                fields = data[comm_end + 2 :].split(b" ", _STAT_SPLITS)
                state = fields[STAT_STATE]
                count = fields[STAT_NUM_THREADS]
                count = 1 if count == b"1" else int(count)  # most processes have one thread
                rss_pages = int(fields[STAT_RSS])
                if comm_start < 1 or comm_end < comm_start or len(state) != 1:
                    raise ValueError
            except OSError as error:
                on_error(_path(proc_root, name), error, PID_STAT)
                continue
            except (ValueError, IndexError):
                error = MalformedError(f"unexpected stat line {data[:80]!r}")
                on_error(_path(proc_root, name), error, PID_STAT)
                continue
            processes += 1
            threads += count
            if state == ZOMBIE:
                # A zombie has one thread and no memory: it ranks nowhere, works for nobody.
                zombies += 1
                try:
                    ppid = int(fields[STAT_PPID])
                except ValueError:
                    continue
                zombie_counts[ppid] = zombie_counts.get(ppid, 0) + 1
                continue
            if count >= threads_threshold or rss_pages >= rss_threshold:
                try:
                    row = parse_stat_row(data)
                except MalformedError as error:
                    on_error(_path(proc_root, name), error, PID_STAT)
                    row = None
                if row is not None:
                    if count >= threads_threshold:
                        threads_threshold = most_threads.offer(count, row)
                    if rss_pages >= rss_threshold:
                        rss_threshold = most_rss.offer(rss_pages, row)
            if not rss_pages:
                continue  # a kernel thread: no memory of its own, no requests to serve
            comm = data[comm_start + 1 : comm_end]
            key = hash((fields[STAT_PPID], comm))
            members = find_group(key)
            if members is None:
                groups[key] = rss_pages << _PID_BITS | int(name)
            elif members.__class__ is int:
                first, pid = members & _PID_MASK, int(name)
                members = [
                    (members >> _PID_BITS) + rss_pages,
                    fields[STAT_PPID],
                    comm,
                    2,
                    max(first, pid),
                    first,
                    pid,
                ]
                groups[key] = members
                several.append(members)
            else:
                members[0] += rss_pages
                members[3] += 1
                pid = int(name)
                if len(members) < _FIRST_MEMBER + MAX_MEMBERS:
                    members.append(pid)
                    members[4] = max(members[4], pid)
                elif pid < members[4]:
                    _keep_lowest(members, pid)
    table.processes, table.threads, table.zombies = processes, threads, zombies
    table.group = _largest_group(several)


# Where a group's pids start in its list: [rss pages summed, ppid, comm, count, highest pid
# kept, pid, ...].
_FIRST_MEMBER = 5


def _keep_lowest(members: list, pid: int) -> None:
    """Put ``pid`` in place of the highest pid kept, when a group already keeps MAX_MEMBERS:
    the group keeps its lowest pids. /proc lists pids in order, so on a dyno the scan never
    calls this (a later pid is never lower); a tree listed in another order still gets the
    lowest."""
    members[members.index(members[4], _FIRST_MEMBER)] = pid
    members[4] = max(members[_FIRST_MEMBER:])


# A pid packed with an rss below it: pids are at most 2^22 (PID_MAX_LIMIT, kernel/pid.c).
_PID_BITS = 22
_PID_MASK = (1 << _PID_BITS) - 1


def _path(proc_root: str, name: bytes) -> str:
    return f"{proc_root}/{name.decode('ascii')}/stat"


def _largest_group(several: list[list]) -> WorkerGroup | None:
    """The group with the most rss (then the most workers, the lower ppid), of the groups of
    two or more as the scan kept them: [rss pages summed, ppid, comm, count, highest, pid, ...]."""
    best: tuple[int, int, int] | None = None
    best_group = None
    for members in several:
        try:
            ppid = int(members[1])
        except ValueError:
            continue  # only a made-up stat line has a ppid that is not a number
        if ppid <= 0:
            continue  # parents outside this pid namespace are not one parent
        rank = (members[0], members[3], -ppid)
        if best is None or rank > best:
            best, best_group = rank, (ppid, members)
    if best_group is None:
        return None
    ppid, members = best_group
    # Oldest first (lowest pids; /proc lists them so, a copied tree need not).
    return WorkerGroup(ppid, members[2], members[3], sorted(members[_FIRST_MEMBER:]))


def zombie_parents(
    proc_root: str, zombie_counts: dict[int, int], top: int, on_error: OnError
) -> list[Culprit]:
    """The ``top`` parents with most zombie children: the processes that never wait().

    Their comm is read again from their own stat (at most ``top`` reads), since the scan keeps
    no per-pid names. A parent outside this pid namespace (ppid 0) or gone by now is '?'.
    """
    best = heapq.nlargest(top, zombie_counts.items(), key=lambda item: item[1])
    culprits = []
    for ppid, count in best:
        comm = b"?"
        path = f"{proc_root}/{ppid}/stat"
        try:
            comm = parse_stat_row(read_file(path))[ROW_COMM]
        except (OSError, ValueError) as error:
            on_error(path, error, PID_STAT)
        culprits.append(Culprit(ppid, decode_comm(comm), count))
    return culprits


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
