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
- ``oom_kill``: the memory cgroup's OOM kill count rose; the culprit is the process the
  sampler found gone that had most rss at the previous sample (the kernel's likely victim),
  or none when no such process vanished.
- ``memory_growing``: memory_total rose steadily over the last ``GROWTH_WINDOW`` samples (a
  least-squares fit with R² >= ``GROWTH_MIN_R2``) and, at that rate, reaches
  ``DYNOSTAT_WARN_MEMORY_PCT`` % of the quota within ``GROWTH_HORIZON_S``; the culprit is the
  process whose rss grew most over the window. At most once per ``GROWTH_EVERY_S``.

And one line that is not a warning: ``at=info event=workers``, the largest worker group, how
much its workers cost and how many fit (see ``Alerts.workers``).

Each (event, culprit pid) is printed at most once per ``WARN_EVERY_S`` on the monotonic
clock, unless the event says otherwise. All state is keyed by pids present in the latest
sample and pruned every tick, or has a fixed size (the growth window), so it never outgrows
the dyno's own process table.
"""

from __future__ import annotations

import time

from dynostat.output import BYTES_PER_MB, Quantity, megabytes, workers_fields
from dynostat.ratelimit import WARN_EVERY_S, RateLimiter
from dynostat.sample import Culprit, Sample

TYPE_CHECKING = False  # collections costs memory at run time; only type checkers read these
if TYPE_CHECKING:
    from collections.abc import Callable

    from dynostat.records import Fields

# Three rises in a row is past what a pool warming up or a burst of requests does, and early
# enough that a leak adding one zombie a minute is named within minutes, not hours.
RISES_TO_WARN = 3

# memory_growing: the trend of the last 90 samples (30 minutes at the default 20 s interval),
# judged from 10 samples on; R² >= 0.8 is a rise steady enough to extrapolate, not the saw
# of a garbage collector; a day ahead is as far as such a line is worth following.
GROWTH_WINDOW = 90
GROWTH_MIN_SAMPLES = 10
GROWTH_MIN_R2 = 0.8
GROWTH_HORIZON_S = 24 * 3600.0
GROWTH_EVERY_S = 600.0
# How many of each sample's largest processes the window remembers, to name the one that grew.
GROWTH_CULPRITS = 3

# The workers line: when a group is first seen, when workers or fits change (at most once a
# minute), and every 10 minutes otherwise.
WORKERS_EVERY_S = 600.0
WORKERS_CHANGED_EVERY_S = 60.0


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


def go_duration(seconds: float) -> str:
    """A duration as Go prints one, without its trailing zero units: ``2h10m``, ``45m``,
    ``3m20s``, ``30s``. From an hour on, whole minutes: an ETA hours away is not to the second.
    """
    total = max(0, round(seconds))
    if total >= 3600:
        total = (total + 30) // 60 * 60
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    while parts and parts[-1][0] == 0:
        parts.pop()
    return "".join(f"{value}{unit}" for value, unit in parts) or "0s"


class GrowthWindow:
    """memory_total of the last ``size`` samples with their times, for a least-squares trend,
    and each sample's largest processes as (pid, rss) pairs, to name the one that grew.

    A ring of fixed size in bytearrays allocated once, read and written as C numbers through
    memoryviews: the memory it takes does not grow with ticks or pids, and it keeps no Python
    object of a tick after that tick. (Objects kept from every tick would each pin an
    allocator pool made while the scan filled it, which an agent running for months pays in
    RSS; the array module, the obvious store, costs 0.9 MB to import.)
    """

    def __init__(self, size: int = GROWTH_WINDOW) -> None:
        self.size = size
        self.times = memoryview(bytearray(8 * size)).cast("d")  # monotonic seconds
        self.totals = memoryview(bytearray(8 * size)).cast("q")  # memory_total, bytes
        # GROWTH_CULPRITS (pid, rss) pairs per sample; pid 0 for none.
        self.largest = memoryview(bytearray(8 * 2 * GROWTH_CULPRITS * size)).cast("q")
        self._count = 0
        self._next = 0  # where the next sample goes

    def __len__(self) -> int:
        return self._count

    def add(self, when: float, total: int, largest: list[Culprit]) -> None:
        index = self._next
        self.times[index] = when
        self.totals[index] = total
        base = index * 2 * GROWTH_CULPRITS
        for rank in range(GROWTH_CULPRITS):
            culprit = largest[rank] if rank < len(largest) else None
            self.largest[base + 2 * rank] = culprit.pid if culprit is not None else 0
            self.largest[base + 2 * rank + 1] = culprit.count if culprit is not None else 0
        self._next = (index + 1) % self.size
        self._count = min(self._count + 1, self.size)

    def trend(self) -> tuple[float, float] | None:
        """(slope in bytes per second, R²) of the least-squares line; None when flat in
        time or in memory (no line to speak of)."""
        count = self._count
        times, totals = self.times[:count], self.totals[:count]
        origin = times[0]
        mean_t = sum(times) / count - origin
        mean_y = sum(totals) / count
        sxx = sxy = syy = 0.0
        for when, total in zip(times, totals):
            dt = when - origin - mean_t
            dy = total - mean_y
            sxx += dt * dt
            sxy += dt * dy
            syy += dy * dy
        if sxx <= 0 or syy <= 0:
            return None
        return sxy / sxx, sxy * sxy / (sxx * syy)

    def grew_most(self, current: list[Culprit]) -> Culprit | None:
        """Of the processes with most rss now, the one whose rss grew most since the oldest
        sample in the window that had it among its largest (ties: the larger one now)."""
        first = self._next if self._count == self.size else 0
        width = 2 * GROWTH_CULPRITS
        rows = [
            self.largest[index * width : (index + 1) * width].tolist()
            for index in ((first + offset) % self.size for offset in range(self._count))
        ]
        best: tuple[int, int] | None = None
        named = None
        for culprit in current[:GROWTH_CULPRITS]:
            growth = 0
            for pairs in rows:
                pids = pairs[0::2]
                if culprit.pid in pids:
                    growth = culprit.count - pairs[2 * pids.index(culprit.pid) + 1]
                    break
            rank = (growth, culprit.count)
            if best is None or rank > best:
                best, named = rank, culprit
        return named


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
        self.growth = GrowthWindow()
        self._previous_swap: int | None = None
        self._previous_oom_kills: int | None = None
        # The last workers line printed: ((parent pid, comm), (workers, fits)).
        self._workers_printed: tuple[tuple[int, str], tuple[int, int | None]] | None = None

    def check(self, sample: Sample) -> list[Fields]:
        """The lines this sample raises, rate-limited, each as ordered logfmt fields: the
        workers line when it is due, then the warnings."""
        now = self.clock()
        candidates: list[tuple[str, int | None, Fields, float | None]] = []
        candidates.extend((*found, None) for found in self._tasks_near_limit(sample))
        candidates.extend((*found, None) for found in self._rising(sample))
        candidates.extend((*found, None) for found in self._memory(sample))
        candidates.extend(self._oom_kill(sample))
        candidates.extend(self._growing(sample, now))
        lines = self.workers(sample, now)
        for event, pid, fields, every in candidates:
            allowed, _ = self.limiter.allow((event, pid), now, every)
            if allowed:
                lines.append(fields)
        return lines

    # -- workers ---------------------------------------------------------------------------

    def workers(self, sample: Sample, now: float) -> list[Fields]:
        """``at=info event=workers`` for the largest worker group: when a group is first seen,
        when its workers or fits change (at most once a minute), every 10 minutes otherwise."""
        workers = sample.workers
        if workers is None:
            return []
        group = (workers.pid, workers.comm)
        values = (workers.workers, workers.fits)
        every_key = ("workers", *group)
        changed_key = ("workers_changed", *group)
        printed = self._workers_printed
        if printed is not None and printed[0] == group and printed[1] != values:
            due = self.limiter.due(changed_key, now)
        else:
            due = self.limiter.due(every_key, now)
        if not due:
            return []
        self.limiter.allow(every_key, now, WORKERS_EVERY_S)
        self.limiter.allow(changed_key, now, WORKERS_CHANGED_EVERY_S)
        self._workers_printed = (group, values)
        fields: Fields = {"at": "info", "event": "workers"}
        fields.update(workers_fields(workers))
        return [fields]

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

    def _oom_kill(self, sample: Sample):
        kills = sample.memory.oom_kills if sample.memory is not None else None
        previous, self._previous_oom_kills = self._previous_oom_kills, kills
        if kills is None or previous is None or kills <= previous:
            return []
        fields: Fields = {"at": "warn", "event": "oom_kill", "oom_kills": kills}
        victim = sample.oom_victim
        if victim is None:
            return [("oom_kill", None, fields, None)]
        fields.update({"pid": victim.pid, "comm": victim.comm, "rss": megabytes(victim.count)})
        return [("oom_kill", victim.pid, fields, None)]

    def _growing(self, sample: Sample, now: float):
        memory = sample.memory
        total = memory.total if memory is not None else None
        if total is None:
            return []
        window = self.growth
        window.add(now, total, sample.top_rss)
        quota = memory.quota
        if quota is None or len(window) < GROWTH_MIN_SAMPLES:
            return []
        trend = window.trend()
        if trend is None:
            return []
        slope, r_squared = trend
        limit = quota * self.warn_memory_pct / 100
        if slope <= 0 or r_squared < GROWTH_MIN_R2 or total >= limit:
            return []
        eta = (limit - total) / slope
        if eta > GROWTH_HORIZON_S:
            return []
        fields: Fields = {
            "at": "warn",
            "event": "memory_growing",
            "rate": Quantity(slope * 3600 / BYTES_PER_MB, "MB/h"),
            "eta": go_duration(eta),
            "memory_total": megabytes(total),
            "memory_quota": megabytes(quota),
        }
        culprit = window.grew_most(sample.top_rss)
        if culprit is not None:
            fields.update(
                {"pid": culprit.pid, "comm": culprit.comm, "rss": megabytes(culprit.count)}
            )
        # One line per GROWTH_EVERY_S for the dyno, whichever process it names.
        return [("memory_growing", None, fields, GROWTH_EVERY_S)]


def _per_process_counts(sample: Sample):
    """({parent pid: (zombies, comm)}, {pid: (threads, comm)}) from the sample's top-N lists:
    the processes the scan ranked, which are the ones a warning can name."""
    zombie_counts = {parent.pid: (parent.count, parent.comm) for parent in sample.zombie_parents}
    thread_counts = {
        process.pid: (process.count, process.comm)
        for process in sample.top_threads
        if process.count > 1
    }
    return zombie_counts, thread_counts


__all__ = ["Alerts", "RiseTracker"]
