"""One tick's reading of the kernel: load, memory, tasks and culprits, each source on its own.

``Sampler.sample`` never raises for kernel trouble. What an error means is decided in one
place, ``ErrorPolicy.handle``: a pid that vanished mid-scan is skipped silently, a missing
source file leaves its metric out, and an unreadable or malformed file is reported once (with
its path) and counted, so a broken file cannot turn into a log line per tick.

``tasks`` is the pids cgroup's own count where it is readable, since that is what the dyno's
limit counts; /proc may show less (``hidepid``) or nothing at all, which is said once.
"""

from __future__ import annotations

import os

from . import procfs
from .cgroup import CgroupReader, parse_self_cgroup
from .loadavg import parse_loadavg
from .procfs import PID_STAT, is_vanished, read_file
from .ratelimit import ONCE
from .sample import LoadAvg, Memory, Sample, Tasks

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


class ErrorPolicy:
    """Decides what each error means, and reports each kind of trouble once.

    ``kind`` groups paths that fail for one reason (PID_STAT for every ``<pid>/stat``), so
    the keys already reported stay bounded however many pids come and go.
    """

    def __init__(self, report: Report) -> None:
        self._report = report

    def handle(self, path: str, error: BaseException, kind: str | None = None) -> None:
        if kind == PID_STAT and is_vanished(error):
            return  # the process exited; its absence is the truth, not an error
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
    ) -> None:
        self.proc_root = proc_root.rstrip("/") or "/"
        self.cgroup_root = cgroup_root.rstrip("/") or "/"
        self.top = top
        self.errors = ErrorPolicy(_ignore_report if report is None else report)
        self._cgroup: CgroupReader | None = None
        # Whether the previous sample saw fewer tasks in /proc than in the pids cgroup.
        self._short_before = False

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
        try:
            self._fill_tasks(sample)
        except Exception as error:  # noqa: BLE001 - see above
            self.errors.handle(self.proc_root, error, "tasks")
        return sample

    def _fill_tasks(self, sample: Sample) -> None:
        table: procfs.ProcessTable | None = None
        try:
            table = procfs.scan_processes(self.proc_root, self.errors.handle, self.top)
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
                    pids_current=pids_current,
                )
            return
        sample.tasks = Tasks(
            tasks=tasks,
            processes=table.processes,
            threads=table.threads,
            zombies=table.zombies,
            limit=limit,
            pids_current=pids_current,
        )
        sample.top_threads = table.most_threads.culprits()
        sample.top_rss = table.most_rss.culprits(scale=procfs.PAGE_SIZE)
        sample.zombie_parents = procfs.zombie_parents(
            self.proc_root, table.zombie_counts, self.top, self.errors.handle
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


def restricted_slack(cgroup_tasks: int) -> int:
    """How many more tasks the pids cgroup may count than /proc shows without meaning that
    /proc hides any: a few, plus 1% for the churn of a large dyno during one scan."""
    return 2 + cgroup_tasks // 100


def make_sampler(
    proc_root: str = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    top: int = 3,
    report: Report | None = None,
) -> Sampler | FallbackSampler:
    """A Sampler over ``proc_root``, or the psutil FallbackSampler where there is no procfs
    (a developer's Mac), which says so once through ``report``."""
    if os.path.isdir(proc_root):
        return Sampler(proc_root, cgroup_root, top, report)
    from .fallback import FallbackSampler  # noqa: PLC0415 - keeps psutil off the Linux path

    return FallbackSampler(
        top=top, report=_ignore_report if report is None else report, proc_root=proc_root
    )
