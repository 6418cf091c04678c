"""The values one tick produces, shared by the sources, the warnings, the formats and the sinks.

Every field a source could not read is ``None``: absent is not zero, and a metric whose
source is missing is left out of the output instead of being printed as 0.

The records are slotted classes (see ``records``), cheap to import and to build.
"""

from __future__ import annotations

from .records import Frozen, Record


class LoadAvg(Frozen):
    """``<proc>/loadavg``: run-queue averages, unitless."""

    __slots__ = ("avg_1m", "avg_5m", "avg_15m")
    avg_1m: float
    avg_5m: float
    avg_15m: float


class Memory(Frozen):
    """The dyno's memory cgroup, in bytes (page counters in pages)."""

    __slots__ = ("rss", "cache", "swap", "pgpgin", "pgpgout", "quota", "oom_kills")
    _defaults = dict.fromkeys(__slots__)
    rss: int | None  # v1 total_rss (or rss); v2 anon
    cache: int | None  # v1 total_cache (or cache); v2 file
    swap: int | None  # v1 total_swap (or swap); v2 memory.swap.current
    pgpgin: int | None  # v1 total_pgpgin; v2 has no equivalent (left out)
    pgpgout: int | None  # v1 total_pgpgout; v2 has no equivalent (left out)
    quota: int | None  # memory.limit_in_bytes / memory.max; None = no limit
    oom_kills: int | None  # processes the OOM killer killed in the cgroup (oom_kill)

    @property
    def total(self) -> int | None:
        """rss + cache + swap, like log-runtime-metrics; None when rss is unknown."""
        if self.rss is None:
            return None
        return self.rss + (self.cache or 0) + (self.swap or 0)


class Tasks(Frozen):
    """What the dyno's task limit counts, and the limit itself.

    ``tasks`` is the pids cgroup's own count where it is readable: that is what the limit
    counts, whatever /proc lets the agent see. The other counts are what the /proc scan saw,
    and are all None when it saw no process at all.
    """

    __slots__ = ("tasks", "processes", "threads", "zombies", "limit")
    _defaults = {"limit": None}  # noqa: RUF012
    tasks: int | None  # every thread of every process, zombies included
    processes: int | None
    threads: int | None  # sum of num_threads over /proc: tasks as far as /proc shows them
    zombies: int | None
    limit: int | None  # min(RLIMIT_NPROC, pids.max) of those that exist


class Culprit(Frozen):
    """A process named in the output: pid, comm and the count it is ranked by."""

    __slots__ = ("pid", "comm", "count")
    pid: int
    comm: str
    count: int  # zombies it has not waited for, its threads, or its rss in bytes


class Workers(Frozen):
    """The largest worker group (see ``procfs.WorkerGroup``) and what its workers cost.

    Sizes are bytes from ``smaps_rollup``, None where it could not be read. ``fits`` is how
    many workers the quota holds (see ``sampler.workers_that_fit``), None without a quota.
    """

    __slots__ = ("pid", "comm", "workers", "worker_pss", "worker_uss", "parent_pss", "fits")
    _defaults = dict.fromkeys(("worker_pss", "worker_uss", "parent_pss", "fits"))
    pid: int  # the parent's
    comm: str  # the parent's
    workers: int
    worker_pss: int | None  # the workers' mean PSS
    worker_uss: int | None  # the largest USS of a worker: what one more worker would add
    parent_pss: int | None
    fits: int | None


class Sample(Record):
    """Everything one tick read. Sources fill what they can; the rest stays None/empty."""

    __slots__ = (
        "wall_time",
        "load",
        "memory",
        "tasks",
        "zombie_parents",
        "top_threads",
        "top_rss",
        "top_pss",
        "workers",
        "oom_victim",
        "agent_rss",
        "agent_cpu_ms",
        "agent_cpu_seconds",
        "push_dropped",
    )
    _defaults = {  # noqa: RUF012
        "load": None,
        "memory": None,
        "tasks": None,
        "zombie_parents": [],
        "top_threads": [],
        "top_rss": [],
        "top_pss": [],
        "workers": None,
        "oom_victim": None,
        "agent_rss": None,
        "agent_cpu_ms": None,
        "agent_cpu_seconds": None,
        "push_dropped": None,
    }
    wall_time: float  # time.time() of the sample, seconds since the epoch
    load: LoadAvg | None
    memory: Memory | None
    tasks: Tasks | None
    zombie_parents: list[Culprit]  # top N by zombie count
    top_threads: list[Culprit]  # top N by threads
    top_rss: list[Culprit]  # top N by rss bytes
    top_pss: list[Culprit]  # top N by PSS bytes, of the processes whose smaps_rollup was read
    workers: Workers | None  # the largest worker group, if there is one
    # The process most likely killed when the cgroup's oom_kill count rose since the previous
    # sample: the one with most rss then that is gone now (its rss as it was then).
    oom_victim: Culprit | None
    agent_rss: int | None  # bytes, the agent's own resident memory
    agent_cpu_ms: float | None  # CPU ms the agent used since the previous sample
    agent_cpu_seconds: float | None  # CPU s the agent used since it started: a counter
    push_dropped: int | None  # samples the push buffer dropped so far (push on only)
