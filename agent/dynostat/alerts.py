"""Warnings: spot the trend that kills a dyno before it does, and name the process behind it.

Events (each an ``at=warn`` line naming the numbers and the culprit's pid and comm):

- ``tasks_near_limit``: tasks reached ``DYNOSTAT_WARN_TASKS_PCT`` % of the limit. The culprit
  is whichever holds more tasks: the parent with most unreaped zombies, or the process with
  most threads.
- ``zombies_rising``: one parent's zombie count rose in ``RISES_TO_WARN`` samples without
  ever falling in between (a parent that reaps at all shows a fall).
- ``threads_rising``: the same for one process's thread count.
- ``memory_near_quota``: memory_total reached ``DYNOSTAT_WARN_MEMORY_PCT`` % of the quota;
  the culprit is the process with most rss.
- ``swapping``: swap grew since the previous sample; the culprit is the process with most rss.

Each (event, culprit pid) is printed at most once per ``WARN_EVERY_S`` on the monotonic
clock. All state is keyed by pids present in the latest sample and pruned every tick, so it
never outgrows the dyno's own process table.
"""

from __future__ import annotations

import time

from dynostat.output import megabytes
from dynostat.ratelimit import WARN_EVERY_S, RateLimiter
from dynostat.sample import Culprit, Sample

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable

    from dynostat.records import Fields

# Three rises in a row is past what a pool warming up or a burst of requests does, and early
# enough that a leak adding one zombie a minute is named within minutes, not hours.
RISES_TO_WARN = 3


class _Streak:
    """A count that has not fallen for a while: where it started and how often it rose."""

    __slots__ = ("comm", "last", "rises", "start")

    def __init__(self, count: int, comm: str):
        self.start = count
        self.last = count
        self.rises = 0
        self.comm = comm


class RiseTracker:
    """Follows one count per pid and says when it has risen ``RISES_TO_WARN`` times unbroken."""

    def __init__(self, rises_to_warn: int = RISES_TO_WARN):
        self.rises_to_warn = rises_to_warn
        self._streaks: dict[int, _Streak] = {}

    def update(self, counts: dict[int, tuple[int, str]]) -> list[tuple[int, _Streak]]:
        """Feed this sample's {pid: (count, comm)}; returns the pids rising right now.

        A pid missing from ``counts`` has exited (or dropped out of what is followed) and is
        forgotten, which is what keeps this bounded.
        """
        rising = []
        streaks = self._streaks
        for pid in [pid for pid in streaks if pid not in counts]:
            del streaks[pid]
        for pid, (count, comm) in counts.items():
            streak = streaks.get(pid)
            if streak is None or comm != streak.comm:
                # New pid, or a recycled pid now running something else.
                streaks[pid] = _Streak(count, comm)
                continue
            if count < streak.last:
                streaks[pid] = _Streak(count, comm)
            elif count > streak.last:
                streak.last = count
                streak.rises += 1
                if streak.rises >= self.rises_to_warn:
                    rising.append((pid, streak))
        return rising


def _pct(value: int, limit: int) -> int:
    return value * 100 // limit


