"""One tick's reading of the kernel: load, memory, tasks and culprits, each source on its own.

``Sampler.sample`` never raises for kernel trouble. What an error means is decided in one
place, ``ErrorPolicy.handle``: a pid that vanished mid-scan is skipped silently, a missing
source file leaves its metric out, and an unreadable or malformed file is reported once (with
its path) and counted, so a broken file cannot turn into a log line per tick.

``tasks`` is the pids cgroup's own count where it is readable, since that is what the dyno's
limit counts; /proc may show less (``hidepid``) or nothing at all, which is said once.

Memory beyond the cgroup's totals comes from the same scan: the largest worker group
(processes with one parent and one comm), the PSS and USS of its workers, of its parent and of
the processes with most RSS (``smaps_rollup``, for those few processes only and on every
third tick: see PSS_EVERY_TICKS), how many workers the quota holds, and, when the cgroup's
OOM kill count rose, the process the kernel most likely killed.
"""

from __future__ import annotations

import os

from . import procfs, smaps
from .cgroup import CgroupReader, parse_self_cgroup
from .loadavg import parse_loadavg
from .procfs import PID_STAT, is_vanished, read_file
from .ratelimit import ONCE
from .sample import Culprit, LoadAvg, Memory, Sample, Tasks, Workers

# How many processes the rss ranking follows, at least: the culprits the output names are the
# first DYNOSTAT_TOP of them; the rest are the candidates for the OOM killer's next victim,
# which is, by and large, the process with most memory.
OOM_CANDIDATES = 8
# smaps_rollup makes the kernel walk each process's page tables: about 10 to 30 µs per MB it
# holds (docs/performance.md), 9 to 12 ms for a worker of 1 GB. Read every third tick (once a minute
# at the default interval, which is as fast as such figures move), and at once when the worker
# group changes, it costs a dyno a third of that; the ticks between use the last figures.
PSS_EVERY_TICKS = 3

# typing costs the agent ~2.4 MB of RSS at import (it pulls in re); the aliases below are
# only for readers and type checkers, so they never load it at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .cgroup import Parse
    from .fallback import FallbackSampler
    from .records import Report


def _ignore_report(fields: dict[str, Any], key: object = None, every: float | None = None) -> None:
    """The default report: a Sampler built without an output has nowhere to say things."""


# The kinds of errors that concern one pid's file, where a vanished pid is no error.
_PER_PID = frozenset((PID_STAT, smaps.PID_SMAPS))


class ErrorPolicy:
    """Decides what each error means, and reports each kind of trouble once.

    ``kind`` groups paths that fail for one reason (PID_STAT for every ``<pid>/stat``), so
    the keys already reported stay bounded however many pids come and go.
    """

    def __init__(self, report: Report) -> None:
        self._report = report

    def handle(self, path: str, error: BaseException, kind: str | None = None) -> None:
        if kind in _PER_PID and is_vanished(error):
            # The process exited (or, for smaps_rollup, has no memory of its own: a zombie);
            # its absence is the truth, not an error.
            return
        if isinstance(error, ValueError):  # MalformedError, or int() of a weird pid name
            event, message = "source_malformed", str(error)
        elif isinstance(error, PermissionError):
            event, message = "source_unreadable", "permission denied"
        elif isinstance(error, OSError):
            event, message = "source_unreadable", error.strerror or type(error).__name__
        else:
            event, message = "source_failed", f"{type(error).__name__}: {error}"
        self._report(
            {"at": "error", "event": event, "path": path, "error": message},
            key=(event, kind or path),
            every=ONCE,
        )

    def say_once(self, key: str, fields: dict[str, Any]) -> None:
        """Report ``fields`` the first time ``key`` comes up, and never again."""
        self._report(fields, key=("say_once", key), every=ONCE)

    def read(self, path: str, parse: Parse) -> Any:
        """Read and parse one source file; None when it is missing, unreadable or malformed."""
        try:
            return parse(read_file(path))
        except FileNotFoundError:
            return None  # absent is not zero: the metric is left out, silently
        except (OSError, ValueError) as error:
            self.handle(path, error)
            return None


