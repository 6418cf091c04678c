"""The values one tick produces, shared by the sources, the warnings, the formats and the sinks.

Every field a source could not read is ``None``: absent is not zero, and a metric whose
source is missing is left out of the output instead of being printed as 0.

These are small slotted records rather than dataclasses: importing ``dataclasses`` pulls in
inspect, ast, dis and tokenize, about 3.4 MB of RSS in an agent whose whole budget is 10 MB.
"""

from __future__ import annotations

_REQUIRED = object()


class _Record:
    """A slotted record: fields in ``__slots__`` order, keyword or positional, with defaults.

    ``_defaults`` maps a field to its default; a ``list`` default is copied per instance so no
    two records share one. Records compare by type and field values, like dataclasses.
    """

    __slots__ = ()
    _defaults: dict = {}  # noqa: RUF012 - a per-class constant, never mutated

    def __init__(self, *args, **kwargs):
        fields = self.__slots__
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(fields)} values")
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__} got {name} twice")
            kwargs[name] = value
        for name in fields:
            value = kwargs.pop(name, _REQUIRED)
            if value is _REQUIRED:
                default = self._defaults.get(name, _REQUIRED)
                if default is _REQUIRED:
                    raise TypeError(f"{type(self).__name__} needs {name}")
                value = list(default) if isinstance(default, list) else default
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no field {sorted(kwargs)[0]}")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __reduce__(self) -> tuple:
        # Rebuilt through __init__, so pickling (tests hand samples across processes) works
        # for frozen records too.
        return (type(self), self._values())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # a mutable record is not hashable

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({inner})"


class _Frozen(_Record):
    """A record that cannot change after it is built, and so can be hashed."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __hash__(self) -> int:
        return hash(self._values())


class LoadAvg(_Frozen):
    """``<proc>/loadavg``: run-queue averages, unitless."""

    __slots__ = ("avg_1m", "avg_5m", "avg_15m")
    avg_1m: float
    avg_5m: float
    avg_15m: float


class Memory(_Frozen):
    """The dyno's memory cgroup, in bytes (page counters in pages)."""

    __slots__ = ("rss", "cache", "swap", "pgpgin", "pgpgout", "quota")
    _defaults = dict.fromkeys(__slots__)
    rss: int | None  # v1 total_rss (or rss); v2 anon
    cache: int | None  # v1 total_cache (or cache); v2 file
    swap: int | None  # v1 total_swap (or swap); v2 memory.swap.current
    pgpgin: int | None  # v1 total_pgpgin; v2 has no equivalent (left out)
    pgpgout: int | None  # v1 total_pgpgout; v2 has no equivalent (left out)
    quota: int | None  # memory.limit_in_bytes / memory.max; None = no limit

    @property
    def total(self) -> int | None:
        """rss + cache + swap, like log-runtime-metrics; None when rss is unknown."""
        if self.rss is None:
            return None
        return self.rss + (self.cache or 0) + (self.swap or 0)


class Process(_Frozen):
    """One ``<proc>/<pid>/stat`` line, reduced to what the agent uses."""

    __slots__ = ("pid", "ppid", "comm", "state", "threads", "rss_bytes")
    pid: int
    ppid: int
    comm: str
    state: str  # one letter, 'Z' for a zombie
    threads: int  # num_threads
    rss_bytes: int  # rss pages * page size


class Tasks(_Frozen):
    """What the dyno's task limit counts, and the limit itself."""

    __slots__ = ("tasks", "processes", "threads", "zombies", "limit", "pids_current")
    _defaults = {"limit": None, "pids_current": None}  # noqa: RUF012
    tasks: int  # every thread of every process, zombies included
    processes: int
    threads: int
    zombies: int
    limit: int | None  # min(RLIMIT_NPROC, pids.max) of those that exist
    pids_current: int | None  # the pids cgroup's own count, when readable


class Culprit(_Frozen):
    """A process named in the output: pid, comm and the count it is ranked by."""

    __slots__ = ("pid", "comm", "count")
    pid: int
    comm: str
    count: int  # zombies it has not waited for, its threads, or its rss in bytes


class Sample(_Record):
    """Everything one tick read. Sources fill what they can; the rest stays None/empty."""

    __slots__ = (
        "wall_time",
        "load",
        "memory",
        "tasks",
        "processes",
        "zombie_parents",
        "top_threads",
        "top_rss",
        "agent_rss",
        "agent_cpu_ms",
        "push_dropped",
    )
    _defaults = {  # noqa: RUF012
        "load": None,
        "memory": None,
        "tasks": None,
        "processes": [],
        "zombie_parents": [],
        "top_threads": [],
        "top_rss": [],
        "agent_rss": None,
        "agent_cpu_ms": None,
        "push_dropped": None,
    }
    wall_time: float  # time.time() of the sample, seconds since the epoch
    load: LoadAvg | None
    memory: Memory | None
    tasks: Tasks | None
    processes: list[Process]  # filled only when a caller asks the sampler for every process
    zombie_parents: list[Culprit]  # top N by zombie count
    top_threads: list[Culprit]  # top N by threads
    top_rss: list[Culprit]  # top N by rss bytes
    agent_rss: int | None  # bytes, the agent's own resident memory
    agent_cpu_ms: float | None  # CPU ms the agent used since the previous sample
    push_dropped: int | None  # samples the push buffer dropped so far (push on only)