class Alerts:
    """Checks each sample against the thresholds and returns the warnings to print."""

    def __init__(
        self,
        warn_tasks_pct: int = 80,
        warn_memory_pct: int = 90,
        clock: Callable[[], float] = time.monotonic,
        every: float = WARN_EVERY_S,
    ):
        self.warn_tasks_pct = warn_tasks_pct
        self.warn_memory_pct = warn_memory_pct
        self.clock = clock
        self.limiter = RateLimiter(every=every)
        self.zombies = RiseTracker()
        self.threads = RiseTracker()
        self._previous_swap: int | None = None

    def check(self, sample: Sample) -> list[Fields]:
        """The warnings this sample raises, rate-limited, each as ordered logfmt fields."""
        now = self.clock()
        candidates: list[tuple[str, int | None, Fields]] = []
        candidates.extend(self._tasks_near_limit(sample))
        candidates.extend(self._rising(sample))
        candidates.extend(self._memory(sample))
        warnings = []
        for event, pid, fields in candidates:
            allowed, _ = self.limiter.allow((event, pid), now)
            if allowed:
                warnings.append(fields)
        return warnings

    # -- tasks -----------------------------------------------------------------------------

    def _tasks_near_limit(self, sample: Sample):
        tasks = sample.tasks
        if tasks is None or tasks.tasks is None or not tasks.limit or tasks.limit <= 0:
            return []
        if tasks.tasks * 100 < self.warn_tasks_pct * tasks.limit:
            return []
        fields: Fields = {
            "at": "warn",
            "event": "tasks_near_limit",
            "tasks": tasks.tasks,
            "tasks_limit": tasks.limit,
            "pct": _pct(tasks.tasks, tasks.limit),
        }
        top_zombies = sample.zombie_parents[0] if sample.zombie_parents else None
        top_threads = sample.top_threads[0] if sample.top_threads else None
        culprit: Culprit | None
        if top_zombies is not None and (
            top_threads is None or top_zombies.count > top_threads.count
        ):
            culprit, key = top_zombies, "zombies"
        else:
            culprit, key = top_threads, "threads"
        if culprit is None:
            return [("tasks_near_limit", None, fields)]
        fields.update({"pid": culprit.pid, "comm": culprit.comm, key: culprit.count})
        return [("tasks_near_limit", culprit.pid, fields)]

    # -- zombies and threads rising --------------------------------------------------------

    def _rising(self, sample: Sample):
        zombie_counts, thread_counts = _per_process_counts(sample)
        found = []
        for pid, streak in self.zombies.update(zombie_counts):
            fields: Fields = {
                "at": "warn",
                "event": "zombies_rising",
                "zombies": streak.last,
                "from": streak.start,
                "rises": streak.rises,
                "pid": pid,
                "comm": streak.comm,
            }
            found.append(("zombies_rising", pid, fields))
        for pid, streak in self.threads.update(thread_counts):
            fields = {
                "at": "warn",
                "event": "threads_rising",
                "threads": streak.last,
                "from": streak.start,
                "rises": streak.rises,
                "pid": pid,
                "comm": streak.comm,
            }
            found.append(("threads_rising", pid, fields))
        return found

    # -- memory ----------------------------------------------------------------------------

    def _memory(self, sample: Sample):
        memory = sample.memory
        found = []
        top_rss = sample.top_rss[0] if sample.top_rss else None
        culprit_fields: Fields = {}
        if top_rss is not None:
            culprit_fields = {
                "pid": top_rss.pid,
                "comm": top_rss.comm,
                "rss": megabytes(top_rss.count),
            }
        culprit_pid = top_rss.pid if top_rss is not None else None

        total = memory.total if memory is not None else None
        quota = memory.quota if memory is not None else None
        if total is not None and quota and total * 100 >= self.warn_memory_pct * quota:
            fields: Fields = {
                "at": "warn",
                "event": "memory_near_quota",
                "memory_total": megabytes(total),
                "memory_quota": megabytes(quota),
                "pct": _pct(total, quota),
            }
            fields.update(culprit_fields)
            found.append(("memory_near_quota", culprit_pid, fields))

        swap = memory.swap if memory is not None else None
        previous = self._previous_swap
        self._previous_swap = swap
        if swap is not None and previous is not None and swap > previous:
            fields = {
                "at": "warn",
                "event": "swapping",
                "memory_swap": megabytes(swap),
                "from": megabytes(previous),
            }
            fields.update(culprit_fields)
            found.append(("swapping", culprit_pid, fields))
        return found


def _per_process_counts(sample: Sample):
    """({parent pid: (zombies, comm)}, {pid: (threads, comm)}) from the sample's top-N lists:
    the processes the scan ranked, which are the ones a warning can name."""
    zombie_counts = {c.pid: (c.count, c.comm) for c in sample.zombie_parents}
    thread_counts = {c.pid: (c.count, c.comm) for c in sample.top_threads if c.count > 1}
    return zombie_counts, thread_counts


__all__ = ["Alerts", "RiseTracker"]
