"""The values one tick produces, shared by the sources, the warnings, the formats and the sinks.

Every field a source could not read is ``None``: absent is not zero, and a metric whose
source is missing is left out of the output instead of being printed as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoadAvg:
    """``<proc>/loadavg``: run-queue averages, unitless."""

    avg_1m: float
    avg_5m: float
    avg_15m: float


@dataclass(frozen=True)
class Memory:
    """The dyno's memory cgroup, in bytes (page counters in pages)."""

    rss: int | None = None  # v1 total_rss (or rss); v2 anon
    cache: int | None = None  # v1 total_cache (or cache); v2 file
    swap: int | None = None  # v1 total_swap (or swap); v2 memory.swap.current
    pgpgin: int | None = None  # v1 total_pgpgin; v2 has no equivalent (left out)
    pgpgout: int | None = None  # v1 total_pgpgout; v2 has no equivalent (left out)
    quota: int | None = None  # memory.limit_in_bytes / memory.max; None = no limit

    @property
    def total(self) -> int | None:
        """rss + cache + swap, like log-runtime-metrics; None when rss is unknown."""
        if self.rss is None:
            return None
        return self.rss + (self.cache or 0) + (self.swap or 0)


@dataclass(frozen=True)
class Process:
    """One ``<proc>/<pid>/stat`` line, reduced to what the agent uses."""

    pid: int
    ppid: int
    comm: str
    state: str  # one letter, 'Z' for a zombie
    threads: int  # num_threads
    rss_bytes: int  # rss pages * page size


@dataclass(frozen=True)
class Tasks:
    """What the dyno's task limit counts, and the limit itself."""

    tasks: int  # every thread of every process, zombies included
    processes: int
    threads: int
    zombies: int
    limit: int | None = None  # min(RLIMIT_NPROC, pids.max) of those that exist
    pids_current: int | None = None  # the pids cgroup's own count, when readable


@dataclass(frozen=True)
class Culprit:
    """A process named in the output: pid, comm and the count it is ranked by."""

    pid: int
    comm: str
    count: int  # zombies it has not waited for, its threads, or its rss in bytes


@dataclass
class Sample:
    """Everything one tick read. Sources fill what they can; the rest stays None/empty."""

    wall_time: float  # time.time() of the sample, seconds since the epoch
    load: LoadAvg | None = None
    memory: Memory | None = None
    tasks: Tasks | None = None
    processes: list[Process] = field(default_factory=list)
    zombie_parents: list[Culprit] = field(default_factory=list)  # top N by zombie count
    top_threads: list[Culprit] = field(default_factory=list)  # top N by threads
    top_rss: list[Culprit] = field(default_factory=list)  # top N by rss bytes
    agent_rss: int | None = None  # bytes, the agent's own resident memory
    agent_cpu_ms: float | None = None  # CPU ms the agent used since the previous sample
    push_dropped: int | None = None  # samples the push buffer dropped so far (push on only)