class Sampler:
    """Reads ``<proc_root>`` and ``<cgroup_root>`` once per ``sample()`` call."""

    def __init__(
        self,
        proc_root: str = "/proc",
        cgroup_root: str = "/sys/fs/cgroup",
        top: int = 3,
        report: Report | None = None,
        warn_memory_pct: int = 90,
    ) -> None:
        self.proc_root = proc_root.rstrip("/") or "/"
        self.cgroup_root = cgroup_root.rstrip("/") or "/"
        self.top = top
        self.warn_memory_pct = warn_memory_pct  # the share of the quota workers must fit in
        self.errors = ErrorPolicy(_ignore_report if report is None else report)
        self._cgroup: CgroupReader | None = None
        # Whether the previous sample saw fewer tasks in /proc than in the pids cgroup.
        self._short_before = False
        # The previous sample's processes with most rss, and the cgroup's OOM kill count then:
        # all the state naming an OOM victim needs (OOM_CANDIDATES processes at most).
        self._largest: list[Culprit] = []
        self._oom_kills: int | None = None
        # False once smaps_rollup turned out to be missing (Linux before 4.14).
        self._pss = True
        # Ticks so far, for the PSS cadence, and the last measure of the worker group:
        # (its key: parent pid, comm and worker count; the parent's comm; worker_pss,
        # worker_uss, parent_pss), kept for the ticks that do not read smaps_rollup.
        self._ticks = 0
        self._measured: tuple = (None, "?", None, None, None)

    def _cgroups(self) -> CgroupReader:
        # The agent's cgroup does not change while it runs, so it is looked up once.
        if self._cgroup is None:
            self_cgroup = self.errors.read(self.proc_root + "/self/cgroup", parse_self_cgroup)
            self._cgroup = CgroupReader(self.cgroup_root, self_cgroup or {}, self.errors.read)
        return self._cgroup

    def load(self) -> LoadAvg | None:
        return self.errors.read(self.proc_root + "/loadavg", parse_loadavg)

    def memory(self) -> Memory | None:
        return self._cgroups().memory()

    def sample(self, wall_time: float) -> Sample:
        sample = Sample(wall_time=wall_time)
        # Each source is guarded on its own so that one broken source never costs the rest.
        # The expected trouble (missing, unreadable, malformed files) is handled inside; the
        # blind excepts only turn a bug into one reported line instead of a lost tick.
        try:
            sample.load = self.load()
        except Exception as error:  # noqa: BLE001 - see above
            self.errors.handle(self.proc_root + "/loadavg", error, "load")
        try:
            sample.memory = self.memory()
        except Exception as error:  # noqa: BLE001 - see above
            self.errors.handle(self.cgroup_root, error, "memory")
        # Every per-pid file of the tick is opened relative to this descriptor of /proc.
        dir_fd: int | None = None
        try:
            dir_fd = os.open(self.proc_root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            self.errors.handle(self.proc_root, error, "proc_listing")
        try:
            table = None
            try:
                table = self._fill_tasks(sample, dir_fd)
            except Exception as error:  # noqa: BLE001 - see above
                self.errors.handle(self.proc_root, error, "tasks")
            if table is not None and dir_fd is not None:
                try:
                    self._fill_processes_memory(sample, table, dir_fd)
                except Exception as error:  # noqa: BLE001 - see above
                    self.errors.handle(self.proc_root, error, "process_memory")
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        return sample

    def _fill_tasks(self, sample: Sample, dir_fd: int | None) -> procfs.ProcessTable | None:
        """Tasks, their limit and the thread and zombie culprits; the scan, for what follows."""
        table: procfs.ProcessTable | None = None
        if dir_fd is not None:
            try:
                table = procfs.scan_processes(
                    self.proc_root,
                    self.errors.handle,
                    self.top,
                    dir_fd,
                    rss_size=max(self.top, OOM_CANDIDATES),
                )
            except OSError as error:
                self.errors.handle(self.proc_root, error, "proc_listing")
        max_processes = self.errors.read(
            self.proc_root + "/self/limits", procfs.parse_max_processes
        )
        pids_max, pids_current = self._cgroups().pids()
        limits = [limit for limit in (max_processes, pids_max) if limit is not None]
        limit = min(limits) if limits else None
        if table is not None and table.processes == 0:
            # A live /proc always shows the agent itself: an empty one is not the dyno's
            # (an empty --proc-root), and zeros read from it would be made up.
            self.errors.say_once(
                "proc_empty", {"at": "warn", "event": "proc_empty", "path": self.proc_root}
            )
            table = None
        self._check_restricted(table, pids_current)
        # The pids cgroup's own count is what the limit counts; /proc may show less.
        tasks = pids_current
        if tasks is None and table is not None:
            tasks = table.threads
        if table is None:
            if tasks is not None or limit is not None:
                sample.tasks = Tasks(
                    tasks=tasks,
                    processes=None,
                    threads=None,
                    zombies=None,
                    limit=limit,
                )
            return None
        sample.tasks = Tasks(
            tasks=tasks,
            processes=table.processes,
            threads=table.threads,
            zombies=table.zombies,
            limit=limit,
        )
        sample.top_threads = table.most_threads.culprits()
        sample.zombie_parents = procfs.zombie_parents(
            self.proc_root, table.zombie_counts, self.top, self.errors.handle
        )
        return table

    # -- memory per process ----------------------------------------------------------------

    def _fill_processes_memory(
        self, sample: Sample, table: procfs.ProcessTable, dir_fd: int
    ) -> None:
        """top_rss, the OOM victim, the worker group, and, on the ticks PSS is read, top_pss
        and the workers' figures (kept for the ticks in between)."""
        largest = table.most_rss.culprits(scale=procfs.PAGE_SIZE)
        sample.top_rss = largest[: self.top]
        self._name_oom_victim(sample, dir_fd)
        self._largest = largest
        group = table.group
        key = (group.ppid, group.comm, group.count) if group is not None else None
        # PSS every PSS_EVERY_TICKS ticks, and at once for a group not measured yet.
        due = self._ticks % PSS_EVERY_TICKS == 0 or key != self._measured[0]
        self._ticks += 1
        if due and self._pss:
            self._measure(sample, group, key, dir_fd)
        if group is None:
            return
        if key != self._measured[0]:
            # Not measured (smaps_rollup missing): the group with its count alone.
            parent_comm = self._comm(dir_fd, group.ppid, None)
            self._measured = (key, parent_comm, None, None, None)
        _, parent_comm, worker_pss, worker_uss, parent_pss = self._measured
        workers = group.count
        sample.workers = Workers(
            pid=group.ppid,
            comm=parent_comm,
            workers=workers,
            worker_pss=worker_pss,
            worker_uss=worker_uss,
            parent_pss=parent_pss,
            fits=workers_that_fit(workers, worker_uss, sample.memory, self.warn_memory_pct),
        )

    def _measure(
        self,
        sample: Sample,
        group: procfs.WorkerGroup | None,
        key: tuple | None,
        dir_fd: int,
    ) -> None:
        """Read smaps_rollup of the processes with most rss, of the group's workers (the at
        most procfs.MAX_MEMBERS whose pids the scan kept; few enough that a group of hundreds,
        a fork leak, cannot make a tick slow) and of its parent: top_pss, and the group's
        figures."""
        comms = {culprit.pid: culprit.comm for culprit in sample.top_rss}
        members: list[int] = []
        if group is not None:
            members = group.members
            comms.update(dict.fromkeys(members, procfs.decode_comm(group.comm)))
            comms[group.ppid] = self._comm(dir_fd, group.ppid, comms.get(group.ppid))
        figures: dict[int, tuple[int, int]] = {}
        for pid, comm in comms.items():
            rollup = self._rollup(dir_fd, pid, comm)
            if not self._pss:
                return  # the kernel has no smaps_rollup: nothing to measure, ever
            if rollup is not None:
                figures[pid] = rollup
        ranked = sorted(figures.items(), key=lambda item: (-item[1][0], item[0]))
        sample.top_pss = [Culprit(pid, comms[pid], pss) for pid, (pss, _) in ranked[: self.top]]
        if group is None:
            self._measured = (None, "?", None, None, None)
            return
        read = [figures[pid] for pid in members if pid in figures]
        parent = figures.get(group.ppid)
        self._measured = (
            key,
            comms[group.ppid],
            sum(pss for pss, _ in read) // len(read) if read else None,
            max(uss for _, uss in read) if read else None,
            parent[0] if parent is not None else None,
        )

    def _comm(self, dir_fd: int, pid: int, known: str | None) -> str:
        """A process's comm: known already, or read from its stat; '?' when it cannot be."""
        if known is not None:
            return known
        if pid <= 0:
            return "?"  # outside this pid namespace
        try:
            row = procfs.parse_stat_row(procfs.read_at(dir_fd, pid, b"stat"))
            return procfs.decode_comm(row[procfs.ROW_COMM])
        except (OSError, ValueError) as error:
            self.errors.handle(f"{self.proc_root}/{pid}/stat", error, PID_STAT)
            return "?"

    def _rollup(self, dir_fd: int, pid: int, comm: str) -> tuple[int, int] | None:
        """(PSS, USS) of one process, or None; says once when the kernel has no such file."""
        try:
            return smaps.parse_smaps_rollup(smaps.read_smaps_rollup(dir_fd, pid))
        except FileNotFoundError:
            # Unless the process has just exited, which is nothing to say:
            if self._exists(dir_fd, pid):
                # The process is there but its smaps_rollup is not: a kernel before 4.14.
                self._pss = False
                self.errors.say_once(
                    "pss_unavailable",
                    {
                        "at": "warn",
                        "event": "pss_unavailable",
                        "path": f"{self.proc_root}/{pid}/smaps_rollup",
                        "reason": "no smaps_rollup (Linux 4.14 or newer has it)",
                    },
                )
        except PermissionError:
            # Another user's process (a dyno's init, a host's daemons) is never the agent's
            # to read: nothing to say. One of its own user's that the kernel refuses (a
            # process that made itself undumpable, a security module) leaves the figures
            # incomplete, which is said once, as a warning like proc_restricted: the agent
            # is not at fault and can do nothing about it.
            if self._owner(dir_fd, pid) == os.geteuid():
                self.errors.say_once(
                    "pss_unreadable",
                    {
                        "at": "warn",
                        "event": "pss_unreadable",
                        "pid": pid,
                        "comm": comm,
                        "path": f"{self.proc_root}/{pid}/smaps_rollup",
                    },
                )
        except (OSError, ValueError) as error:
            self.errors.handle(f"{self.proc_root}/{pid}/smaps_rollup", error, smaps.PID_SMAPS)
        return None

    @staticmethod
    def _owner(dir_fd: int, pid: int) -> int | None:
        try:
            return os.stat(b"%d" % pid, dir_fd=dir_fd).st_uid
        except OSError:
            return None

    @staticmethod
    def _exists(dir_fd: int, pid: int) -> bool:
        try:
            os.stat(b"%d/stat" % pid, dir_fd=dir_fd)
        except OSError:
            return False
        return True

    def _name_oom_victim(self, sample: Sample, dir_fd: int) -> None:
        """When the OOM kill count rose, the process with most rss last time that is gone."""
        kills = sample.memory.oom_kills if sample.memory is not None else None
        previous, self._oom_kills = self._oom_kills, kills
        if kills is None or previous is None or kills <= previous:
            return
        for culprit in self._largest:
            if self._gone(dir_fd, culprit):
                sample.oom_victim = culprit
                return

    def _gone(self, dir_fd: int, culprit: Culprit) -> bool:
        """Whether a process exited: no stat any more, a zombie, or its pid reused."""
        try:
            row = procfs.parse_stat_row(procfs.read_at(dir_fd, culprit.pid, b"stat"))
        except OSError as error:
            return is_vanished(error)
        except ValueError:
            return False
        return row[procfs.ROW_STATE] == procfs.ZOMBIE or (
            procfs.decode_comm(row[procfs.ROW_COMM]) != culprit.comm
        )

    def _check_restricted(
        self, table: procfs.ProcessTable | None, cgroup_tasks: int | None
    ) -> None:
        """Say once when /proc shows clearly fewer tasks than the pids cgroup counts.

        That is /proc mounted with ``hidepid`` (the agent sees only its own user's
        processes), or tasks of the dyno outside the agent's pid namespace. Tasks starting
        and exiting between the scan and the read of ``pids.current`` make a small shortfall
        now and then, so it must exceed ``restricted_slack`` and still be there on the next
        sample, which must have both numbers too.
        """
        if table is None or cgroup_tasks is None:
            self._short_before = False
            return
        short = cgroup_tasks - table.threads > restricted_slack(cgroup_tasks)
        confirmed = short and self._short_before
        self._short_before = short
        if confirmed:
            self.errors.say_once(
                "proc_restricted",
                {
                    "at": "warn",
                    "event": "proc_restricted",
                    "visible_tasks": table.threads,
                    "cgroup_tasks": cgroup_tasks,
                    "visible_processes": table.processes,
                    "path": self.proc_root,
                },
            )


def workers_that_fit(
    workers: int, worker_uss: int | None, memory: Memory | None, warn_memory_pct: int
) -> int | None:
    """How many workers the quota holds: the workers there are, plus as many more as fit in
    what is left below ``warn_memory_pct`` % of the quota, each adding ``worker_uss``.

    ``fits = workers + floor((quota * pct / 100 - rss - swap) / worker_uss)``, never below 0;
    None without a quota, the cgroup's rss, or a worker's USS.
    """
    if memory is None or memory.quota is None or memory.rss is None or not worker_uss:
        return None
    used = memory.rss + (memory.swap or 0)
    # In whole numbers, so the floor is exact: (quota * pct - 100 * used) / (100 * uss).
    more = (memory.quota * warn_memory_pct - 100 * used) // (100 * worker_uss)
    return max(0, workers + more)


def restricted_slack(cgroup_tasks: int) -> int:
    """How many more tasks the pids cgroup may count than /proc shows without meaning that
    /proc hides any: a few, plus 1% for the churn of a large dyno during one scan."""
    return 2 + cgroup_tasks // 100


def make_sampler(
    proc_root: str = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    top: int = 3,
    report: Report | None = None,
    warn_memory_pct: int = 90,
) -> Sampler | FallbackSampler:
    """A Sampler over ``proc_root``, or the psutil FallbackSampler where there is no procfs
    (a developer's Mac), which says so once through ``report``."""
    if os.path.isdir(proc_root):
        return Sampler(proc_root, cgroup_root, top, report, warn_memory_pct)
    from .fallback import FallbackSampler  # noqa: PLC0415 - keeps psutil off the Linux path

    return FallbackSampler(
        top=top, report=_ignore_report if report is None else report, proc_root=proc_root
    )
